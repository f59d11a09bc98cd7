package config

// The validated BGP speaker of a tenant. docs/bgp.md documents every key.

import (
	"net/netip"
	"strconv"
)

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

	// PasswordFile is where Password was read from ("" when inline or
	// none); the loader reads it (ReadSecretFile: mode-checked like the
	// API token). Password is a secret: never log or print it.
	PasswordFile string
	passwordLine int // of password_file, for the loader's errors
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
