package config

// BGP of a tenant. The keys live under
//
//	[tenant.edge.bgp]             asn, router_id, listen, table, announce, announce_if_route
//	[[tenant.edge.bgp.neighbor]]  address, asn, description, password, multihop,
//	                              hold_time, keepalive, passive, families,
//	                              import, export, max_prefixes, max_prefixes_action,
//	                              next_hop_self, graceful_restart, graceful_restart_time
//
// Filters are inline tables of prefix lists, e.g.
//
//	import = { allow = ["198.18.0.0/15 le 24"], deny = ["198.18.66.0/24"] }

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

type rawBGPHook struct {
	BGP *rawBGP `toml:"bgp"`
}

type rawBGP struct {
	ASN             int64         `toml:"asn"`
	RouterID        string        `toml:"router_id"`
	Listen          any           `toml:"listen"`
	Table           string        `toml:"table"`
	Announce        []string      `toml:"announce"`
	AnnounceIfRoute []string      `toml:"announce_if_route"`
	Neighbor        []rawNeighbor `toml:"neighbor"`
}

type rawNeighbor struct {
	Address             string     `toml:"address"`
	ASN                 int64      `toml:"asn"`
	Description         string     `toml:"description"`
	Password            string     `toml:"password"`
	Multihop            int        `toml:"multihop"`
	HoldTime            *int       `toml:"hold_time"`
	Keepalive           *int       `toml:"keepalive"`
	Passive             bool       `toml:"passive"`
	Families            []string   `toml:"families"`
	Import              *rawFilter `toml:"import"`
	Export              *rawFilter `toml:"export"`
	MaxPrefixes         int64      `toml:"max_prefixes"`
	MaxPrefixesAction   string     `toml:"max_prefixes_action"`
	NextHopSelf         bool       `toml:"next_hop_self"`
	GracefulRestart     bool       `toml:"graceful_restart"`
	GracefulRestartTime int        `toml:"graceful_restart_time"`
}

type rawFilter struct {
	Allow []string `toml:"allow"`
	Deny  []string `toml:"deny"`
}

// BGP defaults.
const (
	BGPDefaultPort        = 179
	BGPDefaultHoldTime    = 90
	BGPDefaultRestartTime = 120
)

// BGP address families.
const (
	FamilyIPv4Unicast = "ipv4-unicast"
	FamilyIPv6Unicast = "ipv6-unicast"
)

// Actions when a neighbour sends more than max_prefixes.
const (
	MaxPrefixesTeardown = "teardown"
	MaxPrefixesWarn     = "warn"
)

// BGP is a tenant's validated BGP speaker configuration.
type BGP struct {
	ASN      uint32
	RouterID netip.Addr // IPv4; defaults to the tenant's lowest IPv4 address
	// ListenPort is the TCP port the speaker accepts sessions on; 0 means
	// it does not listen and only dials its (non-passive) neighbours.
	ListenPort int
	Table      string // "main" or a declared table name
	TableID    uint32
	// Announce lists prefixes originated unconditionally;
	// AnnounceIfRoute those originated only while the tenant's table holds
	// a non-BGP route for exactly that prefix.
	Announce        []netip.Prefix
	AnnounceIfRoute []netip.Prefix
	Neighbors       []*Neighbor // in file order
}

// Neighbor returns the neighbour with that address, or nil.
func (b *BGP) Neighbor(a netip.Addr) *Neighbor {
	for _, n := range b.Neighbors {
		if n.Address == a {
			return n
		}
	}
	return nil
}

// Neighbor is one BGP peer of a tenant.
type Neighbor struct {
	Key         string // config key path, e.g. tenant.edge.bgp.neighbor[0]
	Address     netip.Addr
	ASN         uint32
	Description string
	Password    string // TCP MD5 key; "" for none
	Multihop    int    // eBGP multihop TTL; 0 = directly connected
	HoldTime    int    // seconds
	Keepalive   int    // seconds
	Passive     bool
	Families    []string // FamilyIPv4Unicast, FamilyIPv6Unicast
	Import      Filter
	Export      Filter
	// MaxPrefixes limits the prefixes accepted from the neighbour (0: no
	// limit); MaxPrefixesAction says whether exceeding it tears the
	// session down or only logs a warning.
	MaxPrefixes         uint32
	MaxPrefixesAction   string
	NextHopSelf         bool
	GracefulRestart     bool
	GracefulRestartTime int // seconds
}

// Filter is a prefix filter. A route matching a Deny entry is dropped;
// otherwise, when Allow is empty every route passes, else only routes
// matching an Allow entry. The zero Filter passes everything (import) or
// only the tenant's own announcements (export, see docs/bgp.md).
type Filter struct {
	Allow []PrefixMatch
	Deny  []PrefixMatch
}

// Empty reports whether the filter has no entries.
func (f Filter) Empty() bool { return len(f.Allow) == 0 && len(f.Deny) == 0 }

// PrefixMatch matches routes inside Prefix whose length is in [GE, LE].
// Without ge/le both equal the prefix length (exact match).
type PrefixMatch struct {
	Prefix netip.Prefix
	GE, LE int
}

func (m PrefixMatch) String() string {
	s := m.Prefix.String()
	if m.GE != m.Prefix.Bits() {
		s += " ge " + strconv.Itoa(m.GE)
	}
	if m.LE != m.Prefix.Bits() || m.GE != m.Prefix.Bits() {
		s += " le " + strconv.Itoa(m.LE)
	}
	return s
}

// Matches reports whether p is matched.
func (m PrefixMatch) Matches(p netip.Prefix) bool {
	return p.Addr().Is4() == m.Prefix.Addr().Is4() && p.Bits() >= m.GE && p.Bits() <= m.LE &&
		m.Prefix.Contains(p.Addr()) && p.Bits() >= m.Prefix.Bits()
}

// ParsePrefixMatch parses "PREFIX [ge N] [le M]".
func ParsePrefixMatch(s string) (PrefixMatch, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return PrefixMatch{}, fmt.Errorf("empty prefix")
	}
	p, err := netip.ParsePrefix(f[0])
	if err != nil || p.Addr().Zone() != "" {
		return PrefixMatch{}, fmt.Errorf("invalid prefix %q", f[0])
	}
	if p != p.Masked() {
		return PrefixMatch{}, fmt.Errorf("%s has host bits set (did you mean %s?)", p, p.Masked())
	}
	m := PrefixMatch{Prefix: p, GE: -1, LE: -1}
	max := p.Addr().BitLen()
	rest := f[1:]
	for len(rest) > 0 {
		if len(rest) < 2 || (rest[0] != "ge" && rest[0] != "le") {
			return PrefixMatch{}, fmt.Errorf("%q: want PREFIX [ge N] [le N]", s)
		}
		n, err := strconv.Atoi(rest[1])
		if err != nil || n < 0 || n > max {
			return PrefixMatch{}, fmt.Errorf("%q: %s %s is not a prefix length 0-%d", s, rest[0], rest[1], max)
		}
		if rest[0] == "ge" {
			if m.GE >= 0 {
				return PrefixMatch{}, fmt.Errorf("%q: ge given twice", s)
			}
			m.GE = n
		} else {
			if m.LE >= 0 {
				return PrefixMatch{}, fmt.Errorf("%q: le given twice", s)
			}
			m.LE = n
		}
		rest = rest[2:]
	}
	switch {
	case m.GE < 0 && m.LE < 0:
		m.GE, m.LE = p.Bits(), p.Bits()
	case m.GE < 0:
		m.GE = p.Bits()
	case m.LE < 0:
		m.LE = max
	}
	if m.GE < p.Bits() || m.LE < m.GE {
		return PrefixMatch{}, fmt.Errorf("%q: need %d <= ge <= le", s, p.Bits())
	}
	return m, nil
}

// validASN reports why an AS number may not be used by a speaker, or "".
func validASN(v int64) string {
	switch {
	case v <= 0 || v > 4294967295:
		return fmt.Sprintf("AS number %d out of range 1-4294967294", v)
	case v == 23456:
		return "AS 23456 is AS_TRANS (RFC 6793), not a real AS"
	case v == 65535 || v == 4294967295:
		return fmt.Sprintf("AS %d is reserved (RFC 7300)", v)
	}
	return ""
}

func validateBGP(r *reporter, tkey string, raw *rawTenant, t *Tenant) {
	rb := raw.BGP
	if rb == nil {
		return
	}
	key := tkey + ".bgp"
	b := &BGP{ListenPort: BGPDefaultPort}
	if why := validASN(rb.ASN); why != "" {
		r.add(key+".asn", "%s", why)
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
	if rb.RouterID != "" {
		a, err := netip.ParseAddr(rb.RouterID)
		switch {
		case err != nil || !a.Is4():
			r.add(key+".router_id", "invalid router ID %q: want an IPv4 address, e.g. 192.0.2.1", rb.RouterID)
		case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			r.add(key+".router_id", "router ID %s is not a usable identifier", a)
		default:
			b.RouterID = a
		}
	} else {
		var lowest netip.Addr
		for a := range own {
			if a.Is4() && (!lowest.IsValid() || a.Less(lowest)) {
				lowest = a
			}
		}
		if !lowest.IsValid() {
			r.add(key+".router_id", "router_id is required when the tenant has no IPv4 address")
		}
		b.RouterID = lowest
	}

	switch v := rb.Listen.(type) {
	case nil:
	case bool:
		if !v {
			b.ListenPort = 0
		}
	case int64:
		if v < 1 || v > 65535 {
			r.add(key+".listen", "port %d out of range 1-65535 (false: do not listen)", v)
		} else {
			b.ListenPort = int(v)
		}
	default:
		r.add(key+".listen", "want a port number, true or false")
	}

	b.Table = rb.Table
	if b.Table == "" {
		b.Table = "main"
	}
	if b.TableID = t.Routing.TableID(b.Table); b.TableID == 0 {
		r.add(key+".table", "table %q is not declared: add [%s.table.%s] with an id", b.Table, tkey, b.Table)
	}

	seenAnn := map[netip.Prefix]string{}
	parseAnn := func(list []string, name string) []netip.Prefix {
		var out []netip.Prefix
		for i, s := range list {
			akey := fmt.Sprintf("%s.%s[%d]", key, name, i)
			p, err := netip.ParsePrefix(s)
			if err != nil || p.Addr().Zone() != "" {
				r.add(akey, "invalid prefix %q", s)
				continue
			}
			if p != p.Masked() {
				r.add(akey, "%s has host bits set (did you mean %s?)", p, p.Masked())
				continue
			}
			if prev, ok := seenAnn[p]; ok {
				r.add(akey, "%s is already announced at %s", p, prev)
				continue
			}
			seenAnn[p] = akey
			out = append(out, p)
		}
		return out
	}
	b.Announce = parseAnn(rb.Announce, "announce")
	b.AnnounceIfRoute = parseAnn(rb.AnnounceIfRoute, "announce_if_route")

	seen := map[netip.Addr]string{}
	for i, rn := range rb.Neighbor {
		nkey := fmt.Sprintf("%s.neighbor[%d]", key, i)
		n := &Neighbor{Key: nkey, Description: rn.Description, Password: rn.Password, Passive: rn.Passive,
			NextHopSelf: rn.NextHopSelf, GracefulRestart: rn.GracefulRestart, Multihop: rn.Multihop}
		a, err := netip.ParseAddr(rn.Address)
		switch {
		case rn.Address == "":
			r.add(nkey+".address", "address is required")
		case err != nil:
			r.add(nkey+".address", "invalid neighbour address %q", rn.Address)
		case a.Zone() != "" || a.IsLinkLocalUnicast():
			r.add(nkey+".address", "link-local neighbour %s is not supported: use a global address", a)
		case a.Is4In6() || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback():
			r.add(nkey+".address", "%s is not a unicast address", a)
		case own[a]:
			r.add(nkey+".address", "%s is one of this tenant's own addresses", a)
		default:
			n.Address = a
			if prev, ok := seen[a]; ok {
				r.add(nkey+".address", "duplicate neighbour %s (also %s)", a, prev)
			}
			seen[a] = nkey
			if rn.Multihop == 0 {
				reachable := false
				for _, p := range connected {
					if p.Contains(a) {
						reachable = true
						break
					}
				}
				if !reachable {
					r.add(nkey+".address", "neighbour %s is not on any connected subnet of tenant %q: set multihop (TTL) for a neighbour further away", a, t.Name)
				}
			}
		}
		if why := validASN(rn.ASN); why != "" {
			r.add(nkey+".asn", "%s", why)
		} else {
			n.ASN = uint32(rn.ASN)
		}
		if len(rn.Password) > 80 {
			r.add(nkey+".password", "TCP MD5 keys are at most 80 bytes (got %d)", len(rn.Password))
		}
		if rn.Multihop < 0 || rn.Multihop > 255 {
			r.add(nkey+".multihop", "multihop TTL %d out of range 1-255 (0: directly connected)", rn.Multihop)
		}
		n.HoldTime = BGPDefaultHoldTime
		if rn.HoldTime != nil {
			n.HoldTime = *rn.HoldTime
			if n.HoldTime != 0 && (n.HoldTime < 3 || n.HoldTime > 65535) {
				r.add(nkey+".hold_time", "hold time %d must be 0 or 3-65535 seconds (RFC 4271)", n.HoldTime)
			}
		}
		n.Keepalive = n.HoldTime / 3
		if rn.Keepalive != nil {
			n.Keepalive = *rn.Keepalive
			switch {
			case n.Keepalive < 0:
				r.add(nkey+".keepalive", "keepalive %d must not be negative", n.Keepalive)
			case n.HoldTime != 0 && n.Keepalive >= n.HoldTime:
				r.add(nkey+".keepalive", "keepalive %d must be shorter than hold_time %d", n.Keepalive, n.HoldTime)
			case n.HoldTime == 0 && n.Keepalive != 0:
				r.add(nkey+".keepalive", "keepalive must be 0 when hold_time is 0")
			}
		}
		if rn.Passive && b.ListenPort == 0 {
			r.add(nkey+".passive", "a passive neighbour needs the speaker to listen (%s.listen is false)", key)
		}
		fams := map[string]bool{}
		for fi, f := range rn.Families {
			fkey := fmt.Sprintf("%s.families[%d]", nkey, fi)
			switch f {
			case FamilyIPv4Unicast, FamilyIPv6Unicast:
				if fams[f] {
					r.add(fkey, "family %q listed twice", f)
				}
				fams[f] = true
				n.Families = append(n.Families, f)
			default:
				r.add(fkey, "unknown address family %q (%s, %s)", f, FamilyIPv4Unicast, FamilyIPv6Unicast)
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
		n.Import = parseFilter(r, nkey+".import", rn.Import)
		n.Export = parseFilter(r, nkey+".export", rn.Export)
		if rn.MaxPrefixes < 0 || rn.MaxPrefixes > 4294967295 {
			r.add(nkey+".max_prefixes", "max_prefixes %d out of range 0-4294967295", rn.MaxPrefixes)
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
				r.add(nkey+".max_prefixes_action", "max_prefixes_action needs max_prefixes")
			}
		default:
			r.add(nkey+".max_prefixes_action", "unknown action %q (%s, %s)", rn.MaxPrefixesAction, MaxPrefixesTeardown, MaxPrefixesWarn)
		}
		n.GracefulRestartTime = rn.GracefulRestartTime
		if rn.GracefulRestartTime != 0 {
			if !rn.GracefulRestart {
				r.add(nkey+".graceful_restart_time", "graceful_restart_time needs graceful_restart = true")
			} else if rn.GracefulRestartTime < 1 || rn.GracefulRestartTime > 4095 {
				r.add(nkey+".graceful_restart_time", "restart time %d out of range 1-4095 seconds", rn.GracefulRestartTime)
			}
		} else if rn.GracefulRestart {
			n.GracefulRestartTime = BGPDefaultRestartTime
		}
		b.Neighbors = append(b.Neighbors, n)
	}
	t.BGP = b
}

func parseFilter(r *reporter, key string, rf *rawFilter) Filter {
	var f Filter
	if rf == nil {
		return f
	}
	parse := func(list []string, name string) []PrefixMatch {
		var out []PrefixMatch
		for i, s := range list {
			m, err := ParsePrefixMatch(s)
			if err != nil {
				r.add(fmt.Sprintf("%s.%s[%d]", key, name, i), "%v", err)
				continue
			}
			out = append(out, m)
		}
		return out
	}
	f.Allow = parse(rf.Allow, "allow")
	f.Deny = parse(rf.Deny, "deny")
	return f
}
