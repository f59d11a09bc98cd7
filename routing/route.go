package routing

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/fwdproject/fwd/internal/rtnl"
)

// Protocol is the rtm_protocol (and FRA_PROTOCOL for rules) that marks
// every route, rule and nexthop fwd's static routing installs. It only
// ever changes or deletes objects carrying it. 243 (0xf3) is unused by
// iproute2's rt_protos and by the routing daemons that register numbers
// (bird 12, zebra 11, bgp 186…): `ip route show table all proto 243`
// lists fwd's routes, and the package's /etc/iproute2/rt_protos.d/fwd.conf
// ("243 fwd") makes `ip` print and accept the name. The BGP speaker writes
// through the same rtnl layer under its own number (bgp.Protocol, 244).
const Protocol = 243

// ProtocolName is the name docs and views give Protocol.
const ProtocolName = "fwd"

// Route types (kernel RTN_* values, stable ABI).
const (
	TypeUnicast     = rtnl.TypeUnicast
	TypeBlackhole   = rtnl.TypeBlackhole
	TypeUnreachable = rtnl.TypeUnreachable
	TypeProhibit    = rtnl.TypeProhibit
)

// TypeName returns the iproute2 name of a route type.
func TypeName(t uint8) string { return rtnl.TypeName(t) }

// Route, NextHop, Key and Nexthop are the kernel-route layer's own types:
// a plan is written to the kernel without conversion or copies.
type (
	Route   = rtnl.Route
	NextHop = rtnl.NextHop
	Key     = rtnl.Key
	Nexthop = rtnl.Nexthop
)

func weight(w int) int { return rtnl.Weight(w) }

// Same reports whether actual (read from the kernel) is what desired asks
// for. Fields desired leaves open (interface of a gateway) are not compared.
func Same(desired, actual *Route) bool {
	if desired.Key() != actual.Key() || desired.RouteType() != actual.RouteType() || desired.Src != actual.Src || desired.NHID != actual.NHID {
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

func (k OpKind) rtnl() rtnl.Kind {
	switch k {
	case OpAdd:
		return rtnl.Create
	case OpDelete:
		return rtnl.Delete
	}
	return rtnl.Replace
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

var protoNames = map[uint8]string{0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 16: "dhcp", 42: "babel", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp", 244: "fwd-bgp", Protocol: ProtocolName}

func protoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return fmt.Sprint(p)
}
