package rtnl

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

// What appendRouteMsg writes, parseRoute reads back (the kernel answers a
// dump with the same layout).
func TestRouteMessageRoundTrip(t *testing.T) {
	a := netip.MustParseAddr
	for _, r := range []Route{
		{Table: 254, Dst: netip.MustParsePrefix("198.18.0.0/24"), NextHops: []NextHop{{Gw: a("192.0.2.1"), Ifindex: 3, Weight: 1}}},
		{Table: 1000, Dst: netip.MustParsePrefix("2001:db8:1::/48"), Metric: 1024, Src: a("2001:db8::1"),
			NextHops: []NextHop{{Gw: a("2001:db8::2"), Ifindex: 2, Weight: 3}, {Gw: a("2001:db8::3"), Ifindex: 4, Weight: 1, OnLink: true}}},
		{Table: 100, Dst: netip.MustParsePrefix("0.0.0.0/0"), NHID: 7},
		{Table: 254, Dst: netip.MustParsePrefix("198.18.9.0/24"), Type: TypeBlackhole},
	} {
		b := appendRouteMsg(nil, 24, 0, 1, 243, &r, false)
		got, ok := parseRoute(b[nlmsgHdrLen:])
		if !ok {
			t.Fatalf("%s: not parsed", r.String())
		}
		r.Protocol = 243
		if got.String() != r.String() || got.Protocol != 243 || got.Table != r.Table {
			t.Errorf("round trip:\n got %s (table %d proto %d)\nwant %s", got.String(), got.Table, got.Protocol, r.String())
		}
	}
}

// A delete names the key and the owner only: no next hop, so a route
// whose gateway changed since it was read is still the one deleted.
func TestDeleteMessageCarriesKeyOnly(t *testing.T) {
	r := Route{Table: 1000, Dst: netip.MustParsePrefix("198.18.0.0/24"), Metric: 5, NextHops: []NextHop{{Gw: netip.MustParseAddr("192.0.2.1")}}}
	b := appendRouteMsg(nil, 25, 0, 1, 186, &r, true)
	got, _ := parseRoute(b[nlmsgHdrLen:])
	if got.Key() != r.Key() || got.Protocol != 186 || len(got.NextHops) != 0 {
		t.Errorf("delete = %+v", got)
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		is   error
		want bool
	}{
		{&Error{Errno: syscall.ESRCH}, ErrNotFound, true},
		{&Error{Errno: syscall.ENOENT}, ErrNotFound, true},
		{&Error{Errno: syscall.EEXIST}, ErrExists, true},
		{&Error{Errno: syscall.ENETUNREACH}, ErrUnreachable, true},
		{&Error{Errno: syscall.EINVAL, Msg: "Nexthop has invalid gateway"}, ErrUnreachable, true},
		{&Error{Errno: syscall.EINVAL, Msg: "Invalid source address"}, ErrBadSource, true},
		{&Error{Errno: syscall.EINVAL, Msg: "Invalid source address"}, ErrUnreachable, false},
		{&Error{Errno: syscall.EEXIST}, ErrNotFound, false},
		{&Error{Errno: syscall.ESRCH}, syscall.ESRCH, true},
	} {
		if got := errors.Is(tc.err, tc.is); got != tc.want {
			t.Errorf("errors.Is(%v, %v) = %v", tc.err, tc.is, got)
		}
	}
}
