// Package change is the common currency of fwd's reconcilers: a Change is
// one kernel modification that a plan proposes and an applier performs.
// `fwd plan` prints them, the daemon logs them, the API returns them.
package change

import (
	"fmt"
	"strings"
)

// Change is one modification of kernel state.
type Change struct {
	Tenant    string `json:"tenant,omitempty"` // "" for the default namespace
	Subsystem string `json:"subsystem"`        // "zones", "policy", "routing", "bgp"
	Action    string `json:"action"`           // e.g. "create-namespace", "move-link", "add-address"
	Object    string `json:"object"`           // what is changed, e.g. "eth1 -> wan"
	Detail    string `json:"detail,omitempty"` // extra context for humans
}

func (c Change) String() string {
	var b strings.Builder
	if c.Tenant != "" {
		fmt.Fprintf(&b, "[%s] ", c.Tenant)
	} else {
		b.WriteString("[default] ")
	}
	fmt.Fprintf(&b, "%s %s", c.Action, c.Object)
	if c.Detail != "" {
		fmt.Fprintf(&b, " (%s)", c.Detail)
	}
	return b.String()
}

// Summary counts changes per subsystem and action, for one-line logs.
func Summary(cs []Change) map[string]int {
	m := map[string]int{}
	for _, c := range cs {
		m[c.Subsystem+"/"+c.Action]++
	}
	return m
}
