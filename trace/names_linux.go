package trace

import (
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/fwdproject/fwd/policy"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// namer turns rule handles into fwd identities and interface indexes
// into names. Handles change when policy rewrites the table, so an
// unknown handle re-reads it once; a handle still unknown after that (a
// rule deleted while tracing) is remembered as unknown, so it never costs
// another read of the table.
type namer struct {
	h     netns.NsHandle
	rules map[uint64]policy.ObservedRule // zero Handle: known to be unknown
	links map[uint32]string
	nl    *netlink.Handle
}

func newNamer(h netns.NsHandle) *namer {
	n := &namer{h: h, links: map[uint32]string{}}
	n.nl, _ = rtnl.LinkHandle(h)
	return n
}

func (n *namer) load() {
	n.rules = map[uint64]policy.ObservedRule{}
	st, err := policy.Observe(n.h)
	if err != nil {
		return
	}
	for _, ch := range st.Chains {
		for _, r := range ch.Rules {
			n.rules[r.Handle] = r
		}
	}
}

func (n *namer) link(idx uint32) string {
	if idx == 0 {
		return ""
	}
	if s, ok := n.links[idx]; ok {
		return s
	}
	s := ""
	if n.nl != nil {
		if l, err := n.nl.LinkByIndex(int(idx)); err == nil {
			s = l.Attrs().Name
		}
	}
	n.links[idx] = s
	return s
}

func (n *namer) resolve(ev *Event) {
	ev.In, ev.Out = n.link(ev.iif), n.link(ev.oif)
	if ev.Table != policy.TableName || ev.Handle == 0 {
		return
	}
	r, ok := n.rules[ev.Handle]
	if !ok {
		n.load()
		if r, ok = n.rules[ev.Handle]; !ok {
			n.rules[ev.Handle] = policy.ObservedRule{}
		}
	}
	if r.Handle != 0 {
		ev.RuleID, ev.Comment = r.ID(), r.Comment
	}
}

func (n *namer) close() {
	if n.nl != nil {
		n.nl.Close()
	}
}
