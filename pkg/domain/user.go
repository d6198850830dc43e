package domain

import (
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// User is a person who signs in to one tenant.
type User struct {
	ID        string
	Email     string
	IsStaff   bool
	IsActive  bool
	CreatedAt time.Time
	UpdatedAt time.Time
	// TokenGeneration goes up by one with every password change or reset;
	// tokens issued at an older generation are refused.
	TokenGeneration int64
}

// Superuser is a platform operator, stored in the public schema.
type Superuser struct {
	ID        string
	Email     string
	IsActive  bool
	CreatedAt time.Time
	// TokenGeneration is as User.TokenGeneration, for platform tokens.
	TokenGeneration int64
}

// NormalizeEmail trims and lower-cases an address and checks its syntax. It
// returns an EINVALID *Error naming the field on failure.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || len(e) > 254 {
		return "", &Error{Code: EINVALID, Message: "invalid email", Details: map[string]string{"email": "must be a valid email address"}}
	}
	return e, nil
}

// ValidatePassword enforces the minimum password policy: at least 8
// characters (not bytes: "éééé" is 8 bytes but 4 characters) and at most
// 72 bytes, all that bcrypt reads.
func ValidatePassword(pw string) error {
	if utf8.RuneCountInString(pw) < 8 || len(pw) > 72 {
		return &Error{Code: EINVALID, Message: "invalid password",
			Details: map[string]string{"password": "must be at least 8 characters and at most 72 bytes"}}
	}
	return nil
}
