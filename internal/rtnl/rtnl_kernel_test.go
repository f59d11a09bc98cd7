//go:build kernel

package rtnl_test

import (
	"errors"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func host(t *testing.T, name string) *rtnl.Conn {
	t.Helper()
	testkit.Require(t)
	testnet.Host(t, name)
	testnet.MustCmd(t, name, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	testnet.MustCmd(t, name, "ip", "addr", "add", "192.0.2.1/24", "dev", "v0")
	testnet.MustCmd(t, name, "ip", "link", "set", "v0", "up")
	testnet.MustCmd(t, name, "ip", "link", "set", "v1", "up")
	h, err := ns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := rtnl.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ipRoutes(t *testing.T, name, table string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", name, "route", "show", "table", table).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// Writes under both ack policies, per-message typed errors, dumps and
// counts filtered by table and protocol, in a table above 255.
func TestWriteDumpErrors(t *testing.T) {
	for _, ack := range []rtnl.AckPolicy{rtnl.AckErrors, rtnl.AckEach} {
		c := host(t, "rt"+map[rtnl.AckPolicy]string{rtnl.AckErrors: "e", rtnl.AckEach: "a"}[ack])
		gw := netip.MustParseAddr("192.0.2.2")
		routes := make([]rtnl.Route, 300)
		for i := range routes {
			routes[i] = rtnl.Route{Table: 1000, Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32),
				NextHops: []rtnl.NextHop{{Gw: gw}}}
		}
		res, err := c.WriteRoutes(186, ack, len(routes), func(i int) (rtnl.Kind, *rtnl.Route) { return rtnl.Create, &routes[i] })
		if err != nil || len(res.Failed) != 0 || res.Done != len(routes) {
			t.Fatalf("create: %+v %v", res, err)
		}
		if n, err := c.CountRoutes(rtnl.Filter{Table: 1000, Protocol: 186}); err != nil || n != 300 {
			t.Errorf("count = %d, %v", n, err)
		}
		if n, _ := c.CountRoutes(rtnl.Filter{Table: 1000, Protocol: 243}); n != 0 {
			t.Errorf("count of another protocol = %d", n)
		}
		// Three bad messages among good ones: each failure comes back at
		// its index with its class.
		unreach := rtnl.Route{Table: 1000, Dst: netip.MustParsePrefix("198.19.0.0/24"), NextHops: []rtnl.NextHop{{Gw: netip.MustParseAddr("203.0.113.1")}}}
		missing := rtnl.Route{Table: 1000, Dst: netip.MustParsePrefix("198.19.1.0/24")}
		batch := []struct {
			k rtnl.Kind
			r *rtnl.Route
		}{{rtnl.Replace, &routes[0]}, {rtnl.Create, &routes[1]}, {rtnl.Replace, &unreach}, {rtnl.Delete, &missing}, {rtnl.Delete, &routes[2]}}
		res, err = c.WriteRoutes(186, ack, len(batch), func(i int) (rtnl.Kind, *rtnl.Route) { return batch[i].k, batch[i].r })
		if err != nil || len(res.Failed) != 3 {
			t.Fatalf("mixed batch: %+v %v", res, err)
		}
		for i, want := range []struct {
			index int
			class error
		}{{1, rtnl.ErrExists}, {2, rtnl.ErrUnreachable}, {3, rtnl.ErrNotFound}} {
			if f := res.Failed[i]; f.Index != want.index || !errors.Is(f.Err, want.class) {
				t.Errorf("failure %d = %d %v, want %d %v", i, f.Index, f.Err, want.index, want.class)
			}
		}
		// A delete under another protocol removes nothing.
		res, _ = c.WriteRoutes(243, ack, 1, func(int) (rtnl.Kind, *rtnl.Route) { return rtnl.Delete, &routes[3] })
		if len(res.Failed) != 1 || !errors.Is(res.Failed[0].Err, rtnl.ErrNotFound) {
			t.Errorf("foreign delete = %+v", res)
		}
		got, err := c.Routes(rtnl.Filter{Table: 1000, Protocol: 186})
		if err != nil || len(got) != 299 || got[0].Protocol != 186 || got[0].Table != 1000 || got[0].NextHops[0].Gw != gw {
			t.Errorf("dump: %d routes, first %+v, %v", len(got), got[0], err)
		}
		if s := ipRoutes(t, "rt"+map[rtnl.AckPolicy]string{rtnl.AckErrors: "e", rtnl.AckEach: "a"}[ack], "1000"); strings.Count(s, "\n")+1 != 299 || !strings.Contains(s, "198.18.0.3 via 192.0.2.2 dev v0 proto bgp") {
			t.Errorf("ip route show table 1000:\n%s", s)
		}
		// Nexthop objects: routes through one, withdrawn with it.
		nh := rtnl.Nexthop{ID: 9, Gw: gw, Ifindex: got[0].NextHops[0].Ifindex}
		if res, err := c.WriteNexthops(186, ack, 1, func(int) (rtnl.Kind, *rtnl.Nexthop) { return rtnl.Replace, &nh }); err != nil || len(res.Failed) != 0 {
			t.Fatalf("nexthop: %+v %v", res, err)
		}
		viaNH := rtnl.Route{Table: 1001, Dst: netip.MustParsePrefix("198.19.2.0/24"), NHID: 9}
		if res, _ := c.WriteRoutes(186, ack, 1, func(int) (rtnl.Kind, *rtnl.Route) { return rtnl.Create, &viaNH }); len(res.Failed) != 0 {
			t.Fatalf("route via nexthop: %+v", res)
		}
		if res, err := c.WriteNexthops(186, ack, 1, func(int) (rtnl.Kind, *rtnl.Nexthop) { return rtnl.Delete, &nh }); err != nil || len(res.Failed) != 0 {
			t.Fatalf("delete nexthop: %+v %v", res, err)
		}
		if n, _ := c.CountRoutes(rtnl.Filter{Table: 1001}); n != 0 {
			t.Errorf("routes left after deleting their nexthop: %d", n)
		}
	}
}

// Lookup answers with the FIB entry a destination uses, protocol
// included, and with ErrUnreachable where no route leads.
func TestLookup(t *testing.T) {
	c := host(t, "rtlookup")
	r := rtnl.Route{Table: 254, Dst: netip.MustParsePrefix("198.18.4.0/24"), NextHops: []rtnl.NextHop{{Gw: netip.MustParseAddr("192.0.2.2")}}}
	if res, err := c.WriteRoutes(186, rtnl.AckEach, 1, func(int) (rtnl.Kind, *rtnl.Route) { return rtnl.Create, &r }); err != nil || len(res.Failed) != 0 {
		t.Fatalf("create: %+v %v", res, err)
	}
	got, err := c.Lookup(netip.MustParseAddr("198.18.4.7"))
	if err != nil || got.Dst != r.Dst || got.Protocol != 186 || len(got.NextHops) != 1 || got.NextHops[0].Gw != r.NextHops[0].Gw {
		t.Errorf("lookup = %+v, %v", got, err)
	}
	if _, err := c.Lookup(netip.MustParseAddr("203.0.113.9")); !errors.Is(err, rtnl.ErrUnreachable) {
		t.Errorf("lookup without a route: %v", err)
	}
}
