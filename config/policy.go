package config

// Firewall policy (zones, rules, sets, NAT) of a tenant: the raw TOML
// shapes, the validated model the policy compiler consumes, and the
// validation that turns one into the other. docs/policy.md documents every
// key.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type rawPolicy struct {
	Zone   map[string]rawZone    `toml:"zone"`
	Policy []rawZonePolicy       `toml:"policy"`
	Rule   []rawRule             `toml:"rule"`
	Set    map[string]rawAddrSet `toml:"set"`
	NAT    []rawNAT              `toml:"nat"`
}

type rawZone struct {
	Interfaces []string `toml:"interfaces"`
}

type rawZonePolicy struct {
	From   any    `toml:"from"`
	To     any    `toml:"to"`
	Action string `toml:"action"`
}

type rawRule struct {
	Name       string `toml:"name"`
	Comment    string `toml:"comment"`
	From       any    `toml:"from"`
	To         any    `toml:"to"`
	Saddr      any    `toml:"saddr"`
	Daddr      any    `toml:"daddr"`
	Proto      any    `toml:"proto"`
	Sport      any    `toml:"sport"`
	Dport      any    `toml:"dport"`
	ICMPType   any    `toml:"icmp_type"`
	CtState    any    `toml:"ct_state"`
	Action     string `toml:"action"`
	Log        any    `toml:"log"`
	LogLimit   string `toml:"log_limit"`
	Limit      string `toml:"limit"`
	LimitBurst int    `toml:"limit_burst"`
}

type rawAddrSet struct {
	Elements []string `toml:"elements"`
	File     string   `toml:"file"`
}

type rawNAT struct {
	Name    string `toml:"name"`
	Type    string `toml:"type"`
	In      string `toml:"in"`
	Out     string `toml:"out"`
	Saddr   any    `toml:"saddr"`
	Daddr   any    `toml:"daddr"`
	Proto   any    `toml:"proto"`
	Dport   any    `toml:"dport"`
	To      string `toml:"to"`
	Prefix  string `toml:"prefix"`
	Hairpin bool   `toml:"hairpin"`
}

// Zone names with a fixed meaning.
const (
	ZoneSelf = "self" // the namespace itself (input/output)
	ZoneAny  = "any"  // every zone, including self and unzoned interfaces
)

// Action is a rule or default-policy verdict.
type Action string

const (
	Accept Action = "accept"
	Drop   Action = "drop"
	Reject Action = "reject"
)

// Policy is a tenant's validated firewall policy. A tenant without any
// policy key has Enabled == false: fwd then installs no table at all, so
// a routing-only tenant is not firewalled by surprise.
type Policy struct {
	Enabled  bool
	Zones    []*Zone // sorted by name
	Defaults []ZonePolicy
	Rules    []*Rule // file order
	Sets     []*AddrSet
	NAT      []*NAT // file order
}

// Zone is a named group of interfaces.
type Zone struct {
	Name       string
	Interfaces []string // sorted
}

// ZonePolicy is the verdict for traffic between two zones that no rule
// decided. From/To may be ZoneAny.
type ZonePolicy struct {
	From, To string
	Action   Action
}

// AddrRange is an inclusive range of addresses of one family.
type AddrRange struct {
	From, To netip.Addr
}

// AddrMatch is a saddr/daddr condition: either a named set or a list of
// literal ranges. The zero value matches anything.
type AddrMatch struct {
	Set    string
	Ranges []AddrRange
}

// Any reports whether the match is unconstrained.
func (m AddrMatch) Any() bool { return m.Set == "" && len(m.Ranges) == 0 }

// Families returns the address families the match can match (4 and/or 6).
func (m AddrMatch) Families() (v4, v6 bool) {
	if m.Any() || m.Set != "" {
		return true, true
	}
	for _, r := range m.Ranges {
		if r.From.Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return
}

// Of returns the ranges of one family.
func (m AddrMatch) Of(v6 bool) []AddrRange {
	var out []AddrRange
	for _, r := range m.Ranges {
		if r.From.Is6() == v6 {
			out = append(out, r)
		}
	}
	return out
}

// PortRange is an inclusive port range.
type PortRange struct{ From, To uint16 }

// Rate is a packet rate for limit and log_limit.
type Rate struct {
	Count uint64
	Unit  string // second, minute, hour, day
	Burst uint32 // 0: kernel default
}

// Rule is one filter rule.
type Rule struct {
	Index    int    // position in the file (rule[Index])
	ID       string // stable identity: the name, or a content hash
	Name     string
	Comment  string
	From, To []string // zones, ZoneAny, ZoneSelf
	Saddr    AddrMatch
	Daddr    AddrMatch
	Protos   []uint8 // IP protocol numbers; empty: any
	Sport    []PortRange
	Dport    []PortRange
	ICMP     []uint8 // ICMP or ICMPv6 types (family given by Protos)
	CtState  []string
	Action   Action
	Log      bool
	LogPfx   string
	LogLimit *Rate
	Limit    *Rate
	V4, V6   bool // address families the rule can match
}

// AddrSet is a named set of addresses, CIDRs and ranges.
type AddrSet struct {
	Name   string
	File   string // resolved path, "" if inline only
	V4, V6 []AddrRange
}

// NAT kinds.
const (
	NATMasquerade = "masquerade"
	NATSnat       = "snat"
	NATDnat       = "dnat"
	NATNetmap     = "netmap"
)

// NAT is one translation.
type NAT struct {
	Index    int
	ID       string
	Type     string
	In, Out  string // zones
	Saddr    AddrMatch
	Daddr    AddrMatch
	Protos   []uint8
	Dport    []PortRange
	ToAddr   netip.Addr // snat/dnat target (start of range)
	ToEnd    netip.Addr // snat range end, zero if single
	ToPort   uint16     // dnat target port, 0 = unchanged
	Prefix   netip.Prefix
	ToPrefix netip.Prefix // netmap
	Hairpin  bool
	// Hairpin: the zone the target lives in and the public addresses
	// to reflect.
	TargetZone string
	Public     []netip.Addr
}

// Zone returns the zone of that name, or nil.
func (p *Policy) Zone(name string) *Zone {
	for _, z := range p.Zones {
		if z.Name == name {
			return z
		}
	}
	return nil
}

// Set returns the set of that name, or nil.
func (p *Policy) Set(name string) *AddrSet {
	for _, s := range p.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// DefaultFor returns the verdict for (from, to) when no rule matched: the
// most specific declared policy (exact pair, then from→any, any→to,
// any→any), else drop, except that traffic from self is accepted.
func (p *Policy) DefaultFor(from, to string) Action {
	for _, cand := range [][2]string{{from, to}, {from, ZoneAny}, {ZoneAny, to}, {ZoneAny, ZoneAny}} {
		for _, d := range p.Defaults {
			if d.From == cand[0] && d.To == cand[1] {
				return d.Action
			}
		}
	}
	if from == ZoneSelf {
		return Accept
	}
	return Drop
}

var (
	reZoneName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,15}$`)
	reRuleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	reRate     = regexp.MustCompile(`^(\d+)\s*/\s*(second|minute|hour|day)$`)
	// Reserved because fwd names its own chains and maps after them.
	reservedZones = map[string]bool{ZoneSelf: true, ZoneAny: true, "unzoned": true}
	ctStates      = map[string]bool{"new": true, "established": true, "related": true, "invalid": true, "untracked": true}
)

// Protocols maps protocol names accepted in `proto` to numbers.
var Protocols = map[string]uint8{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
	"icmpv6": 58, "sctp": 132, "udplite": 136,
}

// ProtoName returns the name of an IP protocol number, or the number.
func ProtoName(p uint8) string {
	for n, v := range Protocols {
		if v == p {
			return n
		}
	}
	return strconv.Itoa(int(p))
}

// ICMPTypes and ICMPv6Types map nft's type names to numbers.
var (
	ICMPTypes = map[string]uint8{
		"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
		"echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
		"time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14,
	}
	ICMPv6Types = map[string]uint8{
		"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
		"echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
		"nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
		"nd-neighbor-advert": 136, "nd-redirect": 137, "mld2-listener-report": 143,
	}
)

func hasPorts(protos []uint8) bool {
	if len(protos) == 0 {
		return false
	}
	for _, p := range protos {
		switch p {
		case 6, 17, 132, 136:
		default:
			return false
		}
	}
	return true
}

func validatePolicy(r *reporter, tkey string, raw *rawTenant, t *Tenant) {
	rp := &raw.rawPolicy
	p := &t.Policy
	p.Enabled = len(rp.Zone) > 0 || len(rp.Policy) > 0 || len(rp.Rule) > 0 || len(rp.Set) > 0 || len(rp.NAT) > 0
	if !p.Enabled {
		return
	}

	// Zones.
	znames := make([]string, 0, len(rp.Zone))
	for n := range rp.Zone {
		znames = append(znames, n)
	}
	sort.Strings(znames)
	ifZone := map[string]string{}
	for _, zn := range znames {
		zkey := tkey + ".zone." + zn
		switch {
		case reservedZones[zn]:
			r.add(zkey, "zone name %q is reserved", zn)
			continue
		case !reZoneName.MatchString(zn):
			r.add(zkey, "invalid zone name %q: use 1-16 characters a-z, 0-9 or '_', starting with a letter", zn)
			continue
		}
		z := &Zone{Name: zn}
		for i, in := range rp.Zone[zn].Interfaces {
			ikey := fmt.Sprintf("%s.interfaces[%d]", zkey, i)
			if t.Interface(in) == nil {
				r.add(ikey, "interface %q is not declared in tenant %q", in, t.Name)
				continue
			}
			if prev, ok := ifZone[in]; ok {
				r.add(ikey, "interface %q is already in zone %q", in, prev)
				continue
			}
			ifZone[in] = zn
			z.Interfaces = append(z.Interfaces, in)
		}
		sort.Strings(z.Interfaces)
		p.Zones = append(p.Zones, z)
	}
	declared := map[string]bool{}
	for _, zn := range znames {
		declared[zn] = true
	}
	// zoneRef checks a zone reference; usedByRule also rejects empty zones,
	// which would silently match nothing.
	zoneRef := func(key, zn string, allowSpecial bool) bool {
		if allowSpecial && (zn == ZoneAny || zn == ZoneSelf) {
			return true
		}
		if !declared[zn] {
			r.add(key, "unknown zone %q", zn)
			return false
		}
		if z := p.Zone(zn); z != nil && len(z.Interfaces) == 0 {
			r.add(key, "zone %q has no interfaces", zn)
			return false
		}
		return true
	}
	zoneList := func(key string, v any) []string {
		if v == nil {
			r.add(key, "is required (a zone, %q, %q, or a list of them)", ZoneSelf, ZoneAny)
			return nil
		}
		list, ok := stringList(r, key, v)
		if !ok {
			return nil
		}
		if len(list) == 0 {
			r.add(key, "is empty")
			return nil
		}
		var out []string
		seen := map[string]bool{}
		for i, zn := range list {
			k := key
			if _, isList := v.([]any); isList {
				k = fmt.Sprintf("%s[%d]", key, i)
			}
			if zoneRef(k, zn, true) && !seen[zn] {
				seen[zn] = true
				out = append(out, zn)
			}
		}
		return out
	}

	// Sets (before rules, which reference them).
	snames := make([]string, 0, len(rp.Set))
	for n := range rp.Set {
		snames = append(snames, n)
	}
	sort.Strings(snames)
	for _, sn := range snames {
		skey := tkey + ".set." + sn
		if !reZoneName.MatchString(sn) {
			r.add(skey, "invalid set name %q: use 1-16 characters a-z, 0-9 or '_', starting with a letter", sn)
			continue
		}
		rs := rp.Set[sn]
		s := &AddrSet{Name: sn}
		if len(rs.Elements) == 0 && rs.File == "" {
			r.add(skey, "needs elements or file")
		}
		for i, e := range rs.Elements {
			ar, err := ParseAddrRange(e)
			if err != nil {
				r.add(fmt.Sprintf("%s.elements[%d]", skey, i), "%v", err)
				continue
			}
			s.add(ar)
		}
		if rs.File != "" {
			path := rs.File
			if !filepath.IsAbs(path) {
				path = filepath.Join(filepath.Dir(r.file), path)
			}
			s.File = path
			if err := s.readFile(path); err != nil {
				r.add(skey+".file", "%v", err)
			}
		}
		p.Sets = append(p.Sets, s)
	}
	addrs := func(key string, v any) (AddrMatch, bool) {
		var m AddrMatch
		if v == nil {
			return m, true
		}
		list, ok := stringList(r, key, v)
		if !ok {
			return m, false
		}
		_, isList := v.([]any)
		good := true
		for i, a := range list {
			k := key
			if isList {
				k = fmt.Sprintf("%s[%d]", key, i)
			}
			if strings.HasPrefix(a, "@") {
				if len(list) != 1 {
					r.add(k, "a set reference must be the only element (put the addresses in the set)")
					good = false
					continue
				}
				if p.Set(a[1:]) == nil {
					r.add(k, "set %q is not declared", a[1:])
					good = false
					continue
				}
				m.Set = a[1:]
				continue
			}
			ar, err := ParseAddrRange(a)
			if err != nil {
				r.add(k, "%v", err)
				good = false
				continue
			}
			m.Ranges = append(m.Ranges, ar)
		}
		return m, good
	}

	// Default policies.
	seenPair := map[[2]string]string{}
	for i, rd := range rp.Policy {
		pkey := fmt.Sprintf("%s.policy[%d]", tkey, i)
		from := zoneList(pkey+".from", rd.From)
		to := zoneList(pkey+".to", rd.To)
		act, ok := parseAction(rd.Action)
		if !ok {
			r.add(pkey+".action", "invalid action %q: want accept, drop or reject", rd.Action)
		}
		for _, f := range from {
			for _, tz := range to {
				pair := [2]string{f, tz}
				if prev, dup := seenPair[pair]; dup {
					r.add(pkey, "policy for %s -> %s is already set at %s", f, tz, prev)
					continue
				}
				seenPair[pair] = pkey
				if ok {
					p.Defaults = append(p.Defaults, ZonePolicy{From: f, To: tz, Action: act})
				}
			}
		}
	}

	// Rules.
	ids := map[string]string{}
	for i := range rp.Rule {
		rr := &rp.Rule[i]
		rkey := fmt.Sprintf("%s.rule[%d]", tkey, i)
		ru := &Rule{Index: i, Name: rr.Name, Comment: rr.Comment}
		ok := true
		ru.From = zoneList(rkey+".from", rr.From)
		ru.To = zoneList(rkey+".to", rr.To)
		if len(ru.From) == 1 && len(ru.To) == 1 && ru.From[0] == ZoneSelf && ru.To[0] == ZoneSelf {
			r.add(rkey, "from and to are both %q (loopback traffic is always accepted)", ZoneSelf)
			ok = false
		}
		if ru.From == nil || ru.To == nil {
			ok = false
		}
		var good bool
		if ru.Saddr, good = addrs(rkey+".saddr", rr.Saddr); !good {
			ok = false
		}
		if ru.Daddr, good = addrs(rkey+".daddr", rr.Daddr); !good {
			ok = false
		}
		if ru.Protos, good = protoList(r, rkey+".proto", rr.Proto); !good {
			ok = false
		}
		if rr.Sport != nil || rr.Dport != nil {
			if !hasPorts(ru.Protos) {
				k := rkey + ".dport"
				if rr.Dport == nil {
					k = rkey + ".sport"
				}
				r.add(k, "ports need proto tcp, udp, sctp or udplite")
				ok = false
			}
		}
		if ru.Sport, good = portList(r, rkey+".sport", rr.Sport); !good {
			ok = false
		}
		if ru.Dport, good = portList(r, rkey+".dport", rr.Dport); !good {
			ok = false
		}
		v4, v6 := true, true
		if len(ru.Protos) > 0 {
			icmp4, icmp6 := true, true
			for _, pr := range ru.Protos {
				icmp4 = icmp4 && pr == 1
				icmp6 = icmp6 && pr == 58
			}
			if icmp4 {
				v6 = false
			}
			if icmp6 {
				v4 = false
			}
		}
		if rr.ICMPType != nil {
			names, good := stringListOrInts(r, rkey+".icmp_type", rr.ICMPType)
			table := ICMPTypes
			switch {
			case len(ru.Protos) == 1 && ru.Protos[0] == 1:
			case len(ru.Protos) == 1 && ru.Protos[0] == 58:
				table = ICMPv6Types
			default:
				r.add(rkey+".icmp_type", "icmp_type needs proto icmp or icmpv6")
				good = false
			}
			for _, n := range names {
				if !good {
					break
				}
				if v, ok := table[n]; ok {
					ru.ICMP = append(ru.ICMP, v)
				} else if num, err := strconv.Atoi(n); err == nil && num >= 0 && num <= 255 {
					ru.ICMP = append(ru.ICMP, uint8(num))
				} else {
					r.add(rkey+".icmp_type", "unknown %s type %q", ProtoName(ru.Protos[0]), n)
					good = false
				}
			}
			ok = ok && good
		}
		if rr.CtState != nil {
			list, good := stringList(r, rkey+".ct_state", rr.CtState)
			for _, s := range list {
				if !ctStates[s] {
					r.add(rkey+".ct_state", "unknown ct state %q: want new, established, related, invalid or untracked", s)
					good = false
				}
			}
			ru.CtState = list
			ok = ok && good
		}
		act, good := parseAction(rr.Action)
		if !good {
			if rr.Action == "" {
				r.add(rkey+".action", "is required (accept, drop or reject)")
			} else {
				r.add(rkey+".action", "invalid action %q: want accept, drop or reject", rr.Action)
			}
			ok = false
		}
		ru.Action = act
		switch l := rr.Log.(type) {
		case nil:
		case bool:
			ru.Log = l
		case string:
			ru.Log, ru.LogPfx = true, l
			if len(l) > 127 {
				r.add(rkey+".log", "log prefix is longer than 127 bytes")
				ok = false
			}
		default:
			r.add(rkey+".log", "want true/false or a prefix string")
			ok = false
		}
		if rr.LogLimit != "" {
			if !ru.Log {
				r.add(rkey+".log_limit", "log_limit needs log")
				ok = false
			}
			if ru.LogLimit, good = parseRate(r, rkey+".log_limit", rr.LogLimit); !good {
				ok = false
			}
		}
		if rr.Limit != "" {
			if ru.Limit, good = parseRate(r, rkey+".limit", rr.Limit); !good {
				ok = false
			} else if rr.LimitBurst < 0 {
				r.add(rkey+".limit_burst", "must not be negative")
				ok = false
			} else {
				ru.Limit.Burst = uint32(rr.LimitBurst)
			}
		} else if rr.LimitBurst != 0 {
			r.add(rkey+".limit_burst", "limit_burst needs limit")
			ok = false
		}
		// Address family: the rule matches only families every condition
		// allows. A v4 saddr with a v6 daddr can never match.
		s4, s6 := ru.Saddr.Families()
		d4, d6 := ru.Daddr.Families()
		ru.V4, ru.V6 = v4 && s4 && d4, v6 && s6 && d6
		if ok && !ru.V4 && !ru.V6 {
			r.add(rkey, "address family conflict: %s", familyConflict(v4, v6, s4, s6, d4, d6))
			ok = false
		}
		if rr.Name != "" {
			if !reRuleName.MatchString(rr.Name) {
				r.add(rkey+".name", "invalid rule name %q: use letters, digits, '_', '-' or '.', at most 63", rr.Name)
				ok = false
			}
			ru.ID = rr.Name
		} else {
			ru.ID = ruleHash(rr)
		}
		if prev, dup := ids[ru.ID]; dup {
			if rr.Name != "" {
				r.add(rkey+".name", "rule name %q is already used by %s", rr.Name, prev)
				ok = false
			} else {
				for n := 2; ; n++ {
					id := fmt.Sprintf("%s-%d", ru.ID, n)
					if _, dup := ids[id]; !dup {
						ru.ID = id
						break
					}
				}
			}
		}
		ids[ru.ID] = rkey
		if ok {
			p.Rules = append(p.Rules, ru)
		}
	}

	// NAT.
	for i := range rp.NAT {
		rn := &rp.NAT[i]
		nkey := fmt.Sprintf("%s.nat[%d]", tkey, i)
		n := &NAT{Index: i, Type: rn.Type, ID: rn.Name}
		if n.ID == "" {
			n.ID = fmt.Sprintf("nat%d", i)
		}
		ok := true
		zone := func(k, zn string) bool {
			if zn == "" {
				r.add(k, "is required for type %q", rn.Type)
				return false
			}
			return zoneRef(k, zn, false)
		}
		var good bool
		if n.Saddr, good = addrs(nkey+".saddr", rn.Saddr); !good {
			ok = false
		}
		if n.Daddr, good = addrs(nkey+".daddr", rn.Daddr); !good {
			ok = false
		}
		if n.Protos, good = protoList(r, nkey+".proto", rn.Proto); !good {
			ok = false
		}
		if rn.Dport != nil && !hasPorts(n.Protos) {
			r.add(nkey+".dport", "ports need proto tcp, udp, sctp or udplite")
			ok = false
		}
		if n.Dport, good = portList(r, nkey+".dport", rn.Dport); !good {
			ok = false
		}
		unexpected := func(k string, set bool) {
			if set {
				r.add(nkey+"."+k, "is not used by type %q", rn.Type)
				ok = false
			}
		}
		switch rn.Type {
		case NATMasquerade:
			n.Out = rn.Out
			ok = zone(nkey+".out", rn.Out) && ok
			unexpected("in", rn.In != "")
			unexpected("to", rn.To != "")
			unexpected("prefix", rn.Prefix != "")
			unexpected("hairpin", rn.Hairpin)
		case NATSnat:
			n.Out = rn.Out
			ok = zone(nkey+".out", rn.Out) && ok
			unexpected("in", rn.In != "")
			unexpected("prefix", rn.Prefix != "")
			unexpected("hairpin", rn.Hairpin)
			if rn.To == "" {
				r.add(nkey+".to", "is required for type %q (an address or range)", rn.Type)
				ok = false
			} else if ar, err := ParseAddrRange(rn.To); err != nil {
				r.add(nkey+".to", "%v", err)
				ok = false
			} else {
				n.ToAddr = ar.From
				if ar.To != ar.From {
					n.ToEnd = ar.To
				}
			}
		case NATDnat:
			n.In, n.Hairpin = rn.In, rn.Hairpin
			ok = zone(nkey+".in", rn.In) && ok
			unexpected("out", rn.Out != "")
			unexpected("prefix", rn.Prefix != "")
			if rn.To == "" {
				r.add(nkey+".to", "is required for type %q (address or address:port)", rn.Type)
				ok = false
				break
			}
			a, port, err := parseAddrPort(rn.To)
			if err != nil {
				r.add(nkey+".to", "%v", err)
				ok = false
				break
			}
			n.ToAddr, n.ToPort = a, port
			if port != 0 && len(n.Protos) == 0 {
				r.add(nkey+".to", "a target port needs proto tcp, udp, sctp or udplite")
				ok = false
			}
			n.TargetZone = zoneOf(t, p, a)
			if n.TargetZone == "" {
				r.add(nkey+".to", "DNAT target %s is outside every zone (no zone interface has a prefix containing it)", a)
				ok = false
			}
			if m4, m6 := n.Daddr.Families(); (a.Is4() && !m4) || (a.Is6() && !m6) {
				r.add(nkey, "address family conflict: daddr and to are different families")
				ok = false
			}
			if n.Hairpin {
				if n.Daddr.Set == "" && len(n.Daddr.Ranges) > 0 {
					for _, ar := range n.Daddr.Of(a.Is6()) {
						if ar.From == ar.To {
							n.Public = append(n.Public, ar.From)
						}
					}
				} else if z := p.Zone(rn.In); z != nil {
					for _, in := range z.Interfaces {
						for _, pfx := range t.Interface(in).Addresses {
							if pfx.Addr().Is6() == a.Is6() {
								n.Public = append(n.Public, pfx.Addr())
							}
						}
					}
				}
				if len(n.Public) == 0 && ok {
					r.add(nkey+".hairpin", "hairpin needs daddr (single addresses) or a static address on zone %q", rn.In)
					ok = false
				}
			}
		case NATNetmap:
			n.Out = rn.Out
			ok = zone(nkey+".out", rn.Out) && ok
			unexpected("in", rn.In != "")
			unexpected("hairpin", rn.Hairpin)
			unexpected("saddr", rn.Saddr != nil)
			unexpected("daddr", rn.Daddr != nil)
			unexpected("dport", rn.Dport != nil)
			unexpected("proto", rn.Proto != nil)
			from, err1 := netip.ParsePrefix(rn.Prefix)
			to, err2 := netip.ParsePrefix(rn.To)
			switch {
			case rn.Prefix == "":
				r.add(nkey+".prefix", "is required for type %q (the inside prefix)", rn.Type)
				ok = false
			case err1 != nil || from != from.Masked():
				r.add(nkey+".prefix", "invalid prefix %q", rn.Prefix)
				ok = false
			case rn.To == "":
				r.add(nkey+".to", "is required for type %q (the outside prefix)", rn.Type)
				ok = false
			case err2 != nil || to != to.Masked():
				r.add(nkey+".to", "invalid prefix %q", rn.To)
				ok = false
			case from.Addr().Is4() != to.Addr().Is4() || from.Bits() != to.Bits():
				r.add(nkey+".to", "prefix %s must have the same family and length as %s", to, from)
				ok = false
			}
			n.Prefix, n.ToPrefix = from, to
		case "":
			r.add(nkey+".type", "is required (masquerade, snat, dnat or netmap)")
			ok = false
		default:
			r.add(nkey+".type", "unknown NAT type %q: want masquerade, snat, dnat or netmap", rn.Type)
			ok = false
		}
		if ok && (n.Type == NATSnat) {
			if s4, s6 := n.Saddr.Families(); (n.ToAddr.Is4() && !s4) || (n.ToAddr.Is6() && !s6) {
				r.add(nkey, "address family conflict: saddr and to are different families")
				ok = false
			}
		}
		if ok {
			p.NAT = append(p.NAT, n)
		}
	}
}

// zoneOf returns the zone whose interfaces have a prefix containing a.
func zoneOf(t *Tenant, p *Policy, a netip.Addr) string {
	for _, z := range p.Zones {
		for _, in := range z.Interfaces {
			for _, pfx := range t.Interface(in).Addresses {
				if pfx.Masked().Contains(a) {
					return z.Name
				}
			}
		}
	}
	return ""
}

func familyConflict(p4, p6, s4, s6, d4, d6 bool) string {
	name := func(v4, v6 bool) string {
		switch {
		case v4 && !v6:
			return "IPv4 only"
		case v6 && !v4:
			return "IPv6 only"
		}
		return "both families"
	}
	parts := []string{}
	if !(p4 && p6) {
		parts = append(parts, "proto is "+name(p4, p6))
	}
	if !(s4 && s6) {
		parts = append(parts, "saddr is "+name(s4, s6))
	}
	if !(d4 && d6) {
		parts = append(parts, "daddr is "+name(d4, d6))
	}
	return strings.Join(parts, ", ")
}

func ruleHash(rr *rawRule) string {
	h := sha256.New()
	fmt.Fprintf(h, "%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%d",
		rr.From, rr.To, rr.Saddr, rr.Daddr, rr.Proto, rr.Sport, rr.Dport, rr.ICMPType,
		rr.CtState, rr.Action, rr.Log, rr.LogLimit, rr.Limit, rr.Comment, rr.LimitBurst)
	return "r" + hex.EncodeToString(h.Sum(nil))[:10]
}

func parseAction(s string) (Action, bool) {
	switch Action(s) {
	case Accept, Drop, Reject:
		return Action(s), true
	}
	return "", false
}

func parseRate(r *reporter, key, s string) (*Rate, bool) {
	m := reRate.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		r.add(key, "invalid rate %q: want N/second, N/minute, N/hour or N/day", s)
		return nil, false
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil || n == 0 {
		r.add(key, "invalid rate %q: count must be 1-4294967295", s)
		return nil, false
	}
	return &Rate{Count: n, Unit: m[2]}, true
}

// stringList accepts a string or an array of strings.
func stringList(r *reporter, key string, v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				r.add(fmt.Sprintf("%s[%d]", key, i), "want a string, got %v", e)
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	r.add(key, "want a string or an array of strings, got %v", v)
	return nil, false
}

// stringListOrInts accepts strings, integers, or an array of both.
func stringListOrInts(r *reporter, key string, v any) ([]string, bool) {
	one := func(e any) (string, bool) {
		switch x := e.(type) {
		case string:
			return x, true
		case int64:
			return strconv.FormatInt(x, 10), true
		}
		return "", false
	}
	if s, ok := one(v); ok {
		return []string{s}, true
	}
	if list, ok := v.([]any); ok {
		var out []string
		for i, e := range list {
			s, ok := one(e)
			if !ok {
				r.add(fmt.Sprintf("%s[%d]", key, i), "want a string or a number, got %v", e)
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	r.add(key, "want a string, a number or an array of them, got %v", v)
	return nil, false
}

func protoList(r *reporter, key string, v any) ([]uint8, bool) {
	if v == nil {
		return nil, true
	}
	names, ok := stringListOrInts(r, key, v)
	if !ok {
		return nil, false
	}
	var out []uint8
	seen := map[uint8]bool{}
	for _, n := range names {
		p, known := Protocols[strings.ToLower(n)]
		if !known {
			num, err := strconv.Atoi(n)
			if err != nil || num < 0 || num > 255 {
				r.add(key, "unknown protocol %q", n)
				return nil, false
			}
			p = uint8(num)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, true
}

// portList accepts a port, "a-b", or an array of them.
func portList(r *reporter, key string, v any) ([]PortRange, bool) {
	if v == nil {
		return nil, true
	}
	items, ok := stringListOrInts(r, key, v)
	if !ok {
		return nil, false
	}
	_, isList := v.([]any)
	var out []PortRange
	for i, s := range items {
		k := key
		if isList {
			k = fmt.Sprintf("%s[%d]", key, i)
		}
		pr, err := ParsePortRange(s)
		if err != nil {
			r.add(k, "%v", err)
			return nil, false
		}
		out = append(out, pr)
	}
	return out, true
}

// ParsePortRange parses "80" or "8000-8080".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil || a < 1 || a > 65535 || b < 1 || b > 65535 {
		return PortRange{}, fmt.Errorf("invalid port %q: want 1-65535 or a range like 8000-8080", s)
	}
	if b < a {
		return PortRange{}, fmt.Errorf("invalid port range %q: start is after end", s)
	}
	return PortRange{uint16(a), uint16(b)}, nil
}

// ParseAddrRange parses an address, a CIDR prefix or "a-b".
func ParseAddrRange(s string) (AddrRange, error) {
	s = strings.TrimSpace(s)
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
		b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "" || a.Is4In6() || b.Is4In6() {
			return AddrRange{}, fmt.Errorf("invalid address range %q", s)
		}
		if a.Is4() != b.Is4() {
			return AddrRange{}, fmt.Errorf("invalid address range %q: mixes IPv4 and IPv6", s)
		}
		if b.Less(a) {
			return AddrRange{}, fmt.Errorf("invalid address range %q: start is after end", s)
		}
		return AddrRange{a, b}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return AddrRange{}, fmt.Errorf("invalid CIDR %q", s)
		}
		if p != p.Masked() {
			return AddrRange{}, fmt.Errorf("invalid CIDR %q: host bits are set (did you mean %s?)", s, p.Masked())
		}
		return AddrRange{p.Addr(), PrefixLast(p)}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return AddrRange{}, fmt.Errorf("invalid address %q", s)
	}
	return AddrRange{a, a}, nil
}

// PrefixLast returns the last address of p.
func PrefixLast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	n := new(big.Int).SetBytes(b)
	hostBits := len(b)*8 - p.Bits()
	n.Or(n, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(hostBits)), big.NewInt(1)))
	out := n.FillBytes(make([]byte, len(b)))
	a, _ := netip.AddrFromSlice(out)
	return a
}

func parseAddrPort(s string) (netip.Addr, uint16, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" && !a.Is4In6() {
		return a, 0, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("invalid target %q: want address or address:port ([v6]:port)", s)
	}
	return ap.Addr(), ap.Port(), nil
}

func (s *AddrSet) add(ar AddrRange) {
	if ar.From.Is4() {
		s.V4 = append(s.V4, ar)
	} else {
		s.V6 = append(s.V6, ar)
	}
}

// maxSetFileBytes bounds a set file (a few million CIDRs fit).
const maxSetFileBytes = 256 << 20

// readFile loads one address, CIDR or range per line; '#' starts a comment.
func (s *AddrSet) readFile(path string) error {
	// Only a regular file of sane size: a FIFO, a device such as
	// /dev/zero or a runaway file must not hang or exhaust `fwd check`
	// or a reload.
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxSetFileBytes {
		return fmt.Errorf("%s is %d bytes, more than the %d MiB limit for set files", path, fi.Size(), maxSetFileBytes>>20)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var bad []string
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ar, err := ParseAddrRange(line)
		if err != nil {
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s:%d: %v", path, n, err))
			}
			continue
		}
		s.add(ar)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}
