package engine

import (
	"context"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/zones"
)

// zones plans (and applies) namespaces and links for every tenant.
func (e *Engine) zones(ctx context.Context, cfg *config.Config, dryRun bool, rep *Report) error {
	var zr *zones.Result
	var err error
	if dryRun {
		zr, err = e.Zones.Diff(ctx, cfg)
	} else {
		zr, err = e.Zones.Reconcile(ctx, cfg)
	}
	if zr != nil {
		rep.Changes = append(rep.Changes, zr.Changes...)
		rep.Warnings = append(rep.Warnings, zr.Warnings...)
		rep.Absent = zr.Absent
		if !dryRun {
			e.logChanges(zr.Changes)
		}
	}
	return err
}
