package engine

import (
	"context"
	"log/slog"
	"sync"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/policy"
	"github.com/vishvananda/netns"
)

// appliedPolicy remembers, per tenant, the last ruleset applied, so that
// a reload patches changed address sets element by element instead of
// refilling them. It is only a hint: policy.PlanFrom uses it only when
// the kernel's recorded set hash matches it, so after a restart (empty
// memory) or a namespace recreated behind fwd's back the plan is still
// right, only larger.
var appliedPolicy sync.Map // tenant name → *policy.Ruleset

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
	var prev *policy.Ruleset
	if v, ok := appliedPolicy.Load(t.Name); ok {
		prev = v.(*policy.Ruleset)
	}
	rs := policy.Compile(t)
	return &policyPlan{log: log, tenant: t.Name, h: h, rs: rs, tx: policy.PlanFrom(t.Name, rs, prev, st), index: policy.NewRuleIndex(rs)}, nil
}}

// policyPlan is one tenant's policy transaction.
type policyPlan struct {
	log    *slog.Logger
	tenant string
	h      netns.NsHandle
	rs     *policy.Ruleset
	tx     *policy.Transaction
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
		p.remember()
		return nil
	}
	stats, err := policy.Apply(p.h, p.tx)
	if err != nil {
		appliedPolicy.Delete(p.tenant) // the kernel state is unknown
		return err
	}
	p.remember()
	if rs := p.tx.Ruleset; rs != nil {
		p.log.Info("policy applied", "changes", len(p.tx.Changes()), "chains", len(rs.Chains), "sets", len(rs.Sets),
			"rules_sent", stats.Rules, "set_elements_sent", stats.Elements, "commit", stats.Commit)
	}
	return nil
}

func (p *policyPlan) remember() {
	if p.rs == nil {
		appliedPolicy.Delete(p.tenant)
		return
	}
	appliedPolicy.Store(p.tenant, p.rs)
}
