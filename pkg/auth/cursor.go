package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Cursors seals the page cursors the server hands out, so that a cursor
// the server did not issue, for this list, is refused before it reaches a
// query or a cache key: clients cannot mint cache entries.
type Cursors struct {
	key []byte
}

// Cursors returns the cursor sealer of these tokens' secret. Its key is
// derived from the secret, never the secret itself, so a cursor reveals
// nothing that signs a token.
func (t *Tokens) Cursors() *Cursors {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte("saas page cursors v1"))
	return &Cursors{key: m.Sum(nil)}
}

// cursorMACLen is the length of a seal: 128 bits of HMAC-SHA256.
const cursorMACLen = 16

// Seal returns raw with its seal for scope (say, the tenant and the list's
// path): "<raw>.<seal>". An empty raw stays empty (no next page).
func (c *Cursors) Seal(scope, raw string) string {
	if raw == "" {
		return ""
	}
	return raw + "." + base64.RawURLEncoding.EncodeToString(c.mac(scope, raw))
}

// Open returns the raw cursor of a sealed one, and false when the seal is
// missing or was not made by this server for scope.
func (c *Cursors) Open(scope, sealed string) (string, bool) {
	i := strings.LastIndexByte(sealed, '.')
	if i < 0 {
		return "", false
	}
	raw, seal := sealed[:i], sealed[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(seal)
	if err != nil || raw == "" || !hmac.Equal(got, c.mac(scope, raw)) {
		return "", false
	}
	return raw, true
}

func (c *Cursors) mac(scope, raw string) []byte {
	m := hmac.New(sha256.New, c.key)
	// The scope's length first: no (scope, raw) pair can be re-cut into
	// another with the same bytes.
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(len(scope)>>24), byte(len(scope)>>16), byte(len(scope)>>8), byte(len(scope))
	m.Write(n[:])
	m.Write([]byte(scope))
	m.Write([]byte(raw))
	return m.Sum(nil)[:cursorMACLen]
}
