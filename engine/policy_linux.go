package engine

import (
	"context"
	"log/slog"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/policy"
	"github.com/vishvananda/netns"
)

// policyStage observes fwd's nftables table in the tenant's namespace and
// plans the tenant's compiled policy against it.
var policyStage = tenantStage{name: "policy", plan: func(ctx context.Context, log *slog.Logger, t *config.Tenant, h netns.NsHandle) (stagePlan, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := policy.Observe(h)
	if err != nil {
		return nil, err
	}
	rs := policy.Compile(t)
	return &policyPlan{log: log, h: h, tx: policy.Plan(t.Name, rs, st), index: policy.NewRuleIndex(rs)}, nil
}}

// policyPlan is one tenant's policy transaction.
type policyPlan struct {
	log *slog.Logger
	h   netns.NsHandle
	tx  *policy.Transaction
	// index lets counter reads name merged groups' members without
	// compiling again.
	index *policy.RuleIndex
}

func (p *policyPlan) record(m *TenantState) { m.Rules = p.index }

func (p *policyPlan) Changes() []change.Change { return p.tx.Changes() }

// Apply sends the transaction (nothing when the table is up to date).
func (p *policyPlan) Apply(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.tx.Empty() {
		return nil
	}
	if _, err := policy.Apply(p.h, p.tx); err != nil {
		return err
	}
	if rs := p.tx.Ruleset; rs != nil {
		p.log.Info("policy applied", "changes", len(p.tx.Changes()), "chains", len(rs.Chains), "sets", len(rs.Sets))
	}
	return nil
}
