// Package auth hashes and checks passwords, and (with the API) issues and
// verifies tenant-bound tokens.
package auth

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// PasswordCost is the bcrypt work factor: about 50 ms a hash on a current
// server core, which bounds online guessing without making sign-in slow.
// Test binaries lower it (bcrypt is far slower under the race detector);
// nothing else may.
var PasswordCost = 11

// MaxPasswordLen is the longest password in bytes: bcrypt reads no more.
const MaxPasswordLen = 72

// HashPassword returns the bcrypt hash of pw. A password longer than
// MaxPasswordLen is an error (domain.ValidatePassword refuses it first).
func HashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), PasswordCost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches hash. A malformed hash counts as
// a mismatch, and so does a password longer than MaxPasswordLen: bcrypt
// would compare only its first 72 bytes, so any suffix would match.
func CheckPassword(hash, pw string) bool {
	if len(pw) > MaxPasswordLen {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}
