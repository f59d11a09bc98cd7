package daemon

import (
	"os"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/policy"
	"github.com/fwdproject/fwd/zones"
)

// Status, metrics and the API read one model per subsystem, none of which
// grows with the number of routes:
//   - links: zones' observation of the namespaces (one link dump each);
//   - policy: the counters of fwd's nftables table (one dump of that
//     table), named with the RuleIndex the last apply compiled;
//   - routes: fwd's static routes as the last apply left them
//     (routing.Applied.Routes) and the routes the BGP speaker holds as its
//     FIB last reported (bgp.FIBStatus); no route table is read;
//   - BGP sessions: the supervisor's view (bgp.Supervisor.Status), which
//     its monitor refreshes; no call to a speaker.

// keepReadModel records what an apply of cfg left (rep.Tenants) for the
// tenants of cfg. A stage that did not run (an earlier one failed) left
// the kernel as it was, so its part of the previous model stays. Caller
// holds d.mu.
func (d *Daemon) keepReadModel(cfg *config.Config, rep *engine.Report) {
	next := make(map[string]*engine.TenantState, len(cfg.Tenants))
	for _, t := range cfg.Tenants {
		old, m := d.tenants[t.Name], rep.Tenants[t.Name]
		switch {
		case m == nil:
			m = old
		case old != nil:
			if m.Rules == nil {
				m.Rules = old.Rules // bound to its ruleset's hash: harmless if stale
			}
			if m.StaticRoutes == nil {
				m.StaticRoutes = old.StaticRoutes
			}
		}
		if m != nil {
			next[t.Name] = m
		}
	}
	d.tenants = next
}

// tenantSnapshot is what status and metrics read for one tenant at
// request time. Fields are nil/-1 when unknown.
type tenantSnapshot struct {
	Name       string
	Links      []*zones.Link
	CTCount    int64 // -1: unknown
	CTMax      int64
	Rules      []policy.RuleCounter // nil: unknown
	RulesOK    bool
	Static     map[uint32]int     // fwd's static routes per table; nil: unknown
	BGP        *bgp.SpeakerStatus // the supervisor's view; nil: no speaker
	BGPWanted  bool               // the tenant has [bgp]
	Namespaced bool               // the namespace exists
}

// bgpRoutes is the number of routes the tenant's speaker holds in its
// table, -1 when it has not reported one.
func (s *tenantSnapshot) bgpRoutes() int {
	if s.BGP == nil || s.BGP.FIB == nil {
		return -1
	}
	return s.BGP.FIB.Routes
}

// snapshot reads every configured tenant. It never changes the kernel.
func (d *Daemon) snapshot(cfg *config.Config) []*tenantSnapshot {
	var st *zones.State
	if d.observe != nil {
		var err error
		if st, err = d.observe(); err != nil {
			d.log.Debug("observe", "error", err)
		}
	}
	speakers := map[string]*bgp.SpeakerStatus{}
	if d.bgpStatus != nil {
		for _, sp := range d.bgpStatus() {
			speakers[sp.Tenant] = &sp
		}
	}
	d.mu.Lock()
	models := d.tenants
	d.mu.Unlock()
	var out []*tenantSnapshot
	for _, t := range cfg.Tenants {
		s := &tenantSnapshot{Name: t.Name, CTCount: -1, CTMax: -1, BGPWanted: t.BGP != nil, BGP: speakers[t.Name]}
		out = append(out, s)
		var idx *policy.RuleIndex
		if m := models[t.Name]; m != nil {
			idx, s.Static = m.Rules, m.StaticRoutes
		}
		if st == nil {
			continue
		}
		if n := st.Tenants[t.Name]; n != nil {
			s.Links = n.Links
		}
		h, err := ns.Open(t.Name)
		if err != nil {
			continue
		}
		s.Namespaced = true
		// Conntrack figures are best effort: on failure they stay -1.
		_ = ns.Do(h, func() error {
			s.CTCount = readInt("/proc/sys/net/netfilter/nf_conntrack_count")
			s.CTMax = readInt("/proc/sys/net/netfilter/nf_conntrack_max")
			return nil
		})
		if rc, err := policy.ReadCounters(h, idx); err == nil {
			s.Rules, s.RulesOK = rc, true
		}
		h.Close()
	}
	return out
}

// readInt reads a number from a sysctl file; -1 when absent (e.g. no
// conntrack module loaded, or no connection tracked yet in that
// namespace).
func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// linkUp says whether a link passes traffic: operationally up, or
// administratively up with no carrier state to report (lo, some virtual
// links say "unknown").
func linkUp(l *zones.Link) bool { return l.Oper == "up" || (l.Up && l.Oper == "unknown") }
