// Package policy owns a tenant's firewall: one nftables table, inet
// fwd_policy, per namespace, and nothing else (it never touches any other
// table).
//
// The pipeline, file by file:
//
//   - Compile (compile.go, nat.go, merge.go, stmt.go) turns the validated
//     policy into a Ruleset (ruleset.go), a pure value rendered to nft
//     syntax by String (render.go).
//   - Observe (observe_linux.go) reads fwd's table into a State
//     (state.go): chains, rules with their identity, handle and counter,
//     named sets and the state hash.
//   - Plan (plan.go) is pure: desired Ruleset + observed State → a
//     Transaction (what one nftables batch sends) and its changes. An
//     unchanged ruleset gives an empty transaction.
//   - Apply (apply_linux.go) is the only writer: one batch, one commit
//     per namespace, abandoned unsent if building it fails; exprs_linux.go
//     encodes statements as netlink expressions.
//
// Read side: ReadCounters reads rule counters from one dump of the table;
// a RuleIndex (counters.go), computed once per applied ruleset and kept by
// the caller, adds the members of merged groups. RenderRuleset and
// DescribeNAT serve the CLI.
package policy
