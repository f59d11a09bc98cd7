// Package engine is the one apply pipeline behind `fwd plan`, `fwd run`,
// reloads and `fwd teardown`. For every subsystem it observes the kernel,
// plans (pure) and, unless this is a dry run, applies the plan, in the
// order bgp-removals → zones → per tenant (policy, routing) → services
// → ha → bgp. A dry run is the engine not calling Apply; no subsystem
// sees a dryRun flag.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/ha"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/policy"
	"github.com/fwdproject/fwd/services/dnsmasq"
	"github.com/fwdproject/fwd/zones"
	"github.com/vishvananda/netns"
)

// Engine runs the apply pipeline. It must be created in the default
// namespace.
type Engine struct {
	Zones *zones.Manager
	// BGP supervises the per-tenant speaker processes. They outlive the
	// engine (Close leaves them running) so sessions survive restarts.
	BGP *bgp.Supervisor
	// HA runs the tenants' keepalived+conntrackd and DNS their dnsmasq;
	// both outlive the engine too (Close releases, never stops them).
	HA  *ha.Manager
	DNS *dnsmasq.Supervisor
	// BeforeApply, when set, is called at the start of every real apply,
	// before anything is removed: the daemon releases there the DHCP
	// leases of interfaces cfg drops, while their NIC is still in the
	// tenant (after zones it is gone, and no release could leave).
	BeforeApply func(cfg *config.Config)
	log         *slog.Logger
}

// New returns an Engine bound to the caller's (default) namespace.
func New(log *slog.Logger) (*Engine, error) {
	z, err := zones.NewManager(log.With("subsystem", "zones"))
	if err != nil {
		return nil, err
	}
	e := &Engine{Zones: z, BGP: bgp.NewSupervisor(log.With("subsystem", "bgp"), bgp.DefaultRunDir), log: log,
		HA: ha.NewManager(log.With("subsystem", "ha"), bgp.DefaultRunDir), DNS: dnsmasq.NewSupervisor(log.With("subsystem", "services"), bgp.DefaultRunDir)}
	// BGP follows mastership: the tenant of an HA pair originates its
	// prefixes only while it is master, so the upstream converges on the
	// box that holds the VIPs (docs/ha.md).
	e.BGP.AnnounceGate = func(tenant string) bool {
		master, paired := e.HA.Master(tenant)
		return master || !paired
	}
	return e, nil
}

// Close releases kernel handles and stops supervising BGP speakers
// without stopping them.
func (e *Engine) Close() {
	e.BGP.Close()
	e.HA.Release() // a daemon restart is not a failover
	e.DNS.Release()
	e.Zones.Close()
}

// Report is the outcome of an apply or a plan.
type Report struct {
	Changes  []change.Change `json:"changes"`
	Warnings []string        `json:"warnings,omitempty"`
	// Absent lists declared NICs missing from the default namespace.
	Absent   []string      `json:"absent,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	DryRun   bool          `json:"dry_run"`
	// Tenants is, after an apply, what each tenant's stages left for
	// status and metrics (empty for a dry run).
	Tenants map[string]*TenantState `json:"-"`
}

// TenantState is the read model an apply leaves for one tenant: what
// status, metrics and the API read instead of recompiling the config or
// dumping the kernel. Each stage fills its part (stagePlan.record).
type TenantState struct {
	// Rules indexes the ruleset the policy stage compiled, for
	// policy.ReadCounters (nil: the tenant has no policy).
	Rules *policy.RuleIndex
	// StaticRoutes counts fwd's static routes (routing.Protocol) per
	// table after the routing stage's apply; nil: unknown.
	StaticRoutes map[uint32]int
}

// stagePlan is one subsystem's planned changes for one tenant. Changes
// is what `fwd plan` prints, and after Apply what was done; Apply is the
// only call that writes.
type stagePlan interface {
	Changes() []change.Change
	Apply(ctx context.Context) error
	// record puts what Apply left (counts, indexes) into the tenant's
	// read model; it is called after Apply, whatever its outcome.
	record(m *TenantState)
}

// tenantStage observes a tenant's namespace and plans one subsystem. h is
// netns.None() for a tenant whose namespace does not exist yet (a dry run
// before its first apply): the stage plans against an empty namespace.
type tenantStage struct {
	name string
	plan func(ctx context.Context, log *slog.Logger, t *config.Tenant, h netns.NsHandle) (stagePlan, error)
}

// tenantStages run in this order for every tenant (one file per stage).
var tenantStages = []tenantStage{policyStage, routingStage}

// Apply makes the kernel match cfg (or, with dryRun, computes what would
// change). On error, the report holds the changes made before it.
func (e *Engine) Apply(ctx context.Context, cfg *config.Config, dryRun bool) (*Report, error) {
	start := time.Now()
	rep := &Report{DryRun: dryRun, Tenants: map[string]*TenantState{}}
	defer func() { rep.Duration = time.Since(start) }()
	if !dryRun {
		if e.BeforeApply != nil {
			e.BeforeApply(cfg)
		}
		// Speakers of tenants (or BGP sections) that go away stop before
		// their namespace does: a live speaker process would keep a
		// deleted namespace, and the NICs in it, alive.
		// So do dnsmasq and the HA pairs, first: stopping a speaker
		// removes the whole /run/fwd/TENANT directory.
		if err := e.serviceRemovals(ctx, cfg, rep); err != nil { // services_linux.go
			return rep, err
		}
		cs, err := e.bgpRemovals(ctx, cfg)
		rep.Changes = append(rep.Changes, cs...)
		if err != nil {
			return rep, fmt.Errorf("bgp: %w", err)
		}
	}
	if err := e.zones(ctx, cfg, dryRun, rep); err != nil {
		return rep, fmt.Errorf("zones: %w", err)
	}
	if !dryRun {
		forgetRemovedTenants(cfg)
	}
	var errs []error
	for _, t := range cfg.Tenants {
		if err := e.tenant(ctx, t, dryRun, rep); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", t.Name, err))
		}
	}
	errs = append(errs, e.serviceStages(ctx, cfg, dryRun, rep)) // services_linux.go, ha_linux.go
	// Speakers start once their namespace and interfaces exist.
	cs, err := e.bgp(ctx, cfg, dryRun)
	rep.Changes = append(rep.Changes, cs...)
	if err != nil {
		errs = append(errs, fmt.Errorf("bgp: %w", err))
	}
	return rep, errors.Join(errs...)
}

// tenant plans (and applies) every tenant stage in t's namespace.
func (e *Engine) tenant(ctx context.Context, t *config.Tenant, dryRun bool, rep *Report) error {
	h, err := ns.Open(t.Name)
	if err != nil {
		if !dryRun || !errors.Is(err, ns.ErrNotFound) {
			return err
		}
		h = netns.None()
	}
	if h.IsOpen() {
		defer h.Close()
	}
	m := &TenantState{}
	if !dryRun {
		rep.Tenants[t.Name] = m
	}
	for _, st := range tenantStages {
		log := e.log.With("subsystem", st.name, "tenant", t.Name)
		p, err := st.plan(ctx, log, t, h)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		cs := p.Changes()
		if dryRun {
			rep.Changes = append(rep.Changes, cs...)
			continue
		}
		err = p.Apply(ctx)
		p.record(m)
		cs = p.Changes() // what Apply did, which may differ from the plan
		rep.Changes = append(rep.Changes, cs...)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		e.logChanges(cs)
	}
	return nil
}

// logChanges is the one place a "changed" line is logged.
func (e *Engine) logChanges(cs []change.Change) {
	for _, c := range cs {
		e.log.Info("changed", "subsystem", c.Subsystem, "tenant", c.Tenant, "action", c.Action, "object", c.Object, "detail", c.Detail)
	}
}

// Teardown hands every NIC back and removes fwd's namespaces (an apply
// of the empty configuration), after sweeping what interrupted namespace
// creations left: temporary pins, and plain-file pins under the names
// given (the tenants of the configuration, when it is readable), which
// no apply would otherwise remove.
func (e *Engine) Teardown(ctx context.Context, names []string) (*Report, error) {
	removed, serr := ns.Sweep(names)
	rep, err := e.Apply(ctx, &config.Config{}, false)
	var swept []change.Change
	for _, n := range removed {
		swept = append(swept, change.Change{Subsystem: "zones", Action: "remove-leftover-pin", Object: n})
	}
	e.logChanges(swept)
	rep.Changes = append(swept, rep.Changes...)
	if serr != nil {
		err = errors.Join(fmt.Errorf("sweep namespace leftovers: %w", serr), err)
	}
	return rep, err
}
