// Package daemon is `fwd run`: it applies the config, then reloads on
// SIGHUP, moves in NICs that appear late, and exits on SIGTERM/SIGINT
// without tearing anything down, so the data plane keeps forwarding while
// the daemon is away and a restarted daemon adopts what is there.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/change"
	"github.com/fwdproject/fwd/internal/engine"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Options configure the daemon.
type Options struct {
	ConfigPath string
	PidFile    string // "" for none
	Log        *slog.Logger
	// Applied, if set, is called after every apply attempt (tests, lab).
	Applied func(rep *engine.Report, err error)
}

// DefaultPidFile is where `fwd reload` finds the daemon.
const DefaultPidFile = "/run/fwd/fwd.pid"

// Daemon is a running fwd.
type Daemon struct {
	opts Options
	log  *slog.Logger
	eng  *engine.Engine

	mu     sync.Mutex
	cfg    *config.Config
	absent []string
}

// ErrInvalidConfig is returned when the initial config does not validate.
var ErrInvalidConfig = errors.New("invalid configuration")

// Run starts the daemon and blocks until ctx ends or SIGTERM/SIGINT.
func Run(ctx context.Context, opts Options) error {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		log.Error("configuration rejected; nothing was changed", "file", opts.ConfigPath, "errors", err.Error())
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	eng, err := engine.New(log)
	if err != nil {
		return err
	}
	defer eng.Close()
	d := &Daemon{opts: opts, log: log, eng: eng, cfg: cfg}
	if opts.PidFile != "" {
		if err := writePid(opts.PidFile); err != nil {
			return err
		}
		defer os.Remove(opts.PidFile)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	links := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case <-done: // shutting down: the socket was closed on purpose
			default:
				log.Warn("link watch", "error", err)
			}
		},
	}); err != nil {
		return fmt.Errorf("watch links: %w", err)
	}

	d.apply(ctx, "start")
	daemon.SdNotify(false, daemon.SdNotifyReady)

	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			daemon.SdNotify(false, daemon.SdNotifyStopping)
			log.Info("stopping; the data plane stays as it is")
			return nil
		case s := <-sigs:
			if s != syscall.SIGHUP {
				daemon.SdNotify(false, daemon.SdNotifyStopping)
				log.Info("stopping; the data plane stays as it is", "signal", s.String())
				return nil
			}
			d.Reload(ctx)
		case u, ok := <-links:
			if !ok {
				return errors.New("link watch closed")
			}
			if u.Header.Type == unix.RTM_NEWLINK && d.waitingFor(u.Link) && retry == nil {
				// Debounce: a driver reload sends several events.
				retry = time.After(300 * time.Millisecond)
			}
		case <-retry:
			retry = nil
			d.apply(ctx, "link appeared")
		}
	}
}

// Reload re-reads the config file and applies it; an invalid file
// changes nothing.
func (d *Daemon) Reload(ctx context.Context) {
	daemon.SdNotify(false, fmt.Sprintf("%s\nMONOTONIC_USEC=%d", daemon.SdNotifyReloading, monotonicUsec()))
	defer daemon.SdNotify(false, daemon.SdNotifyReady)
	cfg, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		d.log.Error("reload rejected; running configuration unchanged", "file", d.opts.ConfigPath, "errors", err.Error())
		if d.opts.Applied != nil {
			d.opts.Applied(nil, err)
		}
		return
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.apply(ctx, "reload")
}

func (d *Daemon) waitingFor(l netlink.Link) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.absent) == 0 {
		return false
	}
	a := l.Attrs()
	for _, sel := range d.absent {
		if sel == "device "+a.Name || (a.HardwareAddr != nil && sel == "mac "+a.HardwareAddr.String()) {
			return true
		}
	}
	return false
}

func (d *Daemon) apply(ctx context.Context, why string) {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	rep, err := d.eng.Apply(ctx, cfg, false)
	d.mu.Lock()
	d.absent = rep.Absent
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
		daemon.SdNotify(false, "STATUS=apply failed: "+err.Error())
	} else {
		d.log.Info("applied", attrs...)
		daemon.SdNotify(false, fmt.Sprintf("STATUS=%d tenants, %d changes on %s", len(cfg.Tenants), len(rep.Changes), why))
	}
	if d.opts.Applied != nil {
		d.opts.Applied(rep, err)
	}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Sec*1e6 + ts.Nsec/1e3
}

func writePid(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if pid, err := ReadPid(path); err == nil && syscall.Kill(pid, 0) == nil && pid != os.Getpid() {
		return fmt.Errorf("another fwd daemon runs as pid %d (%s)", pid, path)
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// ReadPid reads the daemon's pid file.
func ReadPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return strconv.Atoi(s)
}
