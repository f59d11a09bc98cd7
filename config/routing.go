package config

// Routing (tables, static routes, policy rules) of a tenant. Filled in by
// the routing work.

type rawRouting struct{}

// Routing is a tenant's validated routing state.
type Routing struct{}

func validateRouting(r *reporter, key string, raw *rawTenant, t *Tenant) {}
