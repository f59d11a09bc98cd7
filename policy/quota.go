package policy

import "strconv"

// The per-tenant connection quota ([tenant.T] conntrack_limit = N): new
// connections the tenant receives or forwards beyond N are dropped and
// counted. One rule in a prerouting filter chain counts them, so input
// and forwarded flows share one tenant-wide count (a rule in each of
// hook_input and hook_forward would keep two). It runs after conntrack
// (priority -200) and before DNAT (-100): a refused flow allocates no
// translation. Loopback traffic is exempt; connections the namespace
// itself opens (output) are not counted.
//
// The kernel (nft_connlimit) keeps the connections a rule counts in a
// list of its own, and drops a connection from it once conntrack no
// longer holds it. That list is not readable over netlink; the current
// figure exported is the tenant's conntrack table size.

// Identities of the quota rules.
const (
	idQuota   = "_quota"
	idQuotaLo = "_quota-lo"
	// QuotaChain is the chain holding the quota rule.
	QuotaChain = "conn_quota"
)

// CtCount matches when the rule's connection count exceeds Over
// (`ct count over N`), counting the packet's connection first.
type CtCount struct{ Over uint32 }

func (s CtCount) text() string { return "ct count over " + strconv.FormatUint(uint64(s.Over), 10) }

// quota adds the quota chain when the tenant has a conntrack_limit.
func (c *compiler) quota() {
	n := c.t.ConntrackLimit
	if n <= 0 {
		return
	}
	c.chain(&Chain{Name: QuotaChain, Type: "filter", Hook: "prerouting", Priority: -150, Policy: "accept", Rules: []*Rule{
		{ID: idQuotaLo, Stmts: []Stmt{Ifname{Names: []string{"lo"}}, Verdict{Kind: "accept"}}},
		{ID: idQuota, Comment: "conntrack_limit " + strconv.Itoa(n), Stmts: []Stmt{
			CtState{States: []string{"new"}}, CtCount{Over: uint32(n)}, Counter{}, Verdict{Kind: "drop"}}},
	}})
}

// QuotaDrops returns the packets the quota rule dropped, from a tenant's
// counters (ReadCounters); ok is false when the tenant has no quota.
func QuotaDrops(rc []RuleCounter) (packets uint64, ok bool) {
	for _, r := range rc {
		if r.ID == idQuota {
			return r.Packets, true
		}
	}
	return 0, false
}
