// Package policy owns a tenant's firewall: one nftables table, inet
// fwd_policy, per namespace, and nothing else (it never touches any other
// table).
//
// The pipeline, file by file:
//
//   - Compile (compile.go, nat.go, merge.go, stmt.go, setopts.go) turns
//     the validated policy into a Ruleset (ruleset.go), a pure value
//     rendered to nft syntax by String (render.go). key.go gives every
//     rule a content hash, stored in the kernel rule's userdata.
//   - Observe (observe_linux.go, ruledump_linux.go) reads fwd's table
//     into a State (state.go): chains, rules with handle, identity, hash
//     and counter, set declarations, the recorded set hashes and the
//     state hash.
//   - Plan/PlanFrom (plan.go, plan_rules.go, plan_sets.go, changes.go)
//     are pure: desired Ruleset (+ the previous one) + observed State → a
//     Transaction: per-chain rule deletions by handle and positioned
//     insertions, element-level set patches, and its changes. An
//     unchanged ruleset gives an empty transaction.
//   - Apply (apply_linux.go, batch_linux.go) is the only writer of the
//     ruleset: one batch, one commit per namespace, checked element by
//     element before sending and acknowledged message by message;
//     exprs_linux.go encodes statements as netlink expressions.
//   - Memory (memory_linux.go, remember.go, fingerprint.go) is what the
//     engine keeps per tenant between reloads: CompileFrom reuses the
//     previous ruleset for an unchanged config, and a plan starts from
//     the table fwd's last commit left when the ruleset generation says
//     nothing committed since (no Observe); batches carry that
//     generation, so a plan from a stale state is refused, never applied.
//   - Live sets (liveset_linux.go): SetAdd, SetDel, SetFlush, SetList,
//     SetCounts change and read the elements of dynamic sets without a
//     reload.
//   - Connection quota (quota.go, quota_linux.go): conntrack_limit as one
//     `ct count` rule in a prerouting chain; QuotaDrops reads its counter.
//
// Read side: ReadCounters reads rule counters from one dump of the table;
// a RuleIndex (counters.go), computed once per applied ruleset and kept by
// the caller, adds the members of merged groups. RenderRuleset and
// DescribeNAT serve the CLI.
package policy
