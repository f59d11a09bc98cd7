package engine

import (
	"context"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
)

// bgpRemovals stops the speakers of tenants (or [bgp] tables) that go away.
func (e *Engine) bgpRemovals(ctx context.Context, cfg *config.Config) ([]change.Change, error) {
	cs, err := e.BGP.Reconcile(ctx, existingTenants(cfg), false)
	e.logChanges(cs)
	return cs, err
}

// bgp starts, reconfigures or adopts each tenant's speaker.
func (e *Engine) bgp(ctx context.Context, cfg *config.Config, dryRun bool) ([]change.Change, error) {
	cs, err := e.BGP.Reconcile(ctx, cfg, dryRun)
	if !dryRun {
		e.logChanges(cs)
	}
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
