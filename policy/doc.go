// Package policy owns a tenant's firewall: it compiles the validated
// policy (zones, default policies, rules, address sets, NAT) into one
// nftables table, inet fwd_policy, as a pure value (Compile, Ruleset,
// rendered to nft syntax by String), and reconciles it into the tenant's
// namespace in one netlink transaction (Reconcile). Read-side helpers
// serve the CLI: RenderRuleset, ReadCounters / ReadRuleCounters and
// DescribeNAT. It never touches any other table.
package policy
