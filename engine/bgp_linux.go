package engine

import (
	"context"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
)

// BGP runs as two stages around the others, because its speakers are
// processes living in the tenants' namespaces: removals before zones (a
// live speaker would keep a deleted namespace, and its NICs, alive), and
// the rest after the tenants (a speaker starts once its namespace and
// interfaces exist). Errors name their tenant (bgp.TenantError).

// bgpRemovals stops the speakers of tenants (or [bgp] sections) that go
// away, and of tenants whose namespace is gone. It runs only when
// applying: a dry run's plan (bgp) lists the stops itself.
func (e *Engine) bgpRemovals(ctx context.Context, cfg *config.Config) ([]change.Change, error) {
	p, err := e.BGP.PlanRemovals(ctx, existingTenants(cfg))
	if err != nil {
		return nil, err
	}
	err = p.Apply(ctx)
	cs := p.Changes()
	e.logChanges(cs)
	return cs, err
}

// bgp plans and, unless dryRun, applies each tenant's speaker: start,
// restart, adopt, configure, stop.
func (e *Engine) bgp(ctx context.Context, cfg *config.Config, dryRun bool) ([]change.Change, error) {
	p, err := e.BGP.Plan(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if dryRun {
		return p.Changes(), nil
	}
	err = p.Apply(ctx)
	cs := p.Changes()
	e.logChanges(cs)
	return cs, err
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
