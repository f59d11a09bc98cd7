package ha

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/supervise"
	"github.com/vishvananda/netlink"
)

// Manager runs the keepalived and conntrackd of every tenant with an HA
// pair, each inside its tenant's namespace, supervised (restarted with
// backoff, adopted by a restarted daemon). It is safe for concurrent use.
type Manager struct {
	log    *slog.Logger
	runDir string

	mu    sync.Mutex
	pairs map[string]*pair
}

type pair struct {
	spec                   Spec
	conntrackd, keepalived *supervise.Process
}

// StopGrace is how long Stop and a removed pair wait for a daemon after
// SIGTERM before SIGKILL.
var StopGrace = 5 * time.Second

// NewManager returns a Manager keeping each tenant's files in
// runDir/TENANT/ha (runDir is /run/fwd in production).
func NewManager(log *slog.Logger, runDir string) *Manager {
	return &Manager{log: log, runDir: runDir, pairs: map[string]*pair{}}
}

// Dir is the directory of a tenant's HA files, the Spec.Dir Reconcile
// uses when a spec leaves it empty.
func (m *Manager) Dir(tenant string) string { return filepath.Join(m.runDir, tenant, "ha") }

// Reconcile makes the running pairs those of specs: it starts missing
// ones (adopting daemons a previous fwd left running), reloads keepalived
// with SIGHUP when its configuration changed (a VIP change never restarts
// it), restarts conntrackd when its configuration changed (it has no
// reload), and stops the pairs of tenants no longer listed, including
// leftovers under runDir that a previous fwd started.
func (m *Manager) Reconcile(ctx context.Context, specs []Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]bool{}
	var errs []error
	for _, s := range specs {
		s = s.WithDefaults()
		if s.Dir == "" {
			s.Dir = m.Dir(s.Tenant)
		}
		want[s.Tenant] = true
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", s.Tenant, err))
			continue
		}
		if err := m.ensure(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", s.Tenant, err))
		}
	}
	for name, p := range m.pairs {
		if !want[name] {
			p.stop()
			delete(m.pairs, name)
			m.log.Info("ha pair stopped", "tenant", name)
		}
	}
	errs = append(errs, m.sweep(want))
	return errors.Join(errs...)
}

func (m *Manager) ensure(ctx context.Context, s Spec) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	if _, err := writeIfChanged(s.notifyScript(), NotifyScript, 0o700); err != nil {
		return err
	}
	ka, ct := Render(s)
	ctChanged, err := writeIfChanged(s.ConntrackdConf(), ct, 0o600)
	if err != nil {
		return err
	}
	kaChanged, err := writeIfChanged(s.KeepalivedConf(), ka, 0o600)
	if err != nil {
		return err
	}
	log := m.log.With("tenant", s.Tenant)
	p := m.pairs[s.Tenant]
	if p == nil {
		p = &pair{spec: s}
		m.pairs[s.Tenant] = p
	}
	p.spec = s
	if p.conntrackd == nil {
		_, adopt := supervise.Identity(supervise.PidFile(s.Dir, "conntrackd"))
		if !adopt {
			os.Remove(s.conntrackdSocket()) // waitFile below must see the new one
		}
		if p.conntrackd, err = supervise.Run(conntrackdProcess(s), log); err != nil {
			return err
		}
		if adopt && ctChanged {
			log.Info("conntrackd configuration changed: restarting it")
			if err := p.restartConntrackd(log); err != nil {
				return err
			}
		}
	} else if ctChanged {
		log.Info("conntrackd configuration changed: restarting it")
		if err := p.restartConntrackd(log); err != nil {
			return err
		}
	}
	if err := waitFile(ctx, s.conntrackdSocket()); err != nil {
		return fmt.Errorf("conntrackd did not open its socket (log %s): %w", s.path("conntrackd.log"), err)
	}
	if p.keepalived == nil {
		kaPid := supervise.PidFile(s.Dir, "keepalived")
		_, adopt := supervise.Identity(kaPid)
		if !adopt {
			os.Remove(s.StateFile()) // a new keepalived reports its own first state
		}
		if p.keepalived, err = supervise.Run(keepalivedProcess(s), log); err != nil {
			return err
		}
		if adopt && kaChanged {
			return p.keepalived.Signal(syscall.SIGHUP)
		}
		return nil
	}
	if kaChanged {
		log.Info("keepalived configuration changed: reloading it")
		return p.keepalived.Signal(syscall.SIGHUP)
	}
	return nil
}

// restartConntrackd replaces conntrackd and refills its caches: from the
// kernel table (it dumps it at start) and from the peer.
func (p *pair) restartConntrackd(log *slog.Logger) error {
	_ = p.conntrackd.Stop(StopGrace)
	os.Remove(p.spec.conntrackdSocket())
	var err error
	if p.conntrackd, err = supervise.Run(conntrackdProcess(p.spec), log); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := waitFile(ctx, p.spec.conntrackdSocket()); err != nil {
		return err
	}
	if tr, err := readTransition(p.spec); err == nil && tr.State == StateMaster {
		_, err = conntrackdCmd(ctx, p.spec, "-B")
		return err
	}
	_, err = conntrackdCmd(ctx, p.spec, "-n")
	return err
}

func (p *pair) stop() {
	// keepalived first: it releases the VIPs and tells the peer (priority
	// 0 advert) while conntrackd still holds the flows.
	if p.keepalived != nil {
		_ = p.keepalived.Stop(StopGrace)
	}
	if p.conntrackd != nil {
		_ = p.conntrackd.Stop(StopGrace)
	}
}

// sweep stops daemons a previous fwd started for tenants not wanted now.
func (m *Manager) sweep(want map[string]bool) error {
	dirs, _ := filepath.Glob(filepath.Join(m.runDir, "*", "ha"))
	for _, d := range dirs {
		tenant := filepath.Base(filepath.Dir(d))
		if want[tenant] || m.pairs[tenant] != nil {
			continue
		}
		for _, name := range []string{"keepalived", "conntrackd"} {
			pid, err := supervise.StopPidFile(supervise.PidFile(d, name), StopGrace)
			switch {
			case err != nil:
				m.log.Warn("leftover ha daemon not stopped", "tenant", tenant, "program", name, "pid", pid, "error", err)
			case pid != 0:
				m.log.Info("stopped leftover ha daemon", "tenant", tenant, "program", name, "pid", pid)
			}
		}
	}
	return nil
}

func keepalivedProcess(s Spec) supervise.Spec {
	// keepalived refuses to start while its own pid files name a live
	// process; supervise's pid file (keepalived.pid) is the one that
	// identifies it, so stale ka-*.pid files are removed first.
	sh := fmt.Sprintf("rm -f %[1]s/ka-*.pid; exec keepalived --dont-fork --log-console --log-detail --no-syslog --vrrp"+
		" --use-file=%[2]s --pid=%[1]s/ka-main.pid --vrrp_pid=%[1]s/ka-vrrp.pid --checkers_pid=%[1]s/ka-checkers.pid", s.Dir, s.KeepalivedConf())
	return supervise.Spec{Name: "keepalived", Tenant: s.Tenant, Dir: s.Dir, Argv: []string{"/bin/sh", "-c", sh}}
}

func conntrackdProcess(s Spec) supervise.Spec {
	// conntrackd's lock file is created O_EXCL and left behind by a
	// kill -9: supervise guarantees one conntrackd per tenant, so a lock
	// file found at start is stale.
	sh := fmt.Sprintf("rm -f %s; exec conntrackd -C %s", s.conntrackdLock(), s.ConntrackdConf())
	return supervise.Spec{Name: "conntrackd", Tenant: s.Tenant, Dir: s.Dir, Argv: []string{"/bin/sh", "-c", sh}}
}

// Status is one tenant's HA pair as this box sees it.
type Status struct {
	Tenant   string    `json:"tenant"`
	State    State     `json:"state"`
	Since    time.Time `json:"since,omitzero"` // last transition
	Priority int       `json:"priority"`       // effective, as keepalived reported it
	// FailoverHeld: Failover handed mastership over and Resume has not
	// been called; this box stays backup.
	FailoverHeld bool `json:"failover_held"`
	SyncLinkUp   bool `json:"sync_link_up"`
	// SplitBrainRisk: master while the sync link is down. The peer, if
	// alive, cannot hear us and is master too.
	SplitBrainRisk bool             `json:"split_brain_risk"`
	Sync           SyncStats        `json:"sync"`
	SyncError      string           `json:"sync_error,omitempty"`
	Keepalived     supervise.Status `json:"keepalived"`
	Conntrackd     supervise.Status `json:"conntrackd"`
}

// ErrNoPair is returned for a tenant without an HA pair.
var ErrNoPair = errors.New("no ha pair")

// Tenants lists the tenants with a pair, sorted.
func (m *Manager) Tenants() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for t := range m.pairs {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Master reports whether the tenant's pair is master now, from the notify
// script's state file (cheap: no conntrackd call); paired is false for a
// tenant without a pair.
func (m *Manager) Master(tenant string) (master, paired bool) {
	m.mu.Lock()
	p := m.pairs[tenant]
	m.mu.Unlock()
	if p == nil || p.keepalived == nil {
		return false, false
	}
	if !p.keepalived.Status().Running {
		return false, true
	}
	tr, err := readTransition(p.spec)
	return err == nil && tr.State == StateMaster, true
}

// Status reports a tenant's pair: state from the notify script's state
// file (stopped when keepalived is not running), the sync link's carrier,
// and conntrackd's counters.
func (m *Manager) Status(ctx context.Context, tenant string) (Status, error) {
	m.mu.Lock()
	p := m.pairs[tenant]
	m.mu.Unlock()
	if p == nil || p.keepalived == nil {
		return Status{}, fmt.Errorf("tenant %q: %w", tenant, ErrNoPair)
	}
	s := p.spec
	st := Status{Tenant: tenant, Keepalived: p.keepalived.Status(), Conntrackd: p.conntrackd.Status(), State: StateUnknown}
	if tr, err := readTransition(s); err == nil {
		st.State, st.Since, st.Priority = tr.State, tr.At, tr.Priority
	}
	if !st.Keepalived.Running {
		st.State = StateStopped
	}
	if b, err := os.ReadFile(s.FailoverFile()); err == nil {
		st.FailoverHeld = strings.TrimSpace(string(b)) != strconv.Itoa(failoverNone)
	}
	st.SyncLinkUp = linkUp(tenant, s.SyncInterface)
	st.SplitBrainRisk = st.State == StateMaster && !st.SyncLinkUp
	if st.Conntrackd.Running {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		out, err := conntrackdCmd(ctx, s, "-s")
		if err == nil {
			st.Sync, err = ParseConntrackdStats(out)
		}
		if err != nil {
			st.SyncError = err.Error()
		}
	}
	return st, nil
}

func readTransition(s Spec) (Transition, error) {
	b, err := os.ReadFile(s.StateFile())
	if err != nil {
		return Transition{}, err
	}
	return ParseStateFile(b)
}

func linkUp(tenant, name string) bool {
	h, err := ns.Open(tenant)
	if err != nil {
		return false
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return false
	}
	defer nh.Close()
	l, err := nh.LinkByName(name)
	return err == nil && l.Attrs().OperState == netlink.OperUp
}

func conntrackdCmd(ctx context.Context, s Spec, args ...string) ([]byte, error) {
	// The unix socket is a path: no need to enter the namespace.
	cmd := exec.CommandContext(ctx, "conntrackd", append([]string{"-C", s.ConntrackdConf()}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("conntrackd %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// Failover hands mastership to the peer (maintenance) and keeps this box
// backup until Resume. It works through keepalived's track file, which
// keepalived watches with inotify (no reload): a value below -253 puts
// the instance in FAULT, so a master leaves at once with a priority-0
// advert and the peer takes over after its skew time, not after the
// master-down timer nor its preempt delay; then the value -253 brings it
// back as a backup with priority 1, below any peer. Failover returns once
// this box is backup, or when ctx ends.
func (m *Manager) Failover(ctx context.Context, tenant string) error {
	s, err := m.spec(tenant)
	if err != nil {
		return err
	}
	if err := writeAtomic(s.FailoverFile(), failoverFault); err != nil {
		return err
	}
	if err := waitState(ctx, s, StateFault); err != nil {
		return fmt.Errorf("waiting for fault: %w", err)
	}
	if err := writeAtomic(s.FailoverFile(), failoverLow); err != nil {
		return err
	}
	if err := waitState(ctx, s, StateBackup); err != nil {
		return fmt.Errorf("waiting for backup: %w", err)
	}
	return nil
}

// Resume undoes Failover: this box gets its priority back and, if it is
// the higher one, takes mastership again after the preempt delay.
func (m *Manager) Resume(tenant string) error {
	s, err := m.spec(tenant)
	if err != nil {
		return err
	}
	return writeAtomic(s.FailoverFile(), failoverNone)
}

func (m *Manager) spec(tenant string) (Spec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pairs[tenant]
	if p == nil {
		return Spec{}, fmt.Errorf("tenant %q: %w", tenant, ErrNoPair)
	}
	return p.spec, nil
}

func waitState(ctx context.Context, s Spec, want State) error {
	for {
		if tr, err := readTransition(s); err == nil && tr.State == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops every pair (fwd stop, tests): VIPs are released.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.pairs {
		p.stop()
		delete(m.pairs, name)
	}
}

// Release ends supervision and leaves the daemons running (daemon exit or
// restart): the next Manager adopts them, and the pair keeps forwarding.
func (m *Manager) Release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.pairs {
		if p.keepalived != nil {
			p.keepalived.Release()
		}
		if p.conntrackd != nil {
			p.conntrackd.Release()
		}
		delete(m.pairs, name)
	}
}

// Process returns the supervised keepalived or conntrackd of a tenant
// (tests, the daemon's process list).
func (m *Manager) Process(tenant, program string) *supervise.Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pairs[tenant]
	if p == nil {
		return nil
	}
	switch program {
	case "keepalived":
		return p.keepalived
	case "conntrackd":
		return p.conntrackd
	}
	return nil
}

func writeIfChanged(path string, b []byte, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

// writeAtomic replaces the track file in one rename: keepalived never
// reads a half-written value.
func writeAtomic(path string, v int) error {
	_, err := writeIfChanged(path, []byte(strconv.Itoa(v)+"\n"), 0o600)
	return err
}

func waitFile(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
