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

// policyMemory is the policy part of the engine's per-tenant state: what
// policy.Memory remembers of each tenant's table between reloads (the
// ruleset compiled and applied last, and the table as fwd's last commit
// left it with the ruleset generation it produced). An unchanged tenant
// then costs one GETGEN: nothing is compiled, dumped or sent. It is only
// a hint: a generation that moved (another writer, a restart: empty
// memory) makes the plan observe the kernel as before.
var policyMemory sync.Map // tenant name → *policy.Memory

// forgetRemovedTenants drops the memory of tenants cfg no longer has: a
// tenant added again later starts from Observe, whatever its new
// namespace's generation happens to be.
func forgetRemovedTenants(cfg *config.Config) {
	keep := map[string]bool{}
	for _, t := range cfg.Tenants {
		keep[t.Name] = true
	}
	policyMemory.Range(func(k, _ any) bool {
		if !keep[k.(string)] {
			policyMemory.Delete(k)
		}
		return true
	})
}

func memoryOf(tenant string) *policy.Memory {
	m, _ := policyMemory.LoadOrStore(tenant, &policy.Memory{})
	return m.(*policy.Memory)
}

// policyStage plans the tenant's policy against fwd's nftables table in
// the tenant's namespace (observed, or remembered when nothing committed
// there since fwd's last commit).
var policyStage = tenantStage{name: "policy", plan: func(ctx context.Context, log *slog.Logger, t *config.Tenant, h netns.NsHandle) (stagePlan, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := memoryOf(t.Name)
	tx, err := m.Plan(t, h)
	if err != nil {
		return nil, err
	}
	return &policyPlan{log: log, h: h, mem: m, tx: tx, index: m.Index()}, nil
}}

// policyPlan is one tenant's policy transaction.
type policyPlan struct {
	log *slog.Logger
	h   netns.NsHandle
	mem *policy.Memory
	tx  *policy.Transaction
	// index lets counter reads name merged groups' members without
	// compiling again.
	index *policy.RuleIndex
}

func (p *policyPlan) record(m *TenantState) { m.Rules = p.index }

func (p *policyPlan) Changes() []change.Change { return p.tx.Changes() }

// Apply sends the transaction (nothing when the table is up to date). If
// another writer committed since the plan, policy.Memory plans again and
// retries once; Changes then report what was sent.
func (p *policyPlan) Apply(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stats, err := p.mem.Apply(p.h, p.tx)
	if err != nil {
		return err
	}
	if rs := p.tx.Ruleset; rs != nil {
		p.log.Info("policy applied", "changes", len(p.tx.Changes()), "chains", len(rs.Chains), "sets", len(rs.Sets),
			"rules_sent", stats.Rules, "set_elements_sent", stats.Elements, "commit", stats.Commit)
	}
	return nil
}
