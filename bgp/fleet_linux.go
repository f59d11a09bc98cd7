package bgp

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
)

// FleetPlan is what bringing every tenant's speaker to a config takes:
// speakers to stop, to start or restart, and gobgp configuration steps.
// Changes is what `fwd plan` prints; Apply is the only call that changes
// anything. A dry run is not calling Apply.
type FleetPlan struct {
	s            *Supervisor
	cfg          *config.Config
	removalsOnly bool
	gen          uint64 // s.gen the plan was made at
	peeked       bool   // made against speakers not adopted yet
	applied      bool

	stops   []*speaker
	tenants []tenantPlan
	changes []change.Change
}

// tenantPlan is one tenant's part of a FleetPlan.
type tenantPlan struct {
	tenant string
	b      *config.BGP
	sp     *speaker // nil: no speaker yet
	gen    uint64   // sp.gen the plan was made at
	plan   speakerPlan
}

// TenantError is a failure to bring one tenant's speaker to the config.
type TenantError struct {
	Tenant string
	Err    error
}

func (e *TenantError) Error() string { return fmt.Sprintf("tenant %q: %v", e.Tenant, e.Err) }
func (e *TenantError) Unwrap() error { return e.Err }

// Plan computes how to bring the speakers to cfg: every tenant with a
// [bgp] section gets one, configured as the section says; the others' are
// stopped. It changes nothing. In a process that has not adopted the
// running speakers yet (`fwd plan` without the daemon), it compares with
// their recorded configuration, read only; Apply adopts them first.
func (s *Supervisor) Plan(ctx context.Context, cfg *config.Config) (*FleetPlan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plan(cfg, false), nil
}

// PlanRemovals plans only stopping the speakers of tenants that have no
// [bgp] section in cfg (or are not in it): the engine applies it before
// namespaces go away, since a live speaker would keep a deleted namespace,
// and the NICs in it, alive.
func (s *Supervisor) PlanRemovals(ctx context.Context, cfg *config.Config) (*FleetPlan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plan(cfg, true), nil
}

// plan builds a FleetPlan. s.mu is held.
func (s *Supervisor) plan(cfg *config.Config, removalsOnly bool) *FleetPlan {
	p := &FleetPlan{s: s, cfg: cfg, removalsOnly: removalsOnly, gen: s.gen, peeked: !s.scanned}
	speakers := s.speakers
	if !s.scanned {
		speakers = s.peekRunning()
		for n, sp := range s.speakers {
			speakers[n] = sp
		}
	}
	want := map[string]bool{}
	for _, t := range cfg.Tenants {
		if t.BGP != nil {
			want[t.Name] = true
		}
	}
	names := make([]string, 0, len(speakers))
	for n := range speakers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !want[n] {
			p.stops = append(p.stops, speakers[n])
			p.changes = append(p.changes, stopChange(n))
		}
	}
	if removalsOnly {
		return p
	}
	for _, t := range cfg.Tenants {
		if t.BGP == nil {
			continue
		}
		tp := tenantPlan{tenant: t.Name, b: t.BGP, sp: speakers[t.Name]}
		if tp.sp == nil {
			tp.plan = planSpeaker(speakerState{}, t.BGP, s.announce(t.Name, t.BGP))
		} else {
			tp.sp.mu.Lock()
			tp.gen = tp.sp.gen
			tp.plan = planSpeaker(tp.sp.state(), t.BGP, s.announce(t.Name, t.BGP))
			tp.sp.mu.Unlock()
		}
		p.tenants = append(p.tenants, tp)
		p.changes = append(p.changes, tp.plan.changes(t.Name, t.BGP)...)
	}
	return p
}

// Changes lists the planned changes; after Apply, the changes it made
// (they differ from the plan only if a speaker changed in between, e.g.
// was restarted by its monitor, or on error).
func (p *FleetPlan) Changes() []change.Change { return p.changes }

// Apply carries out the plan: it stops, starts, restarts and configures
// speakers. Errors are *TenantError values, joined. A plan made before
// the running speakers were adopted, or before the speakers changed, is
// made again first.
func (p *FleetPlan) Apply(ctx context.Context) error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.applied {
		return errors.New("plan already applied")
	}
	s.adoptOnce()
	if p.peeked || p.gen != s.gen {
		*p = *s.plan(p.cfg, p.removalsOnly)
	}
	p.applied = true
	var done []change.Change
	var errs []error
	for _, sp := range p.stops {
		done = append(done, stopChange(sp.tenant))
		if err := sp.stop(ctx, true); err != nil {
			errs = append(errs, &TenantError{Tenant: sp.tenant, Err: fmt.Errorf("stop speaker: %w", err)})
		}
		s.forget(sp.tenant)
	}
	for _, tp := range p.tenants {
		sp := tp.sp
		if sp == nil {
			sp = s.newSpeaker(tp.tenant)
			s.supervise(sp)
		}
		cs, err := sp.apply(ctx, tp)
		done = append(done, cs...)
		if err != nil {
			errs = append(errs, &TenantError{Tenant: tp.tenant, Err: err})
		}
	}
	p.changes = done
	return errors.Join(errs...)
}

// apply brings the speaker to tp.b as tp.plan says, or as a new plan
// says if the speaker changed since. It returns the changes made.
func (sp *speaker) apply(ctx context.Context, tp tenantPlan) ([]change.Change, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	b := tp.b
	sp.desired = b
	p := tp.plan
	if tp.gen != sp.gen { // a new speaker has gen 0, as planned
		p = planSpeaker(sp.state(), b, sp.sup.announce(sp.tenant, b))
	}
	var cs []change.Change
	if c, ok := p.processChange(sp.tenant, b); ok {
		cs = append(cs, c)
	}
	if p.Restart != "" {
		if err := sp.kill(ctx); err != nil {
			return cs, err
		}
		if p.FlushTable {
			if err := sp.flushRoutes(p.OldTable); err != nil {
				sp.log.Warn("remove routes from old table", "table", p.OldTable, "error", err)
			}
		}
	}
	if p.Start {
		if err := sp.start(ctx); err != nil {
			return cs, err
		}
	}
	more, err := sp.runConfig(ctx, p.Steps)
	sp.kick()
	return append(cs, more...), err
}

// configure brings the running speaker's gobgp configuration to
// sp.desired, planning from what it was last configured with. sp.mu is
// held.
func (sp *speaker) configure(ctx context.Context) ([]change.Change, error) {
	b := sp.desired
	return sp.runConfig(ctx, planConfig(sp.app, b, sp.sup.announce(sp.tenant, b)))
}

// runConfig executes configuration steps planned from sp.app (nil: from
// scratch) and records the result. sp.mu is held.
func (sp *speaker) runConfig(ctx context.Context, steps []step) ([]change.Change, error) {
	if sp.client == nil {
		return nil, errors.New("speaker not connected")
	}
	rec := sp.app
	if rec == nil {
		rec = newApplied(sp.pid, sp.table)
	}
	n, err := runSteps(ctx, sp.client.api, rec, steps)
	if n > 0 {
		sp.gen++
	}
	if rec.Global != "" {
		sp.app = rec
		sp.saveApplied()
	}
	sp.publish()
	return stepChanges(sp.tenant, steps[:n]), err
}
