// Package trace observes the kernel's decision for live packets: Run adds
// a rule "match … meta nftrace set 1" in base chains of fwd's own table
// (inet fwd_policy) hooked at prerouting and output before conntrack,
// reads the NFT_MSG_TRACE events the kernel then emits for the matching
// packets (netlink group NFNLGRP_NFTRACE), names each rule by its fwd
// identity (the rule comment policy writes) and removes its chains when
// it returns.
//
// Nothing is left behind: the chains are named trace_PID_N; Run removes
// them on return (also after Ctrl-C, through ctx), every Run first removes
// the trace chains of processes that no longer exist (a killed trace),
// and every policy apply removes them too, because policy.Plan deletes
// every chain of fwd's table that the compiled ruleset does not have.
//
// Files: match.go (the match expression, pure), event.go (decoding trace
// messages, pure), run_linux.go (the chains and the netlink listener).
package trace
