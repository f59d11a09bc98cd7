package explain

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/config"
)

// InSelf as Query.In describes a packet the tenant's namespace itself
// sends (hook output), rather than one arriving on an interface.
const InSelf = "self"

// Query describes one packet: where it enters, its addresses, protocol,
// ports and conntrack state.
type Query struct {
	Tenant string     `json:"tenant"`
	In     string     `json:"in"`            // interface it arrives on, or InSelf
	Out    string     `json:"out,omitempty"` // forced output interface; "" = route lookup
	Src    netip.Addr `json:"src"`
	Dst    netip.Addr `json:"dst"`
	Proto  uint8      `json:"proto"` // IP protocol number
	SPort  uint16     `json:"sport,omitempty"`
	DPort  uint16     `json:"dport,omitempty"`
	// ICMPType is the ICMP(v6) type for proto icmp/icmpv6; nil means an
	// echo request.
	ICMPType *uint8 `json:"icmp_type,omitempty"`
	// State is the conntrack state the packet has when it reaches the
	// filter: new (default), established, related, invalid or untracked.
	State string `json:"state"`
}

// ctStates are the states a Query may carry.
var ctStates = map[string]bool{"new": true, "established": true, "related": true, "invalid": true, "untracked": true}

// ParseProto accepts a protocol name (tcp, udp, icmp, icmpv6, …) or number.
func ParseProto(s string) (uint8, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "ipv6-icmp" {
		return 58, nil
	}
	if p, ok := config.Protocols[s]; ok {
		return p, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown protocol %q", s)
	}
	return uint8(n), nil
}

// ParseICMPType accepts an ICMP (or, with v6, ICMPv6) type name or number.
func ParseICMPType(s string, v6 bool) (uint8, error) {
	table := config.ICMPTypes
	if v6 {
		table = config.ICMPv6Types
	}
	if t, ok := table[s]; ok {
		return t, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown icmp type %q", s)
	}
	return uint8(n), nil
}

func hasPorts(p uint8) bool { return p == 6 || p == 17 || p == 132 || p == 136 }

// check validates q against the tenant and fills defaults.
func (q *Query) check(t *config.Tenant) error {
	if q.State == "" {
		q.State = "new"
	}
	if !ctStates[q.State] {
		return fmt.Errorf("unknown ct state %q: want new, established, related, invalid or untracked", q.State)
	}
	if !q.Src.IsValid() || !q.Dst.IsValid() {
		return fmt.Errorf("source and destination addresses are required")
	}
	q.Src, q.Dst = q.Src.Unmap(), q.Dst.Unmap()
	if q.Src.Is4() != q.Dst.Is4() {
		return fmt.Errorf("source %s and destination %s are of different families", q.Src, q.Dst)
	}
	if q.In == "" {
		return fmt.Errorf("the input interface is required (an interface of tenant %q, or %q)", t.Name, InSelf)
	}
	if q.In != InSelf && t.Interface(q.In) == nil {
		return fmt.Errorf("tenant %q has no interface %q", t.Name, q.In)
	}
	if q.Out != "" && t.Interface(q.Out) == nil {
		return fmt.Errorf("tenant %q has no interface %q", t.Name, q.Out)
	}
	if q.Proto == 1 && q.Dst.Is6() {
		q.Proto = 58 // icmp with IPv6 addresses means ICMPv6
	}
	if q.Proto == 58 && q.Dst.Is4() {
		return fmt.Errorf("icmpv6 with IPv4 addresses")
	}
	if (q.SPort != 0 || q.DPort != 0) && !hasPorts(q.Proto) {
		return fmt.Errorf("ports need proto tcp, udp, sctp or udplite")
	}
	if hasPorts(q.Proto) && q.DPort == 0 {
		return fmt.Errorf("proto %s needs a destination port", config.ProtoName(q.Proto))
	}
	if hasPorts(q.Proto) && q.SPort == 0 {
		q.SPort = 40000 // any ephemeral port; only matters to sport rules
	}
	if q.ICMPType == nil && (q.Proto == 1 || q.Proto == 58) {
		t := uint8(8)
		if q.Proto == 58 {
			t = 128
		}
		q.ICMPType = &t
	}
	return nil
}

// String renders the packet the way nft prints one.
func (q Query) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s → %s", protoName(q.Proto), q.Src, q.Dst)
	if hasPorts(q.Proto) {
		fmt.Fprintf(&b, " sport %d dport %d", q.SPort, q.DPort)
	}
	if q.ICMPType != nil {
		fmt.Fprintf(&b, " type %s", icmpTypeName(q.Proto == 58, *q.ICMPType))
	}
	fmt.Fprintf(&b, ", in %s", q.In)
	if q.Out != "" {
		fmt.Fprintf(&b, ", out %s", q.Out)
	}
	fmt.Fprintf(&b, ", ct state %s", q.State)
	return b.String()
}

func protoName(p uint8) string {
	if p == 58 {
		return "icmpv6"
	}
	return config.ProtoName(p)
}

func icmpTypeName(v6 bool, t uint8) string {
	table := config.ICMPTypes
	if v6 {
		table = config.ICMPv6Types
	}
	for n, v := range table {
		if v == t {
			return n
		}
	}
	return strconv.Itoa(int(t))
}
