// Package engine applies a validated config to the kernel: namespaces and
// links first (zones), then each tenant's policy and routing, and reports
// every change. It is the single pipeline behind `fwd plan`, `fwd run`,
// reloads and `fwd teardown`.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/change"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/policy"
	"github.com/fwdproject/fwd/routing"
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
	log *slog.Logger
}

// New returns an Engine bound to the caller's (default) namespace.
func New(log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	z, err := zones.NewManager(log)
	if err != nil {
		return nil, err
	}
	return &Engine{Zones: z, BGP: bgp.NewSupervisor(log, bgp.DefaultRunDir), log: log}, nil
}

// Close releases kernel handles and stops supervising BGP speakers
// without stopping them.
func (e *Engine) Close() {
	e.BGP.Close()
	e.Zones.Close()
}

// existingTenants is cfg restricted to tenants whose namespace exists.
func existingTenants(cfg *config.Config) *config.Config {
	c := *cfg
	c.Tenants = nil
	for _, t := range cfg.Tenants {
		if ns.Exists(t.Name) {
			c.Tenants = append(c.Tenants, t)
		}
	}
	return &c
}

// Report is the outcome of an apply or a plan.
type Report struct {
	Changes  []change.Change `json:"changes"`
	Warnings []string        `json:"warnings,omitempty"`
	// Absent lists declared NICs missing from the default namespace.
	Absent   []string      `json:"absent,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	DryRun   bool          `json:"dry_run"`
}

type tenantReconciler func(ctx context.Context, t *config.Tenant, h netns.NsHandle, dryRun bool) ([]change.Change, error)

var tenantStages = []struct {
	name string
	fn   tenantReconciler
}{
	{"policy", policy.Reconcile},
	{"routing", routing.Reconcile},
}

// Apply makes the kernel match cfg (or, with dryRun, computes what would
// change). On error, the report holds the changes made before it.
func (e *Engine) Apply(ctx context.Context, cfg *config.Config, dryRun bool) (*Report, error) {
	start := time.Now()
	rep := &Report{DryRun: dryRun}
	defer func() { rep.Duration = time.Since(start) }()
	var zr *zones.Result
	var err error
	if !dryRun {
		// Speakers of tenants (or BGP sections) that go away stop before
		// their namespace does: a live speaker process would keep a
		// deleted namespace, and the NICs in it, alive.
		cs, err := e.BGP.Reconcile(ctx, existingTenants(cfg), false)
		e.logChanges(cs)
		rep.Changes = append(rep.Changes, cs...)
		if err != nil {
			return rep, fmt.Errorf("bgp: %w", err)
		}
	}
	if dryRun {
		zr, err = e.Zones.Diff(ctx, cfg)
	} else {
		zr, err = e.Zones.Reconcile(ctx, cfg)
	}
	if zr != nil {
		rep.Changes = append(rep.Changes, zr.Changes...)
		rep.Warnings = append(rep.Warnings, zr.Warnings...)
		rep.Absent = zr.Absent
	}
	if err != nil {
		return rep, fmt.Errorf("zones: %w", err)
	}
	var errs []error
	for _, t := range cfg.Tenants {
		h, err := ns.Open(t.Name)
		if err != nil {
			if dryRun && errors.Is(err, ns.ErrNotFound) {
				// New tenant: its policy and routes are planned against an
				// empty namespace.
				h = netns.None()
			} else {
				errs = append(errs, fmt.Errorf("tenant %q: %w", t.Name, err))
				continue
			}
		}
		for _, st := range tenantStages {
			cs, err := st.fn(ctx, t, h, dryRun)
			rep.Changes = append(rep.Changes, cs...)
			if err != nil {
				errs = append(errs, fmt.Errorf("tenant %q: %s: %w", t.Name, st.name, err))
				break
			}
			if !dryRun {
				e.logChanges(cs)
			}
		}
		if h.IsOpen() {
			h.Close()
		}
	}
	// Speakers start once their namespace and interfaces exist.
	cs, err := e.BGP.Reconcile(ctx, cfg, dryRun)
	if !dryRun {
		e.logChanges(cs)
	}
	rep.Changes = append(rep.Changes, cs...)
	if err != nil {
		errs = append(errs, fmt.Errorf("bgp: %w", err))
	}
	return rep, errors.Join(errs...)
}

func (e *Engine) logChanges(cs []change.Change) {
	for _, c := range cs {
		e.log.Info("changed", "subsystem", c.Subsystem, "tenant", c.Tenant, "action", c.Action, "object", c.Object, "detail", c.Detail)
	}
}
