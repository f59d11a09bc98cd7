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
	"github.com/osrg/gobgp/v3/pkg/server"
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
// the kernel-route layer (rtnl) under its own protocol number. Updates
// are coalesced per prefix: under churn only the latest best path for a
// prefix is written.
type fib struct {
	log   *slog.Logger
	c     *rtnl.Conn // dumps and batched writes, in the speaker's namespace
	table uint32
	proto uint8

	mu        sync.Mutex
	pending   map[netip.Prefix]netip.Addr // invalid Addr: remove
	kick      chan struct{}
	lastWrite time.Time

	// Owned by the worker.
	installed map[netip.Prefix]fibRoute // what the kernel holds, as read or written
	stale     map[netip.Prefix]bool
	staleN    int        // len(stale), readable under mu
	routesN   int        // len(installed), readable under mu
	failures  int        // under mu
	ops       []fibOp    // reused per batch
	msg       rtnl.Route // reused per message: one next hop, no allocation
}

// fibRoute is one route the speaker owns in the kernel: its gateway and
// its metric as the kernel holds it (IPv6 routes written with metric 0
// hold 1024), so that a delete names exactly that route.
type fibRoute struct {
	gw     netip.Addr
	metric uint32
}

// fibOp is one write of a batch: an invalid gw deletes.
type fibOp struct {
	dst    netip.Prefix
	gw     netip.Addr
	metric uint32 // deletes: the installed route's metric
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
	f := &fib{log: log, c: c, table: table, proto: proto, pending: map[netip.Prefix]netip.Addr{},
		kick: make(chan struct{}, 1), installed: map[netip.Prefix]fibRoute{}, stale: map[netip.Prefix]bool{}}
	f.msg.NextHops = make([]rtnl.NextHop, 1)
	return f, nil
}

func (f *fib) close() error { return f.c.Close() }

// loadStale takes over the routes a previous speaker left: they stay in
// the kernel (no blackhole while the sessions come back) and are removed by
// sweep unless re-learned. What is recorded is what the kernel reports,
// not what a speaker meant to write, so that a later delete matches it.
func (f *fib) loadStale() error {
	routes, err := f.c.Routes(rtnl.Filter{Table: f.table, Protocol: f.proto})
	if err != nil {
		return err
	}
	var dups []fibOp
	for i := range routes {
		r := &routes[i]
		var gw netip.Addr
		if len(r.NextHops) == 1 {
			gw = r.NextHops[0].Gw.Unmap()
		}
		if _, dup := f.installed[r.Dst]; dup {
			// A second route of ours for the prefix (another metric):
			// the bookkeeping holds one per prefix, so this one could
			// never be withdrawn. Remove it now.
			dups = append(dups, fibOp{dst: r.Dst, metric: r.Metric})
			continue
		}
		f.installed[r.Dst] = fibRoute{gw: gw, metric: r.Metric}
		f.stale[r.Dst] = true
	}
	if len(dups) > 0 {
		f.log.Warn("removing duplicate routes of the previous speaker", "routes", len(dups))
		if _, err := f.write(dups); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.staleN, f.routesN = len(f.stale), len(f.installed)
	f.mu.Unlock()
	if len(f.stale) > 0 {
		f.log.Info("kept routes of the previous speaker until re-learned", "routes", len(f.stale))
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
		m.Table, m.Dst, m.Metric = f.table, op.dst, op.metric
		if !op.gw.IsValid() {
			m.NextHops = m.NextHops[:0]
			return rtnl.Delete, m
		}
		m.NextHops = m.NextHops[:1]
		m.NextHops[0] = rtnl.NextHop{Gw: op.gw}
		return rtnl.Replace, m
	})
}

// flushTable deletes every route of protocol proto in table of namespace
// h (netns.None(): the caller's): one dump, one batch. Routes already
// gone are not an error.
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
	return errors.Join(errs...)
}

// update queues best-path changes.
func (f *fib) update(paths []*api.Path) {
	if len(paths) == 0 {
		return
	}
	f.mu.Lock()
	for _, p := range paths {
		if p.Nlri == nil {
			continue // End-of-RIB marker
		}
		dst, nh, ok := decodePath(p)
		if !ok {
			continue
		}
		if p.IsWithdraw || !nh.IsValid() || nh.IsUnspecified() {
			nh = netip.Addr{} // withdrawn, or originated by this tenant
		}
		f.pending[dst] = nh
	}
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
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

// run applies queued updates until ctx ends.
func (f *fib) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		f.mu.Lock()
		batch := f.pending
		f.pending = make(map[netip.Prefix]netip.Addr, len(batch)/2)
		f.mu.Unlock()
		f.apply(batch)
	}
}

func (f *fib) apply(batch map[netip.Prefix]netip.Addr) {
	ops := f.ops[:0]
	for dst, nh := range batch {
		cur, have := f.installed[dst]
		switch {
		case !nh.IsValid() && !have:
		case !nh.IsValid():
			ops = append(ops, fibOp{dst: dst, metric: cur.metric})
		case have && cur.gw == nh:
			delete(f.stale, dst) // re-learned as it was: nothing to write
		default:
			ops = append(ops, fibOp{dst: dst, gw: nh})
		}
	}
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
		if bad && !op.gw.IsValid() && errors.Is(e, rtnl.ErrNotFound) {
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
			retry = append(retry, op)
			continue
		}
		if !op.gw.IsValid() {
			delete(f.installed, op.dst)
			removed++
		} else {
			var metric uint32
			if op.dst.Addr().Is6() {
				metric = 1024 // what the kernel makes of metric 0
			}
			f.installed[op.dst] = fibRoute{gw: op.gw, metric: metric}
			added++
		}
		delete(f.stale, op.dst)
	}
	if err != nil {
		f.log.Error("kernel route batch", "error", err, "retrying", len(retry))
	}
	f.mu.Lock()
	for _, op := range retry {
		if _, newer := f.pending[op.dst]; !newer {
			f.pending[op.dst] = op.gw
		}
	}
	f.staleN, f.routesN = len(f.stale), len(f.installed)
	f.lastWrite = time.Now()
	f.failures += failed
	f.mu.Unlock()
	if len(retry) > 0 {
		time.AfterFunc(time.Second, f.poke)
	}
	if failed > 0 {
		f.log.Warn("kernel refused routes", "failed", failed, "first_error", firstErr)
	}
	f.log.Debug("fib batch", "installed", added, "removed", removed, "total", len(f.installed))
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

// sweep removes stale routes; it runs on the worker's goroutine via the
// pending queue so it never races with apply.
func (f *fib) sweep() {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Queue removals for what is still stale, unless an update for it is
	// already pending.
	for p := range f.stale {
		if _, ok := f.pending[p]; !ok {
			f.pending[p] = netip.Addr{}
		}
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// watch subscribes to best paths, End-of-RIB markers and peer states of
// s, and removes stale routes once every configured neighbour is settled
// (see peerTracker), or after staleTimeout.
func (f *fib) watch(ctx context.Context, s *server.BgpServer, staleTimeout time.Duration) error {
	peers := newPeerTracker()
	err := s.WatchEvent(ctx, &api.WatchEventRequest{
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true},
			{Type: api.WatchEventRequest_Table_Filter_EOR, Init: true},
		}},
		Peer: &api.WatchEventRequest_Peer{},
		// No BatchSize: gobgp preallocates a slice of that size for
		// every event, even a one-path one (most of the GC work).
	}, func(r *api.WatchEventResponse) {
		if t := r.GetTable(); t != nil {
			for _, p := range t.Paths {
				if p.Nlri == nil && p.NeighborIp != "" {
					peers.endOfRIB(p.NeighborIp)
				}
			}
			f.update(t.Paths)
		}
		if pe := r.GetPeer(); pe != nil && pe.Peer != nil && pe.Peer.State != nil {
			peers.state(pe.Peer.State.NeighborAddress, pe.Peer.State.SessionState == api.PeerState_ESTABLISHED)
		}
	})
	if err != nil {
		return err
	}
	go func() {
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			f.mu.Lock()
			n, quiet := f.staleN, len(f.pending) == 0 && time.Since(f.lastWrite) > time.Second
			f.mu.Unlock()
			if n == 0 {
				continue
			}
			converged := false
			if quiet {
				count, all := 0, true
				err := s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
					count++
					if p.State == nil || !peers.settled(p.State.NeighborAddress, p.State.SessionState == api.PeerState_ESTABLISHED) {
						all = false
					}
				})
				if err != nil {
					f.log.Debug("list peers", "error", err) // not converged: asked again in a second
				}
				converged = err == nil && count > 0 && all
			}
			if converged || time.Since(start) > staleTimeout {
				f.log.Info("removing stale routes", "routes", n, "converged", converged)
				f.sweep()
			}
		}
	}()
	return nil
}

// peerTracker decides when the routes a previous speaker left may go: when
// every configured neighbour is settled. A neighbour is settled when it has
// sent End-of-RIB in its established session (whatever stale route it did
// not re-send is not its route any more), or when a session it had
// established since this speaker started went down again: gobgp then
// withdrew everything the neighbour re-sent, and a stale route it had not
// re-sent yet would otherwise never be withdrawn at all — no withdrawal
// event exists for a path gobgp never learned, and "every neighbour
// established" cannot become true while it is down, so the route stayed
// until staleTimeout. A neighbour that has not come back since the
// restart is not settled: its routes stay while it reconnects.
type peerTracker struct {
	mu   sync.Mutex
	eor  map[string]bool // End-of-RIB received in the current session
	up   map[string]bool // established now
	lost map[string]bool // was established since the start, is not now
}

func newPeerTracker() *peerTracker {
	return &peerTracker{eor: map[string]bool{}, up: map[string]bool{}, lost: map[string]bool{}}
}

func (p *peerTracker) endOfRIB(addr string) {
	p.mu.Lock()
	p.eor[addr] = true
	p.mu.Unlock()
}

func (p *peerTracker) state(addr string, established bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if established {
		p.up[addr] = true
		delete(p.lost, addr)
		return
	}
	delete(p.eor, addr)
	if p.up[addr] {
		p.lost[addr] = true
	}
	delete(p.up, addr)
}

// settled reports whether the neighbour at addr, whose session is (or is
// not) established according to gobgp, no longer holds stale routes back.
func (p *peerTracker) settled(addr string, established bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if established {
		return p.eor[addr]
	}
	return p.lost[addr]
}
