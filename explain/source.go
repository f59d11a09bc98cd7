package explain

import (
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/fwdproject/fwd/config"
)

// source locates the configuration objects behind fwd identities: rules
// and NAT entries by ID, zone-pair defaults by the [[policy]] entry that
// sets them, static routes by key path; and places each at its line in
// the TOML file.
//
// The validated model keeps a rule's index (config.Rule.Index) but not
// its line, so the file is indexed here: array-of-tables headers
// ([[tenant.fw.rule]]) and table headers, by key path. A config without
// a readable file (built in memory) gives references without lines.
type source struct {
	file  string
	t     *config.Tenant
	lines map[string]int
	// policies holds the raw from/to lists of the tenant's [[policy]]
	// entries, in file order (the model flattens them into pairs).
	policies []rawPolicy
}

type rawPolicy struct {
	From, To []string
}

var (
	reHeader = regexp.MustCompile(`^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$`)
	reQuote  = regexp.MustCompile(`["']`)
)

func newSource(cfg *config.Config, t *config.Tenant) *source {
	s := &source{file: cfg.File, t: t, lines: map[string]int{}}
	data, err := os.ReadFile(cfg.File)
	if cfg.File == "" || err != nil {
		return s
	}
	counts := map[string]int{}
	inMultiline := false
	for n, line := range strings.Split(string(data), "\n") {
		if c := strings.Count(line, `"""`) + strings.Count(line, `'''`); c%2 == 1 {
			inMultiline = !inMultiline
			continue
		}
		if inMultiline {
			continue
		}
		m := reHeader.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		parts := strings.Split(reQuote.ReplaceAllString(m[2], ""), ".")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		path := strings.Join(parts, ".")
		if m[1] == "[[" {
			i := counts[path]
			counts[path] = i + 1
			path += "[" + strconv.Itoa(i) + "]"
		}
		if _, ok := s.lines[path]; !ok {
			s.lines[path] = n + 1
		}
	}
	var raw struct {
		Tenant map[string]struct {
			Policy []struct {
				From any `toml:"from"`
				To   any `toml:"to"`
			} `toml:"policy"`
		} `toml:"tenant"`
	}
	if _, err := toml.Decode(string(data), &raw); err == nil {
		for _, p := range raw.Tenant[t.Name].Policy {
			s.policies = append(s.policies, rawPolicy{From: strList(p.From), To: strList(p.To)})
		}
	}
	return s
}

func strList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func (s *source) ref(id, key string) *RuleRef {
	r := &RuleRef{ID: id, Key: key}
	if key != "" {
		if l := s.lines[key]; l > 0 {
			r.File, r.Line = s.file, l
		}
	}
	return r
}

func (s *source) tkey() string { return "tenant." + s.t.Name }

// rule returns the config rule of a filter identity, or nil.
func (s *source) rule(id string) *config.Rule {
	for _, r := range s.t.Policy.Rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

func (s *source) nat(id string) *config.NAT {
	for _, n := range s.t.Policy.NAT {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// ruleRef resolves a kernel rule identity to its configuration object.
func (s *source) ruleRef(id, comment string) *RuleRef {
	if r := s.rule(id); r != nil {
		ref := s.ref(id, s.tkey()+".rule["+strconv.Itoa(r.Index)+"]")
		ref.Name, ref.Comment = r.Name, r.Comment
		return ref
	}
	if n := s.nat(id); n != nil {
		ref := s.ref(id, s.tkey()+".nat["+strconv.Itoa(n.Index)+"]")
		ref.Comment = comment
		return ref
	}
	if from, to, ok := s.defaultPair(id); ok {
		return s.defaultRef(id, from, to)
	}
	return &RuleRef{ID: id, Comment: comment}
}

// memberRef is the reference of one config rule of a merged group.
func (s *source) memberRef(group string, r *config.Rule) *RuleRef {
	ref := s.ref(group, s.tkey()+".rule["+strconv.Itoa(r.Index)+"]")
	ref.Member, ref.Comment = r.ID, r.Comment
	return ref
}

// zoneNames are the zones that have chains: declared zones with
// interfaces, and unzoned.
func (s *source) zoneNames() []string {
	var out []string
	for _, z := range s.t.Policy.Zones {
		if len(z.Interfaces) > 0 {
			out = append(out, z.Name)
		}
	}
	return append(out, "unzoned")
}

// defaultPair recovers the zone pair of a "_default/CHAIN" identity.
// Zone names may contain '_', so fw_A_B is split against known zones.
func (s *source) defaultPair(id string) (from, to string, ok bool) {
	chain, found := strings.CutPrefix(id, "_default/")
	if !found {
		return "", "", false
	}
	zones := s.zoneNames()
	known := func(z string) bool {
		for _, k := range zones {
			if k == z {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(chain, "in_") && known(chain[3:]):
		return chain[3:], config.ZoneSelf, true
	case strings.HasPrefix(chain, "out_") && known(chain[4:]):
		return config.ZoneSelf, chain[4:], true
	case strings.HasPrefix(chain, "fw_"):
		rest := chain[3:]
		for _, a := range zones {
			if b, ok := strings.CutPrefix(rest, a+"_"); ok && known(b) {
				return a, b, true
			}
		}
	}
	return "", "", false
}

// defaultRef places a zone pair's default verdict at the [[policy]]
// entry that sets it, following config.Policy.DefaultFor's order.
func (s *source) defaultRef(id, from, to string) *RuleRef {
	p := &s.t.Policy
	ref := &RuleRef{ID: id}
	for _, cand := range [][2]string{{from, to}, {from, config.ZoneAny}, {config.ZoneAny, to}, {config.ZoneAny, config.ZoneAny}} {
		for _, d := range p.Defaults {
			if d.From != cand[0] || d.To != cand[1] {
				continue
			}
			ref.Comment = "policy " + d.From + " -> " + d.To + " = " + string(d.Action)
			for i, rp := range s.policies {
				if contains(rp.From, d.From) && contains(rp.To, d.To) {
					return withPos(ref, s, s.tkey()+".policy["+strconv.Itoa(i)+"]")
				}
			}
			return ref
		}
	}
	if from == config.ZoneSelf {
		ref.Comment = "built-in default: traffic from self is accepted"
	} else {
		ref.Comment = "built-in default: no [[policy]] for " + from + " -> " + to + ", drop"
	}
	return ref
}

func withPos(r *RuleRef, s *source, key string) *RuleRef {
	p := s.ref(r.ID, key)
	p.Comment = r.Comment
	return p
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// routeRef places a static route at its [[route]] entry.
func (s *source) routeRef(key string) *RuleRef {
	if key == "" {
		return nil
	}
	return s.ref("", key)
}

// Locator places fwd rule identities (as kernel rule comments carry
// them) in a tenant's configuration; `fwd trace` uses it to print TOML
// positions instead of handles. Build it once per trace.
type Locator struct{ s *source }

// NewLocator indexes cfg's file for tenant t.
func NewLocator(cfg *config.Config, t *config.Tenant) *Locator {
	return &Locator{s: newSource(cfg, t)}
}

// Locate returns the configuration object behind identity id: a rule, a
// NAT entry, a zone pair's default (at its [[policy]] entry), a merged
// group, or a built-in rule (no position).
func (l *Locator) Locate(id, comment string) *RuleRef {
	return l.s.ruleRef(id, comment)
}
