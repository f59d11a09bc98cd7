package explain

import (
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/config"
)

// source locates the configuration objects behind fwd identities: rules
// and NAT entries by ID, zone-pair defaults by the [[policy]] entry that
// sets them, static routes by key path; and places each at its line in
// the TOML file, as the config model records it (Rule.Line, NAT.Line,
// ZonePolicy.Line, Route.Line). Nothing is read from the file.
type source struct {
	file string
	t    *config.Tenant
}

func newSource(cfg *config.Config, t *config.Tenant) *source {
	return &source{file: cfg.File, t: t}
}

// ref is the reference of the object at key, written at line (0: unknown).
func (s *source) ref(id, key string, line int) *RuleRef {
	r := &RuleRef{ID: id, Key: key}
	if line > 0 && s.file != "" {
		r.File, r.Line = s.file, line
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
		ref := s.ref(id, s.tkey()+".rule["+strconv.Itoa(r.Index)+"]", r.Line)
		ref.Name, ref.Comment = r.Name, r.Comment
		return ref
	}
	if n := s.nat(id); n != nil {
		ref := s.ref(id, s.tkey()+".nat["+strconv.Itoa(n.Index)+"]", n.Line)
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
	ref := s.ref(group, s.tkey()+".rule["+strconv.Itoa(r.Index)+"]", r.Line)
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
	for _, cand := range [][2]string{{from, to}, {from, config.ZoneAny}, {config.ZoneAny, to}, {config.ZoneAny, config.ZoneAny}} {
		for _, d := range s.t.Policy.Defaults {
			if d.From == cand[0] && d.To == cand[1] {
				ref := s.ref(id, d.Key, d.Line)
				ref.Comment = "policy " + d.From + " -> " + d.To + " = " + string(d.Action)
				return ref
			}
		}
	}
	ref := &RuleRef{ID: id}
	if from == config.ZoneSelf {
		ref.Comment = "built-in default: traffic from self is accepted"
	} else {
		ref.Comment = "built-in default: no [[policy]] for " + from + " -> " + to + ", drop"
	}
	return ref
}

// routeRef places a static route at its [[route]] entry.
func (s *source) routeRef(key string) *RuleRef {
	for _, r := range s.t.Routing.Routes {
		if r.Key == key && key != "" {
			return s.ref("", key, r.Line)
		}
	}
	return nil
}

// Locator places fwd rule identities (as kernel rule comments carry
// them) in a tenant's configuration; `fwd trace` uses it to print TOML
// positions instead of handles. Build it once per trace.
type Locator struct{ s *source }

// NewLocator places identities in tenant t of cfg, by the lines cfg records.
func NewLocator(cfg *config.Config, t *config.Tenant) *Locator {
	return &Locator{s: newSource(cfg, t)}
}

// Locate returns the configuration object behind identity id: a rule, a
// NAT entry, a zone pair's default (at its [[policy]] entry), a merged
// group, or a built-in rule (no position).
func (l *Locator) Locate(id, comment string) *RuleRef {
	return l.s.ruleRef(id, comment)
}
