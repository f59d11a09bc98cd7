package engine

import (
	"context"

	"github.com/fwdproject/fwd/change"
)

// legacyPlan wraps a reconciler that still takes a dryRun flag.
// TRANSITIONAL: deleted once no stage uses it.
type legacyPlan struct {
	cs    []change.Change
	apply func(ctx context.Context) error
}

func (p legacyPlan) Changes() []change.Change        { return p.cs }
func (p legacyPlan) Apply(ctx context.Context) error { return p.apply(ctx) }
