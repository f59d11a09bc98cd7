package config

import (
	"cmp"
	"maps"
	"net/netip"
	"regexp"
	"slices"
)

// Validation turns the raw TOML shapes into the model, one function per
// config type. Each receives a reporter scoped to the value it checks and
// the model it fills; cross-references are checked where both ends are
// known (a rule's zones once the zones are validated, veth peers once
// every tenant is).

var reTenantName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,14}$`)

// sortedKeys returns the keys of a TOML table in order, so validation
// and its errors are deterministic.
func sortedKeys[M ~map[K]V, K cmp.Ordered, V any](m M) []K {
	return slices.Sorted(maps.Keys(m))
}

func validate(r reporter, raw *rawFile) *Config {
	cfg := &Config{}
	validateMgmt(r.in("mgmt"), &raw.Mgmt, &cfg.Mgmt)
	nics := newNICClaims(cfg.Mgmt.Protect)
	tr := r.in("tenant")
	for _, tn := range sortedKeys(raw.Tenant) {
		rt := raw.Tenant[tn]
		cfg.Tenants = append(cfg.Tenants, validateTenant(tr.in(tn), tn, &rt, nics))
	}
	nics.checkParents(r)
	for _, t := range cfg.Tenants {
		for _, i := range t.Interfaces {
			if i.Kind == KindVeth {
				validatePeer(tr.in(t.Name).in("interface").in(i.Name).in("peer"), cfg, t, i)
			}
		}
	}
	return cfg
}

// validateTenant validates one [tenant.NAME] table and everything in it.
func validateTenant(r reporter, name string, raw *rawTenant, nics *nicClaims) *Tenant {
	if !reTenantName.MatchString(name) {
		r.errorf("invalid tenant name %q: use 1-15 characters a-z, 0-9, '-' or '_', starting with a letter", name)
	}
	t := &Tenant{Name: name, Forwarding: true}
	if raw.Forwarding != nil {
		t.Forwarding = *raw.Forwarding
	}
	addrs := &tenantAddrs{owner: map[netip.Addr]string{}}
	ir := r.in("interface")
	for _, in := range sortedKeys(raw.Interface) {
		ri := raw.Interface[in]
		t.Interfaces = append(t.Interfaces, validateInterface(ir.in(in), name, in, &ri, nics, addrs))
	}
	validatePolicy(r, &raw.rawPolicy, t)
	validateRouting(r, &raw.rawRouting, t)
	validateQuota(r.in("conntrack_limit"), raw.ConntrackLimit, t)
	if raw.BGP != nil {
		t.BGP = validateBGP(r.in("bgp"), raw.BGP, t)
	}
	validateServices(r, raw, t) // validate_services.go
	validateHA(r, raw.HA, t)    // validate_ha.go
	return t
}

// validatePeer checks that a veth's peer exists in another tenant and
// points back.
func validatePeer(r reporter, cfg *Config, t *Tenant, i *Interface) {
	if i.PeerTenant == "" || i.PeerName == "" {
		return // reported by validateInterface
	}
	if r.rep.suppressed("tenant." + i.PeerTenant + ".interface." + i.PeerName) {
		return // the peer did not decode: its problem is reported
	}
	pt := cfg.Tenant(i.PeerTenant)
	switch pt {
	case nil:
		r.errorf("peer tenant %q is not declared", i.PeerTenant)
	case t:
		r.errorf("a veth peer must be in another tenant")
	default:
		pi := pt.Interface(i.PeerName)
		switch {
		case pi == nil:
			r.errorf("peer interface %q is not declared in tenant %q", i.PeerName, i.PeerTenant)
		case pi.Kind != KindVeth || pi.PeerTenant != t.Name || pi.PeerName != i.Name:
			r.errorf("peer is not mutual: tenant.%s.interface.%s must have peer = { tenant = %q, name = %q }", pt.Name, pi.Name, t.Name, i.Name)
		}
	}
}
