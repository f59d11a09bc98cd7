package config

// The validated firewall policy of a tenant, consumed by the policy
// compiler. docs/policy.md documents every key.

import (
	"net/netip"
	"strconv"
	"time"
)

// Zone names with a fixed meaning.
const (
	ZoneSelf = "self" // the namespace itself (input/output)
	ZoneAny  = "any"  // every zone, including self and unzoned interfaces
)

// Action is a rule or default-policy verdict.
type Action string

const (
	Accept Action = "accept"
	Drop   Action = "drop"
	Reject Action = "reject"
)

// Policy is a tenant's validated firewall policy. A tenant without any
// policy key has Enabled == false: fwd then installs no table at all, so
// a routing-only tenant is not firewalled by surprise.
type Policy struct {
	Enabled  bool
	Zones    []*Zone // sorted by name
	Defaults []ZonePolicy
	Rules    []*Rule // file order
	Sets     []*AddrSet
	NAT      []*NAT // file order
}

// Zone is a named group of interfaces.
type Zone struct {
	Name       string
	Interfaces []string // sorted
}

// ZonePolicy is the verdict for traffic between two zones that no rule
// decided. From/To may be ZoneAny.
type ZonePolicy struct {
	From, To string
	Action   Action
	Key      string // the [[policy]] entry that sets it: tenant.T.policy[i]
	Line     int    // line of that entry's header, 1-based; 0 when unknown
}

// AddrRange is an inclusive range of addresses of one family.
type AddrRange struct {
	From, To netip.Addr
}

// AddrMatch is a saddr/daddr condition: either a named set or a list of
// literal ranges. The zero value matches anything.
type AddrMatch struct {
	Set    string
	Ranges []AddrRange
}

// Any reports whether the match is unconstrained.
func (m AddrMatch) Any() bool { return m.Set == "" && len(m.Ranges) == 0 }

// Families returns the address families the match can match (4 and/or 6).
func (m AddrMatch) Families() (v4, v6 bool) {
	if m.Any() || m.Set != "" {
		return true, true
	}
	for _, r := range m.Ranges {
		if r.From.Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return
}

// Of returns the ranges of one family.
func (m AddrMatch) Of(v6 bool) []AddrRange {
	var out []AddrRange
	for _, r := range m.Ranges {
		if r.From.Is6() == v6 {
			out = append(out, r)
		}
	}
	return out
}

// PortRange is an inclusive port range.
type PortRange struct{ From, To uint16 }

// Rate is a packet rate for limit and log_limit.
type Rate struct {
	Count uint64
	Unit  string // second, minute, hour, day
	Burst uint32 // 0: kernel default
}

// Rule is one filter rule.
type Rule struct {
	Index    int    // position in the file (rule[Index])
	Line     int    // line of its [[tenant.T.rule]] header, 1-based; 0 when unknown
	ID       string // stable identity: the name, or a content hash
	Name     string
	Comment  string
	From, To []string // zones, ZoneAny, ZoneSelf
	Saddr    AddrMatch
	Daddr    AddrMatch
	Protos   []uint8 // IP protocol numbers; empty: any
	Sport    []PortRange
	Dport    []PortRange
	ICMP     []uint8 // ICMP or ICMPv6 types (family given by Protos)
	CtState  []string
	Action   Action
	Log      bool
	LogPfx   string
	LogLimit *Rate
	Limit    *Rate
	V4, V6   bool // address families the rule can match
}

// AddrSet is a named set of addresses, CIDRs and ranges.
type AddrSet struct {
	Name string
	File string // resolved path, "" if inline only
	// V4 and V6 are sorted and merged (overlapping and adjacent ranges
	// joined). They may be shared with a SetCache and with the sets of
	// other loads of the same file: read-only.
	V4, V6 []AddrRange
	// Dynamic: a live set whose elements are managed at run time (fwd
	// set add|del), never by the file. It has no elements and no file.
	Dynamic bool
	// Timeout is the default lifetime of a dynamic set's elements; 0:
	// they never expire unless added with their own timeout.
	Timeout time.Duration

	fileKey  string // where File was set, for the loader's errors
	fileLine int
	fileSum  *[32]byte // SHA-256 of File when V4, V6 are exactly its content (see FileSum)
}

// NAT kinds.
const (
	NATMasquerade = "masquerade"
	NATSnat       = "snat"
	NATDnat       = "dnat"
	NATNetmap     = "netmap"
)

// NAT is one translation.
type NAT struct {
	Index    int // position in the file (nat[Index])
	Line     int // line of its [[tenant.T.nat]] header, 1-based; 0 when unknown
	ID       string
	Type     string
	In, Out  string // zones
	Saddr    AddrMatch
	Daddr    AddrMatch
	Protos   []uint8
	Dport    []PortRange
	ToAddr   netip.Addr // snat/dnat target (start of range)
	ToEnd    netip.Addr // snat range end, zero if single
	ToPort   uint16     // dnat target port, 0 = unchanged
	Prefix   netip.Prefix
	ToPrefix netip.Prefix // netmap
	Hairpin  bool
	// Family (masquerade) is 4 or 6 to translate one family only (a
	// dual-stack LAN whose IPv6 is routed); 0: what saddr/daddr imply,
	// both when they say nothing.
	Family int
	// Hairpin: the zone the target lives in and the public addresses
	// to reflect.
	TargetZone string
	Public     []netip.Addr
}

// Zone returns the zone of that name, or nil.
func (p *Policy) Zone(name string) *Zone {
	for _, z := range p.Zones {
		if z.Name == name {
			return z
		}
	}
	return nil
}

// Set returns the set of that name, or nil.
func (p *Policy) Set(name string) *AddrSet {
	for _, s := range p.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// DefaultFor returns the verdict for (from, to) when no rule matched: the
// most specific declared policy (exact pair, then from→any, any→to,
// any→any), else drop, except that traffic from self is accepted.
func (p *Policy) DefaultFor(from, to string) Action {
	for _, cand := range [][2]string{{from, to}, {from, ZoneAny}, {ZoneAny, to}, {ZoneAny, ZoneAny}} {
		for _, d := range p.Defaults {
			if d.From == cand[0] && d.To == cand[1] {
				return d.Action
			}
		}
	}
	if from == ZoneSelf {
		return Accept
	}
	return Drop
}

// Protocols maps protocol names accepted in `proto` to numbers.
var Protocols = map[string]uint8{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
	"icmpv6": 58, "sctp": 132, "udplite": 136,
}

// ProtoName returns the name of an IP protocol number, or the number.
func ProtoName(p uint8) string {
	for n, v := range Protocols {
		if v == p {
			return n
		}
	}
	return strconv.Itoa(int(p))
}

// ICMPTypes and ICMPv6Types map nft's type names to numbers.
var (
	ICMPTypes = map[string]uint8{
		"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
		"echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
		"time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14,
	}
	ICMPv6Types = map[string]uint8{
		"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
		"echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
		"nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
		"nd-neighbor-advert": 136, "nd-redirect": 137, "mld2-listener-report": 143,
	}
)
