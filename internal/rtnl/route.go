package rtnl

import (
	"fmt"
	"net/netip"
	"strings"
)

// Route types (kernel RTN_* values, stable ABI).
const (
	TypeUnicast     uint8 = 1
	TypeLocal       uint8 = 2
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
// of an interface. Ifindex 0 in a route to write lets the kernel choose.
type NextHop struct {
	Gw      netip.Addr
	Ifindex int
	Dev     string // interface name, for messages and views; never sent
	Weight  int    // 1-256; 0 reads as 1
	OnLink  bool
}

// Route is one kernel route as fwd writes and reads it.
type Route struct {
	Table    uint32
	Dst      netip.Prefix
	Type     uint8 // TypeUnicast when 0
	Metric   uint32
	Src      netip.Addr
	NextHops []NextHop // empty for blackhole/unreachable/prohibit and NHID routes
	NHID     uint32    // kernel nexthop object, instead of NextHops
	Protocol uint8     // set by reads; writes use the protocol passed to WriteRoutes
	Scope    uint8     // set by reads
}

// Family returns 4 or 6.
func (r *Route) Family() int {
	if r.Dst.Addr().Is4() {
		return 4
	}
	return 6
}

// RouteType is Type, with 0 read as TypeUnicast.
func (r *Route) RouteType() uint8 {
	if r.Type == 0 {
		return TypeUnicast
	}
	return r.Type
}

// Key is what the kernel uses to tell routes apart (tos is always 0 for
// fwd): two routes with the same key cannot coexist in a table, and
// Replace swaps one for the other in place. A delete matches by key (and
// protocol), never by next hop.
type Key struct {
	Table  uint32
	Dst    netip.Prefix
	Metric uint32
}

// Key returns the route's identity.
func (r *Route) Key() Key { return Key{r.Table, r.Dst, r.Metric} }

// DefaultMetric is the metric the kernel gives a route to dst written
// with metric 0: 0 for IPv4, 1024 for IPv6. A route kept by key must be
// written (and compared) with it.
func DefaultMetric(dst netip.Prefix) uint32 {
	if dst.Addr().Is6() {
		return 1024
	}
	return 0
}

func (k Key) String() string {
	return fmt.Sprintf("%s table %d metric %d", k.Dst, k.Table, k.Metric)
}

// Weight returns w, with 0 read as 1.
func Weight(w int) int {
	if w <= 0 {
		return 1
	}
	return w
}

// String renders the route in `ip route` syntax.
func (r *Route) String() string {
	var b strings.Builder
	if t := r.RouteType(); t != TypeUnicast {
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
			fmt.Fprintf(&b, " weight %d", Weight(nh.Weight))
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

// Nexthop is a kernel nexthop object (RTM_NEWNEXTHOP): routes refer to it
// by ID (Route.NHID), and deleting it withdraws every route using it in
// one message. A delete needs only ID.
type Nexthop struct {
	ID       uint32
	Gw       netip.Addr
	Ifindex  int // required by the kernel
	OnLink   bool
	Protocol uint8 // set by reads (Nexthops); writes use the protocol passed to WriteNexthops
}

// Kind is what a write message does.
type Kind uint8

const (
	// Create adds an object; it fails with ErrExists if the key is taken
	// (NLM_F_CREATE|NLM_F_EXCL).
	Create Kind = iota
	// Replace creates the object or swaps the one with the same key in
	// place (NLM_F_CREATE|NLM_F_REPLACE): no moment without a route.
	Replace
	// Delete removes the object; a missing one fails with ErrNotFound.
	Delete
)

func (k Kind) String() string {
	switch k {
	case Create:
		return "create"
	case Replace:
		return "replace"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// AckPolicy says which messages of a batch ask the kernel for an ack.
// Under both policies every message the kernel refuses is reported (the
// kernel answers failures whether an ack was asked or not), and a write
// returns only once the kernel has processed every message it sent.
type AckPolicy uint8

const (
	// AckErrors asks for an ack only on the last message of each
	// sendmsg: the kernel handles a sendmsg's messages in order, so when
	// that ack arrives every failure before it has been read. One reply
	// per chunk plus one per failure: the fast choice for bulk writes.
	AckErrors AckPolicy = iota
	// AckEach asks for an ack on every message: one reply per message,
	// so the write proves each message was processed. For small writes
	// where that certainty is worth a reply per message.
	AckEach
)

// Failure is one message of a batch that the kernel refused.
type Failure struct {
	Index int   // position in the batch
	Err   error // an *Error
}

// Result is the outcome of a batch write.
type Result struct {
	// Failed lists the refused messages by ascending Index.
	Failed []Failure
	// Done counts the messages whose outcome is known, from the start of
	// the batch. It is the whole batch unless the write also returned an
	// error (a socket failure): messages from Done on may or may not have
	// been applied, and the caller must read the kernel to know.
	Done int
}
