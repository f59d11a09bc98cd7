package config

// MaxConntrackLimit bounds conntrack_limit: nf_conntrack_max is a 32-bit
// figure and no namespace tracks more than a few million connections.
const MaxConntrackLimit = 1 << 24

// validateQuota validates [tenant.T] conntrack_limit, the tenant's
// connection quota. It is enforced by the policy's nftables table, so a
// tenant without policy cannot have one.
func validateQuota(r reporter, raw *int, t *Tenant) {
	if raw == nil {
		return
	}
	switch n := *raw; {
	case n < 1 || n > MaxConntrackLimit:
		r.errorf("%d is out of range 1..%d", n, MaxConntrackLimit)
	case !t.Policy.Enabled:
		r.errorf("a connection quota needs a firewall policy (zones or rules): without one fwd installs no nftables table in the tenant")
	default:
		t.ConntrackLimit = n
	}
}
