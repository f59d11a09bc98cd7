package daemon

import (
	"context"
	"time"

	"github.com/fwdproject/fwd/ha"
	"github.com/fwdproject/fwd/services/dhcpclient"
	"github.com/prometheus/client_golang/prometheus"
)

// The HA and edge services metrics (docs/ha.md, docs/services.md): lease
// events counted as they happen, the rest read at scrape time from the
// clients, the dnsmasq supervisor and the HA manager.

var (
	descHAState = prometheus.NewDesc("fwd_ha_state",
		"1 for the tenant's current HA state (master, backup, fault, stopped, unknown).", []string{"tenant", "state"}, nil)
	descHATransition = prometheus.NewDesc("fwd_ha_last_transition_timestamp_seconds",
		"Unix time of the tenant's last HA state transition.", []string{"tenant"}, nil)
	descHAPriority = prometheus.NewDesc("fwd_ha_priority",
		"Effective VRRP priority keepalived last reported.", []string{"tenant"}, nil)
	descHAHeld = prometheus.NewDesc("fwd_ha_failover_held",
		"1 while 'fwd ha failover' keeps this box backup (until 'fwd ha resume').", []string{"tenant"}, nil)
	descHASyncUp = prometheus.NewDesc("fwd_ha_sync_link_up",
		"1 if the sync interface has carrier.", []string{"tenant"}, nil)
	descHASplit = prometheus.NewDesc("fwd_ha_split_brain_risk",
		"1 if this box is master while its sync link is down (the peer may be master too).", []string{"tenant"}, nil)
	descHAFlows = prometheus.NewDesc("fwd_ha_conntrackd_flows",
		"Flows in conntrackd's caches: internal (this box's), external (the peer's).", []string{"tenant", "cache"}, nil)
	descHABytes = prometheus.NewDesc("fwd_ha_sync_bytes_total",
		"conntrackd sync bytes by direction.", []string{"tenant", "direction"}, nil)
	descHAMsgs = prometheus.NewDesc("fwd_ha_sync_messages_total",
		"conntrackd sync messages by direction.", []string{"tenant", "direction"}, nil)
	descHAErrors = prometheus.NewDesc("fwd_ha_sync_errors_total",
		"conntrackd sync send/receive errors by direction.", []string{"tenant", "direction"}, nil)
	descHALost = prometheus.NewDesc("fwd_ha_sync_lost_messages_total",
		"conntrackd sync messages lost (sequence gaps).", []string{"tenant"}, nil)

	descLeaseExpiry = prometheus.NewDesc("fwd_dhcp_lease_expiry_seconds",
		"Seconds until the interface's DHCP lease expires (absent without a lease).", []string{"tenant", "interface", "family"}, nil)
	descLeaseInfo = prometheus.NewDesc("fwd_dhcp_lease_info",
		"1 for the address the interface's DHCP client holds (absent without a lease).", []string{"tenant", "interface", "family", "address"}, nil)
	descDNSMasqUp = prometheus.NewDesc("fwd_dnsmasq_up",
		"1 if the tenant's dnsmasq runs.", []string{"tenant"}, nil)
	descDNSMasqRestarts = prometheus.NewDesc("fwd_dnsmasq_restarts_total",
		"Restarts of the tenant's dnsmasq by its supervisor.", []string{"tenant"}, nil)
	descDNSMasqLeases = prometheus.NewDesc("fwd_dnsmasq_leases",
		"DHCP leases the tenant's dnsmasq handed out.", []string{"tenant"}, nil)
)

var haStates = []ha.State{ha.StateMaster, ha.StateBackup, ha.StateFault, ha.StateStopped, ha.StateUnknown}

type edgeMetrics struct {
	e      *edge
	events *prometheus.CounterVec
}

func newEdgeMetrics(e *edge) *edgeMetrics {
	return &edgeMetrics{e: e, events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fwd_dhcp_lease_events_total",
		Help: "DHCP client lease events (bound, renewed, rebound, lost, expired, released) by interface and family.",
	}, []string{"tenant", "interface", "family", "event"})}
}

func (m *edgeMetrics) leaseEvent(k clientKey, kind dhcpclient.EventKind) {
	m.events.WithLabelValues(k.tenant, k.iface, k.family(), string(kind)).Inc()
}

// Describe: unchecked, label sets follow the configuration.
func (m *edgeMetrics) Describe(ch chan<- *prometheus.Desc) {}

func (m *edgeMetrics) Collect(ch chan<- prometheus.Metric) {
	m.events.Collect(ch)
	e := m.e
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	now := time.Now()
	for k, l := range e.leases() {
		if l != nil {
			gauge(descLeaseExpiry, l.Remaining(now).Seconds(), k.tenant, k.iface, k.family())
			gauge(descLeaseInfo, 1, k.tenant, k.iface, k.family(), l.Address.Addr().String())
		}
	}
	for _, st := range e.eng.DNS.Status() {
		gauge(descDNSMasqUp, b2f(st.Running), st.Tenant)
		counter(descDNSMasqRestarts, uint64(st.Restarts), st.Tenant)
		if ls, err := e.eng.DNS.Leases(st.Tenant); err == nil {
			gauge(descDNSMasqLeases, float64(len(ls)), st.Tenant)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, t := range e.eng.HA.Tenants() {
		st, err := e.eng.HA.Status(ctx, t)
		if err != nil {
			continue
		}
		for _, s := range haStates {
			gauge(descHAState, b2f(st.State == s), t, string(s))
		}
		if !st.Since.IsZero() {
			gauge(descHATransition, float64(st.Since.UnixNano())/1e9, t)
		}
		gauge(descHAPriority, float64(st.Priority), t)
		gauge(descHAHeld, b2f(st.FailoverHeld), t)
		gauge(descHASyncUp, b2f(st.SyncLinkUp), t)
		gauge(descHASplit, b2f(st.SplitBrainRisk), t)
		s := st.Sync
		gauge(descHAFlows, float64(s.InternalFlows), t, "internal")
		gauge(descHAFlows, float64(s.ExternalFlows), t, "external")
		counter(descHABytes, s.BytesSent, t, "sent")
		counter(descHABytes, s.BytesRecv, t, "received")
		counter(descHAMsgs, s.MsgsSent, t, "sent")
		counter(descHAMsgs, s.MsgsRecv, t, "received")
		counter(descHAErrors, s.SendErrors, t, "sent")
		counter(descHAErrors, s.RecvErrors, t, "received")
		counter(descHALost, s.LostMsgs, t)
	}
}
