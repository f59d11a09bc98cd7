package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Protocol is the rtm_protocol of the routes the speaker installs: 186,
// "bgp" in iproute2's rt_protos, so `ip route show proto bgp` lists them.
// It differs from the routing package's (routing.Protocol, 243): each
// reconciler garbage-collects only its own protocol, so static routes and
// BGP routes never delete each other. A static route and a BGP route for
// the same prefix and metric cannot coexist in one table: the kernel
// refuses the second; the speaker logs it and counts it as a failure.
const Protocol = 186

// fib mirrors gobgp's best paths into one kernel table. Updates are
// coalesced per prefix: under churn only the latest best path for a
// prefix is written.
type fib struct {
	log   *slog.Logger
	h     *netlink.Handle // dumps
	w     *nlWriter       // batched writes
	table int

	mu        sync.Mutex
	pending   map[netip.Prefix]netip.Addr // invalid Addr: remove
	kick      chan struct{}
	lastWrite time.Time

	// Owned by the worker.
	installed map[netip.Prefix]netip.Addr
	stale     map[netip.Prefix]bool
	staleN    int // len(stale), readable under mu
	failures  int
}

func newFIB(log *slog.Logger, table int) (*fib, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	// 1M routes: a large receive buffer keeps the kernel's acks from
	// overflowing the socket.
	h.SetSocketReceiveBufferSize(8<<20, false)
	w, err := newNLWriter()
	if err != nil {
		h.Close()
		return nil, err
	}
	return &fib{log: log, h: h, w: w, table: table, pending: map[netip.Prefix]netip.Addr{},
		kick: make(chan struct{}, 1), installed: map[netip.Prefix]netip.Addr{}, stale: map[netip.Prefix]bool{}}, nil
}

// loadStale takes over the routes a previous speaker left: they stay in
// the kernel (no blackhole while the sessions come back) and are removed by
// sweep unless re-learned.
func (f *fib) loadStale() error {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		var routes []netlink.Route
		var err error
		for try := 0; try < 5; try++ {
			routes, err = f.h.RouteListFiltered(fam, &netlink.Route{Table: f.table, Protocol: Protocol}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst == nil {
				continue
			}
			p, ok := prefixOf(r.Dst)
			if !ok {
				continue
			}
			gw, _ := netip.AddrFromSlice(r.Gw)
			f.installed[p] = gw.Unmap()
			f.stale[p] = true
		}
	}
	f.mu.Lock()
	f.staleN = len(f.stale)
	f.mu.Unlock()
	if len(f.stale) > 0 {
		f.log.Info("kept routes of the previous speaker until re-learned", "routes", len(f.stale))
	}
	return nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
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
	ops := make([]nlOp, 0, len(batch))
	for dst, nh := range batch {
		cur, have := f.installed[dst]
		switch {
		case !nh.IsValid() && !have:
		case !nh.IsValid():
			ops = append(ops, nlOp{dst: dst})
		case have && cur == nh:
			delete(f.stale, dst) // re-learned as it was: nothing to write
		default:
			ops = append(ops, nlOp{dst: dst, gw: nh})
		}
	}
	var added, removed int
	failed, err := f.w.write(uint32(f.table), ops)
	var firstErr error
	for i, op := range ops {
		if e, bad := failed[i]; bad {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", op.dst, e)
			}
			continue
		}
		if !op.gw.IsValid() {
			delete(f.installed, op.dst)
			removed++
		} else {
			f.installed[op.dst] = op.gw
			added++
		}
		delete(f.stale, op.dst)
	}
	if err != nil {
		f.log.Error("kernel route batch", "err", err)
	}
	f.mu.Lock()
	f.staleN = len(f.stale)
	f.lastWrite = time.Now()
	f.failures += len(failed)
	f.mu.Unlock()
	if len(failed) > 0 {
		f.log.Warn("kernel refused routes", "failed", len(failed), "first_error", firstErr)
	}
	f.log.Debug("fib batch", "installed", added, "removed", removed, "total", len(f.installed))
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

// watch subscribes to best paths and End-of-RIB markers of s, and removes
// stale routes once every configured neighbour is established and has
// sent End-of-RIB, or after staleTimeout.
func (f *fib) watch(ctx context.Context, s *server.BgpServer, staleTimeout time.Duration) error {
	var emu sync.Mutex
	eor := map[string]bool{}
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
					emu.Lock()
					eor[p.NeighborIp] = true
					emu.Unlock()
				}
			}
			f.update(t.Paths)
		}
		if pe := r.GetPeer(); pe != nil && pe.Peer != nil && pe.Peer.State != nil &&
			pe.Peer.State.SessionState != api.PeerState_ESTABLISHED {
			emu.Lock()
			delete(eor, pe.Peer.State.NeighborAddress)
			emu.Unlock()
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
				peers, all := 0, true
				s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
					peers++
					emu.Lock()
					if p.State == nil || p.State.SessionState != api.PeerState_ESTABLISHED || !eor[p.State.NeighborAddress] {
						all = false
					}
					emu.Unlock()
				})
				converged = peers > 0 && all
			}
			if converged || time.Since(start) > staleTimeout {
				f.log.Info("removing stale routes", "routes", n, "converged", converged)
				f.sweep()
			}
		}
	}()
	return nil
}
