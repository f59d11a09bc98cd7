package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/ha"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/routing"
	"github.com/fwdproject/fwd/services/dhcpclient"
	"github.com/fwdproject/fwd/services/dnsmasq"
	"github.com/fwdproject/fwd/supervise"
	"github.com/vishvananda/netns"
)

// The services stage: per tenant, accept_ra of every interface (2 where
// slaac = true, the kernel's default 1 elsewhere) and the tenant's
// dnsmasq (DHCPv4, DNS, RA) through the engine's dnsmasq.Supervisor:
// start, reload (SIGHUP: only re-read files changed), restart (main file
// changed) or stop. It runs after zones and policy (the interfaces, their
// addresses and the _svc/* admission rules exist before dnsmasq binds)
// and before bgp. The WAN DHCP clients are the daemon's (they are
// long-running goroutines, not a reconcile step); their leases' routes
// reach the routing stage through SetLeaseRoutes.

// DNSMasqConfig compiles a tenant's [dhcp.*], [dns] and [ra.*] into its
// dnsmasq instance (Dir and User left to the Supervisor), or nil.
func DNSMasqConfig(t *config.Tenant) *dnsmasq.Config {
	s := &t.Services
	if !s.LAN() {
		return nil
	}
	c := &dnsmasq.Config{}
	for _, d := range s.DHCP {
		c.DHCP = append(c.DHCP, dnsmasq.DHCPRange{Interface: d.Interface, Start: d.Start, End: d.End, Mask: d.Subnet,
			LeaseTime: d.LeaseTime, Router: d.Router, DNS: d.DNS, Domain: d.Domain})
		for _, st := range d.Static {
			c.Host = append(c.Host, dnsmasq.StaticLease{MAC: st.MAC, Addr: st.Addr, Name: st.Name})
		}
	}
	if d := s.DNS; d != nil {
		c.DNS = &dnsmasq.DNS{Interfaces: d.Interfaces, Domain: d.Domain, CacheSize: d.CacheSize}
		for _, f := range d.Forwarders {
			c.DNS.Forwarders = append(c.DNS.Forwarders, dnsmasq.Forwarder{Addr: f.Addr, Domain: f.Domain})
		}
		for _, n := range d.Names {
			c.DNS.Local = append(c.DNS.Local, dnsmasq.LocalName{Name: n.Name, Addrs: n.Addrs})
		}
	}
	for _, r := range s.RA {
		c.RA = append(c.RA, dnsmasq.RA{Interface: r.Interface, Prefixes: r.Prefixes, RDNSS: r.RDNSS, Managed: r.Managed,
			Other: r.Other, Start6: r.Start6, End6: r.End6, Interval: r.Interval, Lifetime: r.Lifetime})
	}
	return c
}

// services plans and, unless dryRun, applies every tenant's services,
// then stops the dnsmasq of tenants no longer configured.
func (e *Engine) services(ctx context.Context, cfg *config.Config, dryRun bool) ([]change.Change, error) {
	var all []change.Change
	var errs []error
	want := map[string]bool{}
	for _, t := range cfg.Tenants {
		want[t.Name] = true
		cs, err := e.tenantServices(ctx, t, dryRun)
		all = append(all, cs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", t.Name, err))
		}
	}
	dirs, _ := filepath.Glob(e.DNS.Dir("*"))
	slices.Sort(dirs)
	for _, d := range dirs {
		tn := filepath.Base(filepath.Dir(d))
		if want[tn] {
			continue
		}
		cs, err := e.dnsmasq(tn, nil, dryRun)
		all = append(all, cs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", tn, err))
		}
	}
	return all, errors.Join(errs...)
}

func (e *Engine) tenantServices(ctx context.Context, t *config.Tenant, dryRun bool) ([]change.Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := ns.Open(t.Name)
	if err != nil {
		if !dryRun || !errors.Is(err, ns.ErrNotFound) {
			return nil, err
		}
		h = netns.None()
	}
	if h.IsOpen() {
		defer h.Close()
	}
	cs, err := e.acceptRA(t, h, dryRun)
	if err != nil {
		return cs, err
	}
	more, err := e.dnsmasq(t.Name, DNSMasqConfig(t), dryRun)
	return append(cs, more...), err
}

// acceptRA sets accept_ra and autoconf per interface: accept_ra 2
// (accept although forwarding is on) with slaac or dhcp6 (the default
// route of a DHCPv6 client comes from the RAs), autoconf only with slaac;
// else the kernel's defaults (accept_ra 1, which, forwarding being on in
// a tenant, ignores RAs; autoconf 1). An interface not there yet (a NIC
// that has not appeared) is skipped; the next apply sets it.
func (e *Engine) acceptRA(t *config.Tenant, h netns.NsHandle, dryRun bool) ([]change.Change, error) {
	var cs []change.Change
	for _, i := range t.Interfaces {
		want := dhcpclient.RA{AcceptRA: dhcpclient.AcceptRAOn, Autoconf: true}
		if t.Services.AcceptsRA(i.Name) {
			want = dhcpclient.RA{AcceptRA: dhcpclient.AcceptRAAlways, Autoconf: t.Services.SLAACOn(i.Name)}
		}
		have := dhcpclient.RA{AcceptRA: dhcpclient.AcceptRAOn, Autoconf: true} // a new namespace's interface
		if h.IsOpen() {
			v, err := dhcpclient.ReadRA(h, i.Name)
			if err != nil {
				continue // not in the namespace yet
			}
			have = v
		}
		if have == want {
			continue
		}
		c := change.Change{Tenant: t.Name, Subsystem: "services", Action: "set-accept-ra", Object: i.Name,
			Detail: want.String()}
		if !dryRun {
			if _, err := dhcpclient.SetRA(h, i.Name, want); err != nil {
				return cs, fmt.Errorf("accept_ra on %s: %w", i.Name, err)
			}
			e.logChanges([]change.Change{c})
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// dnsmasq plans (and applies) one tenant's instance; c nil stops it.
func (e *Engine) dnsmasq(tenant string, c *dnsmasq.Config, dryRun bool) ([]change.Change, error) {
	var files dnsmasq.Files
	if c != nil {
		e.DNS.Prepare(tenant, c)
		var err error
		if files, err = dnsmasq.Render(c); err != nil {
			return nil, fmt.Errorf("dnsmasq: %w", err)
		}
	}
	obs, err := e.DNS.Observe(tenant)
	if err != nil {
		return nil, fmt.Errorf("dnsmasq: %w", err)
	}
	step := dnsmasq.Plan(files, obs)
	cs := step.Changes(tenant)
	if dryRun || step.Action == dnsmasq.None {
		if !dryRun && c != nil {
			// Nothing to change, but a dnsmasq a previous daemon left
			// running must be supervised again (restart on death, status).
			if err := e.DNS.Apply(tenant, step); err != nil {
				return nil, fmt.Errorf("dnsmasq: %w", err)
			}
		}
		return cs, nil
	}
	if err := e.DNS.Apply(tenant, step); err != nil {
		return cs, fmt.Errorf("dnsmasq: %w", err)
	}
	e.logChanges(cs)
	return cs, nil
}

// leaseRoutes holds, per tenant and interface, the routes of the DHCP
// leases the daemon's clients hold. The routing stage lists them as
// desired, so that its apply keeps them (they carry fwd's protocol, and
// routing deletes every fwd route it does not want). A package variable
// like appliedPolicy: the stage functions are engine-independent.
var leaseRoutes sync.Map // tenant → map[string][]routing.Route

var leaseMu sync.Mutex // serialises SetLeaseRoutes' read-modify-write

// SetLeaseRoutes records the routes of the lease held on a tenant's
// interface (nil: no lease). The next apply's routing plan keeps them.
func (e *Engine) SetLeaseRoutes(tenant, iface string, rs []routing.Route) {
	leaseMu.Lock()
	defer leaseMu.Unlock()
	m := map[string][]routing.Route{}
	if v, ok := leaseRoutes.Load(tenant); ok {
		for k, r := range v.(map[string][]routing.Route) {
			m[k] = r
		}
	}
	if rs == nil {
		delete(m, iface)
	} else {
		m[iface] = rs
	}
	leaseRoutes.Store(tenant, m)
}

// learnedRoutes returns the lease routes of a tenant, sorted by
// interface, for the routing stage's desired set.
func learnedRoutes(tenant string) []routing.Route {
	v, ok := leaseRoutes.Load(tenant)
	if !ok {
		return nil
	}
	m := v.(map[string][]routing.Route)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []routing.Route
	for _, k := range keys {
		out = append(out, m[k]...)
	}
	return out
}

// serviceStages runs the services stage, then the ha stage (conntrackd
// and keepalived bind once dnsmasq's interfaces are settled too), adding
// their changes to rep. Errors name their stage.
func (e *Engine) serviceStages(ctx context.Context, cfg *config.Config, dryRun bool, rep *Report) error {
	var errs []error
	cs, err := e.services(ctx, cfg, dryRun)
	rep.Changes = append(rep.Changes, cs...)
	if err != nil {
		errs = append(errs, fmt.Errorf("services: %w", err))
	}
	cs, err = e.ha(ctx, cfg, dryRun)
	rep.Changes = append(rep.Changes, cs...)
	if err != nil {
		errs = append(errs, fmt.Errorf("ha: %w", err))
	}
	return errors.Join(errs...)
}

// serviceRemovals stops, before zones runs, the dnsmasq instances and HA
// pairs of tenants (or sections) that go away: like a BGP speaker, a live
// process would keep a deleted namespace, and the NICs in it, alive. It
// runs only when applying; a dry run's services and ha stages list the
// stops themselves.
func (e *Engine) serviceRemovals(ctx context.Context, cfg *config.Config, rep *Report) error {
	var errs []error
	lan := map[string]bool{}
	for _, t := range cfg.Tenants {
		lan[t.Name] = t.Services.LAN()
	}
	dirs, _ := filepath.Glob(e.DNS.Dir("*"))
	slices.Sort(dirs)
	for _, d := range dirs {
		if tn := filepath.Base(filepath.Dir(d)); !lan[tn] {
			cs, err := e.dnsmasq(tn, nil, false)
			rep.Changes = append(rep.Changes, cs...)
			if err != nil {
				errs = append(errs, fmt.Errorf("services: tenant %q: %w", tn, err))
			}
		}
	}
	p := e.planHA(cfg)
	stale := slices.ContainsFunc(p.changes, func(c change.Change) bool { return c.Action == "stop-pair" })
	if !stale {
		return errors.Join(errs...)
	}
	// Reconcile stops every pair it is not given: give it the pairs that
	// run and stay (adopting them if need be), not the new ones, which
	// start after zones has made their interfaces.
	var keep []ha.Spec
	for _, s := range p.specs {
		if _, running := supervise.Identity(supervise.PidFile(s.Dir, "keepalived")); running {
			keep = append(keep, s)
		}
	}
	if err := e.HA.Reconcile(ctx, keep); err != nil {
		errs = append(errs, fmt.Errorf("ha: %w", err))
	}
	for _, c := range p.changes {
		if c.Action == "stop-pair" {
			rep.Changes = append(rep.Changes, c)
			e.logChanges([]change.Change{c})
		}
	}
	return errors.Join(errs...)
}
