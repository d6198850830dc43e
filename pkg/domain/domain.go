// Package domain holds the vocabulary every other package shares: tenants,
// domains, users, the one error type with its codes, and the context helpers
// that carry the current tenant. It imports nothing of this module.
package domain

// CanonicalID reports whether id is a UUID in its one accepted spelling:
// lower-case hex, hyphenated 8-4-4-4-12. PostgreSQL and uuid.Parse also
// take upper case, braces, no hyphens and "urn:uuid:"; those spellings are
// refused before they reach a cache key or a comparison, so one product
// never has two names.
func CanonicalID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
