package dhcpclient

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/fwdproject/fwd/routing"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Protocol marks the routes a lease installs: fwd's own number, so the
// routing subsystem reconciles them with fwd's other routes (it must list
// them as desired: Lease.Routes) and nothing else deletes them.
const Protocol = routing.Protocol

// Lease is what a DHCPv4 or DHCPv6 server granted on one interface.
type Lease struct {
	Interface string        `json:"interface"`
	Address   netip.Prefix  `json:"address"`          // v4: yiaddr with the subnet mask; v6: the IA_NA address, /128
	Router    netip.Addr    `json:"router,omitzero"`  // v4 only (v6 routers come from RAs)
	Routes    []StaticRoute `json:"routes,omitempty"` // option 121: replaces Router
	DNS       []netip.Addr  `json:"dns,omitempty"`
	Domain    string        `json:"domain,omitempty"`    // v6: the first of the search list
	Server    netip.Addr    `json:"server,omitzero"`     // v4: the server identifier
	ServerID  string        `json:"server_id,omitempty"` // v6: the server's DUID, hex
	Obtained  time.Time     `json:"obtained"`
	LeaseTime time.Duration `json:"lease_time"` // v6: the valid lifetime
	Preferred time.Duration `json:"preferred"`  // v6: the preferred lifetime; v4: LeaseTime
	T1        time.Duration `json:"t1"`
	T2        time.Duration `json:"t2"`
	// Delegated (v6, dhcp6_pd) is the prefix delegated to the box
	// (IA_PD), with its own lifetimes.
	Delegated          netip.Prefix  `json:"delegated,omitzero"`
	DelegatedValid     time.Duration `json:"delegated_valid,omitempty"`
	DelegatedPreferred time.Duration `json:"delegated_preferred,omitempty"`

	raw4 *dhcpv4.DHCPv4 // the ACK, for renew and release
	v6   *lease6        // the server and IA, for renew and release
}

// V6 reports whether the lease is a DHCPv6 one.
func (l *Lease) V6() bool { return l.Address.Addr().Is6() }

// LogAttrs are the lease's attributes for a log line.
func (l *Lease) LogAttrs() []any {
	attrs := []any{"address", l.Address.String()}
	if l.Router.IsValid() {
		attrs = append(attrs, "router", l.Router.String())
	}
	attrs = append(attrs, "lease_time", l.LeaseTime.String())
	if l.Server.IsValid() {
		attrs = append(attrs, "server", l.Server.String())
	}
	if l.ServerID != "" {
		attrs = append(attrs, "server_id", l.ServerID)
	}
	if l.Delegated.IsValid() {
		attrs = append(attrs, "delegated", l.Delegated.String())
	}
	return attrs
}

// StaticRoute is one classless static route (RFC 3442).
type StaticRoute struct {
	Dst netip.Prefix `json:"dst"`
	Gw  netip.Addr   `json:"gw"` // 0.0.0.0: on-link
}

// ErrBadLease reports an ACK fwd cannot use.
var ErrBadLease = errors.New("unusable lease")

// FromACK reads a lease out of a DHCPACK received at now. It is pure.
func FromACK(ifname string, ack *dhcpv4.DHCPv4, now time.Time) (*Lease, error) {
	yi, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || yi.IsUnspecified() {
		return nil, fmt.Errorf("%w: no address", ErrBadLease)
	}
	bits := 32
	if m := ack.SubnetMask(); m != nil {
		if ones, size := m.Size(); size == 32 {
			bits = ones
		}
	} else {
		bits = classfulBits(yi)
	}
	l := &Lease{Interface: ifname, Address: netip.PrefixFrom(yi, bits), Obtained: now, raw4: ack}
	l.LeaseTime = ack.IPAddressLeaseTime(0)
	if l.LeaseTime <= 0 {
		return nil, fmt.Errorf("%w: no lease time", ErrBadLease)
	}
	l.Preferred = l.LeaseTime
	l.T1 = ack.IPAddressRenewalTime(l.LeaseTime / 2)
	l.T2 = ack.IPAddressRebindingTime(l.LeaseTime * 7 / 8)
	if l.T2 <= 0 || l.T2 > l.LeaseTime {
		l.T2 = l.LeaseTime * 7 / 8
	}
	if l.T1 <= 0 || l.T1 > l.T2 {
		l.T1 = l.T2 / 2
	}
	if s, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4()); ok {
		l.Server = s
	}
	for _, r := range ack.Router() {
		if a, ok := netip.AddrFromSlice(r.To4()); ok && !a.IsUnspecified() {
			l.Router = a
			break
		}
	}
	for _, r := range ack.ClasslessStaticRoute() {
		dst, ok1 := netip.AddrFromSlice(r.Dest.IP.To4())
		gw, ok2 := netip.AddrFromSlice(r.Router.To4())
		ones, _ := r.Dest.Mask.Size()
		if ok1 && ok2 {
			l.Routes = append(l.Routes, StaticRoute{Dst: netip.PrefixFrom(dst, ones).Masked(), Gw: gw})
		}
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			l.DNS = append(l.DNS, a)
		}
	}
	l.Domain = ack.DomainName()
	return l, nil
}

func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}

// Expiry is when the lease runs out.
func (l *Lease) Expiry() time.Time { return l.Obtained.Add(l.LeaseTime) }

// Remaining is the lease time left at now (0 once expired).
func (l *Lease) Remaining(now time.Time) time.Duration {
	return max(l.Expiry().Sub(now), 0)
}

// PreferredLeft is the preferred lifetime left at now (0 once deprecated).
func (l *Lease) PreferredLeft(now time.Time) time.Duration {
	return max(l.Obtained.Add(l.Preferred).Sub(now), 0)
}

// Timers returns when to renew (T1) and rebind (T2). maxRenew > 0 caps
// T1 (and T2 at twice it): a short renewal interval for tests, or to
// notice a changed server sooner.
func (l *Lease) Timers(maxRenew time.Duration) (t1, t2 time.Time) {
	d1, d2 := l.T1, l.T2
	if maxRenew > 0 {
		d1 = min(d1, maxRenew)
		d2 = max(min(d2, 2*maxRenew), d1)
	}
	return l.Obtained.Add(d1), l.Obtained.Add(d2)
}

// SameBinding reports whether two leases install the same kernel state
// (address, routes); a renewal normally does.
func (l *Lease) SameBinding(o *Lease) bool {
	if l == nil || o == nil {
		return l == o
	}
	if l.Address != o.Address || l.Router != o.Router || l.Delegated != o.Delegated || len(l.Routes) != len(o.Routes) {
		return false
	}
	for i := range l.Routes {
		if l.Routes[i] != o.Routes[i] {
			return false
		}
	}
	return true
}

// KernelRoutes returns the routes the lease installs into table with
// metric: the classless static routes when the server sent them (RFC 3442
// says the router option is then ignored), else a default route via the
// router. A gateway outside the leased subnet (clouds hand out /32s) is
// reached on-link. Next hops name the interface (Dev); the routing plan
// resolves it, and the Applier sets Ifindex. This is also what the
// routing subsystem must list as desired so it keeps them.
func (l *Lease) KernelRoutes(table, metric uint32) []rtnl.Route {
	nh := func(gw netip.Addr) rtnl.NextHop {
		n := rtnl.NextHop{Dev: l.Interface}
		if gw.IsValid() && !gw.IsUnspecified() {
			n.Gw = gw
			n.OnLink = !l.Address.Masked().Contains(gw)
		}
		return n
	}
	if metric == 0 {
		metric = rtnl.DefaultMetric(l.Address) // what the kernel stores for 0
	}
	var out []rtnl.Route
	if l.Delegated.IsValid() {
		// The delegated prefix as a whole is unreachable here: the
		// /64s in use are on the LAN interfaces (more specific), and
		// the provider's packets for the rest must not loop back out
		// of the default route.
		out = append(out, rtnl.Route{Table: table, Dst: l.Delegated, Type: rtnl.TypeUnreachable, Metric: metric})
	}
	if len(l.Routes) > 0 {
		for _, r := range l.Routes {
			out = append(out, rtnl.Route{Table: table, Dst: r.Dst, Metric: metric, NextHops: []rtnl.NextHop{nh(r.Gw)}})
		}
		return out
	}
	if l.Router.IsValid() {
		out = append(out, rtnl.Route{Table: table, Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Metric: metric, NextHops: []rtnl.NextHop{nh(l.Router)}})
	}
	return out
}

// EventKind says what happened to a lease.
type EventKind string

const (
	Bound    EventKind = "bound"    // a new lease (first, or after a loss)
	Renewed  EventKind = "renewed"  // extended by its server (T1)
	Rebound  EventKind = "rebound"  // extended by any server (T2)
	Lost     EventKind = "lost"     // the server refused it (NAK)
	Expired  EventKind = "expired"  // ran out without renewal
	Released EventKind = "released" // given back: the client was stopped with release
)

// Event reports a lease change once the kernel has been updated. Lease
// is the lease now held (nil after lost, expired, released); Old the one
// before (nil for the first bound). Err is a kernel failure applying it.
type Event struct {
	Kind      EventKind
	Interface string
	Lease     *Lease
	Old       *Lease
	Err       error
}
