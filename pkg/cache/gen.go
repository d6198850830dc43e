package cache

import (
	"crypto/rand"
	"time"

	"github.com/redis/go-redis/v9"
)

// Generations guard cached values against slow readers, and stay correct
// when Redis evicts or expires any key.
//
// A generation key holds a token that no key has held before (newGen), not
// a counter: a counter that is evicted restarts where it once was and
// matches values cached under that old number. A reader reads the
// generation, creating it when it is missing (getGen, valueAndGen), then the
// database, and stores what it read only if the generation still holds
// exactly the token it read (setIfGen). A writer, once its change is
// committed, replaces the token. So a reader that raced a write finds
// another token, or none when the generation was evicted meanwhile, and
// stores nothing; and a generation created after an eviction is new, so no
// value cached under an older one can match it.
//
// Every generation lives at least as long as the values it guards
// (genTTL), and setIfGen extends it whenever it guards a new value.

// newGen returns a fresh generation token: 26 random base32 characters
// (130 bits), never seen before in practice.
func newGen() string { return rand.Text() }

// genTTL is how long a generation lives: twice the TTL of the values it
// guards, so that it outlives each of them and any read in flight.
func genTTL(ttl time.Duration) time.Duration { return 2 * ttl }

// getGen returns the generation at KEYS[1], first setting it to ARGV[1]
// for ARGV[2] milliseconds when it is missing.
var getGen = redis.NewScript(`
local g = redis.call('GET', KEYS[1])
if not g then
  g = ARGV[1]
  redis.call('SET', KEYS[1], g, 'PX', ARGV[2])
end
return g`)

// valueAndGen returns {the value at KEYS[1] or nil, the generation at
// KEYS[2]}, first setting the generation to ARGV[1] for ARGV[2]
// milliseconds when it is missing.
var valueAndGen = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
local g = redis.call('GET', KEYS[2])
if not g then
  g = ARGV[1]
  redis.call('SET', KEYS[2], g, 'PX', ARGV[2])
end
return {v, g}`)

// setIfGen stores ARGV[2] at KEYS[1] for ARGV[3] milliseconds only while
// the generation at KEYS[2] is exactly ARGV[1] (a missing generation is
// never a match), and then makes the generation live at least ARGV[4]
// milliseconds. Returns 1 when it stored.
var setIfGen = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1`)
