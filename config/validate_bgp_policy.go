package config

// BGP routing policy validation: the named lists and the import/export
// filters of neighbours. The keys:
//
//	[tenant.edge.bgp.prefix_list.NAME]    prefixes
//	[tenant.edge.bgp.as_path_list.NAME]   as_paths
//	import / export (inline or [tenant.edge.bgp.neighbor.import]):
//	    allow, deny                                   prefix entries
//	    allow_prefix_list, deny_prefix_list           list names
//	    allow_community, deny_community               communities
//	    allow_as_path, deny_as_path                   AS-path patterns
//	    allow_as_path_list, deny_as_path_list         list names
//	    local_pref, med, add_community, remove_community, prepend
//	    rule = [{ prefix, prefix_list, community, as_path, as_path_list,
//	              local_pref, med, add_community, remove_community, prepend }]
//
// docs/bgp.md documents every key.

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// bgpLists is what filters may refer to by name.
type bgpLists struct {
	key      string // the [bgp] section's key path, for messages
	prefixes map[string]*PrefixList
	asPaths  map[string]*ASPathList
}

// validateBGPLists validates [tenant.T.bgp.prefix_list.*] and
// [tenant.T.bgp.as_path_list.*] into b. A list with a bad entry is still
// declared (with its good entries), so references to it are not
// reported as well.
func validateBGPLists(r reporter, rb *rawBGP, b *BGP) *bgpLists {
	l := &bgpLists{key: r.key, prefixes: map[string]*PrefixList{}, asPaths: map[string]*ASPathList{}}
	for _, name := range sortedKeys(rb.PrefixList) {
		lr := r.in("prefix_list").in(name)
		pl := &PrefixList{Name: name}
		raw := rb.PrefixList[name]
		if len(raw.Prefixes) == 0 {
			lr.errorf("prefix list %q is empty: give it prefixes = [...]", name)
		}
		pl.Prefixes = prefixEntries(lr.in("prefixes"), raw.Prefixes)
		l.prefixes[name] = pl
		b.PrefixLists = append(b.PrefixLists, pl)
	}
	for _, name := range sortedKeys(rb.ASPathList) {
		lr := r.in("as_path_list").in(name)
		al := &ASPathList{Name: name}
		raw := rb.ASPathList[name]
		if len(raw.ASPaths) == 0 {
			lr.errorf("AS-path list %q is empty: give it as_paths = [...]", name)
		}
		al.ASPaths = asPathPatterns(lr.in("as_paths"), raw.ASPaths)
		l.asPaths[name] = al
		b.ASPathLists = append(b.ASPathLists, al)
	}
	return l
}

// validateFilter validates an import or export filter of neighbour n.
func validateFilter(r reporter, rf *rawFilter, export bool, l *bgpLists, b *BGP, n *Neighbor) Filter {
	var f Filter
	if rf == nil {
		return f
	}
	f.Allow = RouteMatch{
		Prefixes:    prefixEntries(r.in("allow"), rf.Allow),
		Communities: communities(r.in("allow_community"), rf.AllowCommunity, true),
		ASPaths:     asPathPatterns(r.in("allow_as_path"), rf.AllowASPath),
	}
	l.resolve(r.in("allow_prefix_list"), r.in("allow_as_path_list"), rf.AllowPrefixList, rf.AllowASPathList, &f.Allow)
	f.Deny = RouteMatch{
		Prefixes:    prefixEntries(r.in("deny"), rf.Deny),
		Communities: communities(r.in("deny_community"), rf.DenyCommunity, true),
		ASPaths:     asPathPatterns(r.in("deny_as_path"), rf.DenyASPath),
	}
	l.resolve(r.in("deny_prefix_list"), r.in("deny_as_path_list"), rf.DenyPrefixList, rf.DenyASPathList, &f.Deny)
	f.Set = routeSet(r, &rf.rawRouteSet, export, b, n)
	rr := r.in("rule")
	for i := range rf.Rule {
		f.Rules = append(f.Rules, filterRule(rr.at(i), &rf.Rule[i], export, l, b, n))
	}
	return f
}

// filterRule validates one rule: at least one condition, at least one
// change.
func filterRule(r reporter, rr *rawFilterRule, export bool, l *bgpLists, b *BGP, n *Neighbor) FilterRule {
	fr := FilterRule{Key: r.key}
	fr.Match = RouteMatch{
		Prefixes:    prefixEntries(r.in("prefix"), rr.Prefix),
		Communities: communities(r.in("community"), rr.Community, true),
		ASPaths:     asPathPatterns(r.in("as_path"), rr.ASPath),
	}
	l.resolve(r.in("prefix_list"), r.in("as_path_list"), rr.PrefixList, rr.ASPathList, &fr.Match)
	if len(rr.Prefix)+len(rr.PrefixList)+len(rr.Community)+len(rr.ASPath)+len(rr.ASPathList) == 0 {
		r.errorf("rule has no condition: give it prefix, prefix_list, community, as_path or as_path_list (changes for every route go in the filter itself)")
	}
	fr.Set = routeSet(r, &rr.rawRouteSet, export, b, n)
	// A rule's changes may take two steps, each matching the rule's
	// conditions: adding a community the rule matches on would change
	// what the second step sees.
	for i, raw := range rr.AddCommunity {
		a, err := ParseCommunity(raw)
		if err != nil {
			continue
		}
		for _, c := range fr.Match.Communities {
			if c.Matches(a) {
				r.in("add_community").at(i).errorf("the rule adds %s, which its community condition %s matches", a, c)
				break
			}
		}
	}
	s := rr.rawRouteSet
	if s.LocalPref == nil && s.MED == nil && s.Prepend == nil && len(s.AddCommunity) == 0 && len(s.RemoveCommunity) == 0 {
		r.errorf("rule changes nothing: give it local_pref, med, add_community, remove_community or prepend")
	}
	return fr
}

// resolve adds the entries of the named lists to m.
func (l *bgpLists) resolve(pr, ar reporter, prefixLists, asPathLists []string, m *RouteMatch) {
	for i, name := range prefixLists {
		pl := l.prefixes[name]
		if pl == nil {
			pr.at(i).errorf("prefix list %q is not declared: add [%s.prefix_list.%s]", name, l.key, name)
			continue
		}
		m.PrefixLists = append(m.PrefixLists, name)
		m.Prefixes = append(m.Prefixes, pl.Prefixes...)
	}
	for i, name := range asPathLists {
		al := l.asPaths[name]
		if al == nil {
			ar.at(i).errorf("AS-path list %q is not declared: add [%s.as_path_list.%s]", name, l.key, name)
			continue
		}
		m.ASPathLists = append(m.ASPathLists, name)
		m.ASPaths = append(m.ASPaths, al.ASPaths...)
	}
}

// routeSet validates the changes of a filter or a rule.
func routeSet(r reporter, rs *rawRouteSet, export bool, b *BGP, n *Neighbor) RouteSet {
	var s RouteSet
	if rs.LocalPref != nil {
		lr := r.in("local_pref")
		switch v := *rs.LocalPref; {
		case v < 0 || v > 4294967295:
			lr.errorf("local_pref %d out of range 0-4294967295", v)
		case export && n.ASN != 0 && b.ASN != 0 && n.ASN != b.ASN:
			lr.errorf("local_pref is not sent to an eBGP neighbour (AS %d): set it in import filters, or use med", n.ASN)
		default:
			s.LocalPref, s.HasLocalPref = uint32(v), true
		}
	}
	if rs.MED != nil {
		if v := *rs.MED; v < 0 || v > 4294967295 {
			r.in("med").errorf("med %d out of range 0-4294967295", v)
		} else {
			s.MED, s.HasMED = uint32(v), true
		}
	}
	if rs.Prepend != nil {
		pr := r.in("prepend")
		switch v := *rs.Prepend; {
		case !export:
			pr.errorf("prepend applies to export filters only (it lengthens the AS path neighbours see)")
		case v < 1 || v > 16:
			pr.errorf("prepend %d out of range 1-16", v)
		default:
			s.Prepend = int(v)
		}
	}
	s.AddCommunities = communities(r.in("add_community"), rs.AddCommunity, false)
	s.RemoveCommunities = communities(r.in("remove_community"), rs.RemoveCommunity, true)
	// Removal and addition are separate steps: one undoing the other is
	// a mistake, whatever the order.
	for i, rm := range rs.RemoveCommunity {
		pat, err := ParseCommunity(rm)
		if err != nil {
			continue
		}
		for _, a := range s.AddCommunities {
			if pat.Matches(a) {
				r.in("remove_community").at(i).errorf("%s removes %s, which add_community adds", pat, a)
				break
			}
		}
	}
	return s
}

// prefixEntries parses a list of "PREFIX [ge N] [le M]".
func prefixEntries(r reporter, list []string) []PrefixMatch {
	var out []PrefixMatch
	for i, s := range list {
		m, err := ParsePrefixMatch(s)
		if err != nil {
			r.at(i).errorf("%v", err)
			continue
		}
		out = append(out, m)
	}
	return out
}

// communities parses a list of communities; wild allows "*" fields.
func communities(r reporter, list []string, wild bool) []Community {
	var out []Community
	seen := map[Community]bool{}
	for i, s := range list {
		c, err := ParseCommunity(s)
		switch {
		case err != nil:
			r.at(i).errorf("%v", err)
		case c.Wildcard() && !wild:
			r.at(i).errorf("%q: a wildcard only matches; communities to add must be exact", s)
		case seen[c]:
			r.at(i).errorf("community %s listed twice", c)
		default:
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// wellKnownCommunities are the RFC 1997/7999/8326 names accepted for
// standard communities.
var wellKnownCommunities = map[string][2]uint32{
	"no-export":           {65535, 65281},
	"no-advertise":        {65535, 65282},
	"no-export-subconfed": {65535, 65283},
	"blackhole":           {65535, 666},
	"graceful-shutdown":   {65535, 0},
}

// ParseCommunity parses a standard community "ASN:VALUE" (0-65535 each),
// a large community "A:B:C" (0-4294967295 each) or a well-known name
// (no-export, no-advertise, no-export-subconfed, blackhole,
// graceful-shutdown). A field may be "*" (any value); the caller decides
// where wildcards are allowed.
func ParseCommunity(s string) (Community, error) {
	if v, ok := wellKnownCommunities[s]; ok {
		return Community{Fields: [3]uint32{v[0], v[1]}}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return Community{}, fmt.Errorf("invalid community %q: want ASN:VALUE, A:B:C (large) or a well-known name (%s)", s, wellKnownNames())
	}
	c := Community{Large: len(parts) == 3}
	bits := 16
	if c.Large {
		bits = 32
	}
	for i, p := range parts {
		if p == "*" {
			c.Any[i] = true
			continue
		}
		v, err := strconv.ParseUint(p, 10, bits)
		if err != nil || p[0] == '+' {
			return Community{}, fmt.Errorf("invalid community %q: %q is not a number 0-%d or *", s, p, uint64(1)<<bits-1)
		}
		c.Fields[i] = uint32(v)
	}
	return c, nil
}

func wellKnownNames() string {
	var names []string
	for n := range wellKnownCommunities {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// asPathChars are the characters of an AS-path pattern: AS numbers,
// spaces and regular expression syntax ("_" is a delimiter: start, end,
// space or a set's brace).
var asPathChars = regexp.MustCompile(`^[0-9 _^$.*+?()|\[\]{},-]+$`)

// ASPathRegexpDelimiter is what "_" stands for in an AS-path pattern
// (as gobgp and Cisco read it).
const ASPathRegexpDelimiter = "(^|[,{}() ]|$)"

// asPathPatterns validates AS-path regular expressions.
func asPathPatterns(r reporter, list []string) []string {
	var out []string
	for i, s := range list {
		ar := r.at(i)
		switch {
		case strings.TrimSpace(s) == "":
			ar.errorf("empty AS-path pattern")
		case !asPathChars.MatchString(s):
			ar.errorf("AS-path pattern %q: use AS numbers, spaces, _ and regular expression syntax, e.g. \"^64600_\" or \"_64666_\"", s)
		default:
			if _, err := regexp.Compile(strings.ReplaceAll(s, "_", ASPathRegexpDelimiter)); err != nil {
				ar.errorf("AS-path pattern %q: %v", s, err)
				continue
			}
			out = append(out, s)
		}
	}
	return out
}
