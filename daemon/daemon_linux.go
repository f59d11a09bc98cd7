// Package daemon is `fwd run`: it applies the config, then reloads on
// SIGHUP or API request, moves in NICs that appear late, and exits on
// SIGTERM/SIGINT without tearing anything down, so the data plane keeps
// forwarding while the daemon is away and a restarted daemon adopts what
// is there. It owns the management plane's state: the API server on a
// Unix socket (and optional TCP), the revision store, commit-confirm,
// restoring the previous revision when an apply fails half-way, and the
// Prometheus metrics. All of it lives in the default namespace.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/zones"
)

// Options configure the daemon.
type Options struct {
	ConfigPath string
	PidFile    string // "" for none
	// Socket, RevisionDir and MetricsListen override the [mgmt] table
	// when not empty; MetricsListen "off" disables metrics. The lab and
	// the tests pass a RevisionDir of their own, so that they never write
	// to the host's /var/lib.
	Socket        string
	RevisionDir   string
	MetricsListen string
	// Log receives every line the daemon and its engine log; nil
	// discards them.
	Log *slog.Logger
	// Applied, if set, is called after every apply attempt (tests, lab).
	Applied func(rep *engine.Report, err error)
	// Applier replaces the engine (tests inject failures with it).
	Applier Applier
}

// Applier makes the kernel match a config: *engine.Engine.
type Applier interface {
	Apply(ctx context.Context, cfg *config.Config, dryRun bool) (*engine.Report, error)
}

// DefaultPidFile is where `fwd reload` finds the daemon.
const DefaultPidFile = "/run/fwd/fwd.pid"

// Daemon is a running fwd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	app     Applier
	observe func() (*zones.State, error) // nil without an engine
	// bgpStatus is the BGP supervisor's view (nil without an engine).
	bgpStatus func() []bgp.SpeakerStatus
	store     *mgmt.Store
	metrics   *metrics
	started   time.Time

	applyMu sync.Mutex // serialises applies: signal, API, link events, timers

	mu      sync.Mutex // guards what follows
	cfg     *config.Config
	data    []byte // the running config file as applied
	rev     int    // its revision (0: not stored)
	absent  []string
	last    *mgmt.Result
	pending *pending
	// tenants is what the last applies left for status and metrics
	// (readmodel_linux.go).
	tenants map[string]*engine.TenantState
	edge    *edge // DHCP clients, HA/services status and metrics (edge_linux.go); nil without an engine
}

// pending is an unconfirmed change and what to go back to.
type pending struct {
	mgmt.Pending
	prevCfg  *config.Config
	prevData []byte
	timer    *time.Timer
}

// ErrInvalidConfig is returned when the initial config does not validate.
var ErrInvalidConfig = errors.New("invalid configuration")

// New loads the configuration and prepares a daemon without touching the
// kernel (beyond opening the engine's handles).
func New(opts Options) (*Daemon, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.Log = log
	data, err := os.ReadFile(opts.ConfigPath)
	var cfg *config.Config
	if err == nil {
		cfg, err = config.Parse(opts.ConfigPath, data)
	}
	if err != nil {
		log.Error("configuration rejected; nothing was changed", "file", opts.ConfigPath, "error", err.Error())
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	d := &Daemon{opts: opts, log: log, app: opts.Applier, cfg: cfg, data: data, started: time.Now()}
	if d.app == nil {
		eng, err := engine.New(log)
		if err != nil {
			return nil, err
		}
		d.app = withFailpoint(eng)
		d.observe = eng.Zones.Observe
		d.bgpStatus = eng.BGP.Status
	}
	dir := opts.RevisionDir
	if dir == "" {
		dir = cfg.Mgmt.RevisionDir
	}
	d.store = &mgmt.Store{Dir: dir, Keep: cfg.Mgmt.Revisions}
	d.metrics = newMetrics(d)
	d.edge = newEdge(d, engineOf(d.app)) // edge_linux.go
	return d, nil
}

// Close releases the engine.
func (d *Daemon) Close() {
	d.edge.close() // DHCP clients stop, leases kept for the next daemon
	a := d.app
	if f, ok := a.(*failpointApplier); ok {
		a = f.Applier
	}
	if e, ok := a.(*engine.Engine); ok {
		e.Close()
	}
}

// Run starts the daemon and blocks until ctx ends or SIGTERM/SIGINT.
func Run(ctx context.Context, opts Options) error {
	d, err := New(opts)
	if err != nil {
		return err
	}
	defer d.Close()
	log := d.log
	if opts.PidFile != "" {
		if err := writePid(opts.PidFile); err != nil {
			return err
		}
		defer os.Remove(opts.PidFile)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	links, stopLinks, err := d.watchLinks()
	if err != nil {
		return err
	}
	defer stopLinks()

	d.Start(ctx)
	stop, err := d.serve()
	if err != nil {
		return err
	}
	defer stop()
	d.notify(sd.SdNotifyReady)

	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			d.notify(sd.SdNotifyStopping)
			log.Info("stopping; the data plane stays as it is")
			return nil
		case s := <-sigs:
			if s != syscall.SIGHUP {
				d.notify(sd.SdNotifyStopping)
				log.Info("stopping; the data plane stays as it is", "signal", s.String())
				return nil
			}
			d.Reload(ctx, mgmt.ReloadRequest{})
		case u, ok := <-links:
			if !ok {
				return errors.New("link watch closed")
			}
			if d.linkEvent(u) && retry == nil {
				// Debounce: a driver reload sends several events.
				retry = time.After(300 * time.Millisecond)
			}
		case <-retry:
			retry = nil
			d.reapply(ctx, "link appeared")
		}
	}
}

// Start applies the configuration loaded by New. If that fails, the last
// stored revision (what ran before) is restored when it differs.
func (d *Daemon) Start(ctx context.Context) *mgmt.Result {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	var prev *config.Config
	var prevData []byte
	prevRev := 0
	if revs, err := d.store.List(); err != nil {
		d.log.Warn("revisions unreadable", "dir", d.store.Dir, "error", err)
	} else if len(revs) > 0 {
		last := revs[len(revs)-1]
		if last.SHA256 == mgmt.Checksum(d.data) {
			d.rev = last.Number // adopt: this file is that revision
		} else if _, b, err := d.store.Get(last.Number); err == nil {
			if c, err := config.Parse(d.opts.ConfigPath, b); err == nil {
				prev, prevData, prevRev = c, b, last.Number
			}
		}
	}
	lp, err := d.store.LoadPending()
	if err != nil {
		d.log.Warn("pending confirm unreadable", "error", err)
	}
	res := d.applyNew(ctx, "start", d.cfg, d.data, 0, prev, prevData, prevRev)
	d.mu.Lock()
	defer d.mu.Unlock()
	if lp == nil {
		return res
	}
	// A change was unconfirmed when the daemon stopped: if it is still
	// what runs, its deadline still holds (past: roll back now).
	if res.OK() && lp.Revision == d.rev {
		if _, b, err := d.store.Get(lp.Previous); err == nil {
			if c, err := config.Parse(d.opts.ConfigPath, b); err == nil {
				d.armLocked(*lp, c, b)
				d.log.Warn("change still unconfirmed from before the restart", "revision", lp.Revision, "deadline", lp.Deadline.UTC().Format(time.RFC3339), "to_revision", lp.Previous)
				return res
			}
		}
	}
	d.setPendingLocked(nil)
	return res
}

// Reload re-reads the config file and applies it; an invalid file
// changes nothing. With ConfirmSeconds, it is rolled back unless
// confirmed in time.
func (d *Daemon) Reload(ctx context.Context, req mgmt.ReloadRequest) *mgmt.Result {
	d.notify(fmt.Sprintf("%s\nMONOTONIC_USEC=%d", sd.SdNotifyReloading, monotonicUsec()))
	defer d.notify(sd.SdNotifyReady)
	// An API client that hangs up must not cancel an apply half-way.
	ctx = context.WithoutCancel(ctx)
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	data, err := os.ReadFile(d.opts.ConfigPath)
	var cfg *config.Config
	if err == nil {
		cfg, err = config.Parse(d.opts.ConfigPath, data)
	}
	if err != nil {
		d.log.Error("reload rejected; running configuration unchanged", "file", d.opts.ConfigPath, "error", err.Error())
		res := &mgmt.Result{Time: time.Now(), Reason: "reload", Result: mgmt.ResultRejected, Errors: errorLines(err), Changes: []change.Change{}}
		d.finish(res)
		if d.opts.Applied != nil {
			d.opts.Applied(nil, err)
		}
		return res
	}
	prev, prevData, prevRev := d.rollbackTarget()
	return d.applyNew(ctx, "reload", cfg, data, time.Duration(req.ConfirmSeconds)*time.Second, prev, prevData, prevRev)
}

// Rollback applies a stored revision and writes it to the config file.
func (d *Daemon) Rollback(ctx context.Context, req mgmt.RollbackRequest) (*mgmt.Result, error) {
	_, data, err := d.store.Get(req.Revision)
	if err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	reason := fmt.Sprintf("rollback to revision %d", req.Revision)
	cfg, err := config.Parse(d.opts.ConfigPath, data)
	if err != nil {
		// Possible after an upgrade that tightened validation.
		res := &mgmt.Result{Time: time.Now(), Reason: reason, Result: mgmt.ResultRejected, Errors: errorLines(err), Changes: []change.Change{}}
		d.log.Error("rollback rejected; running configuration unchanged", "revision", req.Revision, "error", err.Error())
		d.finish(res)
		return res, nil
	}
	prev, prevData, prevRev := d.rollbackTarget()
	res := d.applyNew(ctx, reason, cfg, data, time.Duration(req.ConfirmSeconds)*time.Second, prev, prevData, prevRev)
	if res.OK() {
		d.writeConfigFile(data)
	}
	return res, nil
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
func (d *Daemon) armLocked(pp mgmt.Pending, prev *config.Config, prevData []byte) *pending {
	p := &pending{Pending: pp, prevCfg: prev, prevData: prevData}
	p.timer = time.AfterFunc(max(time.Until(pp.Deadline), 0), func() { d.confirmTimeout(p) })
	d.setPendingLocked(p)
	return p
}

// rollbackTarget is what a failed apply or a commit-confirm timeout
// restores: while a change is unconfirmed, the last confirmed revision.
func (d *Daemon) rollbackTarget() (*config.Config, []byte, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending != nil {
		return d.pending.prevCfg, d.pending.prevData, d.pending.Previous
	}
	return d.cfg, d.data, d.rev
}

// confirmTimeout restores the previous revision when nobody confirmed.
func (d *Daemon) confirmTimeout(p *pending) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	if d.pending != p { // confirmed or superseded meanwhile
		d.mu.Unlock()
		return
	}
	d.setPendingLocked(nil)
	d.mu.Unlock()
	d.log.Warn("change not confirmed in time; rolling back", "revision", p.Revision, "to_revision", p.Previous)
	reason := fmt.Sprintf("confirm timeout (back to revision %d)", p.Previous)
	res := d.applyNew(context.Background(), reason, p.prevCfg, p.prevData, 0, nil, nil, 0)
	if res.OK() {
		d.writeConfigFile(p.prevData)
	}
}

// writeConfigFile puts an applied revision back into the config file, so
// that the next reload or restart does not bring back what was undone.
func (d *Daemon) writeConfigFile(data []byte) {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(d.opts.ConfigPath); err == nil {
		mode = st.Mode().Perm()
	}
	if err := mgmt.WriteFileAtomic(d.opts.ConfigPath, data, mode); err != nil {
		d.log.Error("could not write the rolled-back configuration to the config file", "file", d.opts.ConfigPath, "error", err)
		return
	}
	d.log.Info("config file restored", "file", d.opts.ConfigPath, "sha256", mgmt.Checksum(data))
}

// applyNew applies cfg; on failure it re-applies prev (if any). On
// success the config becomes a revision (unless identical to the running
// one) and, with confirm > 0, must be confirmed in time. Caller holds
// applyMu.
func (d *Daemon) applyNew(ctx context.Context, reason string, cfg *config.Config, data []byte, confirm time.Duration, prev *config.Config, prevData []byte, prevRev int) *mgmt.Result {
	res := &mgmt.Result{Time: time.Now(), Reason: reason}
	rep, err := d.apply(ctx, reason, cfg)
	res.Changes, res.Waiting, res.Duration = rep.Changes, rep.Absent, rep.Duration
	if res.Changes == nil {
		res.Changes = []change.Change{}
	}
	if err != nil {
		res.Result = mgmt.ResultFailed
		res.Errors = errorLines(err)
		if prev != nil && prev != cfg {
			rrep, rerr := d.apply(ctx, fmt.Sprintf("restore revision %d", prevRev), prev)
			res.Restore = &mgmt.Restore{Revision: prevRev, Changes: rrep.Changes}
			if res.Restore.Changes == nil {
				res.Restore.Changes = []change.Change{}
			}
			if rerr != nil {
				res.Restore.Error = rerr.Error()
			}
			d.mu.Lock()
			d.cfg, d.data, d.rev, d.absent = prev, prevData, prevRev, rrep.Absent
			// The restore went back to the last confirmed revision:
			// nothing is left to confirm.
			d.setPendingLocked(nil)
			d.mu.Unlock()
		} else {
			// Nothing to go back to: keep the new config as the target so
			// later retries (link events, reloads) converge on it.
			d.mu.Lock()
			d.cfg, d.data = cfg, data
			d.mu.Unlock()
		}
		d.mu.Lock()
		res.Revision = d.rev
		d.mu.Unlock()
		d.finish(res)
		return res
	}
	res.Result = mgmt.ResultApplied
	d.mu.Lock()
	sameAsRunning := d.rev != 0 && mgmt.Checksum(d.data) == mgmt.Checksum(data)
	d.mu.Unlock()
	rev := 0
	if sameAsRunning {
		d.mu.Lock()
		rev = d.rev
		d.mu.Unlock()
	} else if r, err := d.store.Add(data, reason, res.Time); err != nil {
		d.log.Error("could not store the revision", "dir", d.store.Dir, "error", err)
	} else {
		rev = r.Number
	}
	res.Revision = rev
	d.mu.Lock()
	d.cfg, d.data, d.rev = cfg, data, rev
	if d.pending != nil {
		// A newer change supersedes the pending one; without --confirm it
		// confirms it, with --confirm the deadline restarts and the target
		// stays the last confirmed revision.
		if confirm <= 0 {
			d.log.Info("pending change confirmed by a newer one", "revision", d.pending.Revision)
		}
		d.setPendingLocked(nil)
	}
	if confirm > 0 && prev != nil {
		p := d.armLocked(mgmt.Pending{Revision: rev, Previous: prevRev, Deadline: time.Now().Add(confirm)}, prev, prevData)
		pp := p.Pending
		res.PendingConfirm = &pp
		d.log.Warn("change must be confirmed with 'fwd confirm' or it is rolled back", "revision", rev, "deadline", p.Deadline.UTC().Format(time.RFC3339), "to_revision", prevRev)
	}
	d.mu.Unlock()
	d.finish(res)
	return res
}

// reapply applies the running config again (a NIC appeared).
func (d *Daemon) reapply(ctx context.Context, reason string) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	_, _ = d.apply(ctx, reason, cfg) // apply logs and counts its failures
}

// finish records a reload outcome for status and metrics.
func (d *Daemon) finish(res *mgmt.Result) {
	d.mu.Lock()
	if res.Result == mgmt.ResultRejected {
		res.Revision = d.rev
	}
	d.last = res
	d.mu.Unlock()
	d.metrics.reloaded(res)
}

// apply runs one engine apply and logs its one-line summary.
func (d *Daemon) apply(ctx context.Context, why string, cfg *config.Config) (*engine.Report, error) {
	rep, err := d.app.Apply(ctx, cfg, false)
	d.edge.sync(cfg) // edge_linux.go: DHCP clients follow the config
	if rep == nil {
		rep = &engine.Report{}
	}
	d.metrics.applied(rep, err)
	d.mu.Lock()
	d.absent = rep.Absent
	d.keepReadModel(cfg, rep)
	d.mu.Unlock()
	attrs := []any{"reason", why, "changes", len(rep.Changes), "duration", rep.Duration.Round(time.Microsecond).String()}
	for k, n := range change.Summary(rep.Changes) {
		attrs = append(attrs, k, n)
	}
	if len(rep.Absent) > 0 {
		attrs = append(attrs, "waiting_for", rep.Absent)
	}
	if err != nil {
		d.log.Error("apply failed", append(attrs, "error", err.Error())...)
		d.notify("STATUS=apply failed: " + strings.ReplaceAll(err.Error(), "\n", "; "))
	} else {
		d.log.Info("applied", attrs...)
		d.notify(fmt.Sprintf("STATUS=%d tenants, %d changes on %s", len(cfg.Tenants), len(rep.Changes), why))
	}
	if d.opts.Applied != nil {
		d.opts.Applied(rep, err)
	}
	return rep, err
}

// errorLines splits joined errors (config.Errors, errors.Join) into lines.
func errorLines(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
