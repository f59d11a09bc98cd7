package daemon

import (
	"context"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/rehearse"
)

// rehearse tries cfg on throwaway namespaces before a reload applies it,
// when the request or cfg's mgmt.rehearse asks for it. A kernel refusal
// rejects the reload like a validation error (nothing live is changed)
// and returns that result; otherwise it returns the rehearsal's report
// (nil when none was made) and a nil result. Caller holds applyMu.
func (d *Daemon) rehearse(ctx context.Context, cfg *config.Config, req mgmt.ReloadRequest) (*mgmt.Rehearsal, *mgmt.Result) {
	if !req.Rehearse && !cfg.Mgmt.Rehearse {
		return nil, nil
	}
	log := d.log.With("subsystem", "rehearse")
	rep, err := rehearse.Run(ctx, log, cfg)
	r := &mgmt.Rehearsal{Tenants: rep.Tenants, Changes: rep.Changes, Duration: rep.Duration}
	if r.Tenants == nil {
		r.Tenants = []string{}
	}
	if err == nil {
		log.Info("rehearsed", "tenants", r.Tenants, "unchanged", len(rep.Unchanged), "changes", r.Changes,
			"duration", r.Duration.Round(time.Microsecond).String())
		return r, nil
	}
	r.Error = err.Error()
	log.Error("reload rejected by its rehearsal; running configuration unchanged", "tenants", r.Tenants, "error", err.Error())
	return r, d.reject("reload", err, func(res *mgmt.Result) { res.Rehearsal = r })
}
