package domain

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to exactly one HTTP status in the API and one exit
// code in the CLI; the table lives with the transport, not here.
const (
	EINVALID      = "invalid"          // input failed validation
	ENOTFOUND     = "not_found"        // the thing does not exist (or is not visible to the caller)
	ECONFLICT     = "conflict"         // duplicate key, stale version
	EUNAUTHORIZED = "unauthorized"     // no or bad credentials
	EFORBIDDEN    = "forbidden"        // credentials fine, action not allowed
	EUNAVAILABLE  = "unavailable"      // a dependency is down
	ERATELIMITED  = "rate_limited"     // too many attempts; RetryAfter says when to try again
	ESUSPENDED    = "tenant_suspended" // the tenant is suspended: nothing of it is served
	EINTERNAL     = "internal"         // a bug or an unexpected failure; never shown to clients
)

// Error is an application error whose Message is safe to show to a client.
// Details carries structured context such as per-field validation messages.
type Error struct {
	Code    string
	Message string
	Details map[string]string
	// RetryAfter, when set, tells the client when trying again may succeed
	// (ERATELIMITED, EUNAVAILABLE).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the message of its
// *Error, or a generic text for anything else so internal details never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorDetails returns the details of the first *Error in err's chain, or nil.
func ErrorDetails(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}
