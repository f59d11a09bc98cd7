package config

// HA validation (docs/ha.md documents every key):
//
//	[tenant.T.ha]        peer, sync_interface, priority, vrid, advert_interval,
//	                     preempt_delay, sync_port, track
//	[[tenant.T.ha.vip]]  interface, address

import (
	"net/netip"
	"slices"
	"time"
)

// haSocketDir is where the Manager keeps a tenant's files; conntrackd's
// control socket there must fit sun_path.
const haSocketDir = "/run/fwd/"

// validateHA validates [tenant.T.ha]; r is the tenant's reporter. It runs
// after interfaces and policy (it refuses masquerade on VIP interfaces).
func validateHA(tr reporter, raw *rawHA, t *Tenant) {
	if raw == nil {
		return
	}
	r := tr.in("ha")
	h := &HA{Line: r.line(), Track: raw.Track,
		VRID: DefaultHAVRID, AdvertInterval: DefaultHAAdvertInterval, PreemptDelay: DefaultHAPreemptDelay, SyncPort: DefaultHASyncPort}
	if n := len(haSocketDir + t.Name + "/ha/conntrackd.ctl"); n > maxSocketPath {
		r.errorf("tenant name too long for conntrackd's socket path (%d bytes, at most %d)", n, maxSocketPath)
	}
	pr := r.in("peer")
	peer, err := netip.ParseAddr(raw.Peer)
	switch {
	case raw.Peer == "":
		pr.errorf("required: the other box's address on the sync interface")
	case err != nil || peer.Zone() != "" || peer.Is4In6():
		pr.errorf("invalid address %q", raw.Peer)
	default:
		h.Peer = peer
	}
	sr := r.in("sync_interface")
	h.SyncInterface = raw.SyncInterface
	if sync := t.Interface(raw.SyncInterface); raw.SyncInterface == "" {
		sr.errorf("required: the interface dedicated to VRRP and conntrackd sync")
	} else if sync == nil {
		sr.errorf("interface %q is not declared in tenant %q", raw.SyncInterface, t.Name)
	} else if h.Peer.IsValid() {
		var local []netip.Addr
		for _, a := range sync.Addresses {
			if a.Masked().Contains(h.Peer) {
				local = append(local, a.Addr())
			}
		}
		switch {
		case len(local) == 0:
			pr.errorf("%s is not in a subnet of an address of sync interface %q (that address is this box's sync address)", h.Peer, sync.Name)
		case len(local) > 1:
			sr.errorf("interface %q has %d addresses in the peer's subnet: want exactly one", sync.Name, len(local))
		case local[0] == h.Peer:
			pr.errorf("%s is this box's own sync address", h.Peer)
		default:
			h.LocalAddress = local[0]
		}
	}
	if raw.Priority == nil {
		r.in("priority").errorf("required: 1..254, the box meant to be master has the higher one")
	} else if p := *raw.Priority; p < 1 || p > 254 {
		r.in("priority").errorf("%d is outside 1..254 (255 is the VRRP address owner)", p)
	} else {
		h.Priority = int(p)
	}
	if raw.VRID != nil {
		if v := *raw.VRID; v < 1 || v > 255 {
			r.in("vrid").errorf("%d is outside 1..255", v)
		} else {
			h.VRID = int(v)
		}
	}
	if raw.AdvertInterval != "" {
		ar := r.in("advert_interval")
		if d := parseDuration(ar, raw.AdvertInterval, 10*time.Millisecond, 40*time.Second); d != 0 {
			if d%(10*time.Millisecond) != 0 {
				ar.errorf("%s is not a multiple of 10ms (VRRPv3 counts centiseconds)", d)
			} else {
				h.AdvertInterval = d
			}
		}
	}
	if raw.PreemptDelay != "" {
		h.PreemptDelay = parseDuration(r.in("preempt_delay"), raw.PreemptDelay, 0, 1000*time.Second)
	}
	if raw.SyncPort != nil {
		if p := *raw.SyncPort; p < 1 || p > 65535 {
			r.in("sync_port").errorf("%d is outside 1..65535", p)
		} else {
			h.SyncPort = int(p)
		}
	}
	kr := r.in("track")
	for i, n := range raw.Track {
		if t.Interface(n) == nil {
			kr.at(i).errorf("interface %q is not declared in tenant %q", n, t.Name)
		}
	}
	vr := r.in("vip")
	if len(raw.VIP) == 0 {
		r.errorf("at least one [[tenant.%s.ha.vip]] is required", t.Name)
	}
	seen := map[netip.Addr]int{}
	for i, rv := range raw.VIP {
		er := vr.at(i)
		iface := t.Interface(rv.Interface)
		switch {
		case rv.Interface == "":
			er.in("interface").errorf("required")
		case iface == nil:
			er.in("interface").errorf("interface %q is not declared in tenant %q", rv.Interface, t.Name)
		case rv.Interface == raw.SyncInterface:
			er.in("interface").errorf("a VIP must not be on the sync interface %q", rv.Interface)
		}
		p, err := netip.ParsePrefix(rv.Address)
		if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			er.in("address").errorf("invalid address %q: want address/prefix-length, e.g. 203.0.113.5/24", rv.Address)
			continue
		}
		if prev, dup := seen[p.Addr()]; dup {
			er.in("address").errorf("VIP %s is already listed at vip[%d]", p.Addr(), prev)
			continue
		}
		seen[p.Addr()] = i
		if owner := addressOwner(t, p.Addr()); owner != "" {
			er.in("address").errorf("%s is also an address of interface %q: a VIP is keepalived's, not an interface address", p.Addr(), owner)
			continue
		}
		if iface != nil && rv.Interface != raw.SyncInterface {
			h.VIPs = append(h.VIPs, VIP{Interface: rv.Interface, Prefix: p})
			iface.VIPs = append(iface.VIPs, p)
		}
	}
	refuseMasqueradeOnVIPs(tr, t, h)
	t.HA = h
}

func addressOwner(t *Tenant, a netip.Addr) string {
	for _, i := range t.Interfaces {
		if slices.ContainsFunc(i.Addresses, func(p netip.Prefix) bool { return p.Addr() == a }) {
			return i.Name
		}
	}
	return ""
}

// refuseMasqueradeOnVIPs: masquerade picks the interface's primary
// address, this box's own, which the other box does not have: after a
// failover the flows would be NATed to an address the new master cannot
// answer for. Source NAT on a VIP interface must be snat to the VIP.
func refuseMasqueradeOnVIPs(r reporter, t *Tenant, h *HA) {
	for _, n := range t.Policy.NAT {
		if n.Type != NATMasquerade {
			continue
		}
		z := t.Policy.Zone(n.Out)
		if z == nil {
			continue
		}
		for _, v := range h.VIPs {
			if slices.Contains(z.Interfaces, v.Interface) {
				r.in("nat", n.Index).in("type").errorf("masquerade out of zone %q uses this box's own address on %q, not the VIP: use type = \"snat\", to = %q", n.Out, v.Interface, v.Prefix.Addr().String())
				break
			}
		}
	}
}
