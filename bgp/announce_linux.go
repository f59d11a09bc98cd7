package bgp

import (
	"net/netip"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
)

// announce_if_route: a prefix is originated while the tenant's table holds
// a route for it that BGP did not install. routesPresent observes the
// kernel; desiredAnnounce (gobgp_plan.go) turns that into the prefixes to
// originate; the monitor re-plans every AnnounceInterval.

// announce is the set of prefixes the tenant's b originates now: none
// while the gate holds them back (the backup of an HA pair).
func (s *Supervisor) announce(tenant string, b *config.BGP) []string {
	if s.AnnounceGate != nil && !s.AnnounceGate(tenant) {
		return nil
	}
	return announceNow(tenant, b)
}

// announceNow is the set of prefixes the tenant's b originates now.
func announceNow(tenant string, b *config.BGP) []string {
	var present map[netip.Prefix]bool
	if len(b.AnnounceIfRoute) > 0 {
		present = routesPresent(tenant, b.TableID, b.AnnounceIfRoute)
	}
	return desiredAnnounce(b, present)
}

// routesPresent reports which prefixes have a route in the tenant's table
// that BGP did not install.
func routesPresent(tenant string, table uint32, prefixes []netip.Prefix) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	h, err := ns.Open(tenant)
	if err != nil {
		return out
	}
	defer h.Close()
	c, err := rtnl.Open(h)
	if err != nil {
		return out
	}
	defer c.Close()
	want := map[netip.Prefix]bool{}
	fams := map[int]bool{}
	for _, p := range prefixes {
		want[p] = true
		if p.Addr().Is6() {
			fams[6] = true
		} else {
			fams[4] = true
		}
	}
	// One dump of the table per family for all prefixes, not one per
	// prefix: the table may hold a full BGP feed.
	for fam := range fams {
		// Streamed, not collected: the table may hold a full feed, and
		// only a few prefixes are wanted.
		_ = c.EachRoute(rtnl.Filter{Family: fam, Table: table}, func(r *rtnl.Route) {
			if r.Protocol != Protocol && want[r.Dst] {
				out[r.Dst] = true
			}
		}) // unreadable: those prefixes read as absent, as before
	}
	return out
}
