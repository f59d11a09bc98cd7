package bgp

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"sync"

	"github.com/fwdproject/fwd/internal/rtnl"
)

// Kernel nexthop objects for the FIB (see docs/bgp.md, "Nexthop objects
// and failover"). Every route the speaker installs refers to an object
// (RTA_NH_ID) standing for one (neighbour, next hop) pair. When a session
// ends without graceful restart:
//
//   - with a backup neighbour (established, same family, directly
//     connected, with at least 90% as many accepted prefixes as the
//     object carries routes), the object is replaced in place with the
//     backup's address as gateway: one RTM_NEWNEXTHOP moves every route
//     (BGP PIC edge). gobgp's per-prefix best-path changes that follow
//     name the backup and find the route already equivalent: nothing is
//     written; prefixes the backup lacks are withdrawn one by one.
//   - otherwise the object is deleted: the kernel drops every route using
//     it at once, and the withdrawals gobgp emits afterwards only update
//     the bookkeeping (no kernel message).
//
// A next hop that is not on a connected subnet cannot be an object (the
// kernel wants its device); its routes carry the gateway, as before.

// nhIDBase is where the speaker's nexthop IDs start; IDs of other owners
// found in the namespace are skipped.
const nhIDBase = 0x00BA0000

// nhKey is the neighbour a best path came from and its next hop. An
// invalid peer marks an object or gateway taken over from a previous
// speaker and not yet claimed by a path.
type nhKey struct {
	peer, gw netip.Addr
}

type nexthop struct {
	key     nhKey
	id      uint32 // kernel object ID; 0: its routes carry key.gw
	ifindex int
	refs    int  // installed routes using it
	dead    bool // deleted from the kernel, with its routes
	stale   bool // taken over from a previous speaker
	free    bool // slot unused
}

// nexthopTable is the FIB worker's nexthops, indexed by the value of a
// fibEntry.
type nexthopTable struct {
	list  []nexthop
	freed []uint32
	canon map[nhKey]uint32 // the object new routes for a key use
	used  map[uint32]bool  // kernel IDs taken (ours and others')
	next  uint32
	zero  []uint32 // entries whose refs dropped to 0: collect looks at them
}

func newNexthopTable() nexthopTable {
	return nexthopTable{canon: map[nhKey]uint32{}, used: map[uint32]bool{}}
}

func (t *nexthopTable) add(n nexthop) uint32 {
	if k := len(t.freed); k > 0 {
		i := t.freed[k-1]
		t.freed = t.freed[:k-1]
		t.list[i] = n
		return i
	}
	t.list = append(t.list, n)
	return uint32(len(t.list) - 1)
}

// adoptObject records an object of ours that a previous speaker left.
func (t *nexthopTable) adoptObject(o rtnl.Nexthop) uint32 {
	i := t.add(nexthop{key: nhKey{gw: o.Gw.Unmap()}, id: o.ID, ifindex: o.Ifindex, stale: true})
	t.zero = append(t.zero, i) // unless a route uses it
	return i
}

// equivalent reports whether a route on entry i already forwards as a
// path with key k would. An object taken over from a previous speaker
// with k's gateway is claimed by k's neighbour on the way.
func (t *nexthopTable) equivalent(i uint32, k nhKey) bool {
	n := &t.list[i]
	if n.key == k {
		return true
	}
	if n.key.peer.IsValid() || n.id == 0 || n.key.gw != k.gw {
		return false
	}
	n.key, n.stale = k, false
	if _, ok := t.canon[k]; !ok {
		t.canon[k] = i
	}
	return true
}

func (t *nexthopTable) allocID() uint32 {
	for {
		id := nhIDBase + t.next
		t.next++
		if !t.used[id] {
			t.used[id] = true
			return id
		}
	}
}

// writeNexthop sends one nexthop message and waits for its ack.
func (f *fib) writeNexthop(k rtnl.Kind, nh *rtnl.Nexthop) error {
	res, err := f.c.WriteNexthops(f.proto, rtnl.AckEach, 1, func(int) (rtnl.Kind, *rtnl.Nexthop) { return k, nh })
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return res.Failed[0].Err
	}
	return nil
}

// onLink returns the interface through which addr is directly reachable,
// or 0 (not on a connected subnet, or no route).
func (f *fib) onLink(addr netip.Addr) int {
	r, err := f.c.Lookup(addr)
	if err != nil || len(r.NextHops) != 1 || r.NextHops[0].Gw.IsValid() {
		return 0
	}
	return r.NextHops[0].Ifindex
}

// nexthopFor returns the entry routes for k use, creating its kernel
// object first if needed. Worker only.
func (f *fib) nexthopFor(k nhKey) uint32 {
	t := &f.nh
	if i, ok := t.canon[k]; ok && !t.list[i].dead {
		return i
	}
	// An object a previous speaker left for this gateway and that no path
	// has claimed yet is k's: the order in which re-learned paths arrive
	// must not decide whether it is reused or a second object is made.
	for j := range t.list {
		o := &t.list[j]
		if !o.free && !o.dead && o.stale && o.id != 0 && !o.key.peer.IsValid() && o.key.gw == k.gw {
			o.key, o.stale = k, false
			t.canon[k] = uint32(j)
			return uint32(j)
		}
	}
	n := nexthop{key: k}
	if ifx := f.onLink(k.gw); ifx != 0 {
		for try := 0; try < 4; try++ {
			id := t.allocID()
			err := f.writeNexthop(rtnl.Create, &rtnl.Nexthop{ID: id, Gw: k.gw, Ifindex: ifx})
			if err == nil {
				n.id, n.ifindex = id, ifx
				break
			}
			if !errors.Is(err, rtnl.ErrExists) { // ErrExists: another owner's ID; next one
				delete(t.used, id)
				f.log.Warn("nexthop object refused; routes carry the gateway", "gateway", k.gw, "error", err)
				break
			}
		}
	}
	i := t.add(n)
	t.canon[k] = i
	t.zero = append(t.zero, i) // goes again if no route ends up using it
	return i
}

// collect deletes the objects no route uses any more and frees their
// entries. Worker only.
func (f *fib) collect() {
	t := &f.nh
	for _, i := range t.zero {
		n := &t.list[i]
		if n.free || n.refs != 0 {
			continue
		}
		if n.id != 0 {
			if n.dead {
				delete(t.used, n.id)
			} else if err := f.writeNexthop(rtnl.Delete, &rtnl.Nexthop{ID: n.id}); err == nil || errors.Is(err, rtnl.ErrNotFound) {
				delete(t.used, n.id)
			} else {
				f.log.Warn("delete unused nexthop object", "id", n.id, "error", err)
			}
		}
		if c, ok := t.canon[n.key]; ok && c == i {
			delete(t.canon, n.key)
		}
		*n = nexthop{free: true}
		t.freed = append(t.freed, i)
	}
	t.zero = t.zero[:0]
}

// sessionLost is told by gobgp's FSM (through its log, the earliest
// signal: before gobgp drops the neighbour's paths) or by the peer-state
// event that a session left Established, and why.
func (f *fib) sessionLost(addr netip.Addr, reason string) {
	f.peers.setUp(addr, false)
	f.mu.Lock()
	f.lossSeen[addr] = true
	if reason != "graceful-restart" {
		// gobgp keeps a restarting neighbour's paths (stale): so do we.
		f.losses = append(f.losses, addr)
	}
	f.mu.Unlock()
	f.poke()
}

// peerLost repoints (to a backup) or deletes the objects of a neighbour
// whose session ended. Worker only.
func (f *fib) peerLost(peer netip.Addr) {
	t := &f.nh
	var moved, deleted, routes int
	for i := range t.list {
		n := &t.list[i]
		if n.free || n.dead || n.id == 0 || n.key.peer != peer {
			continue
		}
		if k, ifx, ok := f.backup(peer, n); ok {
			err := f.writeNexthop(rtnl.Replace, &rtnl.Nexthop{ID: n.id, Gw: k.gw, Ifindex: ifx})
			if err == nil {
				if c, ok := t.canon[n.key]; ok && c == uint32(i) {
					delete(t.canon, n.key)
				}
				n.key, n.ifindex = k, ifx
				if _, ok := t.canon[k]; !ok {
					t.canon[k] = uint32(i)
				}
				moved++
				routes += n.refs
				f.log.Info("session lost: routes moved to the backup neighbour", "neighbor", peer, "backup", k.peer, "routes", n.refs, "nexthop", n.id)
				continue
			}
			f.log.Warn("repoint nexthop to backup", "id", n.id, "error", err)
		}
		err := f.writeNexthop(rtnl.Delete, &rtnl.Nexthop{ID: n.id})
		if err != nil && !errors.Is(err, rtnl.ErrNotFound) {
			// gobgp's withdrawals will remove the routes one by one.
			f.log.Warn("delete nexthop of lost neighbour", "id", n.id, "error", err)
			continue
		}
		if c, ok := t.canon[n.key]; ok && c == uint32(i) {
			delete(t.canon, n.key)
		}
		n.dead = true
		f.dead += n.refs
		deleted++
		routes += n.refs
		if n.refs == 0 {
			t.zero = append(t.zero, uint32(i))
		}
	}
	if moved+deleted > 0 {
		f.log.Info("session lost: nexthop objects rewritten", "neighbor", peer, "moved", moved, "deleted", deleted, "routes", routes)
	}
	f.collect()
	f.publishCounts()
}

// backup picks the neighbour that takes over n's routes when n's
// neighbour is lost, and its interface. Worker only.
func (f *fib) backup(lost netip.Addr, n *nexthop) (nhKey, int, bool) {
	fam := 1
	if n.key.gw.Is4() {
		fam = 0
	}
	type cand struct {
		addr     netip.Addr
		accepted uint64
	}
	var cs []cand
	f.peers.mu.Lock()
	for a, s := range f.peers.m {
		if a != lost && s.up && a.Is4() == n.key.gw.Is4() && float64(s.accepted[fam]) >= 0.9*float64(n.refs) {
			cs = append(cs, cand{a, s.accepted[fam]})
		}
	}
	f.peers.mu.Unlock()
	slices.SortFunc(cs, func(a, b cand) int {
		if c := cmp.Compare(b.accepted, a.accepted); c != 0 {
			return c // most prefixes first
		}
		return a.addr.Compare(b.addr)
	})
	for _, c := range cs {
		if ifx := f.onLink(c.addr); ifx != 0 {
			return nhKey{peer: c.addr, gw: c.addr}, ifx, true
		}
	}
	return nhKey{}, 0, false
}

// peerView is what the FIB knows of the neighbours for choosing a
// backup: session state (from gobgp's events) and accepted prefixes per
// family (refreshed every few seconds from ListPeer).
type peerView struct {
	mu sync.Mutex
	m  map[netip.Addr]*peerSnap
}

type peerSnap struct {
	up       bool
	accepted [2]uint64 // IPv4, IPv6
}

func (v *peerView) get(a netip.Addr) *peerSnap {
	s := v.m[a]
	if s == nil {
		s = &peerSnap{}
		v.m[a] = s
	}
	return s
}

func (v *peerView) setUp(a netip.Addr, up bool) {
	v.mu.Lock()
	v.get(a).up = up
	v.mu.Unlock()
}

func (v *peerView) setAccepted(a netip.Addr, fam int, n uint64) {
	v.mu.Lock()
	v.get(a).accepted[fam] = n
	v.mu.Unlock()
}

// flushUnusedNexthops deletes the objects of proto that no route of
// proto (in any table) uses.
func flushUnusedNexthops(c *rtnl.Conn, proto uint8) error {
	objs, err := c.Nexthops(proto)
	if err != nil || len(objs) == 0 {
		return err
	}
	routes, err := c.Routes(rtnl.Filter{Protocol: proto})
	if err != nil {
		return err
	}
	inUse := map[uint32]bool{}
	for i := range routes {
		inUse[routes[i].NHID] = true
	}
	var del []rtnl.Nexthop
	for _, o := range objs {
		if !inUse[o.ID] {
			del = append(del, o)
		}
	}
	res, err := c.WriteNexthops(proto, rtnl.AckErrors, len(del), func(i int) (rtnl.Kind, *rtnl.Nexthop) { return rtnl.Delete, &del[i] })
	if err != nil {
		return err
	}
	var errs []error
	for _, fl := range res.Failed {
		if !errors.Is(fl.Err, rtnl.ErrNotFound) {
			errs = append(errs, fl.Err)
		}
	}
	return errors.Join(errs...)
}
