package engine

import (
	"context"
	"log/slog"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/policy"
	"github.com/vishvananda/netns"
)

// policyStage: TRANSITIONAL adapter over policy.Reconcile(dryRun); to be
// replaced by policy.Observe → policy.Plan → policy.Apply.
var policyStage = tenantStage{name: "policy", plan: func(ctx context.Context, log *slog.Logger, t *config.Tenant, h netns.NsHandle) (stagePlan, error) {
	cs, err := policy.Reconcile(ctx, t, h, true)
	if err != nil {
		return nil, err
	}
	return legacyPlan{cs, func(ctx context.Context) error { _, err := policy.Reconcile(ctx, t, h, false); return err }}, nil
}}

// legacyPlan wraps a reconciler that still takes a dryRun flag.
type legacyPlan struct {
	cs    []change.Change
	apply func(ctx context.Context) error
}

func (p legacyPlan) Changes() []change.Change        { return p.cs }
func (p legacyPlan) Apply(ctx context.Context) error { return p.apply(ctx) }
