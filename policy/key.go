package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Rule identity in the kernel. Each kernel rule carries, in its userdata
// (next to the nft comment, as TLVs that nft ignores), the hash of its
// content and, for the counting rule of a merged group, the hash of the
// group's members. Observe reads them back with each rule's handle, so a
// reload compares rules by hash, deletes by handle and inserts by
// position: a one-rule change sends one rule, and untouched rules (and
// their counters) are never rewritten.
const (
	udataHash    = 0xf0 // content hash of the rule
	udataMembers = 0xf1 // merged groups: hash of the member identities
)

// key is the rule's content hash: its comment (identity), statements
// (counter values excluded) and merged members. Two kernel rules with the
// same key are interchangeable.
func (r *Rule) key() string {
	if r.hash == "" {
		h := sha256.New()
		h.Write([]byte(r.comment()))
		for _, s := range r.Stmts {
			h.Write([]byte{0})
			h.Write([]byte(s.text()))
		}
		h.Write([]byte{1})
		h.Write([]byte(strings.Join(r.Members, ",")))
		r.hash = hex.EncodeToString(h.Sum(nil))[:24]
	}
	return r.hash
}

// membersKey is the hash of a merged group's member identities ("" for
// other rules): a merged group's counter is carried only to a group with
// the same members.
func (r *Rule) membersKey() string {
	if len(r.Members) == 0 {
		return ""
	}
	return membersHash(r.Members)
}

func membersHash(ids []string) string {
	h := sha256.Sum256([]byte(strings.Join(ids, ",")))
	return hex.EncodeToString(h[:])[:24]
}

// hashOf hashes the whole ruleset from the per-rule hashes and the sets'
// element hashes, without rendering 100k set elements or 10k rules twice.
func hashOf(rs *Ruleset) string {
	h := sha256.New()
	for _, s := range rs.Sets {
		fmt.Fprintf(h, "set %s %v %+v %s\n", s.Name, s.V6, s.kind(), s.Hash)
	}
	for _, s := range rs.IfSets {
		fmt.Fprintf(h, "ifset %s %v %q %v\n", s.Name, s.Map, s.Names, s.Elems)
	}
	for _, ch := range rs.Chains {
		fmt.Fprintf(h, "chain %s %s %s %d %s\n", ch.Name, ch.Type, ch.Hook, ch.Priority, ch.Policy)
		for _, r := range ch.Rules {
			h.Write([]byte(r.key()))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// carryKey says which counter a new kernel rule inherits from a rule it
// replaces. Ordinary rules: the same chain, identity and occurrence of
// that identity in the chain (one config rule may compile to several
// kernel rules). Counting rules of merged groups: the same parent chain,
// verdict and members, whatever the group's number (numbers shift when a
// group is added or removed before it).
type carryKey struct {
	Chain, ID string
	N         int
}

// mergedCarryKey is the key of a merged group's counting rule, which
// lives in chain m_PARENT_N_VERDICT and has identity _merged/PARENT/N.
func mergedCarryKey(chain, id, members string) carryKey {
	parent := strings.TrimPrefix(id, idMerged+"/")
	if i := strings.LastIndex(parent, "/"); i >= 0 {
		parent = parent[:i]
	}
	verdict := chain[strings.LastIndex(chain, "_")+1:]
	return carryKey{Chain: parent, ID: idMerged + " " + verdict + " " + members}
}
