package config

// Firewall policy (zones, rules, sets, NAT) of a tenant. Filled in by the
// policy work; the hooks are here so the foundation's decoder rejects
// unknown keys today and accepts the policy keys once they exist.

type rawPolicy struct{}

// Policy is a tenant's validated firewall policy.
type Policy struct{}

func validatePolicy(r *reporter, key string, raw *rawTenant, t *Tenant) {}
