package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fwdproject/fwd/internal/rtnl"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/vishvananda/netns"
)

// Protocol is the rtm_protocol of the routes the speaker installs: 244,
// fwd's own number, named "fwd-bgp" by the package's
// /etc/iproute2/rt_protos.d/fwd.conf (`ip route show proto fwd-bgp`).
// It is not 186 ("bgp"), which BIRD and FRR use too: the stale sweep and
// the flush delete every route carrying Protocol, and must never touch
// another daemon's routes in the same table. It differs from the routing
// package's (routing.Protocol, 243) for the same reason: each reconciler
// garbage-collects only its own protocol, so static routes and BGP routes
// never delete each other. A static route and a BGP route for
// the same prefix and metric cannot coexist in one table: the kernel
// refuses the second; the speaker logs it and counts it as a failure.
const Protocol = 244

// ProtocolName is the name rt_protos.d/fwd.conf gives Protocol.
const ProtocolName = "fwd-bgp"

// fib mirrors gobgp's best paths into one kernel table, as an owner on
// the kernel-route layer (rtnl) under its own protocol number. Routes
// learned from one neighbour with one next hop share one kernel nexthop
// object (fib_nexthop_linux.go), so a session loss is one object delete
// (or, with a backup neighbour, one object replace) instead of a write
// per route. Updates are coalesced per prefix: under churn only the
// latest best path for a prefix is written.
type fib struct {
	log   *slog.Logger
	c     *rtnl.Conn // dumps and batched writes, in the speaker's namespace
	table uint32
	proto uint8

	mu        sync.Mutex
	pending   prefixMap // value: next-hop key index + 1; 0: remove
	keys      []nhKey   // interned (neighbour, next hop) pairs; append-only
	keyIdx    map[nhKey]uint32
	losses    []netip.Addr        // neighbours whose session ended, for the worker
	lossSeen  map[netip.Addr]bool // the FSM reported this session's end
	sweepReq  bool
	kick      chan struct{}
	lastWrite time.Time
	staleN    int // stale routes, readable under mu
	routesN   int // routes in the kernel, readable under mu
	failures  int // under mu

	peers peerView // neighbours' state, for the choice of a backup

	// The soft memory limit (refreshPeers), unless GOMEMLIMIT is set.
	envMemLimit bool
	memLimit    int64

	// Owned by the worker.
	installed prefixMap // what the kernel holds, as read or written: fibEntry
	metrics   map[netip.Prefix]uint32
	nh        nexthopTable
	stale     int        // entries with entStale
	dead      int        // entries whose nexthop object was deleted (routes gone)
	ops       []fibOp    // reused per batch
	msg       rtnl.Route // reused per message: one next hop, no allocation
}

// A fibEntry is one route the speaker owns in the kernel: the index of its
// next hop in the nexthop table, whether a previous speaker left it
// (stale) and whether its metric is not the family's default (0 for
// IPv4, 1024 for IPv6, what the kernel makes of metric 0), in which case
// fib.metrics holds it, so that a delete names exactly that route.
type fibEntry = uint32

const (
	entIndex     = 1<<24 - 1
	entStale     = 1 << 24
	entOddMetric = 1 << 25
)

// fibOp is one route write of a batch.
type fibOp struct {
	dst    netip.Prefix
	nh     uint32 // nexthop table index, for installs
	metric uint32 // deletes: the installed route's metric
	del    bool
	extra  bool // a delete of an odd-metric route before its replacement
}

// newFIB opens the speaker's FIB writer: table in the speaker's own
// namespace (it runs inside its tenant's), routes marked Protocol.
func newFIB(log *slog.Logger, table int) (*fib, error) {
	return newFIBAt(log, netns.None(), uint32(table), Protocol)
}

// newFIBAt opens a FIB writer for table in namespace h (netns.None(): the
// caller's), writing under proto.
func newFIBAt(log *slog.Logger, h netns.NsHandle, table uint32, proto uint8) (*fib, error) {
	c, err := rtnl.Open(h)
	if err != nil {
		return nil, err
	}
	f := &fib{log: log, c: c, table: table, proto: proto, pending: newPrefixMap(0),
		keyIdx: map[nhKey]uint32{}, lossSeen: map[netip.Addr]bool{}, kick: make(chan struct{}, 1),
		installed: newPrefixMap(0), metrics: map[netip.Prefix]uint32{}, nh: newNexthopTable()}
	f.peers.m = map[netip.Addr]*peerSnap{}
	_, f.envMemLimit = os.LookupEnv("GOMEMLIMIT")
	f.msg.NextHops = make([]rtnl.NextHop, 1)
	return f, nil
}

func (f *fib) close() error { return f.c.Close() }

// loadStale takes over the routes (and nexthop objects) a previous
// speaker left: they stay in the kernel (no blackhole while the sessions
// come back) and are removed by the sweep unless re-learned. What is
// recorded is what the kernel reports, not what a speaker meant to
// write, so that a later delete matches it. Routes may use one of our
// nexthop objects (this speaker's way) or carry their gateway (a speaker
// of an earlier version): both are recognised.
func (f *fib) loadStale() error {
	objs, err := f.c.Nexthops(0)
	if err != nil {
		return err
	}
	ours := map[uint32]uint32{} // kernel ID → nexthop table index
	for _, o := range objs {
		f.nh.used[o.ID] = true
		if o.Protocol == f.proto {
			ours[o.ID] = f.nh.adoptObject(o)
		}
	}
	routes, err := f.c.Routes(rtnl.Filter{Table: f.table, Protocol: f.proto})
	if err != nil {
		return err
	}
	gwIdx := map[netip.Addr]uint32{}
	var dups []fibOp
	for i := range routes {
		r := &routes[i]
		if _, dup := f.installed.get(r.Dst); dup {
			// A second route of ours for the prefix (another metric):
			// the bookkeeping holds one per prefix, so this one could
			// never be withdrawn. Remove it now.
			dups = append(dups, fibOp{dst: r.Dst, metric: r.Metric, del: true})
			continue
		}
		var idx uint32
		switch x, ok := ours[r.NHID]; {
		case r.NHID != 0 && ok:
			idx = x
		default:
			// A gateway route, or one on somebody else's object or with
			// several paths: a pseudo next hop that is never an object
			// of ours and never equivalent to a path (re-learned, the
			// route is rewritten onto an object).
			var gw netip.Addr
			if r.NHID == 0 && len(r.NextHops) == 1 {
				gw = r.NextHops[0].Gw.Unmap()
			}
			if x, ok := gwIdx[gw]; ok {
				idx = x
			} else {
				idx = f.nh.add(nexthop{key: nhKey{gw: gw}, stale: true})
				gwIdx[gw] = idx
			}
		}
		e := idx | entStale
		if r.Metric != rtnl.DefaultMetric(r.Dst) {
			e |= entOddMetric
			f.metrics[r.Dst] = r.Metric
		}
		f.installed.set(r.Dst, e)
		f.nh.list[idx].refs++
		f.stale++
	}
	if len(dups) > 0 {
		f.log.Warn("removing duplicate routes of the previous speaker", "routes", len(dups))
		if _, err := f.write(dups); err != nil {
			return err
		}
	}
	// Objects no route uses any more (their table changed, or the last
	// speaker died between a route move and the delete) go now.
	f.collect()
	f.publishCounts()
	if f.stale > 0 {
		f.log.Info("kept routes of the previous speaker until re-learned", "routes", f.stale, "nexthops", len(ours))
	}
	return nil
}

// write sends ops in one rtnl batch (errors-only acks: one reply per
// chunk and per failure). The outcome of ops from res.Done on is unknown
// if err is set.
func (f *fib) write(ops []fibOp) (rtnl.Result, error) {
	return f.c.WriteRoutes(f.proto, rtnl.AckErrors, len(ops), func(i int) (rtnl.Kind, *rtnl.Route) {
		op := &ops[i]
		m := &f.msg
		m.Table, m.Dst, m.Metric, m.NHID = f.table, op.dst, op.metric, 0
		m.NextHops = m.NextHops[:0]
		if op.del {
			return rtnl.Delete, m
		}
		n := &f.nh.list[op.nh]
		if n.id != 0 {
			m.NHID = n.id
		} else {
			m.NextHops = m.NextHops[:1]
			m.NextHops[0] = rtnl.NextHop{Gw: n.key.gw}
		}
		return rtnl.Replace, m
	})
}

// flushTable deletes every route of protocol proto in table of namespace
// h (netns.None(): the caller's): one dump, one batch; then the nexthop
// objects of proto that no route of proto uses any more. Routes and
// objects already gone are not an error.
func flushTable(h netns.NsHandle, table uint32, proto uint8) error {
	c, err := rtnl.Open(h)
	if err != nil {
		return err
	}
	defer c.Close()
	routes, err := c.Routes(rtnl.Filter{Table: table, Protocol: proto})
	if err != nil {
		return err
	}
	res, err := c.WriteRoutes(proto, rtnl.AckErrors, len(routes), func(i int) (rtnl.Kind, *rtnl.Route) {
		return rtnl.Delete, &routes[i]
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, fl := range res.Failed {
		if !errors.Is(fl.Err, rtnl.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete %s: %w", routes[fl.Index].Dst, fl.Err))
		}
	}
	if err := flushUnusedNexthops(c, proto); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// update queues best-path changes.
func (f *fib) update(paths []*api.Path) {
	if len(paths) == 0 {
		return
	}
	f.mu.Lock()
	var lastPeer string
	var peer netip.Addr
	for _, p := range paths {
		if p.Nlri == nil {
			continue // End-of-RIB marker
		}
		dst, nh, ok := decodePath(p)
		if !ok {
			continue
		}
		if p.IsWithdraw || !nh.IsValid() || nh.IsUnspecified() {
			f.pending.set(dst, 0) // withdrawn, or originated by this tenant
			continue
		}
		if p.NeighborIp != lastPeer {
			lastPeer = p.NeighborIp
			peer, _ = netip.ParseAddr(p.NeighborIp)
			peer = peer.Unmap()
		}
		f.pending.set(dst, f.intern(nhKey{peer: peer, gw: nh.Unmap()})+1)
	}
	f.mu.Unlock()
	f.poke()
}

// intern returns the index of k in f.keys. f.mu is held.
func (f *fib) intern(k nhKey) uint32 {
	if i, ok := f.keyIdx[k]; ok {
		return i
	}
	i := uint32(len(f.keys))
	f.keys = append(f.keys, k)
	f.keyIdx[k] = i
	return i
}

func decodePath(p *api.Path) (netip.Prefix, netip.Addr, bool) {
	var pfx api.IPAddressPrefix
	if err := p.Nlri.UnmarshalTo(&pfx); err != nil {
		return netip.Prefix{}, netip.Addr{}, false
	}
	a, err := netip.ParseAddr(pfx.Prefix)
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, false
	}
	dst := netip.PrefixFrom(a, int(pfx.PrefixLen)).Masked()
	var nh netip.Addr
	for _, at := range p.Pattrs {
		switch {
		case strings.HasSuffix(at.TypeUrl, ".NextHopAttribute"):
			var v api.NextHopAttribute
			if at.UnmarshalTo(&v) == nil {
				nh, _ = netip.ParseAddr(v.NextHop)
			}
		case strings.HasSuffix(at.TypeUrl, ".MpReachNLRIAttribute"):
			var v api.MpReachNLRIAttribute
			if at.UnmarshalTo(&v) == nil {
				for _, s := range v.NextHops {
					if x, err := netip.ParseAddr(s); err == nil && !x.IsLinkLocalUnicast() {
						nh = x
						break
					}
				}
			}
		}
	}
	return dst, nh, true
}

// run applies queued session losses and updates until ctx ends.
func (f *fib) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		f.step()
	}
}

// step is one round of the worker: session losses first (one nexthop
// write each, before the flood of per-prefix withdrawals gobgp emits for
// them), then the stale sweep if asked, then the pending updates.
func (f *fib) step() {
	f.mu.Lock()
	losses, sweep := f.losses, f.sweepReq
	f.losses, f.sweepReq = nil, false
	f.mu.Unlock()
	for _, p := range losses {
		f.peerLost(p)
	}
	if sweep {
		f.queueSweep()
	}
	f.mu.Lock()
	batch := f.pending
	f.pending = newPrefixMap(batch.len() / 2)
	keys := f.keys
	f.mu.Unlock()
	f.apply(batch, keys)
}

// apply writes a batch of updates (see fib.pending) whose key indexes
// refer to keys.
func (f *fib) apply(batch prefixMap, keys []nhKey) {
	ops := f.ops[:0]
	batch.each(func(dst netip.Prefix, v uint32) {
		cur, have := f.installed.get(dst)
		var n *nexthop
		if have {
			n = &f.nh.list[cur&entIndex]
		}
		switch {
		case v == 0 && !have:
		case v == 0 && n.dead:
			f.forget(dst, cur) // it went with its nexthop object
		case v == 0:
			ops = append(ops, fibOp{dst: dst, metric: f.metricOf(dst, cur), del: true})
		case have && !n.dead && f.nh.equivalent(cur&entIndex, keys[v-1]):
			if cur&entStale != 0 { // re-learned as it was: nothing to write
				f.installed.set(dst, cur&^entStale)
				f.stale--
			}
		default:
			if have && !n.dead && cur&entOddMetric != 0 {
				// The replacement has the default metric: a new kernel
				// key, so the old route must go explicitly.
				ops = append(ops, fibOp{dst: dst, metric: f.metricOf(dst, cur), del: true, extra: true})
			}
			ops = append(ops, fibOp{dst: dst, nh: f.nexthopFor(keys[v-1])})
		}
	})
	f.ops = ops
	res, err := f.write(ops)
	var refused map[int]error
	if len(res.Failed) > 0 {
		refused = make(map[int]error, len(res.Failed))
		for _, fl := range res.Failed {
			refused[fl.Index] = fl.Err
		}
	}
	var added, removed, failed int
	var firstErr error
	var retry []fibOp
	for i, op := range ops {
		e, bad := refused[i]
		if bad && op.del && errors.Is(e, rtnl.ErrNotFound) {
			bad = false // already gone: what was wanted
		}
		switch {
		case bad:
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", op.dst, e)
			}
			continue
		case err != nil && i >= res.Done:
			// The socket failed before the kernel answered: the outcome
			// is unknown, so it is neither recorded nor dropped.
			if !op.extra {
				retry = append(retry, op)
			}
			continue
		case op.extra:
			continue
		}
		cur, have := f.installed.get(op.dst)
		if op.del {
			if have {
				f.forget(op.dst, cur)
			}
			removed++
			continue
		}
		if have {
			f.forget(op.dst, cur)
		}
		f.installed.set(op.dst, op.nh)
		f.nh.list[op.nh].refs++
		added++
	}
	f.collect()
	if err != nil {
		f.log.Error("kernel route batch", "error", err, "retrying", len(retry))
	}
	f.mu.Lock()
	for _, op := range retry {
		if _, newer := f.pending.get(op.dst); !newer {
			var v uint32
			if !op.del {
				v = f.intern(f.nh.list[op.nh].key) + 1
			}
			f.pending.set(op.dst, v)
		}
	}
	f.lastWrite = time.Now()
	f.failures += failed
	f.mu.Unlock()
	f.publishCounts()
	if len(retry) > 0 {
		time.AfterFunc(time.Second, f.poke)
	}
	if failed > 0 {
		f.log.Warn("kernel refused routes", "failed", failed, "first_error", firstErr)
	}
	f.log.Debug("fib batch", "installed", added, "removed", removed, "total", f.installed.len()-f.dead)
}

// forget drops the bookkeeping of dst's route (entry cur): it has been
// deleted, replaced, or went with its nexthop object.
func (f *fib) forget(dst netip.Prefix, cur fibEntry) {
	n := &f.nh.list[cur&entIndex]
	n.refs--
	if n.dead {
		f.dead--
	}
	if n.refs == 0 {
		f.nh.zero = append(f.nh.zero, cur&entIndex)
	}
	if cur&entStale != 0 {
		f.stale--
	}
	if cur&entOddMetric != 0 {
		delete(f.metrics, dst)
	}
	f.installed.del(dst)
}

func (f *fib) metricOf(dst netip.Prefix, e fibEntry) uint32 {
	if e&entOddMetric != 0 {
		return f.metrics[dst]
	}
	return rtnl.DefaultMetric(dst)
}

// publishCounts copies the worker's figures for status readers.
func (f *fib) publishCounts() {
	f.mu.Lock()
	f.staleN, f.routesN = f.stale, f.installed.len()-f.dead
	f.mu.Unlock()
}

// status is the FIB's figures for the speaker's status file.
func (f *fib) status() FIBStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FIBStatus{PID: os.Getpid(), Routes: f.routesN, Stale: f.staleN, Failures: f.failures}
}

// publish writes the FIB's status to path (see FIBStatus) every second
// while it changes, until ctx ends: the supervisor reads the file, so
// status and metrics know how many routes the speaker holds without
// dumping its table.
func (f *fib) publish(ctx context.Context, path string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last FIBStatus
	for first := true; ; first = false {
		if st := f.status(); first || st != last {
			if err := writeFIBStatus(path, st); err != nil {
				f.log.Warn("fib status", "error", err)
			} else {
				last = st
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poke wakes the worker.
func (f *fib) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// sweep asks the worker to remove the stale routes.
func (f *fib) sweep() {
	f.mu.Lock()
	f.sweepReq = true
	f.mu.Unlock()
	f.poke()
}

// queueSweep queues the removal of what is still stale, unless an update
// for it is already pending. Worker only.
func (f *fib) queueSweep() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.installed.each(func(p netip.Prefix, e fibEntry) {
		if e&entStale == 0 {
			return
		}
		if _, ok := f.pending.get(p); !ok {
			f.pending.set(p, 0)
		}
	})
}
