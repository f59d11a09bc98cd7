package explain

import "net/netip"

// Verdicts, as the JSON `verdict` field carries them.
const (
	Accept = "accept"
	Drop   = "drop"
	Reject = "reject"
)

// Trace is the path of one packet and its outcome.
type Trace struct {
	Query Query `json:"query"`
	// Verdict is accept, drop or reject: what a sender observes (reject:
	// a TCP reset or an ICMP error comes back; drop: silence).
	Verdict string `json:"verdict"`
	// Reason says in words what decided (the rule, the chain policy, a
	// route, forwarding being off …).
	Reason string `json:"reason"`
	// RejectWith is the answer of a reject: "tcp reset", "icmp
	// port-unreachable", "icmp net-unreachable" …
	RejectWith string `json:"reject_with,omitempty"`
	// Rule is the rule that decided; nil when no rule did (routing,
	// forwarding off, a tenant without policy).
	Rule *RuleRef `json:"rule,omitempty"`
	// Hook is the filter hook that decided: input, forward or output
	// ("" when the packet never reached one).
	Hook  string      `json:"hook,omitempty"`
	Steps []Step      `json:"steps"`
	NAT   []NATChange `json:"nat,omitempty"`
	// Route is the route lookup made for the packet (after DNAT); nil
	// when --out was given.
	Route *Route `json:"route,omitempty"`
	// Before and After are the packet's addresses and ports on arrival
	// and as it leaves (after all NAT).
	Before Tuple    `json:"before"`
	After  Tuple    `json:"after"`
	OutIf  string   `json:"out,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// Tuple is a packet's addresses and ports.
type Tuple struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	SPort uint16     `json:"sport,omitempty"`
	DPort uint16     `json:"dport,omitempty"`
}

// Step is one rule tested, in evaluation order.
type Step struct {
	Hook  string `json:"hook"`  // prerouting, input, forward, output, postrouting
	Chain string `json:"chain"` // kernel chain
	// Kind says what the rule is: hygiene, dispatch, rule, merged, nat,
	// dnat-admit (forward's accept of port-forwarded flows), default,
	// reject (fwd's reject helper chain) or policy (the base chain's
	// policy, when no rule decided).
	Kind    string   `json:"kind"`
	Rule    string   `json:"rule,omitempty"` // fwd identity (kernel rule comment)
	Text    string   `json:"text"`           // the rule in nft syntax
	Matched bool     `json:"matched"`
	Reason  string   `json:"reason,omitempty"` // why it did not match
	Action  string   `json:"action,omitempty"` // what it did when matched
	Ref     *RuleRef `json:"ref,omitempty"`
}

// RuleRef identifies a rule of the configuration.
type RuleRef struct {
	ID      string `json:"id"`               // fwd identity: name, content hash, or built-in ("_…")
	Member  string `json:"member,omitempty"` // merged groups: the config rule that matched
	Name    string `json:"name,omitempty"`
	Comment string `json:"comment,omitempty"`
	Key     string `json:"key,omitempty"` // TOML key path, e.g. tenant.fw.rule[3]
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
}

// NATChange is one translation applied to the packet.
type NATChange struct {
	Hook   string   `json:"hook"` // prerouting or postrouting
	Kind   string   `json:"kind"` // dnat, snat, masquerade, netmap
	Text   string   `json:"text"`
	Before Tuple    `json:"before"`
	After  Tuple    `json:"after"`
	Rule   *RuleRef `json:"rule,omitempty"`
}

// Route is the result of the route lookup.
type Route struct {
	// Rule is the policy routing rule that selected the table, in `ip
	// rule` syntax.
	Rule    string       `json:"rule"`
	Table   string       `json:"table"`
	TableID uint32       `json:"table_id"`
	Dst     netip.Prefix `json:"dst,omitempty"` // the matching route's prefix
	Type    string       `json:"type"`          // local, unicast, blackhole, unreachable, prohibit, none
	Via     netip.Addr   `json:"via,omitempty"`
	Dev     string       `json:"dev,omitempty"`
	Src     netip.Addr   `json:"src,omitempty"` // preferred source (masquerade uses it)
	// Origin says where the route comes from: connected (an interface
	// address), static (a [[route]] of the config) or local.
	Origin string   `json:"origin"`
	Ref    *RuleRef `json:"ref,omitempty"`
	// Alternatives lists the other paths of an ECMP route: the kernel
	// picks one per flow by hash.
	Alternatives []string `json:"alternatives,omitempty"`
}
