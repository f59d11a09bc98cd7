package routing

import (
	"context"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/change"
	"github.com/vishvananda/netns"
)

// Reconcile makes the tenant's fwd-owned routes and policy rules in
// namespace ns match t's routing. With dryRun it only computes the changes.
func Reconcile(ctx context.Context, t *config.Tenant, ns netns.NsHandle, dryRun bool) ([]change.Change, error) {
	return nil, nil
}
