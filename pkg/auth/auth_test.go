package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestAPasswordPastBcryptsLimitNeverMatches(t *testing.T) {
	t.Parallel()
	old := strings.Repeat("p", MaxPasswordLen)
	h, err := bcrypt.GenerateFromPassword([]byte(old), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(string(h), old) {
		t.Fatal("72 bytes do not match their own hash")
	}
	// bcrypt alone compares the first 72 bytes only: this would match.
	if CheckPassword(string(h), old+"suffix") {
		t.Fatal("72 bytes and a suffix match the hash of the 72 bytes")
	}
	if _, err := HashPassword(old + "p"); err == nil {
		t.Fatal("HashPassword of 73 bytes succeeded, want an error")
	}
}
