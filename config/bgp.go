package config

// BGP of a tenant ([tenant.X.bgp]). Filled in by the BGP work.

type rawBGPHook struct{}

// BGP is a tenant's validated BGP speaker configuration.
type BGP struct{}

func validateBGP(r *reporter, key string, raw *rawTenant, t *Tenant) {}
