package engine

import (
	"context"
	"log/slog"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/routing"
	"github.com/vishvananda/netns"
)

// routingStage observes the tenant's routes and rules and plans them;
// the plan's Apply is routing.Apply.
var routingStage = tenantStage{name: "routing", plan: func(ctx context.Context, log *slog.Logger, t *config.Tenant, h netns.NsHandle) (stagePlan, error) {
	d := routing.Compile(t)
	d.Routes = append(d.Routes, learnedRoutes(t.Name)...) // services_linux.go: DHCP leases' routes stay
	obs, err := routing.Observe(h, d)
	if err != nil {
		return nil, err
	}
	steps := routing.Plan(d, obs)
	return &routingPlan{log: log, h: h, steps: steps, changes: steps.Changes()}, nil
}}

// routingPlan is a routing.Steps bound to its namespace.
type routingPlan struct {
	log     *slog.Logger
	h       netns.NsHandle
	steps   routing.Steps
	changes []change.Change
	routes  map[uint32]int // after Apply: fwd's routes per table
}

// Changes is the plan until Apply runs, then what Apply did (a route the
// kernel refused for an unreachable gateway becomes a skip-route).
func (p *routingPlan) Changes() []change.Change { return p.changes }

func (p *routingPlan) Apply(ctx context.Context) error {
	res, err := routing.Apply(ctx, p.log, p.h, p.steps)
	p.changes, p.routes = res.Changes, res.Routes
	return err
}

func (p *routingPlan) record(m *TenantState) { m.StaticRoutes = p.routes }
