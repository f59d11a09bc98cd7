package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/ha"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/services/dhcpclient"
	"github.com/fwdproject/fwd/supervise"
	"github.com/vishvananda/netns"
)

// edge is the daemon's side of the edge services and HA pairs: one DHCP
// client per (tenant, interface, family) with dhcp = true or dhcp6 =
// true, started and stopped
// as the configuration changes, whose lease changes are logged, counted
// and fed into a re-apply (the lease's routes must be in the routing
// stage's desired set); and the HA and services parts of status and
// metrics. The engine runs dnsmasq and the HA pairs (engine/services_linux.go,
// engine/ha_linux.go).
type edge struct {
	d   *Daemon
	eng *engine.Engine
	log *slog.Logger
	met *edgeMetrics

	mu      sync.Mutex
	clients map[clientKey]*wanClient
	// kick asks for one re-apply after lease changes (capacity 1: lease
	// changes during an apply coalesce into the next one).
	kick      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type clientKey struct {
	tenant, iface string
	v6            bool
}

func (k clientKey) family() string {
	if k.v6 {
		return "ipv6"
	}
	return "ipv4"
}

// wanClient is one running DHCP client and the namespace handle its
// kernel applier writes through.
type wanClient struct {
	cfg  config.DHCPClient
	c    *dhcpclient.Client
	h    netns.NsHandle
	kern *dhcpclient.Applier
}

// newEdge returns the daemon's edge services for eng (nil: no engine,
// tests with an injected Applier) and registers their metrics.
func newEdge(d *Daemon, eng *engine.Engine) *edge {
	if eng == nil {
		return nil
	}
	e := &edge{d: d, eng: eng, log: d.log.With("subsystem", "services"), clients: map[clientKey]*wanClient{},
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	e.met = newEdgeMetrics(e)
	d.metrics.reg.MustRegister(e.met)
	eng.BeforeApply = e.releaseDropped
	go e.reapplier()
	return e
}

// reapplier re-applies the running configuration after lease changes,
// one at a time; applyMu serialises it with every other apply.
func (e *edge) reapplier() {
	for {
		select {
		case <-e.done:
			return
		case <-e.kick:
			e.d.reapply(context.Background(), "dhcp lease changed")
		}
	}
}

// wanted lists the DHCP clients cfg asks for.
func wanted(cfg *config.Config) map[clientKey]config.DHCPClient {
	want := map[clientKey]config.DHCPClient{}
	for _, t := range cfg.Tenants {
		for _, c := range t.Services.DHCPClients {
			want[clientKey{t.Name, c.Interface, c.V6}] = c
		}
	}
	return want
}

// releaseDropped stops, with a release, the clients cfg no longer has
// (the key, the interface or the tenant went away). The engine calls it
// before its apply removes anything: the NIC is still there for the
// release to leave by. (A release cannot wait for the apply's outcome:
// an apply that then fails leaves the client stopped, and the next apply
// that has it again starts it over.)
func (e *edge) releaseDropped(cfg *config.Config) {
	if e == nil || cfg == nil {
		return
	}
	want := wanted(cfg)
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, wc := range e.clients {
		if _, ok := want[k]; ok {
			continue
		}
		if l := wc.c.Lease(); l != nil && listsStatic(cfg, k, l.Address) {
			// dhcp = true became addresses = [the leased one]: the
			// address stays, so it is not given back (the server would
			// hand it to another host), only no longer the lease's.
			e.stopLocked(k, false)
			e.eng.SetLearned(k.tenant, k.iface, k.v6, engine.Learned{})
			e.log.Info("dhcp client stopped; its address is configured now, not released", "tenant", k.tenant,
				"interface", k.iface, "family", k.family(), "address", l.Address.String())
			continue
		}
		e.stopLocked(k, true)
	}
}

// listsStatic reports whether cfg configures address a on k's interface.
func listsStatic(cfg *config.Config, k clientKey, a netip.Prefix) bool {
	t := cfg.Tenant(k.tenant)
	if t == nil {
		return false
	}
	ifc := t.Interface(k.iface)
	return ifc != nil && slices.Contains(ifc.Addresses, a)
}

// undelegate removes the LAN addresses of the delegations a restarted
// client's new settings no longer have (another subnet, no prefix_from,
// no dhcp6_pd): the new client does not know them, and zones leaves
// learned addresses alone.
func undelegate(wc *wanClient, next config.DHCPClient) error {
	var gone []dhcpclient.Delegation
	for _, d := range wc.cfg.Delegate {
		if next.PD == 0 || !slices.Contains(next.Delegate, d) {
			gone = append(gone, dhcpclient.Delegation{Interface: d.Interface, Subnet: d.Subnet})
		}
	}
	return wc.kern.Undelegate(wc.c.Lease(), gone)
}

// sync makes the running DHCP clients those of cfg. It is called after
// every apply (the tenant namespaces and interfaces then exist); a client
// that cannot start yet (interface absent) is tried again on the next.
func (e *edge) sync(cfg *config.Config) {
	if e == nil || cfg == nil {
		return
	}
	want := wanted(cfg)
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, wc := range e.clients {
		if c, ok := want[k]; !ok || !c.Equal(wc.cfg) {
			// Removed: release the lease (the key went away). Changed
			// (table, metric, hostname): start over with the new
			// settings, keeping the address (the new client asks for
			// it; the routing stage moves the routes).
			if ok {
				if err := undelegate(wc, c); err != nil {
					e.log.Warn("delegated addresses not removed", "tenant", k.tenant, "interface", k.iface, "error", err)
				}
			}
			e.stopLocked(k, !ok)
			continue
		}
		// The NIC came back as a new interface (a driver reload, a hot
		// swap: the link watch moved it in again, this apply), or went
		// down: the client's socket is bound to the old one. Renewing
		// now makes the client open a new socket and put its lease's
		// address and routes back on the interface there is now.
		if why := wc.c.Stale(); why != "" {
			e.log.Warn("dhcp client renews on a new socket", "tenant", k.tenant, "interface", k.iface,
				"family", k.family(), "reason", why)
			wc.c.Renew()
		}
	}
	for k, c := range want {
		if e.clients[k] != nil {
			continue
		}
		if err := e.startLocked(k, c); err != nil {
			e.log.Warn("dhcp client not started; retried on the next apply", "tenant", k.tenant, "interface", k.iface, "family", k.family(), "error", err)
		}
	}
}

func (e *edge) startLocked(k clientKey, c config.DHCPClient) error {
	h, err := ns.Open(k.tenant)
	if err != nil {
		return err
	}
	kern := dhcpclient.NewApplier(h, c.TableID, c.Metric)
	for _, d := range c.Delegate {
		kern.Delegate = append(kern.Delegate, dhcpclient.Delegation{Interface: d.Interface, Subnet: d.Subnet})
	}
	cl, err := dhcpclient.Start(dhcpclient.Config{
		Namespace: k.tenant, Interface: k.iface, V6: k.v6, PD: c.PD, Hostname: c.Hostname, Kernel: kern,
		OnEvent: func(ev dhcpclient.Event) { e.event(k, c, ev) },
	}, e.log.With("tenant", k.tenant))
	if err != nil {
		h.Close()
		return err
	}
	e.clients[k] = &wanClient{cfg: c, c: cl, h: h, kern: kern}
	e.log.Info("dhcp client started", "tenant", k.tenant, "interface", k.iface, "family", k.family())
	return nil
}

// stopLocked stops a client; release gives the lease back and removes
// its address and routes (the key went away), otherwise they stay for
// the next daemon (exit).
func (e *edge) stopLocked(k clientKey, release bool) {
	wc := e.clients[k]
	if wc == nil {
		return
	}
	delete(e.clients, k)
	wc.c.Stop(release)
	wc.h.Close()
	if release {
		e.eng.SetLearned(k.tenant, k.iface, k.v6, engine.Learned{})
		e.log.Info("dhcp client stopped", "tenant", k.tenant, "interface", k.iface, "family", k.family())
	}
}

// event is called on a client's goroutine after the kernel has the
// lease. It is the one place lease changes are logged for operators.
func (e *edge) event(k clientKey, c config.DHCPClient, ev dhcpclient.Event) {
	e.met.leaseEvent(k, ev.Kind)
	attrs := []any{"tenant", k.tenant, "interface", k.iface, "family", k.family(), "event", string(ev.Kind)}
	if l := ev.Lease; l != nil {
		attrs = append(attrs, l.LogAttrs()...)
		if ev.Old != nil && ev.Old.Address != l.Address {
			attrs = append(attrs, "old_address", ev.Old.Address.String())
		}
	} else if ev.Old != nil {
		attrs = append(attrs, "address", ev.Old.Address.String())
	}
	switch {
	case ev.Err != nil:
		e.log.Error("dhcp lease not applied", append(attrs, "error", ev.Err)...)
	case ev.Lease == nil:
		e.log.Warn("dhcp lease gone", attrs...)
	case ev.Kind == dhcpclient.Bound || !ev.Lease.SameBinding(ev.Old):
		e.log.Info("dhcp lease", attrs...)
	default:
		e.log.Debug("dhcp lease renewed", attrs...)
	}
	var l engine.Learned
	if ev.Lease != nil {
		l.Routes, l.DNS = ev.Lease.KernelRoutes(c.TableID, c.Metric), ev.Lease.DNS
	}
	e.eng.SetLearned(k.tenant, k.iface, k.v6, l)
	if ev.Lease != nil && ev.Lease.SameBinding(ev.Old) && slices.Equal(ev.Lease.DNS, ev.Old.DNS) {
		return // a renewal: the kernel state and the forwarders are unchanged
	}
	select { // routes, NAT, the routing plan and dnsmasq's forwarders follow
	case e.kick <- struct{}{}:
	default:
	}
}

// close stops every client without releasing (daemon exit: the next
// daemon asks for the same address) and the re-applier.
func (e *edge) close() {
	if e == nil {
		return
	}
	e.closeOnce.Do(func() { close(e.done) })
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.clients {
		e.stopLocked(k, false)
	}
}

// leases returns the current lease of every client, by key.
func (e *edge) leases() map[clientKey]*dhcpclient.Lease {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[clientKey]*dhcpclient.Lease{}
	for k, wc := range e.clients {
		out[k] = wc.c.Lease()
	}
	return out
}

// tenantStatus fills the HA and services parts of a tenant's status.
func (e *edge) tenantStatus(ctx context.Context, t *config.Tenant, ts *mgmt.TenantStatus) {
	if e == nil || t == nil {
		return
	}
	if t.HA != nil {
		hs := haStatus(e.eng.HA.Status(ctx, t.Name))
		ts.HA = &hs
	}
	s := &t.Services
	if len(s.DHCPClients) == 0 && !s.LAN() {
		return
	}
	ss := &mgmt.ServicesStatus{}
	leases := e.leases()
	for _, c := range s.DHCPClients {
		k := clientKey{t.Name, c.Interface, c.V6}
		dl := mgmt.DHCPLease{Interface: c.Interface, Family: k.family(), State: "stopped"}
		if l, running := leases[k]; running {
			dl.State = "waiting"
			if l != nil {
				dl.State, dl.Address, dl.Router, dl.DNS, dl.Domain = "bound", l.Address, l.Router, l.DNS, l.Domain
				dl.Server, dl.ServerID, dl.Delegated = l.Server, l.ServerID, l.Delegated
				dl.Obtained, dl.Expires, dl.LeaseTime = l.Obtained, l.Expiry(), l.LeaseTime
				dl.Renew, _ = l.Timers(0)
			}
		}
		ss.DHCP = append(ss.DHCP, dl)
	}
	if s.LAN() {
		for _, st := range e.eng.DNS.Status() {
			if st.Tenant == t.Name {
				p := process(st)
				ss.DNSMasq = &p
			}
		}
		if ls, err := e.eng.DNS.Leases(t.Name); err == nil {
			ss.Leases = len(ls)
			for _, l := range ls {
				ll := mgmt.LANLease{Address: l.Addr, DUID: l.DUID, Hostname: l.Hostname, Expires: l.Expiry}
				if l.MAC != nil {
					ll.MAC = l.MAC.String()
				}
				ss.LAN = append(ss.LAN, ll)
			}
		}
	}
	ts.Services = ss
}

func process(st supervise.Status) mgmt.Process {
	return mgmt.Process{PID: st.PID, Running: st.Running, Started: st.Started, Restarts: st.Restarts, LastExit: st.LastExit}
}

func processState(st supervise.Status) string {
	if st.Running {
		return "running"
	}
	if st.LastExit != "" {
		return "not running: " + st.LastExit
	}
	return "not running"
}

func haStatus(st ha.Status, err error) mgmt.HAStatus {
	if err != nil {
		return mgmt.HAStatus{State: string(ha.StateStopped), Error: err.Error()}
	}
	s := st.Sync
	return mgmt.HAStatus{
		State: string(st.State), Since: st.Since, Priority: st.Priority, FailoverHeld: st.FailoverHeld,
		SyncLinkUp: st.SyncLinkUp, SplitBrainRisk: st.SplitBrainRisk,
		Sync: mgmt.HASync{InternalFlows: s.InternalFlows, ExternalFlows: s.ExternalFlows, BytesSent: s.BytesSent,
			BytesRecv: s.BytesRecv, MsgsSent: s.MsgsSent, MsgsRecv: s.MsgsRecv, SendErrors: s.SendErrors,
			RecvErrors: s.RecvErrors, LostMsgs: s.LostMsgs, Error: st.SyncError},
		Keepalived: processState(st.Keepalived), Conntrackd: processState(st.Conntrackd),
	}
}

// failoverTimeout bounds a graceful failover: fault, then backup.
const failoverTimeout = 30 * time.Second

// HAFailover implements mgmt.HAController.
func (d *Daemon) HAFailover(ctx context.Context, tenant string) error {
	if d.edge == nil {
		return fmt.Errorf("tenant %q: %w", tenant, mgmt.ErrNotFound)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failoverTimeout)
	defer cancel()
	err := d.edge.eng.HA.Failover(ctx, tenant)
	if errors.Is(err, ha.ErrNoPair) {
		return fmt.Errorf("%w: %w", mgmt.ErrNotFound, err)
	}
	if err == nil {
		d.log.Warn("ha: mastership handed to the peer; this box stays backup until 'fwd ha resume'", "tenant", tenant)
	}
	return err
}

// HAResume implements mgmt.HAController.
func (d *Daemon) HAResume(ctx context.Context, tenant string) error {
	if d.edge == nil {
		return fmt.Errorf("tenant %q: %w", tenant, mgmt.ErrNotFound)
	}
	err := d.edge.eng.HA.Resume(tenant)
	if errors.Is(err, ha.ErrNoPair) {
		return fmt.Errorf("%w: %w", mgmt.ErrNotFound, err)
	}
	if err == nil {
		d.log.Info("ha: failover hold released; this box preempts after its delay if it has the higher priority", "tenant", tenant)
	}
	return err
}

// engineOf returns the engine behind an Applier (nil for a test's own).
func engineOf(a Applier) *engine.Engine {
	if f, ok := a.(*failpointApplier); ok {
		a = f.Applier
	}
	e, _ := a.(*engine.Engine)
	return e
}
