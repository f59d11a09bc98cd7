package engine

import (
	"context"
	"log/slog"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/routing"
	"github.com/vishvananda/netns"
)

// routingStage: TRANSITIONAL adapter over routing.Reconcile(dryRun); to be
// replaced by routing.Observe → routing.Plan → routing.Apply.
var routingStage = tenantStage{name: "routing", plan: func(ctx context.Context, log *slog.Logger, t *config.Tenant, h netns.NsHandle) (stagePlan, error) {
	cs, err := routing.Reconcile(ctx, t, h, true)
	if err != nil {
		return nil, err
	}
	return legacyPlan{cs, func(ctx context.Context) error { _, err := routing.Reconcile(ctx, t, h, false); return err }}, nil
}}
