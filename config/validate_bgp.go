package config

// BGP validation. The keys live under
//
//	[tenant.edge.bgp]             asn, router_id, listen, table, announce, announce_if_route
//	[[tenant.edge.bgp.neighbor]]  address, asn, description, password, password_file, multihop,
//	                              hold_time, keepalive, passive, families,
//	                              import, export, max_prefixes, max_prefixes_action,
//	                              next_hop_self, graceful_restart, graceful_restart_time
//
// Filters (import, export) and the named lists they use are validated in
// validate_bgp_policy.go, e.g.
//
//	import = { allow = ["198.18.0.0/15 le 24"], deny = ["198.18.66.0/24"] }
//
// docs/bgp.md documents every key.

import (
	"net/netip"
	"path/filepath"
	"sort"
)

// validateBGP validates [tenant.T.bgp] and its neighbours.
func validateBGP(r reporter, rb *rawBGP, t *Tenant) *BGP {
	b := &BGP{ListenPort: BGPDefaultPort}
	if why := validASN(rb.ASN); why != "" {
		r.in("asn").errorf("%s", why)
	} else {
		b.ASN = uint32(rb.ASN)
	}
	var connected []netip.Prefix
	own := map[netip.Addr]bool{}
	for _, i := range t.Interfaces {
		for _, a := range i.Addresses {
			connected = append(connected, a)
			own[a.Addr()] = true
		}
	}
	b.RouterID = routerID(r.in("router_id"), rb.RouterID, own)

	switch v := rb.Listen.(type) {
	case nil:
	case bool:
		if !v {
			b.ListenPort = 0
		}
	case int64:
		if v < 1 || v > 65535 {
			r.in("listen").errorf("port %d out of range 1-65535 (false: do not listen)", v)
		} else {
			b.ListenPort = int(v)
		}
	default:
		r.in("listen").errorf("want a port number, true or false")
	}

	b.Table = rb.Table
	if b.Table == "" {
		b.Table = "main"
	}
	if b.TableID = t.Routing.TableID(b.Table); b.TableID == 0 {
		r.in("table").errorf("table %q is not declared: add [%s.table.%s] with an id", b.Table, parentKey(r.key), b.Table)
	}

	seenAnn := map[netip.Prefix]string{}
	b.Announce = announcements(r.in("announce"), rb.Announce, seenAnn)
	b.AnnounceIfRoute = announcements(r.in("announce_if_route"), rb.AnnounceIfRoute, seenAnn)

	lists := validateBGPLists(r, rb, b)
	seen := map[netip.Addr]string{}
	nr := r.in("neighbor")
	for i := range rb.Neighbor {
		n := validateNeighbor(nr.at(i), lists, &rb.Neighbor[i], b, t, connected, own)
		if n.Address.IsValid() {
			if prev, dup := seen[n.Address]; dup {
				nr.at(i).in("address").errorf("duplicate neighbour %s (also %s)", n.Address, prev)
			}
			seen[n.Address] = n.Key
		}
		b.Neighbors = append(b.Neighbors, n)
	}
	return b
}

// routerID validates router_id, or picks the tenant's lowest IPv4
// address.
func routerID(r reporter, s string, own map[netip.Addr]bool) netip.Addr {
	if s == "" {
		var lowest netip.Addr
		for a := range own {
			if a.Is4() && (!lowest.IsValid() || a.Less(lowest)) {
				lowest = a
			}
		}
		if !lowest.IsValid() {
			r.errorf("router_id is required when the tenant has no IPv4 address")
		}
		return lowest
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || !a.Is4():
		r.errorf("invalid router ID %q: want an IPv4 address, e.g. 192.0.2.1", s)
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		r.errorf("router ID %s is not a usable identifier", a)
	default:
		return a
	}
	return netip.Addr{}
}

// announcements validates a list of originated prefixes; seen holds the
// prefixes of every list, which must not repeat.
func announcements(r reporter, list []string, seen map[netip.Prefix]string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range list {
		ar := r.at(i)
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil || p.Addr().Zone() != "":
			ar.errorf("invalid prefix %q", s)
		case p != p.Masked():
			ar.errorf("%s has host bits set (did you mean %s?)", p, p.Masked())
		case seen[p] != "":
			ar.errorf("%s is already announced at %s", p, seen[p])
		default:
			seen[p] = ar.key
			out = append(out, p)
		}
	}
	return out
}

// validateNeighbor validates one [[tenant.T.bgp.neighbor]].
func validateNeighbor(r reporter, lists *bgpLists, rn *rawNeighbor, b *BGP, t *Tenant, connected []netip.Prefix, own map[netip.Addr]bool) *Neighbor {
	n := &Neighbor{Key: r.key, Description: rn.Description, Password: rn.Password, Passive: rn.Passive,
		NextHopSelf: rn.NextHopSelf, GracefulRestart: rn.GracefulRestart, Multihop: rn.Multihop}
	ar := r.in("address")
	a, err := netip.ParseAddr(rn.Address)
	switch {
	case rn.Address == "":
		ar.errorf("address is required")
	case err != nil:
		ar.errorf("invalid neighbour address %q", rn.Address)
	case a.Zone() != "" || a.IsLinkLocalUnicast():
		ar.errorf("link-local neighbour %s is not supported: use a global address", a)
	case a.Is4In6() || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback():
		ar.errorf("%s is not a unicast address", a)
	case own[a]:
		ar.errorf("%s is one of this tenant's own addresses", a)
	default:
		n.Address = a
		reachable := rn.Multihop != 0
		for _, p := range connected {
			reachable = reachable || p.Contains(a)
		}
		if !reachable {
			ar.errorf("neighbour %s is not on any connected subnet of tenant %q: set multihop (TTL) for a neighbour further away", a, t.Name)
		}
	}
	if why := validASN(rn.ASN); why != "" {
		r.in("asn").errorf("%s", why)
	} else {
		n.ASN = uint32(rn.ASN)
	}
	validatePassword(r, rn, n)
	if rn.Multihop < 0 || rn.Multihop > 255 {
		r.in("multihop").errorf("multihop TTL %d out of range 1-255 (0: directly connected)", rn.Multihop)
	}
	validateTimers(r, rn, n)
	if rn.Passive && b.ListenPort == 0 {
		r.in("passive").errorf("a passive neighbour needs the speaker to listen (%s.listen is false)", lists.key)
	}
	fams := map[string]bool{}
	fr := r.in("families")
	for fi, f := range rn.Families {
		switch f {
		case FamilyIPv4Unicast, FamilyIPv6Unicast:
			if fams[f] {
				fr.at(fi).errorf("family %q listed twice", f)
			}
			fams[f] = true
			n.Families = append(n.Families, f)
		default:
			fr.at(fi).errorf("unknown address family %q (%s, %s)", f, FamilyIPv4Unicast, FamilyIPv6Unicast)
		}
	}
	if len(rn.Families) == 0 {
		if n.Address.Is6() {
			n.Families = []string{FamilyIPv6Unicast}
		} else {
			n.Families = []string{FamilyIPv4Unicast}
		}
	}
	sort.Strings(n.Families)
	n.Import = validateFilter(r.in("import"), rn.Import, false, lists, b, n)
	n.Export = validateFilter(r.in("export"), rn.Export, true, lists, b, n)
	if rn.MaxPrefixes < 0 || rn.MaxPrefixes > 4294967295 {
		r.in("max_prefixes").errorf("max_prefixes %d out of range 0-4294967295", rn.MaxPrefixes)
	} else {
		n.MaxPrefixes = uint32(rn.MaxPrefixes)
	}
	switch rn.MaxPrefixesAction {
	case "", MaxPrefixesTeardown, MaxPrefixesWarn:
		n.MaxPrefixesAction = rn.MaxPrefixesAction
		if n.MaxPrefixesAction == "" {
			n.MaxPrefixesAction = MaxPrefixesTeardown
		}
		if rn.MaxPrefixesAction != "" && rn.MaxPrefixes == 0 {
			r.in("max_prefixes_action").errorf("max_prefixes_action needs max_prefixes")
		}
	default:
		r.in("max_prefixes_action").errorf("unknown action %q (%s, %s)", rn.MaxPrefixesAction, MaxPrefixesTeardown, MaxPrefixesWarn)
	}
	return n
}

// maxMD5KeyBytes is the longest TCP MD5 key (TCP_MD5SIG_MAXKEYLEN).
const maxMD5KeyBytes = 80

// validatePassword checks password and password_file; the loader reads
// the file (readPasswordFiles).
func validatePassword(r reporter, rn *rawNeighbor, n *Neighbor) {
	if len(rn.Password) > maxMD5KeyBytes {
		r.in("password").errorf("TCP MD5 keys are at most %d bytes (got %d)", maxMD5KeyBytes, len(rn.Password))
	}
	if rn.PasswordFile == "" {
		return
	}
	fr := r.in("password_file")
	switch {
	case rn.Password != "":
		fr.errorf("set password or password_file, not both")
	case !filepath.IsAbs(rn.PasswordFile):
		fr.errorf("%q is not an absolute path", rn.PasswordFile)
	default:
		n.PasswordFile, n.passwordLine = rn.PasswordFile, fr.line()
	}
}

// validateTimers checks hold_time, keepalive and graceful restart.
func validateTimers(r reporter, rn *rawNeighbor, n *Neighbor) {
	n.HoldTime = BGPDefaultHoldTime
	if rn.HoldTime != nil {
		n.HoldTime = *rn.HoldTime
		if n.HoldTime != 0 && (n.HoldTime < 3 || n.HoldTime > 65535) {
			r.in("hold_time").errorf("hold time %d must be 0 or 3-65535 seconds (RFC 4271)", n.HoldTime)
		}
	}
	n.Keepalive = n.HoldTime / 3
	if rn.Keepalive != nil {
		n.Keepalive = *rn.Keepalive
		kr := r.in("keepalive")
		switch {
		case n.Keepalive < 0:
			kr.errorf("keepalive %d must not be negative", n.Keepalive)
		case n.HoldTime != 0 && n.Keepalive >= n.HoldTime:
			kr.errorf("keepalive %d must be shorter than hold_time %d", n.Keepalive, n.HoldTime)
		case n.HoldTime == 0 && n.Keepalive != 0:
			kr.errorf("keepalive must be 0 when hold_time is 0")
		}
	}
	n.GracefulRestartTime = rn.GracefulRestartTime
	gr := r.in("graceful_restart_time")
	switch {
	case rn.GracefulRestartTime != 0 && !rn.GracefulRestart:
		gr.errorf("graceful_restart_time needs graceful_restart = true")
	case rn.GracefulRestartTime != 0 && (rn.GracefulRestartTime < 1 || rn.GracefulRestartTime > 4095):
		gr.errorf("restart time %d out of range 1-4095 seconds", rn.GracefulRestartTime)
	case rn.GracefulRestartTime == 0 && rn.GracefulRestart:
		n.GracefulRestartTime = BGPDefaultRestartTime
	}
}
