// Package supervise runs the helper daemons fwd starts inside tenant
// namespaces (keepalived, conntrackd, dnsmasq): each is started in its
// tenant's namespace in a session of its own, restarted with backoff when
// it dies, survives the daemon (a restarted daemon adopts it) and is
// stopped when its configuration goes away.
//
// A process is identified by its pid file, which records the PID and the
// process's start time (field 22 of /proc/PID/stat): a PID the kernel has
// reused for another program never matches, so fwd never signals a
// process that is not the one it started.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"golang.org/x/sys/unix"
)

// Spec describes one supervised program.
type Spec struct {
	Name   string // "keepalived", "dnsmasq": names its pid and log files
	Tenant string // the namespace it runs in
	Dir    string // where its pid file, log and generated files live
	Argv   []string
	Env    []string
}

func (s Spec) pidFile() string { return PidFile(s.Dir, s.Name) }

// PidFile is where the program name supervised in dir keeps its pid file:
// the one naming rule for everyone who checks on a program.
func PidFile(dir, name string) string { return filepath.Join(dir, name+".pid") }

// LogFile is where the program's stdout and stderr go.
func (s Spec) LogFile() string { return filepath.Join(s.Dir, s.Name+".log") }

// Status is a snapshot of a supervised process.
type Status struct {
	Name     string    `json:"name"`
	Tenant   string    `json:"tenant"`
	PID      int       `json:"pid,omitempty"`
	Running  bool      `json:"running"`
	Started  time.Time `json:"started,omitempty"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"`
}

// Process is one supervised program.
type Process struct {
	spec Spec
	log  *slog.Logger

	mu       sync.Mutex
	pid      int
	exited   chan struct{}
	started  time.Time
	restarts int
	lastExit string
	stopping bool
	stopCh   chan struct{}
	done     chan struct{}
}

// Backoff bounds between restarts of a program that keeps dying.
var (
	MinBackoff = 500 * time.Millisecond
	MaxBackoff = 30 * time.Second
)

// Run adopts the program if a previous daemon left it running (same pid
// file identity), or starts it, and supervises it until Stop or Release.
func Run(spec Spec, log *slog.Logger) (*Process, error) {
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return nil, err
	}
	p := &Process{spec: spec, log: log.With("program", spec.Name), stopCh: make(chan struct{}), done: make(chan struct{})}
	if pid, start, ok := readPidFile(spec.pidFile()); ok && alive(pid, start) {
		exited, err := WaitPID(pid)
		if err != nil {
			// It runs but cannot be watched: starting a second one beside
			// it would be worse than failing.
			return nil, fmt.Errorf("adopt %s (pid %d): %w", spec.Name, pid, err)
		}
		p.pid, p.exited, p.started = pid, exited, time.Now()
		p.log.Info("adopted running program", "pid", pid)
	}
	if p.pid == 0 {
		if err := p.start(); err != nil {
			return nil, err
		}
	}
	go p.supervise()
	return p, nil
}

// start runs a new process. p.mu is held or p is not yet shared.
func (p *Process) start() error {
	h, err := ns.Open(p.spec.Tenant)
	if err != nil {
		return err
	}
	defer h.Close()
	logf, err := os.OpenFile(p.spec.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.spec.Argv[0], p.spec.Argv[1:]...)
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = p.spec.Dir
	// A session of its own: signals aimed at the daemon's process group
	// (Ctrl-C, a unit stop) do not take the program along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// A child forked from a thread inside the namespace is born in it.
	if err := ns.Do(h, cmd.Start); err != nil {
		return fmt.Errorf("start %s: %w", p.spec.Name, err)
	}
	exited := make(chan struct{})
	pid, log := cmd.Process.Pid, p.log
	go func() {
		// supervise says the program exited; its status is detail.
		if err := cmd.Wait(); err != nil {
			log.Debug("program exit status", "pid", pid, "error", err)
		}
		close(exited)
	}()
	p.pid, p.exited, p.started = pid, exited, time.Now()
	start, err := startTime(p.pid)
	if err == nil {
		err = writePidFile(p.spec.pidFile(), p.pid, start)
	}
	if err != nil {
		// It runs, but a restarted daemon will not adopt it.
		p.log.Warn("pid file", "pid", p.pid, "error", err)
	}
	p.log.Info("program started", "pid", p.pid)
	return nil
}

// supervise restarts the program whenever it exits, until stopped.
func (p *Process) supervise() {
	defer close(p.done)
	backoff := MinBackoff
	for {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		select {
		case <-p.stopCh:
			return
		case <-exited:
		}
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		up, pid := time.Since(p.started), p.pid
		p.lastExit = time.Now().Format(time.RFC3339)
		p.mu.Unlock()
		if up > time.Minute {
			backoff = MinBackoff
		}
		p.log.Warn("program exited; restarting", "pid", pid, "after", backoff.String(), "log", p.spec.LogFile())
		select {
		case <-p.stopCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, MaxBackoff)
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		if err := p.start(); err != nil {
			p.log.Error("restart failed", "error", err)
			p.exited = closed()
		} else {
			p.restarts++
		}
		p.mu.Unlock()
	}
}

func closed() chan struct{} { c := make(chan struct{}); close(c); return c }

// Signal sends sig to the running program (SIGHUP: reload its config).
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return fmt.Errorf("%s is not running", p.spec.Name)
	}
	return syscall.Kill(p.pid, sig)
}

func (p *Process) runningLocked() bool {
	if p.pid == 0 || p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop ends supervision and the program (SIGTERM, then SIGKILL after
// grace), and removes its pid file.
func (p *Process) Stop(grace time.Duration) error {
	p.mu.Lock()
	if !p.stopping {
		p.stopping = true
		close(p.stopCh)
	}
	pid, exited, running := p.pid, p.exited, p.runningLocked()
	p.mu.Unlock()
	<-p.done
	if running {
		if err := Kill(pid, syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-exited:
		case <-time.After(grace):
			if err := Kill(pid, syscall.SIGKILL); err != nil {
				return err
			}
			<-exited
		}
	}
	os.Remove(p.spec.pidFile())
	p.log.Info("program stopped", "pid", pid)
	return nil
}

// Kill sends sig to pid; a process already gone is not an error.
func Kill(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	return nil
}

// Release ends supervision and leaves the program running (daemon exit):
// the next daemon adopts it.
func (p *Process) Release() {
	p.mu.Lock()
	if !p.stopping {
		p.stopping = true
		close(p.stopCh)
	}
	p.mu.Unlock()
	<-p.done
}

// Status reports the program's state.
func (p *Process) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{Name: p.spec.Name, Tenant: p.spec.Tenant, PID: p.pid, Running: p.runningLocked(),
		Started: p.started, Restarts: p.restarts, LastExit: p.lastExit}
}

// --- identity ---

func writePidFile(path string, pid int, start uint64) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", pid, start)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readPidFile(path string) (pid int, start uint64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	return pid, start, err1 == nil && err2 == nil && pid > 0
}

// StartTime is the start time of pid in clock ticks since boot (field 22
// of /proc/PID/stat): with the PID it identifies a process for good.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 overall
}

// alive reports whether pid is running and is the process that started
// at start (not a reused PID).
func alive(pid int, start uint64) bool {
	st, err := startTime(pid)
	return err == nil && st == start
}

// WaitPID returns a channel closed when pid exits; pidfd works for
// processes that are not our children (adopted ones).
func WaitPID(pid int) (chan struct{}, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	ch := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		for {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(pfd, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n > 0 {
				close(ch)
				return
			}
		}
	}()
	return ch, nil
}

// Identity exposes the pid-file identity check for other pid files fwd
// keeps (the daemon's own): it reports whether the file names a live
// process that is the one recorded.
func Identity(path string) (pid int, ok bool) {
	pid, start, found := readPidFile(path)
	if !found {
		return 0, false
	}
	return pid, alive(pid, start)
}

// WritePidFile records the calling process in path with its start time.
func WritePidFile(path string) error {
	start, err := startTime(os.Getpid())
	if err != nil {
		return err
	}
	return writePidFile(path, os.Getpid(), start)
}

// Wait blocks until the program has been running, or ctx ends.
func (p *Process) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		up := p.runningLocked()
		p.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StopPidFile stops the program a pid file names, if the file's identity
// (PID and start time) still matches a live process, and removes the
// file. Signals go through a pidfd, so a PID the kernel reuses meanwhile
// is never signalled: SIGTERM, then SIGKILL after grace. It reports the
// PID it stopped (0: none was running).
func StopPidFile(path string, grace time.Duration) (int, error) {
	defer os.Remove(path)
	pid, ok := Identity(path)
	if !ok {
		return 0, nil
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return 0, nil // gone since the identity check
		}
		return pid, err
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return pid, nil
		}
		return pid, err
	}
	if exited(fd, grace) {
		return pid, nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return pid, err
	}
	exited(fd, grace)
	return pid, nil
}

// exited waits up to d for the process behind pidfd fd to exit.
func exited(fd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms < 0 {
			return false
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}
