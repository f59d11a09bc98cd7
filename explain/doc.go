// Package explain answers "why did this packet pass or die?" from the
// configuration alone: Explain evaluates a packet, described by a Query,
// against the tenant's compiled policy (policy.Compile) and planned routes
// (routing.Plan), exactly in the order the kernel walks them, and returns
// a Trace: every rule tested (matched, or which match failed), the rule
// that decided with its identity and file:line in the TOML, the NAT
// applied (prerouting DNAT before the filter, postrouting SNAT and
// masquerade after), the route lookup and the verdict.
//
// It is pure: no packet is sent and no kernel state is read, so it works
// before the first apply and on a machine without the tenant. The kernel
// test (kernel_test.go) sends real packets and checks that Explain
// predicts each outcome the kernel produced.
//
// Files: query.go (the packet), result.go (the Trace value), explain.go
// (the hooks in order), eval.go and match.go (chains and statements),
// route.go (policy routing), source.go (rule identities → TOML
// positions), render.go (text).
package explain
