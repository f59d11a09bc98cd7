package daemon

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/policy"
	"github.com/fwdproject/fwd/routing"
	"github.com/fwdproject/fwd/zones"
)

// tenantSnapshot is what status and metrics read from one tenant's
// namespace at request time. Fields are nil/-1 when unreadable.
type tenantSnapshot struct {
	Name       string
	Links      []*zones.Link
	CTCount    int64 // -1: unknown
	CTMax      int64
	Rules      []policy.RuleCounter // nil: unknown
	RulesOK    bool
	Routes     []routing.RouteView
	RoutesOK   bool
	Neighbors  []bgp.Neighbor
	BGPOK      bool // a speaker answered
	BGPWanted  bool // the tenant has [bgp]
	Namespaced bool // the namespace exists
}

// snapshot reads every configured tenant. It never changes the kernel.
func (d *Daemon) snapshot(ctx context.Context, cfg *config.Config) []*tenantSnapshot {
	var st *zones.State
	if d.observe != nil {
		var err error
		if st, err = d.observe(); err != nil {
			d.log.Debug("observe", "error", err)
		}
	}
	var out []*tenantSnapshot
	for _, t := range cfg.Tenants {
		s := &tenantSnapshot{Name: t.Name, CTCount: -1, CTMax: -1, BGPWanted: t.BGP != nil}
		out = append(out, s)
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
		// Conntrack figures are best effort: on failure they stay 0.
		_ = ns.Do(h, func() error {
			s.CTCount = readInt("/proc/sys/net/netfilter/nf_conntrack_count")
			s.CTMax = readInt("/proc/sys/net/netfilter/nf_conntrack_max")
			return nil
		})
		if rc, err := policy.ReadRuleCounters(t, h); err == nil {
			s.Rules, s.RulesOK = rc, true
		}
		if rs, err := routing.ReadRoutes(h, t, 0); err == nil {
			s.Routes, s.RoutesOK = rs, true
		}
		h.Close()
		if t.BGP != nil {
			if c, err := bgp.Dial(bgp.SocketPath(bgp.DefaultRunDir, t.Name)); err == nil {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				if nb, err := c.Neighbors(cctx, t.Name); err == nil {
					s.Neighbors, s.BGPOK = nb, true
				}
				cancel()
				c.Close()
			}
		}
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
