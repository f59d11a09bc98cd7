//go:build kernel

package bgp

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	api "github.com/osrg/gobgp/v3/api"
)

// kernelRoute6 is kernelRoute for IPv6.
func kernelRoute6(t *testing.T, tenant, prefix string) string {
	t.Helper()
	out, _ := testnet.Cmd("", "ip", "-6", "-n", tenant, "route", "show", "table", "main", "exact", prefix)
	return strings.TrimSpace(out)
}

// ribPath is what the speaker's global RIB holds for a prefix (best path).
type ribPath struct {
	found       bool
	localPref   uint32
	med         uint32
	communities []string // "A:B" and "A:B:C"
}

func ribBest(t *testing.T, s *Supervisor, tenant, prefix string) ribPath {
	t.Helper()
	c, err := Dial(SocketPath(s.runDir, tenant))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fam := familyV4
	if strings.Contains(prefix, ":") {
		fam = familyV6
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := c.API().ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam,
		Prefixes: []*api.TableLookupPrefix{{Prefix: prefix}}})
	if err != nil {
		t.Fatal(err)
	}
	var out ribPath
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Logf("list path: %v", err)
			return out
		}
		for _, p := range r.Destination.Paths {
			if !p.Best {
				continue
			}
			out.found = true
			for _, a := range p.Pattrs {
				m, err := a.UnmarshalNew()
				if err != nil {
					continue
				}
				switch v := m.(type) {
				case *api.LocalPrefAttribute:
					out.localPref = v.LocalPref
				case *api.MultiExitDiscAttribute:
					out.med = v.Med
				case *api.CommunitiesAttribute:
					for _, c := range v.Communities {
						out.communities = append(out.communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
					}
				case *api.LargeCommunitiesAttribute:
					for _, c := range v.Communities {
						out.communities = append(out.communities, fmt.Sprintf("%d:%d:%d", c.GlobalAdmin, c.LocalData1, c.LocalData2))
					}
				}
			}
		}
	}
}

// BIRD tags what it sends to fwd so that fwd's import filters have
// something to decide on.
const birdPolicyPeer = `
protocol static s4 {
	ipv4;
	route 198.18.1.0/24 blackhole;   # community 64513:80: rule sets local_pref 80
	route 198.18.2.0/24 blackhole;   # blackhole community: denied
	route 198.18.3.0/24 blackhole;   # large community 64513:1:1: allowed
	route 198.18.4.0/24 blackhole;   # through AS 64666: denied
	route 198.18.5.0/24 blackhole;   # in prefix list "custs": allowed
	route 198.18.6.0/24 blackhole;   # nothing: not allowed (until the list grows)
	route 198.18.7.0/24 blackhole;   # community 64512:5, which fwd strips
}
protocol static s6 {
	ipv6;
	route 2001:db8:300::/48 blackhole;   # in "custs"
	route 2001:db8:301::/48 blackhole;   # not allowed
}
filter tofwd {
	if net = 198.18.1.0/24 then bgp_community.add((64513,80));
	if net = 198.18.2.0/24 then { bgp_community.add((65535,666)); bgp_community.add((64513,2)); }
	if net = 198.18.3.0/24 then bgp_large_community.add((64513,1,1));
	if net = 198.18.4.0/24 then { bgp_path.prepend(64666); bgp_community.add((64513,1)); }
	if net = 198.18.7.0/24 then bgp_community.add((64513,7));
	if net = 198.18.7.0/24 then bgp_community.add((64512,5));
	accept;
}
protocol bgp fwd {
	local 192.0.2.2 as 64513;
	neighbor 192.0.2.1 as 64512;
	hold time 6;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	ipv4 { import all; export filter tofwd; };
}
protocol bgp fwd6 {
	local 2001:db8:5::2 as 64513;
	neighbor 2001:db8:5::1 as 64512;
	hold time 6;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	ipv6 { import all; export all; };
}
`

const policyConfig = `
[tenant.pol.interface.b0]
device = "b0"
addresses = ["192.0.2.1/24", "2001:db8:5::1/64"]

[tenant.pol.bgp]
asn = 64512
announce = ["203.0.113.0/24", "2001:db8:100::/48"]

[tenant.pol.bgp.prefix_list.custs]
prefixes = ["198.18.5.0/24", "2001:db8:300::/48"]

[[tenant.pol.bgp.neighbor]]
address = "192.0.2.2"
asn = 64513
hold_time = 6
keepalive = 2

[tenant.pol.bgp.neighbor.import]
deny_community = ["blackhole"]
deny_as_path = ["_64666_"]
allow_prefix_list = ["custs"]
allow_community = ["64513:*", "64513:*:*"]
local_pref = 120
remove_community = ["64512:*"]

[[tenant.pol.bgp.neighbor.import.rule]]
community = ["64513:80"]
local_pref = 80

[tenant.pol.bgp.neighbor.export]
prepend = 2
med = 77
add_community = ["64512:100", "64512:1:2"]

[[tenant.pol.bgp.neighbor]]
address = "2001:db8:5::2"
asn = 64513
hold_time = 6
keepalive = 2
import = { allow_prefix_list = ["custs"] }
export = { add_community = ["64512:6"] }
`

// The routing policy features end to end against BIRD, over IPv4 and
// IPv6 sessions: the import filter decides what reaches the kernel
// table, the changes are in the RIB, BIRD sees the export changes, and a
// policy change is applied with a soft reset.
func TestBIRDPolicy(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "pol")
	testnet.Host(t, "ppol")
	testnet.MustCmd(t, "", "ip", "link", "add", "b0", "netns", "pol", "type", "veth", "peer", "name", "p0", "netns", "ppol")
	for _, a := range [][]string{
		{"pol", "192.0.2.1/24", "b0"}, {"ppol", "192.0.2.2/24", "p0"},
		{"pol", "2001:db8:5::1/64", "b0"}, {"ppol", "2001:db8:5::2/64", "p0"},
	} {
		argv := []string{"ip", "-n", a[0], "addr", "add", a[1], "dev", a[2]}
		if strings.Contains(a[1], ":") {
			argv = append(argv, "nodad")
		}
		testnet.MustCmd(t, "", argv...)
	}
	testnet.MustCmd(t, "", "ip", "-n", "pol", "link", "set", "b0", "up")
	testnet.MustCmd(t, "", "ip", "-n", "ppol", "link", "set", "p0", "up")
	testnet.MustCmd(t, "", "ip", "-n", "ppol", "addr", "add", "198.18.5.1/32", "dev", "lo")
	testnet.MustCmd(t, "", "ip", "-n", "ppol", "addr", "add", "2001:db8:300::1/128", "dev", "lo")
	b := startBird(t, "ppol", "192.0.2.2", birdPolicyPeer)

	s := newTestSupervisor(t)
	reconcile(t, s, testkit.Config(t, policyConfig))
	waitFor(t, 30*time.Second, "IPv4 session", func() bool { return neighbor(t, s, "pol", "192.0.2.2").State == "established" })
	waitFor(t, 30*time.Second, "IPv6 session", func() bool { return neighbor(t, s, "pol", "2001:db8:5::2").State == "established" })

	// Import: what the filter admits is in the kernel, the rest is not.
	for _, p := range []string{"198.18.1.0/24", "198.18.3.0/24", "198.18.5.0/24", "198.18.7.0/24"} {
		waitFor(t, 10*time.Second, p+" in the kernel", func() bool { return strings.Contains(kernelRoute(t, "pol", "main", p), "via 192.0.2.2") })
	}
	waitFor(t, 10*time.Second, "IPv6 route in the kernel", func() bool {
		return strings.Contains(kernelRoute6(t, "pol", "2001:db8:300::/48"), "via 2001:db8:5::2")
	})
	time.Sleep(time.Second) // let any wrongly admitted route arrive too
	for _, p := range []string{"198.18.2.0/24", "198.18.4.0/24", "198.18.6.0/24"} {
		if r := kernelRoute(t, "pol", "main", p); r != "" {
			t.Errorf("%s should have been filtered: %s", p, r)
		}
	}
	if r := kernelRoute6(t, "pol", "2001:db8:301::/48"); r != "" {
		t.Errorf("2001:db8:301::/48 should have been filtered: %s", r)
	}
	if !testnet.WaitPing("pol", "198.18.5.1", 5*time.Second) || !testnet.WaitPing("pol", "2001:db8:300::1", 5*time.Second) {
		t.Error("no traffic over the BGP routes")
	}

	// Import changes, in the RIB.
	if p := ribBest(t, s, "pol", "198.18.5.0/24"); p.localPref != 120 {
		t.Errorf("198.18.5.0/24: local_pref %d, want the filter's 120", p.localPref)
	}
	if p := ribBest(t, s, "pol", "198.18.1.0/24"); p.localPref != 80 {
		t.Errorf("198.18.1.0/24: local_pref %d, want the rule's 80", p.localPref)
	}
	if p := ribBest(t, s, "pol", "198.18.7.0/24"); strings.Join(p.communities, ",") != "64513:7" {
		t.Errorf("198.18.7.0/24: communities %v, want 64512:5 removed", p.communities)
	}
	if p := ribBest(t, s, "pol", "198.18.3.0/24"); strings.Join(p.communities, ",") != "64513:1:1" {
		t.Errorf("198.18.3.0/24: communities %v", p.communities)
	}

	// Export: BIRD sees the prepend, the MED and the communities.
	var route string
	waitFor(t, 10*time.Second, "BIRD learns 203.0.113.0/24", func() bool {
		route = b.c("show", "route", "all", "203.0.113.0/24")
		return strings.Contains(route, "BGP.as_path")
	})
	for _, want := range []string{"BGP.as_path: 64512 64512 64512", "BGP.med: 77", "(64512,100)", "(64512, 1, 2)"} {
		if !strings.Contains(route, want) {
			t.Errorf("BIRD's route lacks %q:\n%s", want, route)
		}
	}
	waitFor(t, 10*time.Second, "BIRD learns 2001:db8:100::/48", func() bool {
		route = b.c("show", "route", "all", "2001:db8:100::/48", "protocol", "fwd6")
		return strings.Contains(route, "BGP.as_path")
	})
	if !strings.Contains(route, "BGP.as_path: 64512\n") || !strings.Contains(route, "(64512,6)") {
		t.Errorf("IPv6 export:\n%s", route)
	}

	// A policy change (the shared list grows, the MED changes) is a soft
	// reset: the sessions stay up and the new policy applies.
	since := neighbor(t, s, "pol", "192.0.2.2").Since
	since6 := neighbor(t, s, "pol", "2001:db8:5::2").Since
	time.Sleep(1100 * time.Millisecond)
	cfg2 := strings.Replace(policyConfig, `prefixes = ["198.18.5.0/24", "2001:db8:300::/48"]`, `prefixes = ["198.18.5.0/24", "198.18.6.0/24", "2001:db8:300::/48"]`, 1)
	cfg2 = strings.Replace(cfg2, "med = 77", "med = 78", 1)
	got := reconcile(t, s, testkit.Config(t, cfg2))
	if want := "set-filters import/export policies,refresh-neighbor neighbor 192.0.2.2,refresh-neighbor neighbor 2001:db8:5::2"; strings.Join(got, ",") != want {
		t.Errorf("policy change:\n%s\nwant:\n%s", strings.Join(got, ","), want)
	}
	waitFor(t, 10*time.Second, "198.18.6.0/24 admitted by the grown list", func() bool {
		return strings.Contains(kernelRoute(t, "pol", "main", "198.18.6.0/24"), "via 192.0.2.2")
	})
	waitFor(t, 10*time.Second, "BIRD sees the new MED", func() bool {
		return strings.Contains(b.c("show", "route", "all", "203.0.113.0/24"), "BGP.med: 78")
	})
	if n := neighbor(t, s, "pol", "192.0.2.2"); n.State != "established" || !n.Since.Equal(since) {
		t.Errorf("IPv4 session reset by a policy change: %+v (up since %v)", n, since)
	}
	if n := neighbor(t, s, "pol", "2001:db8:5::2"); n.State != "established" || !n.Since.Equal(since6) {
		t.Errorf("IPv6 session reset by a policy change: %+v (up since %v)", n, since6)
	}
}
