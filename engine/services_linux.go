package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
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
// slaac or dhcp6 = true, the kernel's default 1 elsewhere) and the tenant's
// dnsmasq (DHCPv4, DNS, RA) through the engine's dnsmasq.Supervisor:
// start, reload (SIGHUP: only re-read files changed), restart (main file
// changed) or stop. It runs after zones and policy (the interfaces, their
// addresses and the _svc/* admission rules exist before dnsmasq binds)
// and before bgp. The WAN DHCP clients are the daemon's (they are
// long-running goroutines, not a reconcile step); their leases' routes
// and DNS servers reach the routing stage and dnsmasq through SetLearned.

// DNSMasqConfig compiles a tenant's [dhcp.*], [dns] and [ra.*] into its
// dnsmasq instance (Dir and User left to the Supervisor), or nil.
func DNSMasqConfig(t *config.Tenant, learnedDNS map[string][]netip.Addr) *dnsmasq.Config {
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
		// The upstream servers the WAN's leases name, after the
		// configured ones; a lease change rewrites the servers file
		// (a SIGHUP, not a restart).
		seen := map[netip.Addr]bool{}
		for _, f := range d.Forwarders {
			if f.Domain == "" && (f.Addr.Port() == 0 || f.Addr.Port() == 53) {
				seen[f.Addr.Addr()] = true
			}
		}
		for _, n := range d.ForwardersFrom {
			for _, a := range learnedDNS[n] {
				if !seen[a] {
					seen[a] = true
					c.DNS.Forwarders = append(c.DNS.Forwarders, dnsmasq.Forwarder{Addr: netip.AddrPortFrom(a, 0)})
				}
			}
		}
		for _, n := range d.Names {
			c.DNS.Local = append(c.DNS.Local, dnsmasq.LocalName{Name: n.Name, Addrs: n.Addrs})
		}
	}
	for _, r := range s.RA {
		c.RA = append(c.RA, dnsmasq.RA{Interface: r.Interface, Prefixes: r.Prefixes, Constructor: r.Delegated, RDNSS: r.RDNSS, Managed: r.Managed,
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
	more, err := e.dnsmasq(t.Name, DNSMasqConfig(t, learnedDNS(t.Name)), dryRun)
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

// learned holds, per tenant, what the daemon's DHCP clients hold on each
// (interface, family): the routes of the DHCPv4 lease, which the routing
// stage lists as desired so that its apply keeps them (they carry fwd's
// protocol, and routing deletes every fwd route it does not want), and
// the DNS servers, which [dns] forwarders_from hands to dnsmasq. A
// package variable like appliedPolicy: the stage functions are
// engine-independent.
var learned sync.Map // tenant → map[learnedKey]Learned

var learnedMu sync.Mutex // serialises SetLearned's read-modify-write

type learnedKey struct {
	iface string
	v6    bool
}

// Learned is what one DHCP client's lease gives the engine.
type Learned struct {
	Routes []routing.Route
	DNS    []netip.Addr
}

// SetLearned records what the lease held on a tenant's interface gives
// (the zero Learned: no lease). The next apply's routing plan keeps the
// routes, and the tenant's dnsmasq forwards to the DNS servers of the
// interfaces its forwarders_from names.
func (e *Engine) SetLearned(tenant, iface string, v6 bool, l Learned) {
	learnedMu.Lock()
	defer learnedMu.Unlock()
	m := map[learnedKey]Learned{}
	if v, ok := learned.Load(tenant); ok {
		for k, r := range v.(map[learnedKey]Learned) {
			m[k] = r
		}
	}
	k := learnedKey{iface, v6}
	if l.Routes == nil && l.DNS == nil {
		delete(m, k)
	} else {
		m[k] = l
	}
	learned.Store(tenant, m)
}

// learnedOf returns a tenant's learned state, keys sorted by interface,
// IPv4 first.
func learnedOf(tenant string) ([]learnedKey, map[learnedKey]Learned) {
	v, ok := learned.Load(tenant)
	if !ok {
		return nil, nil
	}
	m := v.(map[learnedKey]Learned)
	keys := make([]learnedKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b learnedKey) int {
		if c := strings.Compare(a.iface, b.iface); c != 0 {
			return c
		}
		if a.v6 == b.v6 {
			return 0
		}
		if b.v6 {
			return -1
		}
		return 1
	})
	return keys, m
}

// learnedRoutes returns the lease routes of a tenant for the routing
// stage's desired set.
func learnedRoutes(tenant string) []routing.Route {
	keys, m := learnedOf(tenant)
	var out []routing.Route
	for _, k := range keys {
		out = append(out, m[k].Routes...)
	}
	return out
}

// learnedDNS returns the DNS servers the leases of a tenant's interfaces
// gave, by interface (IPv4 lease's first).
func learnedDNS(tenant string) map[string][]netip.Addr {
	keys, m := learnedOf(tenant)
	out := map[string][]netip.Addr{}
	for _, k := range keys {
		out[k.iface] = append(out[k.iface], m[k].DNS...)
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
