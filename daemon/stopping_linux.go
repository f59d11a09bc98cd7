package daemon

import (
	"errors"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
)

// Stopping and starting cleanly: a SIGTERM lets the apply in progress
// finish (bounded), and the engine's handles are closed only once no
// apply runs; a start first sweeps what an interrupted namespace
// creation left.

var errStopping = errors.New("the daemon is stopping; nothing was changed")

// stop waits until no apply runs (at most StopTimeout) and makes every
// later apply refuse, so that the apply's client gets its whole reply and
// its revision is stored before the listeners and the engine close.
func (d *Daemon) stop() {
	timeout := d.opts.StopTimeout
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	idle := make(chan struct{})
	go func() {
		d.applyMu.Lock()
		d.stopping = true
		d.applyMu.Unlock()
		close(idle)
	}()
	select {
	case <-idle:
		return
	case <-time.After(50 * time.Millisecond):
	}
	start := time.Now()
	d.log.Info("waiting for the apply in progress to finish before stopping", "timeout", timeout.String())
	select {
	case <-idle:
		d.log.Info("apply finished; stopping", "waited", time.Since(start).Round(time.Millisecond).String())
	case <-time.After(timeout):
		d.abandoned.Store(true)
		d.log.Error("the apply in progress did not finish in time; stopping anyway", "timeout", timeout.String())
	}
}

// Close releases the engine (or the injected Applier, if it has a Close
// method). After a stop that gave up waiting for an apply it does
// nothing: closing handles under a running apply would fail it half-way.
func (d *Daemon) Close() {
	if d.abandoned.Load() {
		return
	}
	d.obs.close()
	d.edge.close() // DHCP clients stop, leases kept for the next daemon
	a := d.app
	if f, ok := a.(*failpointApplier); ok {
		a = f.Applier
	}
	if c, ok := a.(interface{ Close() }); ok {
		c.Close()
	}
}

// sweep removes what an interrupted namespace creation left (temporary
// pins, plain-file pins of our tenants' names), so that the first apply
// can create those namespaces.
func (d *Daemon) sweep() {
	if d.observe == nil {
		return // no engine: tests with an injected Applier
	}
	d.mu.Lock()
	names := tenantNames(d.cfg)
	d.mu.Unlock()
	removed, err := ns.Sweep(names)
	if len(removed) > 0 {
		d.log.Warn("removed leftovers of an interrupted namespace creation", "pins", removed)
	}
	if err != nil {
		d.log.Error("sweep namespace leftovers", "error", err)
	}
}
