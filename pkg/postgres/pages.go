package postgres

import (
	"encoding/base64"
	"strconv"

	"github.com/tenantworks/saas/pkg/domain"
)

// MaxPageSize is the largest page a list returns.
const MaxPageSize = 100

var errBadLimit = &domain.Error{Code: domain.EINVALID, Message: "invalid limit", Details: map[string]string{"limit": "must be from 1 to 100"}}

func checkLimit(n int) error {
	if n < 1 || n > MaxPageSize {
		return errBadLimit
	}
	return nil
}

func badCursor() error {
	return &domain.Error{Code: domain.EINVALID, Message: "invalid cursor", Details: map[string]string{"cursor": "is not a cursor of this list"}}
}

// idCursor is the position after a row of a list ordered by a bigint id:
// the id in decimal, base64url-encoded so that clients treat it as opaque.
func encodeIDCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
}

// decodeIDCursor returns the id of a cursor made by encodeIDCursor, or an
// EINVALID *Error naming the cursor parameter.
func decodeIDCursor(s string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 20 {
		return 0, badCursor()
	}
	id, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != string(raw) {
		return 0, badCursor()
	}
	return id, nil
}
