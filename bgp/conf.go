package bgp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/fwdproject/fwd/config"
	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"
)

// Translation of the validated model into gobgp API objects. Pure: no
// process or kernel access, so it is unit-tested.

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

func familyOf(name string) *api.Family {
	if name == config.FamilyIPv6Unicast {
		return familyV6
	}
	return familyV4
}

// globalOf is the speaker's global configuration. ListenPort -1 tells
// gobgp not to listen.
func globalOf(b *config.BGP) *api.Global {
	g := &api.Global{Asn: b.ASN, RouterId: b.RouterID.String(), ListenPort: int32(b.ListenPort)}
	if b.ListenPort == 0 {
		g.ListenPort = -1
	}
	return g
}

// peerOf is the gobgp neighbour for n. Per-neighbour filters are global
// policies matching on the neighbour (see policiesOf): gobgp only attaches
// policies to a neighbour when it is a route-server client.
func peerOf(n *config.Neighbor) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.Address.String(),
			PeerAsn:         n.ASN,
			Description:     n.Description,
			AuthPassword:    n.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(n.HoldTime),
			KeepaliveInterval: uint64(n.Keepalive),
			ConnectRetry:      5,
		}},
		Transport: &api.Transport{PassiveMode: n.Passive},
	}
	if n.Multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	if n.GracefulRestart {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(n.GracefulRestartTime)}
	}
	for _, f := range n.Families {
		as := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: familyOf(f), Enabled: true}}
		if n.MaxPrefixes > 0 && n.MaxPrefixesAction == config.MaxPrefixesTeardown {
			as.PrefixLimits = &api.PrefixLimit{Family: familyOf(f), MaxPrefixes: n.MaxPrefixes, ShutdownThresholdPct: 90}
		}
		if n.GracefulRestart {
			as.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		p.AfiSafis = append(p.AfiSafis, as)
	}
	return p
}

// Policy names fwd gives gobgp.
const (
	importPolicy = "fwd-import"
	exportPolicy = "fwd-export"
)

func setName(dir string, i int, kind string, v6 bool) string {
	fam := "4"
	if v6 {
		fam = "6"
	}
	return fmt.Sprintf("%s-n%d-%s-%s", dir, i, kind, fam)
}

// policiesOf renders every neighbour's import and export filters as two
// global policies whose statements match on the neighbour. Import: deny
// entries reject, then (if an allow list exists) allow entries accept and
// everything else from that neighbour is rejected; neighbours without a
// filter accept everything. Export: the same, except that without an allow
// list only routes this tenant originates (route-type local) are sent —
// an edge router must not leak one upstream's table to another by default.
// next_hop_self rewrites the next hop of accepted exports.
func policiesOf(b *config.BGP) *api.SetPoliciesRequest {
	req := &api.SetPoliciesRequest{}
	imp := &api.Policy{Name: importPolicy}
	exp := &api.Policy{Name: exportPolicy}
	for i, n := range b.Neighbors {
		nset := fmt.Sprintf("n%d", i)
		req.DefinedSets = append(req.DefinedSets, &api.DefinedSet{
			DefinedType: api.DefinedType_NEIGHBOR, Name: nset,
			List: []string{netip.PrefixFrom(n.Address, n.Address.BitLen()).String()},
		})
		nb := &api.MatchSet{Type: api.MatchSet_ANY, Name: nset}
		var nh *api.NexthopAction
		if n.NextHopSelf {
			nh = &api.NexthopAction{Self: true}
		}
		for _, d := range []struct {
			dir    string
			f      config.Filter
			pol    *api.Policy
			local  bool
			accept *api.NexthopAction
		}{{"imp", n.Import, imp, false, nil}, {"exp", n.Export, exp, true, nh}} {
			add := func(kind string, list []config.PrefixMatch, action api.RouteAction) {
				for _, v6 := range []bool{false, true} {
					var ps []*api.Prefix
					for _, m := range list {
						if m.Prefix.Addr().Is6() == v6 {
							ps = append(ps, &api.Prefix{IpPrefix: m.Prefix.String(), MaskLengthMin: uint32(m.GE), MaskLengthMax: uint32(m.LE)})
						}
					}
					if len(ps) == 0 {
						continue
					}
					name := setName(d.dir, i, kind, v6)
					req.DefinedSets = append(req.DefinedSets, &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name, Prefixes: ps})
					st := &api.Statement{Name: name,
						Conditions: &api.Conditions{NeighborSet: nb, PrefixSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: name}},
						Actions:    &api.Actions{RouteAction: action}}
					if action == api.RouteAction_ACCEPT && d.accept != nil {
						st.Actions.Nexthop = d.accept
					}
					d.pol.Statements = append(d.pol.Statements, st)
				}
			}
			add("deny", d.f.Deny, api.RouteAction_REJECT)
			add("allow", d.f.Allow, api.RouteAction_ACCEPT)
			switch {
			case len(d.f.Allow) > 0:
				d.pol.Statements = append(d.pol.Statements, &api.Statement{Name: fmt.Sprintf("%s-n%d-rest", d.dir, i),
					Conditions: &api.Conditions{NeighborSet: nb}, Actions: &api.Actions{RouteAction: api.RouteAction_REJECT}})
			case d.local:
				d.pol.Statements = append(d.pol.Statements, &api.Statement{Name: fmt.Sprintf("%s-n%d-local", d.dir, i),
					Conditions: &api.Conditions{NeighborSet: nb, RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
					Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT, Nexthop: d.accept}})
				d.pol.Statements = append(d.pol.Statements, &api.Statement{Name: fmt.Sprintf("%s-n%d-rest", d.dir, i),
					Conditions: &api.Conditions{NeighborSet: nb}, Actions: &api.Actions{RouteAction: api.RouteAction_REJECT}})
			}
		}
	}
	req.Policies = []*api.Policy{imp, exp}
	req.Assignments = []*api.PolicyAssignment{
		{Name: "global", Direction: api.PolicyDirection_IMPORT, Policies: []*api.Policy{{Name: importPolicy}}, DefaultAction: api.RouteAction_ACCEPT},
		{Name: "global", Direction: api.PolicyDirection_EXPORT, Policies: []*api.Policy{{Name: exportPolicy}}, DefaultAction: api.RouteAction_REJECT},
	}
	return req
}

// originPath is a path this tenant originates for p.
func originPath(p netip.Prefix) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{PrefixLen: uint32(p.Bits()), Prefix: p.Addr().String()})
	if err != nil {
		return nil, err
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0})
	if err != nil {
		return nil, err
	}
	path := &api.Path{Nlri: nlri, Family: familyV4}
	var nh *anypb.Any
	if p.Addr().Is4() {
		nh, err = anypb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
	} else {
		path.Family = familyV6
		nh, err = anypb.New(&api.MpReachNLRIAttribute{Family: familyV6, NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
	}
	if err != nil {
		return nil, err
	}
	path.Pattrs = []*anypb.Any{origin, nh}
	return path, nil
}

// neighborFingerprint is what decides whether a neighbour's session must
// be reconfigured: every setting that gobgp holds per peer. Filters are
// not part of it: they change through policies and a soft reset, without
// touching the session.
func neighborFingerprint(n *config.Neighbor) string {
	return fmt.Sprintf("asn=%d desc=%q pw=%s mh=%d hold=%d ka=%d passive=%v fam=%s max=%d/%s gr=%v/%d",
		n.ASN, n.Description, passwordFingerprint(n.Password), n.Multihop, n.HoldTime, n.Keepalive, n.Passive,
		strings.Join(n.Families, ","), n.MaxPrefixes, n.MaxPrefixesAction, n.GracefulRestart, n.GracefulRestartTime)
}

// passwordFingerprint tells TCP MD5 keys apart without holding one: the
// fingerprint is written to applied.json, and a key must not reach a
// file (docs/operating.md, "Security").
func passwordFingerprint(pw string) string {
	if pw == "" {
		// As the records before this one wrote it: a speaker adopted
		// across the upgrade keeps its sessions.
		return `""`
	}
	sum := sha256.Sum256([]byte("fwd tcp-md5 key\x00" + pw))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

func filterFingerprint(n *config.Neighbor) string {
	return fmt.Sprintf("import=%v export=%v nhs=%v", n.Import, n.Export, n.NextHopSelf)
}
