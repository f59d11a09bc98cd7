package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/fwdproject/fwd/config"
)

// TableName is fwd's one table per namespace (family inet). It is not an
// nft keyword, so `nft list ruleset` can print it.
const TableName = "fwd_policy"

// stateSet carries the ruleset hash in its comment; reloads compare it to
// decide whether anything must be sent to the kernel.
const stateSet = "fwd_state"

// Ruleset is the desired content of fwd's table: a pure value compiled
// from the config, rendered to nft text or sent over netlink.
type Ruleset struct {
	Sets   []*NamedSet
	IfSets []*IfSet // interface sets and dispatch maps (small; rebuilt on every apply)
	Chains []*Chain
	Hash   string // sha256 of the rendered ruleset (without the hash)
}

// NamedSet is a kernel interval set of one address family.
type NamedSet struct {
	Name  string
	V6    bool
	Elems []config.AddrRange // sorted, merged
	Hash  string             // of the elements; kept in the set's comment
}

func (s *NamedSet) comment() string { return "sha256:" + s.Hash }

func elemsHash(rs []config.AddrRange) string {
	h := sha256.New()
	for _, r := range rs {
		h.Write(r.From.AsSlice())
		h.Write(r.To.AsSlice())
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// IfSet is a named set of interface names or, with Map, a verdict map
// from interface name to "goto chain" (zone dispatch). Named rather than
// anonymous so that `nft list ruleset` prints the names.
type IfSet struct {
	Name  string
	Map   bool
	Names []string
	Elems []VmapElem
}

// Chain is one chain of the table. Base chains have a Hook.
type Chain struct {
	Name     string
	Type     string // "filter" or "nat" (base chains)
	Hook     string // "", input, forward, output, prerouting, postrouting
	Priority int
	Policy   string // base chains: accept or drop
	Rules    []*Rule
}

// Rule is one kernel rule: statements in order, and its identity, which
// goes into the rule's comment (userdata) so counters can be read back.
type Rule struct {
	ID      string
	Comment string
	Stmts   []Stmt
	Members []string // merged groups: identities of the config rules merged
}

// comment is what is stored in the kernel: "id" or "id: comment".
func (r *Rule) comment() string {
	c := r.ID
	if r.Comment != "" {
		c += ": " + r.Comment
	}
	if len(c) > 127 {
		c = c[:127]
	}
	return c
}

// IDFromComment recovers a rule identity from a kernel rule comment.
func IDFromComment(c string) string {
	if i := strings.Index(c, ": "); i >= 0 {
		return c[:i]
	}
	return c
}

// Identities of the built-in rules. User rule names start with a letter
// or digit, so the leading '_' cannot collide.
const (
	idCtState  = "_ct-state"
	idLoopback = "_loopback"
	idICMP     = "_icmp"
	idICMPv6   = "_icmpv6"
	idND       = "_nd"
	idInvalid  = "_invalid"
	idDispatch = "_dispatch"
	idReject   = "_reject"
	idDefault  = "_default"
	idMerged   = "_merged" // merged groups: "_merged/CHAIN/N"
)

// isMerged reports whether id names a merged group of rules.
func isMerged(id string) bool { return strings.HasPrefix(id, idMerged+"/") }

func hashOf(rs *Ruleset) string {
	h := sha256.New()
	writeRuleset(h, rs, false) // sets contribute their element hash
	return hex.EncodeToString(h.Sum(nil))
}
