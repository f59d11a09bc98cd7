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
