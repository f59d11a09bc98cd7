package config

// The validated BGP speaker of a tenant. docs/bgp.md documents every key.

import (
	"net/netip"
	"strconv"
	"strings"
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
	// PrefixLists and ASPathLists are the named lists filters refer to,
	// sorted by name.
	PrefixLists []*PrefixList
	ASPathLists []*ASPathList
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

// Filter is a neighbour's import or export policy (docs/bgp.md). A
// route matching Deny is dropped; otherwise, when Allow is empty every
// route passes (import) or only the tenant's own announcements (export),
// else only routes matching Allow. A route that passes gets Set, then
// each matching rule's settings, in order.
type Filter struct {
	Allow RouteMatch
	Deny  RouteMatch
	Set   RouteSet
	Rules []FilterRule
}

// Empty reports whether the filter has no entries.
func (f Filter) Empty() bool {
	return f.Allow.Empty() && f.Deny.Empty() && f.Set.Empty() && len(f.Rules) == 0
}

// RouteMatch is a set of route conditions. In a filter's allow and deny
// a route matches when any entry of any kind matches; in a rule, when an
// entry of every kind given matches. Prefix lists and AS-path lists are
// resolved: their entries are in Prefixes and ASPaths (the names are
// kept for messages).
type RouteMatch struct {
	Prefixes    []PrefixMatch
	PrefixLists []string
	Communities []Community // standard and large, exact or with wildcards
	ASPaths     []string    // AS-path regular expressions, "_" = a delimiter
	ASPathLists []string
}

// Empty reports whether m has no condition.
func (m RouteMatch) Empty() bool {
	return len(m.Prefixes) == 0 && len(m.Communities) == 0 && len(m.ASPaths) == 0 &&
		len(m.PrefixLists) == 0 && len(m.ASPathLists) == 0
}

// RouteSet is what a filter or a rule changes on the routes it passes.
type RouteSet struct {
	LocalPref    uint32
	HasLocalPref bool
	MED          uint32
	HasMED       bool
	// RemoveCommunities may hold wildcards; they are removed before
	// AddCommunities are added.
	AddCommunities    []Community
	RemoveCommunities []Community
	Prepend           int // export: the tenant's AS this many extra times
}

// Empty reports whether s changes nothing.
func (s RouteSet) Empty() bool {
	return !s.HasLocalPref && !s.HasMED && len(s.AddCommunities) == 0 && len(s.RemoveCommunities) == 0 && s.Prepend == 0
}

// FilterRule changes the routes matching all its conditions.
type FilterRule struct {
	Key   string // config key path, for messages
	Match RouteMatch
	Set   RouteSet
}

// Community is a BGP community: standard (RFC 1997, ASN:VALUE, 16 bits
// each) or large (RFC 8092, three 32-bit fields). A wildcard field
// ("*", only in conditions and remove_community) matches any value.
type Community struct {
	Large  bool
	Fields [3]uint32 // standard: the first two
	Any    [3]bool   // wildcard fields
}

func (c Community) String() string { return c.Format("*") }

// Format renders c with any standing for each wildcard field ("*" for
// people, a regular expression for gobgp's match sets).
func (c Community) Format(any string) string {
	n := 2
	if c.Large {
		n = 3
	}
	parts := make([]string, n)
	for i := range parts {
		if c.Any[i] {
			parts[i] = any
		} else {
			parts[i] = strconv.FormatUint(uint64(c.Fields[i]), 10)
		}
	}
	return strings.Join(parts, ":")
}

// Matches reports whether community x is matched by c (a pattern when
// it has wildcards).
func (c Community) Matches(x Community) bool {
	if c.Large != x.Large {
		return false
	}
	for i := range c.Fields {
		if !c.Any[i] && (x.Any[i] || c.Fields[i] != x.Fields[i]) {
			return false
		}
	}
	return true
}

// Wildcard reports whether c has a wildcard field.
func (c Community) Wildcard() bool { return c.Any[0] || c.Any[1] || c.Any[2] }

// PrefixList is a named list of prefix entries, [tenant.T.bgp.prefix_list.NAME].
type PrefixList struct {
	Name     string
	Prefixes []PrefixMatch
}

// ASPathList is a named list of AS-path patterns, [tenant.T.bgp.as_path_list.NAME].
type ASPathList struct {
	Name    string
	ASPaths []string
}

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
