package mgmt

import (
	"net/netip"
	"time"
)

// FlowCheck is what a reload found in the tenants' conntrack tables:
// the established flows the new policy would not admit if they started
// now (their first packet explained with ct state new), and, with
// ReloadRequest.KillDenied, how many of them were deleted.
type FlowCheck struct {
	// Checked counts the established flows explained.
	Checked int `json:"checked"`
	// Unknown counts flows that could not be explained (no route back to
	// their source, so no input interface; an unsupported protocol).
	Unknown int          `json:"unknown,omitempty"`
	Denied  []DeniedFlow `json:"denied"`
	// Killed counts the denied flows deleted (kill_denied).
	Killed int      `json:"killed"`
	Errors []string `json:"errors,omitempty"`
}

// DeniedFlow is one established flow the new policy does not admit.
type DeniedFlow struct {
	Tenant string     `json:"tenant"`
	Proto  string     `json:"proto"`
	Src    netip.Addr `json:"src"`
	Dst    netip.Addr `json:"dst"`
	SPort  uint16     `json:"sport,omitempty"`
	DPort  uint16     `json:"dport,omitempty"`
	// In is the input interface the check assumed (derived from the
	// route back to Src; conntrack does not record interfaces).
	In      string `json:"in"`
	Verdict string `json:"verdict"` // drop or reject
	// Rule is the deciding rule's identity ("" for a chain policy), Where
	// its position in the TOML ("file:line"), Reason the explanation.
	Rule   string `json:"rule,omitempty"`
	Where  string `json:"where,omitempty"`
	Reason string `json:"reason"`
	Killed bool   `json:"killed,omitempty"`
}

// Rehearsal reports a rehearsal: the new ruleset and routes applied to
// throwaway namespaces with the same interface names before the live
// apply.
type Rehearsal struct {
	// Tenants lists the tenants rehearsed.
	Tenants []string `json:"tenants"`
	// Changes counts what the rehearsal applied (from an empty namespace).
	Changes  int           `json:"changes"`
	Duration time.Duration `json:"duration_ns"`
	// Error is the kernel's refusal ("" when everything was accepted).
	Error string `json:"error,omitempty"`
}
