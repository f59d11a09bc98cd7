package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/mgmt"
)

// Commit-confirm: a change made with --confirm is rolled back at its
// deadline unless confirmed; the pending record in the revision
// directory carries that promise across a daemon restart.

// recoverPending handles a pending-confirm record that exists but cannot
// be read (a torn write, a disk that filled up): a change was awaiting
// confirmation, so it is treated as unconfirmed past its deadline and
// rolled back to the revision before the running one, never silently
// taken as confirmed.
func (d *Daemon) recoverPending(revs []mgmt.Revision, err error) *mgmt.Pending {
	if !errors.Is(err, mgmt.ErrCorrupt) {
		d.log.Error("pending confirm unreadable", "dir", d.store.Dir, "error", err)
		return nil
	}
	for i := len(revs) - 1; i > 0; i-- {
		if revs[i].Number == d.rev && d.rev != 0 {
			p := &mgmt.Pending{Revision: d.rev, Previous: revs[i-1].Number, Deadline: time.Now()}
			d.log.Error("pending confirm record corrupt: rolling back as if its deadline had passed", "dir", d.store.Dir, "revision", p.Revision, "to_revision", p.Previous, "error", err)
			return p
		}
	}
	d.log.Error("pending confirm record corrupt, and the running file is not the newest revision after another one: nothing to roll back to", "dir", d.store.Dir, "revision", d.rev, "error", err)
	return nil
}

// Confirm makes a pending change permanent.
func (d *Daemon) Confirm(ctx context.Context) (*mgmt.Pending, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pending
	if p == nil {
		return nil, mgmt.ErrNotPending
	}
	d.setPendingLocked(nil)
	d.log.Info("change confirmed", "revision", p.Revision)
	return &p.Pending, nil
}

// setPendingLocked replaces the pending change (nil: none), stopping the
// old timer and recording the new state in the revision directory.
// Caller holds d.mu.
func (d *Daemon) setPendingLocked(p *pending) {
	if d.pending != nil && d.pending != p {
		d.pending.timer.Stop()
	}
	d.pending = p
	var rec *mgmt.Pending
	if p != nil {
		rec = &p.Pending
	}
	if err := d.store.SavePending(rec); err != nil {
		d.log.Error("could not record the pending confirm", "dir", d.store.Dir, "error", err)
	}
}

// armLocked makes pp pending with its rollback target and starts the
// timer (at once if the deadline has passed). Caller holds d.mu.
func (d *Daemon) armLocked(pp mgmt.Pending, prev *config.Config, prevSrc source) *pending {
	p := &pending{Pending: pp, prevCfg: prev, prevSrc: prevSrc}
	p.timer = time.AfterFunc(max(time.Until(pp.Deadline), 0), func() { d.confirmTimeout(p) })
	d.setPendingLocked(p)
	return p
}

// rollbackTargetLocked is what a failed apply or a commit-confirm
// timeout restores: while a change is unconfirmed, the last confirmed
// revision. applyNew asks for it after its apply, so a confirm that
// arrived meanwhile counts. Caller holds d.mu.
func (d *Daemon) rollbackTargetLocked() (*config.Config, source, int) {
	if d.pending != nil {
		return d.pending.prevCfg, d.pending.prevSrc, d.pending.Previous
	}
	return d.cfg, d.src, d.rev
}

// confirmTimeout restores the previous revision when nobody confirmed.
func (d *Daemon) confirmTimeout(p *pending) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if d.stopping {
		return // the record stays: the next start rolls back
	}
	d.mu.Lock()
	if d.pending != p { // confirmed or superseded meanwhile
		d.mu.Unlock()
		return
	}
	d.setPendingLocked(nil)
	d.mu.Unlock()
	d.log.Warn("change not confirmed in time; rolling back", "revision", p.Revision, "to_revision", p.Previous)
	reason := fmt.Sprintf("confirm timeout (back to revision %d)", p.Previous)
	res := d.applyNew(context.Background(), reason, p.prevCfg, p.prevSrc, 0, nil)
	if res.OK() {
		_ = d.writeSource(p.prevSrc) // logged
	}
}
