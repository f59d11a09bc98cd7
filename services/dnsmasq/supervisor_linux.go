package dnsmasq

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/supervise"
)

// DefaultRunDir is where instances live: RUNDIR/TENANT/dnsmasq/.
const DefaultRunDir = "/run/fwd"

// programName names the supervised program (its pid and log files).
const programName = "dnsmasq"

// Supervisor runs one dnsmasq per tenant through package supervise.
// Methods are safe for concurrent use; calls for one tenant are
// serialised.
type Supervisor struct {
	log    *slog.Logger
	runDir string
	// Binary is the dnsmasq executable ("dnsmasq": found in PATH).
	Binary string
	// Grace is how long a stopped dnsmasq gets before SIGKILL.
	Grace time.Duration

	mu    sync.Mutex
	procs map[string]*supervise.Process
}

// NewSupervisor returns a supervisor keeping instances under
// runDir/TENANT/dnsmasq/ (DefaultRunDir when empty). A nil log discards.
func NewSupervisor(log *slog.Logger, runDir string) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if runDir == "" {
		runDir = DefaultRunDir
	}
	return &Supervisor{log: log, runDir: runDir, Binary: "dnsmasq", Grace: 5 * time.Second, procs: map[string]*supervise.Process{}}
}

// Dir is the tenant's instance directory.
func (s *Supervisor) Dir(tenant string) string { return filepath.Join(s.runDir, tenant, "dnsmasq") }

// Prepare fills what the supervisor decides in a tenant's Config: its
// directory and the unprivileged user dnsmasq drops to ("dnsmasq" where
// Debian's package created it, else "nobody", with its primary group).
func (s *Supervisor) Prepare(tenant string, c *Config) {
	c.Dir = s.Dir(tenant)
	if c.User == "" {
		c.User, c.Group = runAs()
	}
}

func runAs() (string, string) {
	for _, name := range []string{"dnsmasq", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			return name, g.Name
		}
		return name, ""
	}
	return "", ""
}

// pidFile is supervise's pid file for the program (Spec.Dir/Name.pid).
func (s *Supervisor) pidFile(tenant string) string {
	return supervise.PidFile(s.Dir(tenant), programName)
}

// Observe reads the tenant's instance: its files and whether the
// process (supervised here or left by a previous daemon) is alive.
func (s *Supervisor) Observe(tenant string) (Observed, error) {
	obs := Observed{Files: Files{}}
	dir := s.Dir(tenant)
	for _, name := range append([]string{MainFile}, RereadFiles...) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return obs, err
		}
		obs.Files[name] = b
	}
	s.mu.Lock()
	p := s.procs[tenant]
	s.mu.Unlock()
	if p != nil {
		obs.Running = p.Status().Running
	} else {
		_, obs.Running = supervise.Identity(s.pidFile(tenant))
	}
	return obs, nil
}

// Apply performs step for the tenant's instance in namespace tenant.
// Every action first adopts a dnsmasq a previous daemon left running, so
// that it is supervised again.
func (s *Supervisor) Apply(tenant string, step Step) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := s.Dir(tenant)
	p := s.procs[tenant]
	if p == nil && step.Action != Start {
		if _, alive := supervise.Identity(s.pidFile(tenant)); alive {
			var err error
			if p, err = supervise.Run(s.spec(tenant), s.log); err != nil {
				return err
			}
			s.procs[tenant] = p
		}
	}
	if step.Action == Stop {
		if p != nil {
			if err := p.Stop(s.Grace); err != nil {
				return err
			}
			delete(s.procs, tenant)
		}
		return os.RemoveAll(dir)
	}
	if err := s.write(tenant, step); err != nil {
		return err
	}
	switch step.Action {
	case Start, Restart:
		if p != nil {
			if err := p.Stop(s.Grace); err != nil {
				return err
			}
		}
		np, err := supervise.Run(s.spec(tenant), s.log)
		if err != nil {
			delete(s.procs, tenant)
			return err
		}
		s.procs[tenant] = np
	case Reload:
		if p == nil {
			return fmt.Errorf("reload: dnsmasq is not running")
		}
		if err := p.Signal(syscall.SIGHUP); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
	}
	return nil
}

func (s *Supervisor) spec(tenant string) supervise.Spec {
	dir := s.Dir(tenant)
	bin := s.Binary
	if p, err := exec.LookPath(bin); err == nil {
		bin = p
	}
	return supervise.Spec{Name: programName, Tenant: tenant, Dir: dir, Argv: Argv(bin, dir)}
}

// write stores the step's changed files atomically (dnsmasq never reads
// half a file). The directory is root's (0711): dnsmasq, once it has
// dropped to its user, can read the data files it re-reads on SIGHUP but
// cannot change any file, its configuration or the supervisor's pid file.
func (s *Supervisor) write(tenant string, step Step) error {
	dir := s.Dir(tenant)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	// The tenant's run directory may have been made 0700 by another
	// subsystem; dnsmasq's user needs to pass through it (not list it).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
				return err
			}
		}
	}
	for _, name := range step.Changed {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, step.files[name], 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// Status reports every supervised instance, by tenant.
func (s *Supervisor) Status() []supervise.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []supervise.Status
	for _, p := range s.procs {
		out = append(out, p.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out
}

// Leases reads the tenant's lease file (for `fwd show`).
func (s *Supervisor) Leases(tenant string) ([]Lease, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir(tenant), LeaseFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseLeases(b), nil
}

// Release stops supervising every instance and leaves them running
// (daemon exit): the next daemon adopts them.
func (s *Supervisor) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, p := range s.procs {
		p.Release()
		delete(s.procs, t)
	}
}

// StopAll stops every supervised instance (teardown, tests).
func (s *Supervisor) StopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, p := range s.procs {
		if err := p.Stop(s.Grace); err != nil {
			s.log.Warn("dnsmasq not stopped", "tenant", t, "error", err)
		}
		delete(s.procs, t)
	}
}
