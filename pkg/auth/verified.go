package auth

import (
	"container/list"
	"sync"
	"time"
)

// verifiedCap bounds the verified-token cache: enough for the tokens in
// use against one process at a time, a few megabytes at most.
const verifiedCap = 4096

// verifiedKey is a token as verified for one tenant.
type verifiedKey struct{ token, tenant string }

type verifiedEntry struct {
	key    verifiedKey
	claims Claims
	exp    time.Time
}

// verified remembers the claims of tokens that passed Verify, keyed by
// the exact token string and tenant, so that a token seen again skips the
// signature check and the claims' decoding. What it holds is a pure
// function of the token, the secrets (fixed for a Tokens) and the tenant,
// except for the expiry, which every lookup checks against the clock.
// Revocation is not its business: the per-request check of the account
// (generation, active) runs on every request all the same. Least recently
// used entries go first.
type verified struct {
	mu    sync.Mutex
	ll    *list.List // of *verifiedEntry, most recent first
	items map[verifiedKey]*list.Element
}

func newVerified() *verified {
	return &verified{ll: list.New(), items: make(map[verifiedKey]*list.Element)}
}

// get returns the claims of k if it was verified and has not expired at now.
func (v *verified) get(k verifiedKey, now time.Time) (Claims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	el, ok := v.items[k]
	if !ok {
		return Claims{}, false
	}
	e := el.Value.(*verifiedEntry)
	if !now.Before(e.exp) {
		v.ll.Remove(el)
		delete(v.items, k)
		return Claims{}, false
	}
	v.ll.MoveToFront(el)
	return e.claims, true
}

// put remembers c, verified for k, until exp.
func (v *verified) put(k verifiedKey, c Claims, exp time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if el, ok := v.items[k]; ok {
		v.ll.MoveToFront(el)
		return
	}
	v.items[k] = v.ll.PushFront(&verifiedEntry{key: k, claims: c, exp: exp})
	for v.ll.Len() > verifiedCap {
		last := v.ll.Back()
		v.ll.Remove(last)
		delete(v.items, last.Value.(*verifiedEntry).key)
	}
}
