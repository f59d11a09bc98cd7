package bgp

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// renderPolicies prints a policy request compactly: defined sets, then
// each statement as "name: conditions -> actions".
func renderPolicies(req *api.SetPoliciesRequest) string {
	var b strings.Builder
	for _, ds := range req.DefinedSets {
		var entries []string
		for _, p := range ds.Prefixes {
			entries = append(entries, fmt.Sprintf("%s %d-%d", p.IpPrefix, p.MaskLengthMin, p.MaskLengthMax))
		}
		entries = append(entries, ds.List...)
		fmt.Fprintf(&b, "set %s %s: %s\n", ds.DefinedType, ds.Name, strings.Join(entries, ", "))
	}
	ms := func(kind string, m *api.MatchSet) string {
		if m == nil {
			return ""
		}
		op := "in"
		if m.Type == api.MatchSet_INVERT {
			op = "not-in"
		}
		return fmt.Sprintf(" %s %s %s", kind, op, m.Name)
	}
	for _, p := range req.Policies {
		fmt.Fprintf(&b, "policy %s\n", p.Name)
		for _, s := range p.Statements {
			c, a := s.Conditions, s.Actions
			fmt.Fprintf(&b, "  %s:%s%s%s%s%s%s", s.Name, ms("nb", c.NeighborSet), ms("pfx", c.PrefixSet),
				ms("aspath", c.AsPathSet), ms("comm", c.CommunitySet), ms("lcomm", c.LargeCommunitySet), "")
			for _, f := range c.AfiSafiIn {
				fmt.Fprintf(&b, " afi %s", f.Afi)
			}
			if c.RouteType != api.Conditions_ROUTE_TYPE_NONE {
				fmt.Fprintf(&b, " type %s", c.RouteType)
			}
			b.WriteString(" ->")
			if a.LocalPref != nil {
				fmt.Fprintf(&b, " local-pref %d", a.LocalPref.Value)
			}
			if a.Med != nil {
				fmt.Fprintf(&b, " med %d", a.Med.Value)
			}
			if a.Community != nil {
				fmt.Fprintf(&b, " comm %s %s", a.Community.Type, strings.Join(a.Community.Communities, ","))
			}
			if a.LargeCommunity != nil {
				fmt.Fprintf(&b, " lcomm %s %s", a.LargeCommunity.Type, strings.Join(a.LargeCommunity.Communities, ","))
			}
			if a.AsPrepend != nil {
				fmt.Fprintf(&b, " prepend %dx%d", a.AsPrepend.Asn, a.AsPrepend.Repeat)
			}
			if a.Nexthop != nil && a.Nexthop.Self {
				b.WriteString(" next-hop-self")
			}
			if a.RouteAction != api.RouteAction_NONE {
				fmt.Fprintf(&b, " %s", a.RouteAction)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

const policyTenant = `
[tenant.e.interface.w]
device = "eth1"
addresses = ["203.0.113.2/24", "2001:db8:1::2/64"]
[tenant.e.bgp]
asn = 64512
`

func TestPoliciesPrefixFilters(t *testing.T) {
	cfg := testkit.Config(t, policyTenant+`
[[tenant.e.bgp.neighbor]]
address = "203.0.113.1"
asn = 64513
import = { allow = ["0.0.0.0/0 le 24", "2001:db8::/32 le 48"], deny = ["198.18.0.0/15 le 32"] }
[[tenant.e.bgp.neighbor]]
address = "203.0.113.3"
asn = 64514
next_hop_self = true
export = { allow = ["198.51.100.0/24"] }
`)
	want := `set NEIGHBOR n0: 203.0.113.1/32
set PREFIX imp-n0-deny-4: 198.18.0.0/15 15-32
set PREFIX imp-n0-allow-4: 0.0.0.0/0 0-24
set PREFIX imp-n0-allow-6: 2001:db8::/32 32-48
set NEIGHBOR n1: 203.0.113.3/32
set PREFIX exp-n1-allow-4: 198.51.100.0/24 24-24
policy fwd-import
  imp-n0-deny-4: nb in n0 pfx in imp-n0-deny-4 -> REJECT
  imp-n0-notallowed-4: nb in n0 pfx not-in imp-n0-allow-4 afi AFI_IP -> REJECT
  imp-n0-notallowed-6: nb in n0 pfx not-in imp-n0-allow-6 afi AFI_IP6 -> REJECT
policy fwd-export
  exp-n0-notlocal-int: nb in n0 type ROUTE_TYPE_INTERNAL -> REJECT
  exp-n0-notlocal-ext: nb in n0 type ROUTE_TYPE_EXTERNAL -> REJECT
  exp-n0-accept: nb in n0 -> ACCEPT
  exp-n1-notallowed-4: nb in n1 pfx not-in exp-n1-allow-4 afi AFI_IP -> REJECT
  exp-n1-notallowed-6: nb in n1 afi AFI_IP6 -> REJECT
  exp-n1-accept: nb in n1 -> next-hop-self ACCEPT
`
	req := policiesOf(cfg.Tenant("e").BGP)
	if got := renderPolicies(req); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if len(req.Assignments) != 2 || req.Assignments[0].DefaultAction != api.RouteAction_ACCEPT || req.Assignments[1].DefaultAction != api.RouteAction_REJECT {
		t.Errorf("assignments: %v", req.Assignments)
	}
}

const policyFeatures = `
[tenant.e.bgp.prefix_list.customers]
prefixes = ["198.18.0.0/24 le 28", "2001:db8:200::/48 le 56"]
[tenant.e.bgp.as_path_list.bad]
as_paths = ["_64666_"]
[[tenant.e.bgp.neighbor]]
address = "203.0.113.1"
asn = 64513
import = { deny_community = ["blackhole", "64512:1:*"], deny_as_path_list = ["bad"], allow_prefix_list = ["customers"], allow_community = ["64513:*"], local_pref = 120, remove_community = ["64512:*"], rule = [{ community = ["64513:80", "64513:0:80"], local_pref = 80 }, { prefix_list = ["customers"], as_path = ["^64513_"], add_community = ["64512:7", "64512:1:2"], remove_community = ["64513:9:*"], med = 5 }] }
export = { allow_as_path = ["^64513$", "[^0-9]"], prepend = 2, med = 10, add_community = ["64512:100"] }
[[tenant.e.bgp.neighbor]]
address = "203.0.113.5"
asn = 64512
export = { local_pref = 50, allow_as_path = ["^64513$"], rule = [{ community = ["64512:9"], prepend = 1 }] }
`

func TestPoliciesFeatures(t *testing.T) {
	cfg := testkit.Config(t, policyTenant+policyFeatures)
	want := `set NEIGHBOR n0: 203.0.113.1/32
set AS_PATH imp-n0-deny-aspath: _64666_
set COMMUNITY imp-n0-deny-comm: ^65535:666$
set LARGE_COMMUNITY imp-n0-deny-lcomm: ^64512:1:[0-9]+$
set PREFIX imp-n0-allow-4: 198.18.0.0/24 24-28
set PREFIX imp-n0-allow-6: 2001:db8:200::/48 48-56
set COMMUNITY imp-n0-allow-comm: ^64513:[0-9]+$
set COMMUNITY imp-n0-r0-comm: ^64513:80$
set LARGE_COMMUNITY imp-n0-r0-lcomm: ^64513:0:80$
set PREFIX imp-n0-r1-4: 198.18.0.0/24 24-28
set PREFIX imp-n0-r1-6: 2001:db8:200::/48 48-56
set AS_PATH imp-n0-r1-aspath: ^64513_
set AS_PATH exp-n0-allow-aspath: ^64512_64513$, [^0-9]
set NEIGHBOR n1: 203.0.113.5/32
set AS_PATH exp-n1-allow-aspath: ^64513$
set COMMUNITY exp-n1-r0-comm: ^64512:9$
policy fwd-import
  imp-n0-deny-aspath: nb in n0 aspath in imp-n0-deny-aspath -> REJECT
  imp-n0-deny-comm: nb in n0 comm in imp-n0-deny-comm -> REJECT
  imp-n0-deny-lcomm: nb in n0 lcomm in imp-n0-deny-lcomm -> REJECT
  imp-n0-notallowed-4: nb in n0 pfx not-in imp-n0-allow-4 comm not-in imp-n0-allow-comm afi AFI_IP -> REJECT
  imp-n0-notallowed-6: nb in n0 pfx not-in imp-n0-allow-6 comm not-in imp-n0-allow-comm afi AFI_IP6 -> REJECT
  imp-n0-set: nb in n0 -> local-pref 120 comm REMOVE ^64512:[0-9]+$
  imp-n0-r0-comm: nb in n0 comm in imp-n0-r0-comm -> local-pref 80
  imp-n0-r0-lcomm: nb in n0 comm not-in imp-n0-r0-comm lcomm in imp-n0-r0-lcomm -> local-pref 80
  imp-n0-r1-4: nb in n0 pfx in imp-n0-r1-4 aspath in imp-n0-r1-aspath -> med 5 comm ADD 64512:7 lcomm ADD 64512:1:2
  imp-n0-r1-4-remove: nb in n0 pfx in imp-n0-r1-4 aspath in imp-n0-r1-aspath -> lcomm REMOVE ^64513:9:[0-9]+$
  imp-n0-r1-6: nb in n0 pfx in imp-n0-r1-6 aspath in imp-n0-r1-aspath -> med 5 comm ADD 64512:7 lcomm ADD 64512:1:2
  imp-n0-r1-6-remove: nb in n0 pfx in imp-n0-r1-6 aspath in imp-n0-r1-aspath -> lcomm REMOVE ^64513:9:[0-9]+$
policy fwd-export
  exp-n0-notallowed: nb in n0 aspath not-in exp-n0-allow-aspath -> REJECT
  exp-n0-set: nb in n0 -> med 10 comm ADD 64512:100
  exp-n0-accept: nb in n0 -> prepend 64512x2 ACCEPT
  exp-n1-notallowed: nb in n1 aspath not-in exp-n1-allow-aspath -> REJECT
  exp-n1-set: nb in n1 -> local-pref 50
  exp-n1-r0: nb in n1 comm in exp-n1-r0-comm -> prepend 64512x1
  exp-n1-accept: nb in n1 -> ACCEPT
`
	if got := renderPolicies(policiesOf(cfg.Tenant("e").BGP)); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestAfterOwnAS(t *testing.T) {
	for in, want := range map[string]string{
		"^64600_":         "^64512_64600_",
		"^$":              "^64512_$",
		"_64666_":         "_64666_",
		"^(64600|64601)_": "^64512_(64600|64601)_",
		"[^0-9]":          "[^0-9]",
		"^64600$|^64601$": "^64512_64600$|^64512_64601$",
	} {
		if got := afterOwnAS(in, 64512); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// gobgp itself accepts the policies fwd renders (set names, regular
// expressions, communities): an in-process server that does not listen.
func TestPoliciesAcceptedByGobgp(t *testing.T) {
	s := server.NewBgpServer()
	go s.Serve()
	defer s.Stop()
	ctx := context.Background()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 64512, RouterId: "192.0.2.1", ListenPort: -1}}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{policyFeatures, `
[[tenant.e.bgp.neighbor]]
address = "203.0.113.1"
asn = 64513
import = { allow = ["0.0.0.0/0 le 24", "2001:db8::/32 le 48"], deny = ["198.18.0.0/15 le 32"] }
`} {
		req := policiesOf(testkit.Config(t, policyTenant+text).Tenant("e").BGP)
		if err := s.SetPolicies(ctx, req); err != nil {
			t.Fatalf("SetPolicies: %v", err)
		}
		for _, as := range req.Assignments {
			if err := s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: as}); err != nil {
				t.Fatalf("SetPolicyAssignment: %v", err)
			}
		}
	}
}

// A change of routing policy (a named list's content, a community, a
// local_pref) is a soft reset of the neighbours it concerns: never a
// session reset.
func TestPlanPolicyChangeSoftReset(t *testing.T) {
	base := planBase + `import = { allow_prefix_list = ["c"], local_pref = 110 }
[tenant.e.bgp.prefix_list.c]
prefixes = ["198.18.0.0/24 le 28"]
`
	b := planBGP(t, base)
	rec := recordAll(nil, planConfig(nil, b, desiredAnnounce(b, nil)))
	for _, tc := range []struct{ name, from, to string }{
		{"list content", `prefixes = ["198.18.0.0/24 le 28"]`, `prefixes = ["198.18.0.0/24 le 28", "198.18.9.0/24"]`},
		{"local_pref", "local_pref = 110", "local_pref = 90"},
		{"community", "local_pref = 110", `local_pref = 110, add_community = ["64512:1:1"]`},
		{"rule", "local_pref = 110", `local_pref = 110, rule = [{ community = ["64514:80"], local_pref = 80 }]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nb := planBGP(t, strings.Replace(base, tc.from, tc.to, 1))
			steps := planConfig(rec, nb, desiredAnnounce(nb, nil))
			if got, want := names(steps), "set-filters import/export policies,refresh-neighbor neighbor 203.0.113.3"; got != want {
				t.Errorf("steps:\n%s\nwant\n%s", got, want)
			}
		})
	}
}
