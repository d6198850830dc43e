package api_test

import (
	"os"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tenantworks/saas/pkg/auth"
)

// TestMain lowers the bcrypt cost: every sign-in test hashes, and at the
// production cost under the race detector each hash takes over a second.
// Hashing and checking are the same code either way.
func TestMain(m *testing.M) {
	auth.PasswordCost = bcrypt.MinCost
	os.Exit(m.Run())
}
