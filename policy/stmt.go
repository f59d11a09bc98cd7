package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/config"
)

// Stmt is one statement of a rule. text renders it in nft syntax; the
// netlink expressions are built in nl_linux.go from the same values.
type Stmt interface {
	text() string
}

// Ifname matches the input (or output) interface name.
type Ifname struct {
	Out   bool
	Names []string
	Set   string // named interface set instead of Names
}

// IfnameVmap dispatches on the interface name through a verdict map.
type IfnameVmap struct {
	Out bool
	Map string
}

// VmapElem maps an interface to "goto Chain".
type VmapElem struct{ Key, Chain string }

// L4Proto matches the transport protocol (meta l4proto).
type L4Proto struct{ Protos []uint8 }

// NFProto restricts to one address family.
type NFProto struct{ V6 bool }

// Addr matches the source or destination address against ranges or a
// named set.
type Addr struct {
	Daddr, V6 bool
	Ranges    []config.AddrRange
	Set       string
}

// Ports matches the transport source or destination port.
type Ports struct {
	Dport  bool
	Ranges []config.PortRange
}

// ICMPType matches ICMP or ICMPv6 types.
type ICMPType struct {
	V6    bool
	Types []uint8
}

// CtState matches any of the conntrack states.
type CtState struct{ States []string }

// CtStatusDNAT matches connections that were destination-NATed.
type CtStatusDNAT struct{}

// CtStateVmap is the hygiene verdict map: established and related
// accepted, and, with Invalid, invalid sent to that chain.
type CtStateVmap struct{ Invalid string }

// Limit matches while under the rate.
type Limit struct{ Rate config.Rate }

// Log hands the packet to NFLOG group Group with Prefix (the daemon reads
// the group in every tenant namespace: package pktlog). The kernel's own
// `log` (printk) output is dropped in non-initial namespaces, so fwd
// never uses it. Group 0 would mean printk; Compile always sets one.
type Log struct {
	Group  uint16
	Prefix string
}

// Counter counts packets and bytes. Values seed the kernel counter so
// counts survive a table replacement.
type Counter struct{ Packets, Bytes uint64 }

// Verdict ends evaluation: accept, drop, goto Chain.
type Verdict struct{ Kind, Chain string }

// RejectStmt rejects with a TCP reset or an ICMP(v6) port unreachable.
type RejectStmt struct{ TCP bool }

// Masquerade rewrites the source to the output interface's address.
type Masquerade struct{}

// NATStmt is snat/dnat to an address (range), an optional port, or a
// prefix (netmap: host bits preserved).
type NATStmt struct {
	Kind    string // snat, dnat
	Addr    netip.Addr
	AddrEnd netip.Addr
	Port    uint16
	Prefix  netip.Prefix
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func set(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return "{ " + strings.Join(items, ", ") + " }"
}

func ifKey(out bool) string {
	if out {
		return "oifname"
	}
	return "iifname"
}

func (s Ifname) text() string {
	if s.Set != "" {
		return ifKey(s.Out) + " @" + s.Set
	}
	if len(s.Names) == 1 {
		return ifKey(s.Out) + " " + strconv.Quote(s.Names[0])
	}
	return ifKey(s.Out) + " { " + quoteList(s.Names) + " }"
}

func (s IfnameVmap) text() string { return ifKey(s.Out) + " vmap @" + s.Map }

func protoText(p uint8) string {
	if p == 58 {
		return "ipv6-icmp"
	}
	return config.ProtoName(p)
}

func (s L4Proto) text() string {
	items := make([]string, len(s.Protos))
	for i, p := range s.Protos {
		items[i] = protoText(p)
	}
	return "meta l4proto " + set(items)
}

func (s NFProto) text() string {
	if s.V6 {
		return "meta nfproto ipv6"
	}
	return "meta nfproto ipv4"
}

func rangeText(r config.AddrRange) string {
	if r.From == r.To {
		return r.From.String()
	}
	// An exact prefix prints as CIDR.
	bits := r.From.BitLen()
	for l := 0; l <= bits; l++ {
		p := netip.PrefixFrom(r.From, l)
		if p.Masked().Addr() == r.From && config.PrefixLast(p) == r.To {
			return p.String()
		}
	}
	return r.From.String() + "-" + r.To.String()
}

func (s Addr) text() string {
	k := "ip"
	if s.V6 {
		k = "ip6"
	}
	if s.Daddr {
		k += " daddr "
	} else {
		k += " saddr "
	}
	if s.Set != "" {
		return k + "@" + s.Set
	}
	items := make([]string, len(s.Ranges))
	for i, r := range s.Ranges {
		items[i] = rangeText(r)
	}
	return k + set(items)
}

func (s Ports) text() string {
	items := make([]string, len(s.Ranges))
	for i, r := range s.Ranges {
		if r.From == r.To {
			items[i] = strconv.Itoa(int(r.From))
		} else {
			items[i] = fmt.Sprintf("%d-%d", r.From, r.To)
		}
	}
	k := "th sport "
	if s.Dport {
		k = "th dport "
	}
	return k + set(items)
}

func icmpName(v6 bool, t uint8) string {
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

func (s ICMPType) text() string {
	items := make([]string, len(s.Types))
	for i, t := range s.Types {
		items[i] = icmpName(s.V6, t)
	}
	if s.V6 {
		return "icmpv6 type " + set(items)
	}
	return "icmp type " + set(items)
}

func (s CtState) text() string    { return "ct state " + strings.Join(s.States, ",") }
func (CtStatusDNAT) text() string { return "ct status dnat" }
func (s CtStateVmap) text() string {
	if s.Invalid != "" {
		return "ct state vmap { invalid : goto " + s.Invalid + ", established : accept, related : accept }"
	}
	return "ct state vmap { established : accept, related : accept }"
}
func (s Limit) text() string {
	return fmt.Sprintf("limit rate %d/%s burst %d packets", s.Rate.Count, s.Rate.Unit, burst(s.Rate))
}

// burst is the kernel burst: nft's default is 5 packets.
func burst(r config.Rate) uint32 {
	if r.Burst == 0 {
		return 5
	}
	return r.Burst
}

// text is nft's rendering: prefix first, then group.
func (s Log) text() string {
	t := "log"
	if s.Prefix != "" {
		t += " prefix " + strconv.Quote(s.Prefix)
	}
	if s.Group != 0 {
		t += " group " + strconv.Itoa(int(s.Group))
	}
	return t
}

func (Counter) text() string { return "counter" }

func (s Verdict) text() string {
	if s.Chain != "" {
		return s.Kind + " " + s.Chain
	}
	return s.Kind
}

func (s RejectStmt) text() string {
	if s.TCP {
		return "reject with tcp reset"
	}
	return "reject with icmpx port-unreachable"
}

func (Masquerade) text() string { return "masquerade" }

func (s NATStmt) text() string {
	fam := "ip"
	a := s.Addr
	if s.Prefix.IsValid() {
		a = s.Prefix.Addr()
	}
	if a.Is6() {
		fam = "ip6"
	}
	if s.Prefix.IsValid() {
		return fmt.Sprintf("%s %s prefix to %s", s.Kind, fam, s.Prefix)
	}
	target := s.Addr.String()
	if s.AddrEnd.IsValid() {
		target += "-" + s.AddrEnd.String()
	}
	if s.Port != 0 {
		if s.Addr.Is6() {
			target = "[" + target + "]"
		}
		target += ":" + strconv.Itoa(int(s.Port))
	}
	return fmt.Sprintf("%s %s to %s", s.Kind, fam, target)
}

// Text renders a statement in nft syntax, as fwd writes it (explain and
// trace show rules this way).
func Text(s Stmt) string { return s.text() }

// RangeText renders an address range as nft does: an address, a prefix
// or FROM-TO.
func RangeText(r config.AddrRange) string { return rangeText(r) }
