package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/fwdproject/fwd/config"
)

// TableName is fwd's one table per namespace (family inet). It is not an
// nft keyword, so `nft list ruleset` can print it.
const TableName = "fwd_policy"

// stateSet carries the ruleset hash in its comment and, as one element
// per static address set, the hash of the elements that set holds (a
// set's own comment cannot be changed without re-creating the set, and
// sets are updated element by element). Reloads compare them to decide
// what must be sent. It is rewritten by every non-empty transaction.
const stateSet = "fwd_state"

// Ruleset is the desired content of fwd's table: a pure value compiled
// from the config, rendered to nft text or sent over netlink.
type Ruleset struct {
	Sets   []*NamedSet
	IfSets []*IfSet // interface sets and dispatch maps (small; rebuilt on every apply)
	Chains []*Chain
	Hash   string // sha256 of the rendered ruleset (without the hash)

	source fingerprint // of the tenant config it was compiled from (CompileFrom)
}

// NamedSet is a kernel address set of one address family.
type NamedSet struct {
	Name  string
	V6    bool
	Elems []config.AddrRange // sorted, merged
	Hash  string             // of the elements; recorded in the state set
	// Interval: some element is a range or prefix, so the set is an
	// interval set (rbtree). A set of single addresses is a hash set: one
	// O(1) lookup per new flow instead of a tree walk.
	Interval bool
	// Dynamic: a live set for automation (SetAdd, SetDel…). Elems only
	// seed it when it is created; reloads never flush it nor touch its
	// elements. It is always an interval set with the timeout flag, so
	// elements may carry their own timeout.
	Dynamic bool
	Timeout time.Duration // dynamic sets: default element timeout (0: none)

	source fingerprint // of the config set it was compiled from (CompileFrom)
}

// kind is what fixes a set's kernel declaration; a set whose kind changed
// must be re-created.
func (s *NamedSet) kind() setKind {
	if s.Dynamic {
		return setKind{Interval: true, Timeout: true, DefaultTimeout: s.Timeout}
	}
	return setKind{Interval: s.Interval}
}

// setKind is the part of a set's declaration that cannot change in place.
type setKind struct {
	Interval, Timeout bool
	DefaultTimeout    time.Duration
}

// hasRanges reports whether some range is not a single address.
func hasRanges(rs []config.AddrRange) bool {
	for _, r := range rs {
		if r.From != r.To {
			return true
		}
	}
	return false
}

// elemsHash hashes the ranges' bytes (as netip.Addr.AsSlice gives them),
// through one buffer: no allocation per element.
func elemsHash(rs []config.AddrRange) string {
	h := sha256.New()
	buf := make([]byte, 0, 32<<10)
	for _, r := range rs {
		if len(buf) > cap(buf)-32 {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = appendAddr(appendAddr(buf, r.From), r.To)
	}
	h.Write(buf)
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

	hash string // content hash, computed once (see key.go)
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
