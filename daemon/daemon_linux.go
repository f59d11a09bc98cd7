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
	"sync/atomic"
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
	// Applier replaces the engine (tests inject failures with it). If it
	// has a Close method, Close calls it.
	Applier Applier
	// SpeakersExitWithDaemon makes BGP speakers exit when the daemon's
	// process does (the lab): in production they outlive it on purpose.
	SpeakersExitWithDaemon bool
	// StopTimeout bounds how long SIGTERM waits for a running apply to
	// finish before the daemon exits anyway (default DefaultStopTimeout).
	StopTimeout time.Duration
}

// DefaultStopTimeout is how long a stopping daemon waits for the apply
// in progress: below systemd's default TimeoutStopSec (90 s).
const DefaultStopTimeout = 80 * time.Second

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
	obs       observers // dashboard collector, packet log readers (dashboard_linux.go)

	applyMu sync.Mutex // serialises applies: signal, API, link events, timers

	// stopping is set, under applyMu, once the daemon stops: no apply
	// starts after it (stopping_linux.go).
	stopping bool
	// abandoned is set when stop gave up waiting for an apply: the
	// engine is then left open (the process is about to exit).
	abandoned atomic.Bool

	mu      sync.Mutex // guards what follows
	cfg     *config.Config
	src     source // the running config file and its set files as applied
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
	prevCfg *config.Config
	prevSrc source
	timer   *time.Timer
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
	cfg, src, err := loadSource(opts.ConfigPath)
	if err != nil {
		log.Error("configuration rejected; nothing was changed", "file", opts.ConfigPath, "error", err.Error())
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	d := &Daemon{opts: opts, log: log, app: opts.Applier, cfg: cfg, src: src, started: time.Now()}
	if d.app == nil {
		eng, err := engine.New(log)
		if err != nil {
			return nil, err
		}
		d.app = withFailpoint(eng)
		d.observe = eng.Zones.Observe
		d.bgpStatus = eng.BGP.Status
		eng.BGP.WatchParent = opts.SpeakersExitWithDaemon
	}
	dir := opts.RevisionDir
	if dir == "" {
		dir = cfg.Mgmt.RevisionDir
	}
	d.store = &mgmt.Store{Dir: dir, Keep: cfg.Mgmt.Revisions, Log: log}
	if err := d.store.Check(); err != nil {
		log.Error("revision store cannot be written: changes will run but not be stored", "dir", dir, "error", err)
	}
	d.metrics = newMetrics(d)
	d.registerStoreMetric()
	d.edge = newEdge(d, engineOf(d.app)) // edge_linux.go
	return d, nil
}

// Run starts the daemon and blocks until ctx ends or SIGTERM/SIGINT.
func Run(ctx context.Context, opts Options) error {
	d, err := New(opts)
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: after the listeners stopped and
	// the running apply finished (stop), never under an apply.
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

	links, err := d.watchLinks()
	if err != nil {
		return err
	}
	defer links.close()

	d.Start(ctx)
	stopServers, err := d.serve()
	if err != nil {
		return err
	}
	// Stopping: first let the apply in progress finish (its API client
	// gets its whole reply, its revision is stored), then close the
	// listeners; d.Close runs after both.
	defer func() {
		d.stop()
		stopServers()
	}()
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
			// A signal cannot say --allow-empty: a file without tenants
			// is refused (and logged) like any invalid one. Off the loop,
			// so that a SIGTERM during a long reload is handled (stop
			// waits for the apply, bounded); applies queue on applyMu.
			go d.Reload(ctx, mgmt.ReloadRequest{})
		case <-links.kick():
			if links.take() && retry == nil {
				// Debounce: a driver reload sends several events.
				retry = time.After(linkDebounce)
			}
		case <-retry:
			retry = nil
			links.check(ctx)
		}
	}
}

// Start applies the configuration loaded by New. If that fails, the last
// stored revision (what ran before) is restored when it differs.
func (d *Daemon) Start(ctx context.Context) *mgmt.Result {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.sweep()
	var prev *config.Config
	var prevSrc source
	prevRev := 0
	revs, err := d.store.List()
	if err != nil {
		d.log.Warn("revisions unreadable", "dir", d.store.Dir, "error", err)
	} else if len(revs) > 0 {
		last := revs[len(revs)-1]
		if d.src.sameAsRevision(last) {
			d.rev = last.Number // adopt: this file is that revision
		} else if c, s, err := d.revision(last.Number); err == nil {
			prev, prevSrc, prevRev = c, s, last.Number
		}
	}
	lp, err := d.store.LoadPending()
	if err != nil {
		lp = d.recoverPending(revs, err)
	}
	target := func() (*config.Config, source, int) { return prev, prevSrc, prevRev }
	res := d.applyNew(ctx, "start", d.cfg, d.src, 0, target)
	d.mu.Lock()
	defer d.mu.Unlock()
	if lp == nil {
		return res
	}
	// A change was unconfirmed when the daemon stopped: if it is still
	// what runs, its deadline still holds (past: roll back now).
	if res.OK() && lp.Revision == d.rev {
		c, s, err := d.revision(lp.Previous)
		if err == nil {
			d.armLocked(*lp, c, s)
			d.log.Warn("change still unconfirmed from before the restart", "revision", lp.Revision, "deadline", lp.Deadline.UTC().Format(time.RFC3339), "to_revision", lp.Previous)
			return res
		}
		d.log.Error("change unconfirmed from before the restart, but the revision to roll back to is unreadable: it stays", "revision", lp.Revision, "to_revision", lp.Previous, "error", err)
	}
	d.setPendingLocked(nil)
	return res
}

// Reload re-reads the config file and applies it; an invalid file
// changes nothing, and neither does one without tenants unless
// req.AllowEmpty says so. With ConfirmSeconds, it is rolled back unless
// confirmed in time.
func (d *Daemon) Reload(ctx context.Context, req mgmt.ReloadRequest) *mgmt.Result {
	d.notify(fmt.Sprintf("%s\nMONOTONIC_USEC=%d", sd.SdNotifyReloading, monotonicUsec()))
	defer d.notify(sd.SdNotifyReady)
	// An API client that hangs up must not cancel an apply half-way.
	ctx = context.WithoutCancel(ctx)
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if d.stopping {
		return d.reject("reload", errStopping)
	}
	cfg, src, err := loadSource(d.opts.ConfigPath)
	var rm *mgmt.Removals
	if err == nil && !req.AllowEmpty {
		rm, err = d.refuseEmpty(cfg)
	}
	if err != nil {
		d.log.Error("reload rejected; running configuration unchanged", "file", d.opts.ConfigPath, "error", err.Error())
		return d.reject("reload", err, func(r *mgmt.Result) { r.Removals = rm })
	}
	reh, refused := d.rehearse(ctx, cfg, req) // rehearse_linux.go
	if refused != nil {
		return refused
	}
	res := d.applyNew(ctx, "reload", cfg, src, time.Duration(req.ConfirmSeconds)*time.Second, d.rollbackTargetLocked)
	return d.afterReload(res, cfg, req, reh) // flows_linux.go
}

// reject records a reload or rollback that changed nothing.
// fill, if given, completes the result before it is published (status
// may encode the published result at any moment: it is never changed
// afterwards).
func (d *Daemon) reject(reason string, err error, fill ...func(*mgmt.Result)) *mgmt.Result {
	res := &mgmt.Result{Time: time.Now(), Reason: reason, Result: mgmt.ResultRejected, Errors: errorLines(err), Changes: []change.Change{}}
	for _, f := range fill {
		f(res)
	}
	d.finish(res)
	if d.opts.Applied != nil {
		d.opts.Applied(nil, err)
	}
	return res
}

// Rollback applies a stored revision and writes it, set files included,
// back to disk.
func (d *Daemon) Rollback(ctx context.Context, req mgmt.RollbackRequest) (*mgmt.Result, error) {
	_, data, err := d.store.Get(req.Revision)
	if err != nil {
		return nil, err
	}
	files, err := d.store.Files(req.Revision)
	if err != nil {
		return nil, err
	}
	src := source{data: data, files: files}
	ctx = context.WithoutCancel(ctx)
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	reason := fmt.Sprintf("rollback to revision %d", req.Revision)
	if d.stopping {
		return d.reject(reason, errStopping), nil
	}
	cfg, err := parseSource(d.opts.ConfigPath, src)
	if err != nil {
		// Possible after an upgrade that tightened validation.
		d.log.Error("rollback rejected; running configuration unchanged", "revision", req.Revision, "error", err.Error())
		return d.reject(reason, err), nil
	}
	res := d.applyNew(ctx, reason, cfg, src, time.Duration(req.ConfirmSeconds)*time.Second, d.rollbackTargetLocked)
	if res.OK() {
		if err := d.writeSource(src); err != nil {
			res.StoreError = strings.TrimSpace(res.StoreError + "\nconfig file not restored: " + err.Error())
		}
	}
	return res, nil
}

// applyNew applies cfg; on failure it re-applies the rollback target
// (if any), which targetLocked gives after the apply (with d.mu held).
// On success the config becomes a revision (unless identical to the
// running one) and, with confirm > 0, must be confirmed in time. Caller
// holds applyMu.
func (d *Daemon) applyNew(ctx context.Context, reason string, cfg *config.Config, src source, confirm time.Duration, targetLocked func() (*config.Config, source, int)) *mgmt.Result {
	res := &mgmt.Result{Time: time.Now(), Reason: reason}
	rep, err := d.apply(ctx, reason, cfg)
	res.Changes, res.Waiting, res.Duration = rep.Changes, rep.Absent, rep.Duration
	if res.Changes == nil {
		res.Changes = []change.Change{}
	}
	if rm := mgmt.RemovalsOf(res.Changes); !rm.Empty() {
		res.Removals = rm
	}
	target := func() (prev *config.Config, prevSrc source, prevRev int) {
		if targetLocked == nil {
			return nil, source{}, 0
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return targetLocked()
	}
	if err != nil {
		res.Result = mgmt.ResultFailed
		res.Errors = errorLines(err)
		if prev, prevSrc, prevRev := target(); prev != nil && prev != cfg {
			rrep, rerr := d.apply(ctx, fmt.Sprintf("restore revision %d", prevRev), prev)
			res.Restore = &mgmt.Restore{Revision: prevRev, Changes: rrep.Changes}
			if res.Restore.Changes == nil {
				res.Restore.Changes = []change.Change{}
			}
			if rerr != nil {
				res.Restore.Error = rerr.Error()
			}
			d.mu.Lock()
			d.cfg, d.src, d.rev, d.absent = prev, prevSrc, prevRev, rrep.Absent
			// The restore went back to the last confirmed revision:
			// nothing is left to confirm.
			d.setPendingLocked(nil)
			d.mu.Unlock()
		} else {
			// Nothing to go back to: keep the new config as the target so
			// later retries (link events, reloads) converge on it.
			d.mu.Lock()
			d.cfg, d.src = cfg, src
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
	sameAsRunning := d.rev != 0 && d.src.same(src)
	rev := d.rev
	d.mu.Unlock()
	if !sameAsRunning {
		rev = 0
		if r, err := d.store.Add(src.data, src.files, reason, res.Time); err != nil {
			// It runs but is not a revision: the caller, status and the
			// store metric say so.
			d.log.Error("could not store the revision", "dir", d.store.Dir, "error", err)
			res.StoreError = err.Error()
		} else {
			rev = r.Number
		}
	}
	res.Revision = rev
	d.mu.Lock()
	var prev *config.Config
	var prevSrc source
	prevRev := 0
	if confirm > 0 && targetLocked != nil {
		prev, prevSrc, prevRev = targetLocked()
	}
	d.cfg, d.src, d.rev = cfg, src, rev
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
		p := d.armLocked(mgmt.Pending{Revision: rev, Previous: prevRev, Deadline: time.Now().Add(confirm)}, prev, prevSrc)
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
	if d.stopping {
		return
	}
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
	d.obs.applied(d, cfg)
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
