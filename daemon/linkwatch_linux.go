package daemon

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fwdproject/fwd/zones"
)

// The link watch: the daemon listens to link events in the default
// namespace and in every tenant namespace, so that a declared NIC that
// appears (late, or again after a driver reload or a hot swap) is moved
// in without a reload, and one that disappears is reported as waiting.
// Nothing the watch meets stops the daemon: a socket that overflows
// (ENOBUFS) or fails is subscribed again and everything re-scanned.

// linkDebounce groups the events of one driver reload (several per NIC)
// into one check.
const linkDebounce = 300 * time.Millisecond

// Receive buffers: one apply makes a few events per tenant in the
// default namespace (a move, a macvlan's parent changing); 32 KiB a
// tenant leaves room for a reload of every tenant while the daemon is
// busy.
const (
	watchBufferBase      = 1 << 20
	watchBufferPerTenant = 32 << 10
	watchBufferMax       = 64 << 20
)

// Tests only: a default-namespace buffer size that replaces the computed
// one when > 0 (to provoke overflows), and a hook called before each
// event is queued.
var (
	watchBufferOverride atomic.Int64
	watchOnEvent        func(zones.LinkEvent)
)

// linkWatch is the daemon's side of a zones.Watch: the events that
// concern the configuration, kept until the debounced check.
type linkWatch struct {
	d       *Daemon
	w       *zones.Watch
	m       *zones.Manager // the engine's, or one of the watch's own
	ownM    bool
	pending []zones.Interest
	resync  bool
}

// watchLinks starts the watch: on the engine's zones Manager, which then
// watches each namespace it creates.
func (d *Daemon) watchLinks() (*linkWatch, error) {
	lw := &linkWatch{d: d}
	if e := engineOf(d.app); e != nil {
		lw.m = e.Zones
	} else {
		m, err := zones.NewManager(d.log)
		if err != nil {
			return nil, err
		}
		lw.m, lw.ownM = m, true
	}
	w, err := lw.m.Watch(zones.WatchOptions{ReceiveBuffer: d.watchBuffer, Log: d.log, OnEvent: watchOnEvent})
	if err != nil {
		lw.close()
		return nil, err
	}
	lw.w = w
	return lw, nil
}

func (d *Daemon) watchBuffer() int {
	if v := watchBufferOverride.Load(); v > 0 {
		return int(v)
	}
	d.mu.Lock()
	n := len(d.cfg.Tenants)
	d.mu.Unlock()
	return min(watchBufferBase+n*watchBufferPerTenant, watchBufferMax)
}

func (lw *linkWatch) close() {
	if lw.w != nil {
		lw.w.Close()
	}
	if lw.ownM {
		lw.m.Close()
	}
}

// kick receives when events wait.
func (lw *linkWatch) kick() <-chan struct{} { return lw.w.Kick() }

// take collects the waiting events; true when a check is due.
func (lw *linkWatch) take() bool {
	evs, resync := lw.w.Take()
	lw.d.mu.Lock()
	cfg := lw.d.cfg
	lw.d.mu.Unlock()
	lw.resync = lw.resync || resync
	for _, ev := range evs {
		if in, ok := zones.Relevant(cfg, ev); ok {
			lw.pending = append(lw.pending, in)
		}
	}
	return lw.resync || len(lw.pending) > 0
}

// check re-plans the zones of the running configuration and applies it
// when that changes something (a NIC to move in, one gone to report).
// Events fwd's own applies cause end here, with an empty plan.
func (lw *linkWatch) check(ctx context.Context) {
	d := lw.d
	evs, resync := lw.pending, lw.resync
	lw.pending, lw.resync = nil, false
	if !resync && len(evs) == 0 {
		return
	}
	if lw.ownM {
		_ = lw.w.Sync() // no engine to tell the watch about new namespaces
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	cfg, absent := d.cfg, d.absent
	d.mu.Unlock()

	reason := "link appeared"
	if d.observe != nil {
		st, err := d.observe()
		if err != nil {
			d.log.Warn("link event: cannot observe the kernel; applying", "error", err)
		} else if p, err := zones.Compute(cfg, st); err == nil {
			if len(p.Steps) == 0 && slices.Equal(p.Absent, absent) {
				for _, in := range evs {
					d.log.Debug("link event: nothing to do", linkAttrs(in)...)
				}
				return
			}
			if !slices.ContainsFunc(p.Steps, func(s zones.Step) bool { return s.Op == zones.OpMoveLink }) {
				reason = "link gone"
			}
		}
	}
	if resync && len(evs) == 0 {
		reason = "link watch re-scan"
	}
	for _, in := range evs {
		d.log.Info("link event", append(linkAttrs(in), "action", actionFor(reason))...)
	}
	d.mu.Lock()
	cfg = d.cfg
	d.mu.Unlock()
	_, _ = d.apply(ctx, reason, cfg) // apply logs and counts its failures
}

func actionFor(reason string) string {
	switch reason {
	case "link appeared":
		return "apply: move in"
	case "link gone":
		return "apply: wait for it to come back"
	}
	return "apply"
}

func linkAttrs(in zones.Interest) []any {
	ns := in.Event.Namespace
	if ns == "" {
		ns = "default"
	}
	event := "appeared"
	if in.Event.Gone {
		event = "gone"
	}
	return []any{"link", in.Event.Name, "namespace", ns, "event", event, "tenant", in.Tenant, "interface", in.Interface, "what", in.What}
}
