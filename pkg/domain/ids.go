package domain

import "fmt"

// MaxBulkIDs is how many ids one bulk action takes.
const MaxBulkIDs = 500

// BulkIDs checks the ids of a bulk action: 1 to MaxBulkIDs ids, each in
// canonical form (CanonicalID). It returns them without repeats, in their
// first order, or an EINVALID *Error naming ids.
func BulkIDs(ids []string) ([]string, error) {
	if len(ids) == 0 || len(ids) > MaxBulkIDs {
		return nil, &Error{Code: EINVALID, Message: "invalid ids",
			Details: map[string]string{"ids": fmt.Sprintf("must hold from 1 to %d ids", MaxBulkIDs)}}
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		if !CanonicalID(id) {
			return nil, &Error{Code: EINVALID, Message: "invalid ids",
				Details: map[string]string{"ids": fmt.Sprintf("item %d is not an id (lower-case hyphenated UUID)", i)}}
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}
