package bgp

import (
	"context"
	"time"

	"github.com/fwdproject/fwd/config"
	api "github.com/osrg/gobgp/v3/api"
)

// monitor supervises one speaker until stop or Close: it restarts the
// process when it dies, with exponential backoff (1 s doubling to 30 s;
// reset after a minute of good health), re-evaluates announce_if_route
// every AnnounceInterval, and refreshes the status view (neighbours,
// max_prefixes warnings) every StatusInterval or when kicked.
func (sp *speaker) monitor() {
	defer close(sp.done)
	backoff := time.Second
	announce := time.NewTicker(sp.sup.AnnounceInterval)
	defer announce.Stop()
	status := time.NewTicker(sp.sup.StatusInterval)
	defer status.Stop()
	for {
		sp.mu.Lock()
		exited := sp.exited
		sp.mu.Unlock()
		if exited == nil {
			exited = make(chan struct{}) // not started yet: wait for Apply
		}
		select {
		case <-sp.stopCh:
			return
		case <-announce.C:
			sp.refreshAnnounce()
			continue
		case <-status.C:
			sp.refreshStatus()
			continue
		case <-sp.refresh:
			sp.refreshStatus()
			continue
		case <-exited:
		}
		sp.mu.Lock()
		if sp.stopping {
			sp.mu.Unlock()
			return
		}
		if sp.exited != exited { // replaced by Apply (restart)
			sp.mu.Unlock()
			continue
		}
		if time.Since(sp.started) > time.Minute {
			backoff = time.Second
		}
		sp.log.Warn("speaker exited; restarting", "pid", sp.pid, "in", backoff)
		sp.pid, sp.app = 0, nil
		sp.gen++
		if sp.client != nil {
			sp.client.Close()
			sp.client = nil
		}
		sp.publish()
		sp.mu.Unlock()
		select {
		case <-sp.stopCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		sp.mu.Lock()
		if sp.stopping || sp.desired == nil {
			sp.mu.Unlock()
			continue
		}
		sp.restarts++
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := sp.start(ctx)
		if err == nil {
			if _, err = sp.configure(ctx); err != nil {
				// kill reset exited; make the loop see the death.
				if kerr := sp.kill(ctx); kerr != nil {
					sp.log.Warn("stop speaker after failed configuration", "error", kerr)
				}
			}
		}
		cancel()
		if err != nil {
			sp.log.Error("restart speaker", "error", err)
			if !sp.running() {
				c := make(chan struct{})
				close(c)
				sp.exited = c
			}
		}
		sp.publish()
		sp.mu.Unlock()
		sp.kick()
	}
}

// kick asks the monitor to refresh the status view soon.
func (sp *speaker) kick() {
	select {
	case sp.refresh <- struct{}{}:
	default:
	}
}

// refreshAnnounce re-plans the configuration for announce_if_route
// prefixes that appeared or went away, and for an HA pair's mastership
// (AnnounceGate).
func (sp *speaker) refreshAnnounce() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.desired == nil || (len(sp.desired.AnnounceIfRoute) == 0 && sp.sup.AnnounceGate == nil) || !sp.running() || sp.app == nil || sp.client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := sp.configure(ctx)
	for _, c := range cs {
		sp.log.Info("announcements changed", "change", c.String())
	}
	if err != nil {
		sp.log.Warn("announcements", "error", err)
	}
}

// refreshStatus reads the neighbours and the size of the speaker's table
// into the status view, and warns about max_prefixes "warn" limits.
func (sp *speaker) refreshStatus() {
	sp.mu.Lock()
	b, c, running, pid := sp.desired, sp.client, sp.running(), sp.pid
	sp.mu.Unlock()
	if c == nil || !running {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := c.Neighbors(ctx, sp.tenant)
	if err != nil {
		sp.log.Debug("refresh status", "error", err)
		return
	}
	var prefixes uint64
	for _, f := range []*api.Family{familyV4, familyV6} {
		// Counting is done in the speaker: no table crosses the socket.
		if t, err := c.api.GetTable(ctx, &api.GetTableRequest{TableType: api.TableType_GLOBAL, Family: f}); err == nil {
			prefixes += t.NumDestination
		}
	}
	var fib *FIBStatus
	if st, err := ReadFIBStatus(sp.dir); err == nil && st.PID == pid {
		fib = &st // a file left by an earlier process does not count
	}
	sp.sup.viewMu.Lock()
	if v := sp.sup.views[sp.tenant]; v != nil {
		v.Neighbors, v.RIBPrefixes, v.FIB, v.Updated = ns, prefixes, fib, time.Now()
	}
	sp.sup.viewMu.Unlock()
	if b != nil {
		sp.checkLimits(b, ns)
	}
}

// checkLimits logs neighbours over max_prefixes with action "warn" (gobgp
// only knows how to tear down), once per crossing.
func (sp *speaker) checkLimits(b *config.BGP, ns []Neighbor) {
	warn := map[string]uint32{}
	for _, n := range b.Neighbors {
		if n.MaxPrefixes > 0 && n.MaxPrefixesAction == config.MaxPrefixesWarn {
			warn[n.Address.String()] = n.MaxPrefixes
		}
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.overLimit == nil {
		sp.overLimit = map[string]bool{}
	}
	for _, n := range ns {
		max, ok := warn[n.Address]
		over := ok && n.Received > uint64(max)
		if over && !sp.overLimit[n.Address] {
			sp.log.Warn("neighbour exceeds max_prefixes", "neighbor", n.Address, "received", n.Received, "max_prefixes", max)
		}
		sp.overLimit[n.Address] = over
	}
}
