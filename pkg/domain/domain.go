// Package domain holds the vocabulary every other package shares: tenants,
// domains, users, the one error type with its codes, and the context helpers
// that carry the current tenant. It imports nothing of this module.
package domain
