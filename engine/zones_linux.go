package engine

import (
	"context"

	"github.com/fwdproject/fwd/config"
)

// zones plans (and, unless dryRun, applies) namespaces and links for
// every tenant.
func (e *Engine) zones(ctx context.Context, cfg *config.Config, dryRun bool, rep *Report) error {
	p, err := e.Zones.Plan(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Warnings = append(rep.Warnings, p.Warnings...)
	rep.Absent = p.Absent
	if dryRun {
		rep.Changes = append(rep.Changes, p.Changes()...)
		return nil
	}
	res, err := e.Zones.Apply(ctx, p)
	rep.Changes = append(rep.Changes, res.Changes...)
	e.logChanges(res.Changes)
	return err
}
