package bgp

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fwdproject/fwd/config"
)

// Supervisor runs one speaker process per tenant with BGP, in the daemon.
// Plan and FleetPlan.Apply bring speakers and their configuration to the
// config (fleet_linux.go); a speaker that dies is restarted with backoff
// and reconfigured (monitor_linux.go); speakers a previous daemon left
// running are adopted (adopt_linux.go).
type Supervisor struct {
	log    *slog.Logger
	runDir string

	// SpeakerArgv runs `fwd bgp-speaker` (default: this executable and
	// SpeakerCommand). Flags are appended. Tests point it at the test binary.
	SpeakerArgv []string
	// SpeakerEnv is added to the speaker's environment.
	SpeakerEnv []string
	// LogFormat is the speakers' log format, "text" or "json" (default:
	// that of the supervisor's logger). Their level is the lowest the
	// supervisor's logger enables.
	LogFormat string
	// StaleTimeout bounds how long routes left by a previous speaker
	// survive without the sessions converging (default 120 s).
	StaleTimeout time.Duration
	// AnnounceInterval is how often announce_if_route prefixes are checked
	// against the kernel table (default 5 s).
	AnnounceInterval time.Duration
	// StatusInterval is how often the monitor refreshes the neighbours'
	// state that Status reports (default 5 s).
	StatusInterval time.Duration
	// AnnounceGate, when set, says whether a tenant may originate its
	// prefixes now: the engine lets only the master of an HA pair
	// announce, so the upstream's path follows the VIP (docs/ha.md). It
	// is checked on every plan and every AnnounceInterval. nil: always.
	AnnounceGate func(tenant string) bool
	// WatchParent makes speakers exit when this process does (tests only:
	// in production speakers outlive the daemon on purpose).
	WatchParent bool

	mu       sync.Mutex // serialises plans and applies; guards the fields below
	speakers map[string]*speaker
	scanned  bool   // running speakers were adopted
	gen      uint64 // bumped when speakers changes

	viewMu sync.Mutex // guards views; never held while waiting on anything
	views  map[string]*SpeakerStatus
}

// NewSupervisor returns a supervisor keeping speaker sockets, pid files and
// logs under runDir/TENANT/ (DefaultRunDir in production). log carries the
// caller's attributes (the engine's subsystem); a nil log discards.
func NewSupervisor(log *slog.Logger, runDir string) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if runDir == "" {
		runDir = DefaultRunDir
	}
	return &Supervisor{log: log, runDir: runDir, speakers: map[string]*speaker{}, views: map[string]*SpeakerStatus{},
		StaleTimeout: 120 * time.Second, AnnounceInterval: 5 * time.Second, StatusInterval: 5 * time.Second}
}

// speaker is the supervisor's side of one tenant's speaker process.
type speaker struct {
	sup    *Supervisor
	tenant string
	dir    string
	sock   string
	log    *slog.Logger

	mu       sync.Mutex // serialises process control and configuration
	desired  *config.BGP
	table    uint32 // table of the running process
	app      *applied
	pid      int
	exited   chan struct{} // closed when process pid is gone
	client   *Client
	stopping bool
	stopCh   chan struct{}
	done     chan struct{}
	refresh  chan struct{} // asks the monitor for a status refresh now
	restarts int
	started  time.Time
	gen      uint64 // bumped whenever pid, table or app change

	overLimit map[string]bool // neighbours over a max_prefixes "warn" limit
}

func (s *Supervisor) newSpeaker(tenant string) *speaker {
	dir := filepath.Join(s.runDir, tenant)
	return &speaker{sup: s, tenant: tenant, dir: dir, sock: SocketPath(s.runDir, tenant),
		log: s.log.With("tenant", tenant), stopCh: make(chan struct{}), done: make(chan struct{}),
		refresh: make(chan struct{}, 1)}
}

// supervise registers sp and starts its monitor. s.mu is held.
func (s *Supervisor) supervise(sp *speaker) {
	s.speakers[sp.tenant] = sp
	s.gen++
	sp.mu.Lock()
	sp.publish()
	sp.mu.Unlock()
	go sp.monitor()
}

// forget unregisters the speaker of tenant. s.mu is held.
func (s *Supervisor) forget(tenant string) {
	delete(s.speakers, tenant)
	s.gen++
	s.viewMu.Lock()
	delete(s.views, tenant)
	s.viewMu.Unlock()
}

// state is what sp's plan is computed from. sp.mu is held.
func (sp *speaker) state() speakerState {
	return speakerState{Running: sp.running(), Table: sp.table, Applied: sp.app}
}

// Close ends supervision without stopping the speakers: on daemon exit
// sessions stay up and routes stay in the kernel; the next daemon adopts
// the running speakers (FleetPlan.Apply).
func (s *Supervisor) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, sp := range s.speakers {
		sp.mu.Lock()
		sp.endSupervision()
		if sp.client != nil {
			sp.client.Close()
			sp.client = nil
		}
		sp.mu.Unlock()
		<-sp.done
		s.forget(n)
	}
	s.scanned = false
}

// Shutdown stops every speaker and removes its routes (fwd teardown).
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adoptOnce()
	var errs []error
	for n, sp := range s.speakers {
		if err := sp.stop(ctx, true); err != nil {
			errs = append(errs, &TenantError{Tenant: n, Err: err})
		}
		s.forget(n)
	}
	return errors.Join(errs...)
}
