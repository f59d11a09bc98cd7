package daemon

import (
	"github.com/fwdproject/fwd/policy"
	"strconv"
	"strings"
	"sync"

	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/routing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the daemon's Prometheus metrics: event counters updated as
// things happen, and a collector that reads the kernel at scrape time
// (docs/metrics.md lists them all).
type metrics struct {
	reg            *prometheus.Registry
	reloads        *prometheus.CounterVec
	lastReload     prometheus.Gauge
	lastSuccess    prometheus.Gauge
	applyDuration  prometheus.Histogram
	applies        *prometheus.CounterVec
	changesApplied *prometheus.CounterVec

	mu      sync.Mutex
	history []mgmt.ReloadSummary // newest first, at most keepReloads
}

// keepReloads bounds the reload history the status page shows.
const keepReloads = 20

func newMetrics(d *Daemon) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fwd_config_reloads_total",
			Help: "Configuration loads (start, reload, rollback, confirm timeout) by result: applied, rejected (invalid, nothing changed), failed (kernel refused, previous revision restored).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fwd_config_last_reload_timestamp_seconds",
			Help: "Unix time of the last configuration load attempt.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fwd_config_last_reload_successful",
			Help: "1 if the last configuration load was applied, 0 otherwise.",
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fwd_apply_duration_seconds",
			Help:    "Duration of applying a configuration to the kernel (all tenants).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fwd_applies_total",
			Help: "Applies to the kernel by result (ok, error), including restores and link-triggered applies.",
		}, []string{"result"}),
		changesApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fwd_changes_applied_total",
			Help: "Kernel changes made by applies, by subsystem.",
		}, []string{"subsystem"}),
	}
	for _, r := range []string{mgmt.ResultApplied, mgmt.ResultRejected, mgmt.ResultFailed} {
		m.reloads.WithLabelValues(r)
	}
	m.applies.WithLabelValues("ok")
	m.applies.WithLabelValues("error")
	m.reg.MustRegister(m.reloads, m.lastReload, m.lastSuccess, m.applyDuration, m.applies, m.changesApplied,
		&kernelCollector{d: d},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(newLiveCollector(d)) // metrics_live_linux.go: quota, set elements
	return m
}

func (m *metrics) reloaded(r *mgmt.Result) {
	m.mu.Lock()
	m.history = append([]mgmt.ReloadSummary{{Time: r.Time, Reason: r.Reason, Result: r.Result, Revision: r.Revision,
		Changes: len(r.Changes), Errors: r.Errors, Duration: r.Duration}}, m.history[:min(len(m.history), keepReloads-1)]...)
	m.mu.Unlock()
	m.reloads.WithLabelValues(r.Result).Inc()
	m.lastReload.Set(float64(r.Time.UnixNano()) / 1e9)
	if r.OK() {
		m.lastSuccess.Set(1)
	} else {
		m.lastSuccess.Set(0)
	}
}

// recentReloads returns the last reload outcomes, newest first.
func (m *metrics) recentReloads() []mgmt.ReloadSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mgmt.ReloadSummary{}, m.history...)
}

func (m *metrics) applied(rep *engine.Report, err error) {
	m.applyDuration.Observe(rep.Duration.Seconds())
	if err != nil {
		m.applies.WithLabelValues("error").Inc()
	} else {
		m.applies.WithLabelValues("ok").Inc()
	}
	for _, c := range rep.Changes {
		m.changesApplied.WithLabelValues(c.Subsystem).Inc()
	}
}

var (
	descRevision       = prometheus.NewDesc("fwd_config_revision", "Revision number of the running configuration (0: not stored).", nil, nil)
	descConfirmPending = prometheus.NewDesc("fwd_config_confirm_deadline_timestamp_seconds", "Unix time at which an unconfirmed change is rolled back; 0 when none is pending.", nil, nil)
	descTenants        = prometheus.NewDesc("fwd_tenants", "Tenants in the running configuration.", nil, nil)
	descTenantUp       = prometheus.NewDesc("fwd_tenant_namespace_present", "1 if the tenant's namespace exists.", []string{"tenant"}, nil)
	descIfUp           = prometheus.NewDesc("fwd_interface_up", "1 if the interface's operational state is up.", []string{"tenant", "interface"}, nil)
	descIfRxBytes      = prometheus.NewDesc("fwd_interface_rx_bytes_total", "Bytes received by the interface.", []string{"tenant", "interface"}, nil)
	descIfTxBytes      = prometheus.NewDesc("fwd_interface_tx_bytes_total", "Bytes transmitted by the interface.", []string{"tenant", "interface"}, nil)
	descIfRxPkts       = prometheus.NewDesc("fwd_interface_rx_packets_total", "Packets received by the interface.", []string{"tenant", "interface"}, nil)
	descIfTxPkts       = prometheus.NewDesc("fwd_interface_tx_packets_total", "Packets transmitted by the interface.", []string{"tenant", "interface"}, nil)
	descIfRxDrop       = prometheus.NewDesc("fwd_interface_rx_dropped_total", "Received packets dropped by the interface.", []string{"tenant", "interface"}, nil)
	descIfTxDrop       = prometheus.NewDesc("fwd_interface_tx_dropped_total", "Transmitted packets dropped by the interface.", []string{"tenant", "interface"}, nil)
	descCTEntries      = prometheus.NewDesc("fwd_conntrack_entries", "Connection tracking entries in the tenant's namespace.", []string{"tenant"}, nil)
	descCTLimit        = prometheus.NewDesc("fwd_conntrack_entries_limit", "Connection tracking table limit (nf_conntrack_max) in the tenant's namespace.", []string{"tenant"}, nil)
	descRulePkts       = prometheus.NewDesc("fwd_rule_packets_total", "Packets matched by a policy rule. rule is the rule's stable identity; built-in rules start with '_'.", []string{"tenant", "chain", "rule"}, nil)
	descRuleBytes      = prometheus.NewDesc("fwd_rule_bytes_total", "Bytes matched by a policy rule.", []string{"tenant", "chain", "rule"}, nil)
	descRoutes         = prometheus.NewDesc("fwd_routes", "Routes fwd holds in the tenant's namespace per table, by owner: static (fwd's static routes as the last apply left them) or bgp (the routes the BGP speaker installed, as it last reported).", []string{"tenant", "table", "owner"}, nil)
	descBGPUp          = prometheus.NewDesc("fwd_bgp_session_up", "1 if the BGP session is established.", []string{"tenant", "neighbor", "peer_asn"}, nil)
	descBGPState       = prometheus.NewDesc("fwd_bgp_session_state", "BGP session state: 1 for the current state, 0 for the others.", []string{"tenant", "neighbor", "state"}, nil)
	descBGPUptime      = prometheus.NewDesc("fwd_bgp_session_uptime_seconds", "Seconds since the BGP session was established (0 when it is not).", []string{"tenant", "neighbor"}, nil)
	descBGPPrefixes    = prometheus.NewDesc("fwd_bgp_prefixes", "Prefixes per neighbour by direction: received, accepted, advertised.", []string{"tenant", "neighbor", "direction"}, nil)
	descBGPSpeakerUp   = prometheus.NewDesc("fwd_bgp_speaker_up", "1 if the tenant's BGP speaker runs and is configured, as the supervisor last saw it.", []string{"tenant"}, nil)
)

var bgpStates = []string{"idle", "connect", "active", "opensent", "openconfirm", "established"}

// kernelCollector reads the read models (readmodel_linux.go) at scrape
// time: its cost does not grow with the number of routes.
type kernelCollector struct{ d *Daemon }

func (c *kernelCollector) Describe(ch chan<- *prometheus.Desc) {
	// Unchecked collector: label sets depend on the configuration.
}

func (c *kernelCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	d.mu.Lock()
	cfg, rev := d.cfg, d.rev
	var deadline float64
	if d.pending != nil {
		deadline = float64(d.pending.Deadline.UnixNano()) / 1e9
	}
	d.mu.Unlock()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descRevision, float64(rev))
	gauge(descConfirmPending, deadline)
	gauge(descTenants, float64(len(cfg.Tenants)))
	tenants := map[string]*config.Tenant{}
	for _, t := range cfg.Tenants {
		tenants[t.Name] = t
	}
	for _, s := range d.snapshot(cfg) {
		t := s.Name
		gauge(descTenantUp, b2f(s.Namespaced), t)
		for _, l := range s.Links {
			gauge(descIfUp, b2f(linkUp(l)), t, l.Name)
			counter(descIfRxBytes, l.RxBytes, t, l.Name)
			counter(descIfTxBytes, l.TxBytes, t, l.Name)
			counter(descIfRxPkts, l.RxPkts, t, l.Name)
			counter(descIfTxPkts, l.TxPkts, t, l.Name)
			counter(descIfRxDrop, l.RxDrop, t, l.Name)
			counter(descIfTxDrop, l.TxDrop, t, l.Name)
		}
		if s.CTCount >= 0 {
			gauge(descCTEntries, float64(s.CTCount), t)
		}
		if s.CTMax >= 0 {
			gauge(descCTLimit, float64(s.CTMax), t)
		}
		type rk struct{ chain, rule string }
		type pb struct{ p, b uint64 }
		rules := map[rk]pb{}
		var order []rk
		for _, r := range s.Rules {
			k := rk{strings.Join(r.Chains, ","), r.ID}
			v, seen := rules[k]
			if !seen {
				order = append(order, k)
			}
			rules[k] = pb{v.p + r.Packets, v.b + r.Bytes}
		}
		for _, k := range order {
			counter(descRulePkts, rules[k].p, t, k.chain, k.rule)
			counter(descRuleBytes, rules[k].b, t, k.chain, k.rule)
		}
		// The quota's drops are one of those counters: no second read of
		// fwd's table.
		if tn := tenants[t]; tn != nil && tn.ConntrackLimit > 0 {
			gauge(descQuotaLimit, float64(tn.ConntrackLimit), t)
			if n, ok := policy.QuotaDrops(s.Rules); ok {
				counter(descQuotaDrops, n, t)
			}
		}
		for table, n := range s.Static {
			gauge(descRoutes, float64(n), t, routing.TableName(tenants[t], table), "static")
		}
		if n := s.bgpRoutes(); n >= 0 {
			gauge(descRoutes, float64(n), t, routing.TableName(tenants[t], s.BGP.Table), "bgp")
		}
		if s.BGPWanted {
			gauge(descBGPSpeakerUp, b2f(s.BGP != nil && s.BGP.State == "running"), t)
		}
		var neighbors []bgp.Neighbor
		if s.BGP != nil {
			neighbors = s.BGP.Neighbors
		}
		for _, n := range neighbors {
			gauge(descBGPUp, b2f(n.State == "established"), t, n.Address, strconv.FormatUint(uint64(n.ASN), 10))
			for _, st := range bgpStates {
				gauge(descBGPState, b2f(n.State == st), t, n.Address, st)
			}
			gauge(descBGPUptime, n.Uptime, t, n.Address)
			gauge(descBGPPrefixes, float64(n.Received), t, n.Address, "received")
			gauge(descBGPPrefixes, float64(n.Accepted), t, n.Address, "accepted")
			gauge(descBGPPrefixes, float64(n.Advertised), t, n.Address, "advertised")
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
