package policy

import (
	"context"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/change"
	"github.com/vishvananda/netns"
)

// Reconcile makes the tenant's nftables state in namespace ns match t's
// policy. With dryRun it only computes the changes (for `fwd plan`).
func Reconcile(ctx context.Context, t *config.Tenant, ns netns.NsHandle, dryRun bool) ([]change.Change, error) {
	return nil, nil
}
