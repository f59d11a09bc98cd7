package daemon

import (
	"sync"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the connection quota and of address sets, read at scrape
// time: the quota's limit and its rule's drop counter (policy.QuotaDrops, from one dump of
// fwd's table, only in tenants with a quota) and every set's element count
// (policy.SetCounts: static sets from the compiled ruleset, dynamic sets
// from the kernel). The quota's current figure is fwd_conntrack_entries
// (the tenant's conntrack table; it also holds the connections the
// namespace opens itself, which the quota does not count).
var (
	descQuotaLimit = prometheus.NewDesc("fwd_conntrack_quota_limit", "The tenant's connection quota (conntrack_limit).", []string{"tenant"}, nil)
	descQuotaDrops = prometheus.NewDesc("fwd_conntrack_quota_drops_total", "New connections (packets) dropped because the tenant reached its conntrack_limit.", []string{"tenant"}, nil)
	descSetElems   = prometheus.NewDesc("fwd_set_elements", "Elements of an address set (a range or prefix counts as one), by kind: dynamic (fwd set) or static.", []string{"tenant", "set", "kind"}, nil)
)

// liveCollector exports them. It compiles a tenant's ruleset once per
// configuration (for the static sets' counts), not once per scrape.
type liveCollector struct {
	d *Daemon

	mu       sync.Mutex
	compiled map[*config.Tenant]*policy.Ruleset
}

func newLiveCollector(d *Daemon) *liveCollector {
	return &liveCollector{d: d, compiled: map[*config.Tenant]*policy.Ruleset{}}
}

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	// Unchecked collector, as kernelCollector.
}

// ruleset returns t's compiled ruleset, keeping only the running
// configuration's tenants.
func (c *liveCollector) ruleset(cfg *config.Config, t *config.Tenant) *policy.Ruleset {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs, ok := c.compiled[t]
	if !ok {
		for k := range c.compiled {
			if cfg.Tenant(k.Name) != k {
				delete(c.compiled, k)
			}
		}
		rs = policy.Compile(t)
		c.compiled[t] = rs
	}
	return rs
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	c.d.mu.Lock()
	cfg := c.d.cfg
	c.d.mu.Unlock()
	for _, t := range cfg.Tenants {
		if !t.Policy.Enabled || len(t.Policy.Sets) == 0 {
			continue // the quota comes with the rule counters (metrics_linux.go)
		}
		h, err := ns.Open(t.Name)
		if err != nil {
			continue
		}
		if counts, err := policy.SetCounts(h, c.ruleset(cfg, t)); err == nil {
			for _, s := range counts {
				kind := "static"
				if s.Dynamic {
					kind = "dynamic"
				}
				ch <- prometheus.MustNewConstMetric(descSetElems, prometheus.GaugeValue, float64(s.Elements), t.Name, s.Set, kind)
			}
		}
		h.Close()
	}
}
