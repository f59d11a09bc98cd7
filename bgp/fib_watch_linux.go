package bgp

import (
	"context"
	"math"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// watchBatch bounds how many paths one watch callback gets: a session
// loss makes gobgp report every path of the neighbour in one event, and
// without a bound it converts all of them to the API form (about a KiB
// each) before the first callback. gobgp preallocates a slice of this
// size per event (8 KiB at 1024), which stays small next to that.
const watchBatch = 1024

// peerRefresh is how often accepted-prefix counts are read for the
// choice of a backup neighbour.
const peerRefresh = 3 * time.Second

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
		Peer:      &api.WatchEventRequest_Peer{},
		BatchSize: watchBatch,
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
			addr := pe.Peer.State.NeighborAddress
			up := pe.Peer.State.SessionState == api.PeerState_ESTABLISHED
			if wasUp := peers.state(addr, up); wasUp && !up {
				f.peerDown(ctx, s, addr)
			} else if up {
				f.peerUp(addr)
			}
		}
	})
	if err != nil {
		return err
	}
	go func() {
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastRefresh time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if time.Since(lastRefresh) >= peerRefresh {
				lastRefresh = time.Now()
				f.refreshPeers(ctx, s)
			}
			f.mu.Lock()
			n, quiet := f.staleN, f.pending.len() == 0 && time.Since(f.lastWrite) > time.Second
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

// peerUp: a session is established (again).
func (f *fib) peerUp(addr string) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return
	}
	a = a.Unmap() // as fsmPeerDown and update key neighbours
	f.peers.setUp(a, true)
	f.mu.Lock()
	delete(f.lossSeen, a)
	f.mu.Unlock()
}

// peerDown is the fallback for a session end the FSM's log did not
// report (see sessionLost): the event comes after gobgp dropped the
// neighbour's paths (its withdrawals are queued before it), so the
// neighbour's graceful-restart state can be asked without waiting.
func (f *fib) peerDown(ctx context.Context, s *server.BgpServer, addr string) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return
	}
	a = a.Unmap()
	f.mu.Lock()
	seen := f.lossSeen[a]
	f.mu.Unlock()
	if seen {
		return
	}
	reason := ""
	_ = s.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(p *api.Peer) {
		if gr := p.GetGracefulRestart(); gr != nil && gr.PeerRestarting {
			reason = "graceful-restart"
		}
	})
	f.sessionLost(a, reason)
}

// fsmPeerDown is the gobgp logger's hook for its FSM's "Peer Down" line.
func (f *fib) fsmPeerDown(addr, reason string) {
	if a, err := netip.ParseAddr(addr); err == nil {
		f.sessionLost(a.Unmap(), reason)
	}
}

// refreshPeers reads the neighbours' accepted-prefix counts (a counter in
// gobgp) for the choice of a backup.
func (f *fib) refreshPeers(ctx context.Context, s *server.BgpServer) {
	var limits []uint64
	err := s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		var lim uint64
		for _, af := range p.AfiSafis {
			if pl := af.GetPrefixLimits(); pl != nil {
				lim += uint64(pl.MaxPrefixes)
			}
		}
		limits = append(limits, lim)
		a, err := netip.ParseAddr(p.State.NeighborAddress)
		if err != nil {
			return
		}
		var acc [2]uint64
		for _, af := range p.AfiSafis {
			if af.State == nil || af.State.Family == nil || af.State.Family.Safi != api.Family_SAFI_UNICAST {
				continue
			}
			switch af.State.Family.Afi {
			case api.Family_AFI_IP:
				acc[0] = af.State.Accepted
			case api.Family_AFI_IP6:
				acc[1] = af.State.Accepted
			}
		}
		f.peers.setAccepted(a, 0, acc[0])
		f.peers.setAccepted(a, 1, acc[1])
	})
	if err != nil {
		f.log.Debug("list peers", "error", err)
		return
	}
	if !f.envMemLimit {
		if b := memoryBudget(limits); b != f.memLimit {
			f.memLimit = b
			if b > 0 {
				debug.SetMemoryLimit(b)
				f.log.Info("memory soft limit from the neighbours' max_prefixes", "bytes", b)
			} else {
				debug.SetMemoryLimit(math.MaxInt64)
			}
		}
	}
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

// state records a session state and reports whether the session was
// established before.
func (p *peerTracker) state(addr string, established bool) (wasUp bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	wasUp = p.up[addr]
	if established {
		p.up[addr] = true
		delete(p.lost, addr)
		return wasUp
	}
	delete(p.eor, addr)
	if p.up[addr] {
		p.lost[addr] = true
	}
	delete(p.up, addr)
	return wasUp
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

// fsmLogger is gobgp's logger with a hook on its FSM's "Peer Down" line:
// the FSM goroutine logs it just before it tells gobgp's main loop, which
// then drops the neighbour's paths (a second or more for a full table)
// and only then sends the peer-state event. Reacting to the line lets the
// FIB rewrite the neighbour's nexthop objects before that. If a gobgp
// release renames the line, the peer-state event (fib.peerDown) still
// does the same, later.
type fsmLogger struct {
	*gobgpLogger
	peerDown func(addr, reason string)
}

func (l *fsmLogger) Info(msg string, f gobgplog.Fields) {
	if msg == "Peer Down" && l.peerDown != nil {
		if t, _ := f["Topic"].(string); t == "Peer" {
			addr, _ := f["Key"].(string)
			reason, _ := f["Reason"].(string)
			l.peerDown(addr, reason)
		}
	}
	l.gobgpLogger.Info(msg, f)
}
