package routing

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Protocol is the rtm_protocol (and FRA_PROTOCOL for rules) that marks
// every route, rule and nexthop fwd installs. fwd only ever changes or
// deletes objects carrying it. 243 (0xf3) is unused by iproute2's
// rt_protos and by the routing daemons that register numbers
// (bird 12, zebra 11, bgp 186…): `ip route show table all proto 243`
// lists fwd's routes, and an /etc/iproute2/rt_protos.d/fwd.conf line
// "243 fwd" makes `ip` print and accept the name.
const Protocol = 243

// ProtocolName is the name docs and views give Protocol.
const ProtocolName = "fwd"

// Route types (kernel RTN_* values, stable ABI).
const (
	TypeUnicast     uint8 = 1
	TypeBlackhole   uint8 = 6
	TypeUnreachable uint8 = 7
	TypeProhibit    uint8 = 8
)

var typeNames = map[uint8]string{1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat"}

// TypeName returns the iproute2 name of a route type.
func TypeName(t uint8) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprint(t)
}

// NextHop is one path of a route. Gw is invalid for a route straight out
// of an interface. Ifindex 0 in a desired route lets the kernel choose.
type NextHop struct {
	Gw      netip.Addr
	Ifindex int
	Dev     string // interface name, for messages and views
	Weight  int    // 1-256; 0 reads as 1
	OnLink  bool
}

// Route is one kernel route, as fwd plans, installs and reads it.
type Route struct {
	Table    uint32
	Dst      netip.Prefix
	Type     uint8 // TypeUnicast when 0
	Metric   uint32
	Src      netip.Addr
	NextHops []NextHop // empty for blackhole/unreachable/prohibit and NHID routes
	NHID     uint32    // kernel nexthop object, instead of NextHops
	Protocol uint8     // set by reads; installs always use Protocol
	Scope    uint8     // set by reads
}

// Family returns 4 or 6.
func (r *Route) Family() int {
	if r.Dst.Addr().Is4() {
		return 4
	}
	return 6
}

func (r *Route) typ() uint8 {
	if r.Type == 0 {
		return TypeUnicast
	}
	return r.Type
}

// Key is what the kernel uses to tell routes apart (tos is always 0 for
// fwd): two routes with the same key cannot coexist, and NLM_F_REPLACE
// swaps one for the other in place.
type Key struct {
	Table  uint32
	Dst    netip.Prefix
	Metric uint32
}

// Key returns the route's identity.
func (r *Route) Key() Key { return Key{r.Table, r.Dst, r.Metric} }

func (k Key) String() string {
	return fmt.Sprintf("%s table %d metric %d", k.Dst, k.Table, k.Metric)
}

// String renders the route in `ip route` syntax.
func (r *Route) String() string {
	var b strings.Builder
	if t := r.typ(); t != TypeUnicast {
		b.WriteString(TypeName(t) + " ")
	}
	b.WriteString(r.Dst.String())
	if r.NHID != 0 {
		fmt.Fprintf(&b, " nhid %d", r.NHID)
	}
	multi := len(r.NextHops) > 1
	for _, nh := range r.NextHops {
		if multi {
			b.WriteString(" nexthop")
		}
		if nh.Gw.IsValid() {
			b.WriteString(" via " + nh.Gw.String())
		}
		if nh.Dev != "" {
			b.WriteString(" dev " + nh.Dev)
		} else if nh.Ifindex != 0 {
			fmt.Fprintf(&b, " dev #%d", nh.Ifindex)
		}
		if multi {
			fmt.Fprintf(&b, " weight %d", weight(nh.Weight))
		}
		if nh.OnLink {
			b.WriteString(" onlink")
		}
	}
	if r.Table != 254 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	return b.String()
}

func weight(w int) int {
	if w <= 0 {
		return 1
	}
	return w
}

// Same reports whether actual (read from the kernel) is what desired asks
// for. Fields desired leaves open (interface of a gateway) are not compared.
func Same(desired, actual *Route) bool {
	if desired.Key() != actual.Key() || desired.typ() != actual.typ() || desired.Src != actual.Src || desired.NHID != actual.NHID {
		return false
	}
	if len(desired.NextHops) != len(actual.NextHops) {
		return false
	}
	used := make([]bool, len(actual.NextHops))
	for _, d := range desired.NextHops {
		found := false
		for i, a := range actual.NextHops {
			if used[i] || d.Gw != a.Gw || d.OnLink != a.OnLink || (d.Ifindex != 0 && d.Ifindex != a.Ifindex) {
				continue
			}
			if len(desired.NextHops) > 1 && weight(d.Weight) != weight(a.Weight) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			return false
		}
	}
	return true
}

// OpKind is what an Op does to the kernel.
type OpKind int

const (
	OpAdd     OpKind = iota // create; fails if the key exists (EEXIST)
	OpReplace               // swap the route of the same key in place
	OpDelete                // remove
	OpUpsert                // create or replace (installer API)
)

func (k OpKind) String() string {
	return [...]string{"add-route", "replace-route", "delete-route", "upsert-route"}[k]
}

// Op is one route change.
type Op struct {
	Kind  OpKind
	Route Route
	Old   *Route // OpReplace, OpDelete: the route read from the kernel
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Table, b.Table), a.Dst.Addr().Compare(b.Dst.Addr()), cmp.Compare(a.Dst.Bits(), b.Dst.Bits()), cmp.Compare(a.Metric, b.Metric))
}

// Diff computes the route changes that make owned (fwd's routes read from
// the kernel) equal desired. foreign holds the keys of routes somebody
// else made: a desired route whose key is taken by one is reported in
// conflicts and never installed, because replacing it would take over a
// route fwd does not own. Additions and replacements come before deletions
// so that a route moving to another metric is never missing.
func Diff(desired, owned []Route, foreign map[Key]Route) (ops []Op, conflicts []Route) {
	have := make(map[Key]*Route, len(owned))
	for i := range owned {
		have[owned[i].Key()] = &owned[i]
	}
	want := make(map[Key]bool, len(desired))
	for _, d := range desired {
		k := d.Key()
		want[k] = true
		a, ok := have[k]
		switch {
		case ok && Same(&d, a):
		case ok:
			ops = append(ops, Op{Kind: OpReplace, Route: d, Old: a})
		default:
			if _, taken := foreign[k]; taken {
				conflicts = append(conflicts, d)
				continue
			}
			ops = append(ops, Op{Kind: OpAdd, Route: d})
		}
	}
	var dels []Op
	for i := range owned {
		if !want[owned[i].Key()] {
			dels = append(dels, Op{Kind: OpDelete, Route: owned[i], Old: &owned[i]})
		}
	}
	slices.SortFunc(dels, func(a, b Op) int { return compareKeys(a.Route.Key(), b.Route.Key()) })
	return append(ops, dels...), conflicts
}
