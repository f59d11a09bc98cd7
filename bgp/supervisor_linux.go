package bgp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/internal/nldump"
	"github.com/fwdproject/fwd/internal/ns"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Supervisor runs one speaker process per tenant with BGP, in the daemon.
// Reconcile brings speakers and their configuration to the config; a
// speaker that dies is restarted with backoff and reconfigured.
type Supervisor struct {
	log    *slog.Logger
	runDir string

	// SpeakerArgv runs `fwd bgp-speaker` (default: this executable and
	// SpeakerCommand). Flags are appended. Tests point it at the test binary.
	SpeakerArgv []string
	// SpeakerEnv is added to the speaker's environment.
	SpeakerEnv []string
	// StaleTimeout bounds how long routes left by a previous speaker
	// survive without the sessions converging (default 120 s).
	StaleTimeout time.Duration
	// AnnounceInterval is how often announce_if_route prefixes are checked
	// against the kernel table (default 5 s).
	AnnounceInterval time.Duration
	// WatchParent makes speakers exit when this process does (tests only:
	// in production speakers outlive the daemon on purpose).
	WatchParent bool

	mu       sync.Mutex
	speakers map[string]*speaker
	scanned  bool
}

// NewSupervisor returns a supervisor keeping speaker sockets, pid files and
// logs under runDir/TENANT/ (DefaultRunDir in production).
func NewSupervisor(log *slog.Logger, runDir string) *Supervisor {
	if log == nil {
		log = slog.Default()
	}
	if runDir == "" {
		runDir = DefaultRunDir
	}
	return &Supervisor{log: log.With("subsystem", "bgp"), runDir: runDir, speakers: map[string]*speaker{},
		StaleTimeout: 120 * time.Second, AnnounceInterval: 5 * time.Second}
}

// applied is what a running speaker was configured with. It is kept in
// memory and in RUNDIR/TENANT/applied.json, so a restarted daemon adopting
// a running speaker knows what it has and changes nothing when the config
// did not change. It is only trusted for the speaker PID it names.
type applied struct {
	PID       int               `json:"pid"`
	Table     uint32            `json:"table"`
	Global    string            `json:"global"`
	Neighbors map[string]string `json:"neighbors"` // address -> neighborFingerprint
	Filters   map[string]string `json:"filters"`   // address -> filterFingerprint
	Policies  string            `json:"policies"`
	Announced []string          `json:"announced"`
}

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
	restarts int
	started  time.Time

	overLimit map[string]bool // neighbours over a max_prefixes "warn" limit
}

func globalFingerprint(b *config.BGP) string {
	return fmt.Sprintf("asn=%d id=%s port=%d", b.ASN, b.RouterID, b.ListenPort)
}

// Reconcile starts, configures and stops speakers so that every tenant
// with a [bgp] section has one configured as the config says. With dryRun
// it only reports what it would do. Unchanged neighbours keep their
// sessions; changed ones are reset; filters change without a reset (soft
// reset).
func (s *Supervisor) Reconcile(ctx context.Context, cfg *config.Config, dryRun bool) ([]change.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.scanned && !dryRun {
		s.adoptRunning()
		s.scanned = true
	}
	want := map[string]*config.Tenant{}
	for _, t := range cfg.Tenants {
		if t.BGP != nil {
			want[t.Name] = t
		}
	}
	var changes []change.Change
	var errs []error
	// A dry run in a process that never adopted the running speakers
	// (`fwd plan` without the daemon) compares with what they report, read
	// only: nothing is adopted, supervised or started.
	peek := map[string]*speaker{}
	if dryRun && !s.scanned {
		peek = s.peekRunning()
	}
	speakers := map[string]*speaker{}
	for n, sp := range peek {
		speakers[n] = sp
	}
	for n, sp := range s.speakers {
		speakers[n] = sp
	}
	names := make([]string, 0, len(speakers))
	for n := range speakers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if want[n] != nil {
			continue
		}
		sp := speakers[n]
		changes = append(changes, change.Change{Tenant: n, Subsystem: "bgp", Action: "stop-speaker", Object: "speaker", Detail: "tenant has no [bgp] section; its BGP routes are removed"})
		if dryRun {
			continue
		}
		if err := sp.stop(ctx, true); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: stop speaker: %w", n, err))
		}
		delete(s.speakers, n)
	}
	for _, t := range cfg.Tenants {
		if t.BGP == nil {
			continue
		}
		sp := speakers[t.Name]
		if sp == nil {
			sp = s.newSpeaker(t.Name)
			if !dryRun {
				s.speakers[t.Name] = sp
				go sp.monitor()
			}
		}
		cs, err := sp.reconcile(ctx, t.BGP, dryRun)
		changes = append(changes, cs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: bgp: %w", t.Name, err))
		}
	}
	return changes, errors.Join(errs...)
}

func (s *Supervisor) newSpeaker(tenant string) *speaker {
	dir := filepath.Join(s.runDir, tenant)
	return &speaker{sup: s, tenant: tenant, dir: dir, sock: SocketPath(s.runDir, tenant),
		log: s.log.With("tenant", tenant), stopCh: make(chan struct{}), done: make(chan struct{})}
}

// adoptRunning takes over speakers a previous daemon left running.
func (s *Supervisor) adoptRunning() {
	ents, err := os.ReadDir(s.runDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sp := s.newSpeaker(e.Name())
		pid := speakerPID(sp.dir)
		if pid == 0 {
			continue
		}
		exited, err := waitPID(pid)
		if err != nil {
			continue
		}
		c, err := Dial(sp.sock)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = c.api.GetBgp(cctx, &api.GetBgpRequest{})
		cancel()
		if err != nil {
			c.Close()
			continue
		}
		sp.pid, sp.exited, sp.client, sp.started = pid, exited, c, time.Now()
		if a := readApplied(sp.dir); a != nil && a.PID == pid {
			sp.app, sp.table = a, a.Table
		} else {
			// Unknown configuration: restart it cleanly (routes stay).
			sp.log.Warn("running speaker has no record of its configuration; restarting it", "pid", pid)
			sp.app = &applied{PID: pid, Global: "unknown"}
		}
		sp.log.Info("adopted running speaker", "pid", pid)
		s.speakers[sp.tenant] = sp
		go sp.monitor()
	}
}

// peekRunning describes the running speakers under runDir from their pid
// and applied files, without connecting to or supervising them.
func (s *Supervisor) peekRunning() map[string]*speaker {
	out := map[string]*speaker{}
	ents, err := os.ReadDir(s.runDir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sp := s.newSpeaker(e.Name())
		pid := speakerPID(sp.dir)
		if pid == 0 {
			continue
		}
		sp.pid, sp.exited = pid, make(chan struct{}) // open: running
		if a := readApplied(sp.dir); a != nil && a.PID == pid {
			sp.app, sp.table = a, a.Table
		} else {
			sp.app = &applied{PID: pid, Global: "unknown"}
		}
		out[sp.tenant] = sp
	}
	return out
}

// speakerPID returns the PID in dir's pid file if that process is alive
// and is a speaker.
func speakerPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, pidFileName))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "-socket") {
		return 0
	}
	return pid
}

// waitPID returns a channel closed when pid exits (pidfd: works for
// processes that are not our children).
func waitPID(pid int) (chan struct{}, error) {
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

func readApplied(dir string) *applied {
	b, err := os.ReadFile(filepath.Join(dir, "applied.json"))
	if err != nil {
		return nil
	}
	var a applied
	if json.Unmarshal(b, &a) != nil {
		return nil
	}
	return &a
}

func (sp *speaker) saveApplied() {
	if sp.app == nil {
		return
	}
	b, _ := json.MarshalIndent(sp.app, "", "  ")
	tmp := filepath.Join(sp.dir, "applied.json.tmp")
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, filepath.Join(sp.dir, "applied.json"))
	}
}

func (sp *speaker) running() bool {
	if sp.pid == 0 || sp.exited == nil {
		return false
	}
	select {
	case <-sp.exited:
		return false
	default:
		return true
	}
}

func (sp *speaker) change(action, object, detail string) change.Change {
	return change.Change{Tenant: sp.tenant, Subsystem: "bgp", Action: action, Object: object, Detail: detail}
}

// reconcile brings the speaker to b.
func (sp *speaker) reconcile(ctx context.Context, b *config.BGP, dryRun bool) ([]change.Change, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !dryRun {
		sp.desired = b
	}
	var cs []change.Change
	restart := ""
	switch {
	case !sp.running():
		cs = append(cs, sp.change("start-speaker", "speaker", fmt.Sprintf("AS %d, router ID %s, table %d", b.ASN, b.RouterID, b.TableID)))
	case sp.table != b.TableID:
		restart = fmt.Sprintf("table %d -> %d", sp.table, b.TableID)
	case sp.app != nil && sp.app.Global != globalFingerprint(b):
		restart = "AS, router ID or listen port changed"
	}
	if restart != "" {
		cs = append(cs, sp.change("restart-speaker", "speaker", restart))
	}
	if dryRun {
		app := sp.app
		if restart != "" || !sp.running() {
			app = nil
		}
		return append(cs, sp.diff(ctx, app, b)...), nil
	}
	if restart != "" {
		oldTable := sp.table
		if err := sp.kill(ctx); err != nil {
			return cs, err
		}
		if oldTable != b.TableID {
			// Routes in the old table would never be swept by the new speaker.
			if err := sp.flushRoutes(oldTable); err != nil {
				sp.log.Warn("remove routes from old table", "table", oldTable, "err", err)
			}
		}
	}
	if !sp.running() {
		if err := sp.start(ctx); err != nil {
			return cs, err
		}
	}
	more, err := sp.configure(ctx, b)
	return append(cs, more...), err
}

// desiredAnnounce is the set of prefixes to originate now.
func (sp *speaker) desiredAnnounce(b *config.BGP) []string {
	var out []string
	for _, p := range b.Announce {
		out = append(out, p.String())
	}
	if len(b.AnnounceIfRoute) > 0 {
		present := routesPresent(sp.tenant, b.TableID, b.AnnounceIfRoute)
		for _, p := range b.AnnounceIfRoute {
			if present[p] {
				out = append(out, p.String())
			}
		}
	}
	sort.Strings(out)
	return out
}

// routesPresent reports which prefixes have a route in the tenant's table
// that BGP did not install.
func routesPresent(tenant string, table uint32, prefixes []netip.Prefix) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	h, err := ns.Open(tenant)
	if err != nil {
		return out
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return out
	}
	defer nh.Close()
	want := map[netip.Prefix]bool{}
	fams := map[int]bool{}
	for _, p := range prefixes {
		want[p] = true
		if p.Addr().Is6() {
			fams[netlink.FAMILY_V6] = true
		} else {
			fams[netlink.FAMILY_V4] = true
		}
	}
	// One dump of the table per family for all prefixes, not one per
	// prefix: the table may hold a full BGP feed.
	for fam := range fams {
		rs, err := nldump.Retry(func() ([]netlink.Route, error) {
			return nh.RouteListFiltered(fam, &netlink.Route{Table: int(table)}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			continue
		}
		for _, r := range rs {
			if r.Protocol == Protocol || r.Dst == nil {
				continue
			}
			if q, ok := prefixOf(r.Dst); ok && want[q] {
				out[q] = true
			}
		}
	}
	return out
}

// diff lists what configuring b over app would change, without doing it.
func (sp *speaker) diff(ctx context.Context, app *applied, b *config.BGP) []change.Change {
	cp := &applied{Neighbors: map[string]string{}, Filters: map[string]string{}}
	if app != nil {
		cp.Policies, cp.Announced = app.Policies, append([]string(nil), app.Announced...)
		for k, v := range app.Neighbors {
			cp.Neighbors[k] = v
		}
		for k, v := range app.Filters {
			cp.Filters[k] = v
		}
	}
	steps, _ := sp.plan(ctx, cp, b)
	var cs []change.Change
	for _, st := range steps {
		cs = append(cs, st.change)
	}
	return cs
}

// configure applies b to the running speaker, changing only what differs
// from what it was last configured with.
func (sp *speaker) configure(ctx context.Context, b *config.BGP) ([]change.Change, error) {
	var cs []change.Change
	c := sp.client.api
	app := sp.app
	if app == nil {
		if _, err := c.StartBgp(ctx, &api.StartBgpRequest{Global: globalOf(b)}); err != nil {
			return cs, fmt.Errorf("start bgp: %w", err)
		}
		app = &applied{PID: sp.pid, Table: b.TableID, Global: globalFingerprint(b), Neighbors: map[string]string{}, Filters: map[string]string{}}
		sp.app = app
	}
	defer sp.saveApplied()
	steps, err := sp.plan(ctx, app, b)
	for _, st := range steps {
		cs = append(cs, st.change)
		if st.do == nil {
			continue
		}
		if err := st.do(ctx, c); err != nil {
			return cs, fmt.Errorf("%s %s: %w", st.change.Action, st.change.Object, err)
		}
	}
	return cs, err
}

type step struct {
	change change.Change
	do     func(ctx context.Context, c api.GobgpApiClient) error
}

// plan computes the steps from app to b. Steps update app as they run.
func (sp *speaker) plan(ctx context.Context, app *applied, b *config.BGP) ([]step, error) {
	var steps []step
	if app.Neighbors == nil {
		app.Neighbors = map[string]string{}
	}
	if app.Filters == nil {
		app.Filters = map[string]string{}
	}
	want := map[string]*config.Neighbor{}
	for _, n := range b.Neighbors {
		want[n.Address.String()] = n
	}
	// Filters first, so new neighbours are filtered from their first route.
	pol := policiesOf(b)
	polFP := fmt.Sprint(pol)
	var softReset []string
	for _, n := range b.Neighbors {
		a := n.Address.String()
		if fp, ok := app.Filters[a]; ok && app.Neighbors[a] == neighborFingerprint(n) && fp != filterFingerprint(n) {
			softReset = append(softReset, a)
		}
	}
	if app.Policies != polFP {
		steps = append(steps, step{sp.change("set-filters", "import/export policies", fmt.Sprintf("%d neighbour(s)", len(b.Neighbors))),
			func(ctx context.Context, c api.GobgpApiClient) error {
				if _, err := c.SetPolicies(ctx, pol); err != nil {
					return err
				}
				// SetPolicies keeps the existing assignments: set ours
				// (idempotent; names never change).
				for _, as := range pol.Assignments {
					if _, err := c.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: as}); err != nil {
						return err
					}
				}
				app.Policies = polFP
				return nil
			}})
	}
	var gone []string
	for a := range app.Neighbors {
		if want[a] == nil {
			gone = append(gone, a)
		}
	}
	sort.Strings(gone)
	for _, a := range gone {
		a := a
		steps = append(steps, step{sp.change("delete-neighbor", "neighbor "+a, "session closed with a Cease notification"),
			func(ctx context.Context, c api.GobgpApiClient) error {
				if _, err := c.DeletePeer(ctx, &api.DeletePeerRequest{Address: a}); err != nil && !strings.Contains(err.Error(), "not found") {
					return err
				}
				delete(app.Neighbors, a)
				delete(app.Filters, a)
				return nil
			}})
	}
	for _, n := range b.Neighbors {
		n := n
		a := n.Address.String()
		fp := neighborFingerprint(n)
		old, had := app.Neighbors[a]
		if had && old == fp {
			app.Filters[a] = filterFingerprint(n)
			continue
		}
		action, detail := "add-neighbor", fmt.Sprintf("AS %d", n.ASN)
		if had {
			action, detail = "reset-neighbor", "settings changed: session restarts"
		}
		steps = append(steps, step{sp.change(action, "neighbor "+a, detail),
			func(ctx context.Context, c api.GobgpApiClient) error {
				if had {
					if _, err := c.DeletePeer(ctx, &api.DeletePeerRequest{Address: a}); err != nil && !strings.Contains(err.Error(), "not found") {
						return err
					}
				}
				if _, err := c.AddPeer(ctx, &api.AddPeerRequest{Peer: peerOf(n)}); err != nil {
					return err
				}
				app.Neighbors[a] = fp
				app.Filters[a] = filterFingerprint(n)
				return nil
			}})
	}
	for _, a := range softReset {
		a := a
		steps = append(steps, step{sp.change("refresh-neighbor", "neighbor "+a, "filters changed: soft reset, session stays up"),
			func(ctx context.Context, c api.GobgpApiClient) error {
				_, err := c.ResetPeer(ctx, &api.ResetPeerRequest{Address: a, Soft: true, Direction: api.ResetPeerRequest_BOTH})
				if err == nil {
					app.Filters[a] = filterFingerprint(want[a])
				}
				return err
			}})
	}
	// Announcements.
	ann := sp.desiredAnnounce(b)
	have := map[string]bool{}
	for _, p := range app.Announced {
		have[p] = true
	}
	wantAnn := map[string]bool{}
	for _, p := range ann {
		wantAnn[p] = true
	}
	for _, p := range app.Announced {
		if wantAnn[p] {
			continue
		}
		p := p
		steps = append(steps, step{sp.change("withdraw", p, ""), func(ctx context.Context, c api.GobgpApiClient) error {
			path, err := originPath(netip.MustParsePrefix(p))
			if err != nil {
				return err
			}
			if _, err := c.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path}); err != nil {
				return err
			}
			app.Announced = remove(app.Announced, p)
			return nil
		}})
	}
	for _, p := range ann {
		if have[p] {
			continue
		}
		p := p
		steps = append(steps, step{sp.change("announce", p, ""), func(ctx context.Context, c api.GobgpApiClient) error {
			path, err := originPath(netip.MustParsePrefix(p))
			if err != nil {
				return err
			}
			if _, err := c.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
				return err
			}
			app.Announced = append(app.Announced, p)
			sort.Strings(app.Announced)
			return nil
		}})
	}
	return steps, nil
}

func remove(list []string, v string) []string {
	out := list[:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// start runs a new speaker process inside the tenant's namespace and
// waits for its API. sp.mu is held.
func (sp *speaker) start(ctx context.Context) error {
	b := sp.desired
	if err := os.MkdirAll(sp.dir, 0o700); err != nil {
		return err
	}
	argv := sp.sup.SpeakerArgv
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		argv = []string{exe, SpeakerCommand}
	}
	args := append(append([]string(nil), argv[1:]...), "-tenant", sp.tenant, "-socket", sp.sock,
		"-table", strconv.Itoa(int(b.TableID)), "-stale-timeout", sp.sup.StaleTimeout.String())
	if sp.sup.WatchParent {
		args = append(args, "-watch-pid", strconv.Itoa(os.Getpid()))
	}
	cmd := exec.Command(argv[0], args...)
	cmd.Env = append(os.Environ(), sp.sup.SpeakerEnv...)
	// Its own session: a Ctrl-C or SIGTERM aimed at the daemon's process
	// group must not take the speakers (and the routes' freshness) along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf, err := os.OpenFile(filepath.Join(sp.dir, "speaker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	os.Remove(filepath.Join(sp.dir, pidFileName))
	h, err := ns.Open(sp.tenant)
	if err != nil {
		return err
	}
	// A child forked from a thread inside the namespace is born in it.
	err = ns.Do(h, cmd.Start)
	h.Close()
	if err != nil {
		return fmt.Errorf("start speaker: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	sp.pid, sp.exited, sp.table, sp.app, sp.started = cmd.Process.Pid, exited, b.TableID, nil, time.Now()
	sp.log.Info("speaker started", "pid", sp.pid, "socket", sp.sock)

	c, err := Dial(sp.sock)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = c.api.GetBgp(cctx, &api.GetBgpRequest{})
		cancel()
		if err == nil || strings.Contains(err.Error(), "not started") {
			break
		}
		select {
		case <-exited:
			c.Close()
			return fmt.Errorf("speaker exited at start (see %s)", filepath.Join(sp.dir, "speaker.log"))
		default:
		}
		if time.Now().After(deadline) {
			c.Close()
			return fmt.Errorf("speaker API at %s did not come up: %w", sp.sock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sp.client != nil {
		sp.client.Close()
	}
	sp.client = c
	return nil
}

// kill stops the current process (routes stay in the kernel). sp.mu is held.
func (sp *speaker) kill(ctx context.Context) error {
	if !sp.running() {
		return nil
	}
	syscall.Kill(sp.pid, syscall.SIGTERM)
	select {
	case <-sp.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(sp.pid, syscall.SIGKILL)
		<-sp.exited
	}
	sp.app = nil
	if sp.client != nil {
		sp.client.Close()
		sp.client = nil
	}
	return nil
}

// flushRoutes deletes the speaker's routes from a table of the tenant.
func (sp *speaker) flushRoutes(table uint32) error {
	h, err := ns.Open(sp.tenant)
	if err != nil {
		if errors.Is(err, ns.ErrNotFound) {
			return nil
		}
		return err
	}
	defer h.Close()
	return flushTable(h, table, Protocol)
}

// stop ends supervision and the process; with flush its routes go too.
func (sp *speaker) stop(ctx context.Context, flush bool) error {
	sp.mu.Lock()
	if !sp.stopping {
		sp.stopping = true
		close(sp.stopCh)
	}
	table := sp.table
	err := sp.kill(ctx)
	sp.mu.Unlock()
	<-sp.done
	if flush {
		if ferr := sp.flushRoutes(table); ferr != nil {
			err = errors.Join(err, ferr)
		}
		os.RemoveAll(sp.dir)
	}
	return err
}

// monitor restarts the speaker when it dies, with exponential backoff
// (1 s doubling to 30 s; reset after a minute of good health), and
// re-evaluates announce_if_route periodically.
func (sp *speaker) monitor() {
	defer close(sp.done)
	backoff := time.Second
	tick := time.NewTicker(sp.sup.AnnounceInterval)
	defer tick.Stop()
	for {
		sp.mu.Lock()
		exited := sp.exited
		sp.mu.Unlock()
		if exited == nil {
			exited = make(chan struct{}) // not started yet: wait for Reconcile
		}
		select {
		case <-sp.stopCh:
			return
		case <-tick.C:
			sp.refreshAnnounce()
			sp.checkLimits()
			continue
		case <-exited:
		}
		sp.mu.Lock()
		if sp.stopping {
			sp.mu.Unlock()
			return
		}
		if sp.exited != exited { // replaced by reconcile (restart)
			sp.mu.Unlock()
			continue
		}
		if time.Since(sp.started) > time.Minute {
			backoff = time.Second
		}
		sp.log.Warn("speaker exited; restarting", "pid", sp.pid, "in", backoff)
		sp.pid, sp.app = 0, nil
		if sp.client != nil {
			sp.client.Close()
			sp.client = nil
		}
		sp.mu.Unlock()
		select {
		case <-sp.stopCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		sp.mu.Lock()
		if sp.stopping || sp.desired == nil {
			sp.mu.Unlock()
			continue
		}
		sp.restarts++
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := sp.start(ctx)
		if err == nil {
			_, err = sp.configure(ctx, sp.desired)
			if err != nil {
				sp.kill(ctx)
				// kill reset exited; make the loop see the death.
			}
		}
		cancel()
		if err != nil {
			sp.log.Error("restart speaker", "err", err)
			if !sp.running() {
				c := make(chan struct{})
				close(c)
				sp.exited = c
			}
		}
		sp.mu.Unlock()
	}
}

// checkLimits logs neighbours over max_prefixes with action "warn" (gobgp
// only knows how to tear down), once per crossing.
func (sp *speaker) checkLimits() {
	sp.mu.Lock()
	b, c := sp.desired, sp.client
	sp.mu.Unlock()
	if b == nil || c == nil {
		return
	}
	warn := map[string]uint32{}
	for _, n := range b.Neighbors {
		if n.MaxPrefixes > 0 && n.MaxPrefixesAction == config.MaxPrefixesWarn {
			warn[n.Address.String()] = n.MaxPrefixes
		}
	}
	if len(warn) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := c.Neighbors(ctx, sp.tenant)
	if err != nil {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.overLimit == nil {
		sp.overLimit = map[string]bool{}
	}
	for _, n := range ns {
		max, ok := warn[n.Address]
		over := ok && n.Received > uint64(max)
		if over && !sp.overLimit[n.Address] {
			sp.log.Warn("neighbour exceeds max_prefixes", "neighbor", n.Address, "received", n.Received, "max_prefixes", max)
		}
		sp.overLimit[n.Address] = over
	}
}

func (sp *speaker) refreshAnnounce() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.desired == nil || len(sp.desired.AnnounceIfRoute) == 0 || !sp.running() || sp.app == nil || sp.client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := sp.configure(ctx, sp.desired)
	for _, c := range cs {
		sp.log.Info("announce_if_route", "change", c.String())
	}
	if err != nil {
		sp.log.Warn("announce_if_route", "err", err)
	}
}

// Close ends supervision without stopping the speakers: on daemon exit
// sessions stay up and routes stay in the kernel; the next daemon adopts
// the running speakers (Reconcile).
func (s *Supervisor) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.speakers {
		sp.mu.Lock()
		if !sp.stopping {
			sp.stopping = true
			close(sp.stopCh)
		}
		if sp.client != nil {
			sp.client.Close()
			sp.client = nil
		}
		sp.mu.Unlock()
		<-sp.done
	}
	s.speakers = map[string]*speaker{}
	s.scanned = false
}

// Shutdown stops every speaker and removes its routes (fwd teardown).
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.scanned {
		s.adoptRunning()
		s.scanned = true
	}
	var errs []error
	for n, sp := range s.speakers {
		if err := sp.stop(ctx, true); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", n, err))
		}
		delete(s.speakers, n)
	}
	return errors.Join(errs...)
}

// SpeakerStatus describes one supervised speaker process.
type SpeakerStatus struct {
	Tenant   string `json:"tenant"`
	PID      int    `json:"pid"`
	Running  bool   `json:"running"`
	Restarts int    `json:"restarts"`
	Socket   string `json:"socket"`
	Table    uint32 `json:"table"`
}

// Speakers lists the supervised speakers, sorted by tenant.
func (s *Supervisor) Speakers() []SpeakerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SpeakerStatus
	for _, sp := range s.speakers {
		sp.mu.Lock()
		out = append(out, SpeakerStatus{Tenant: sp.tenant, PID: sp.pid, Running: sp.running(), Restarts: sp.restarts, Socket: sp.sock, Table: sp.table})
		sp.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out
}

// Neighbors returns the neighbours of one tenant's speaker, or of all
// ("" tenant), for `fwd bgp show` and the metrics.
func (s *Supervisor) Neighbors(ctx context.Context, tenant string) ([]Neighbor, error) {
	var out []Neighbor
	for _, st := range s.Speakers() {
		if tenant != "" && st.Tenant != tenant {
			continue
		}
		ns, err := QueryNeighbors(ctx, s.runDir, st.Tenant)
		if err != nil {
			return out, err
		}
		out = append(out, ns...)
	}
	return out, nil
}

// Routes returns one tenant's BGP routes (see Client.Routes).
func (s *Supervisor) Routes(ctx context.Context, tenant, prefix string, limit int) ([]Route, error) {
	c, err := Dial(SocketPath(s.runDir, tenant))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Routes(ctx, prefix, limit)
}

// QueryNeighbors asks a tenant's speaker for its neighbours directly over
// its socket (the CLI uses it; it works without the daemon).
func QueryNeighbors(ctx context.Context, runDir, tenant string) ([]Neighbor, error) {
	c, err := Dial(SocketPath(runDir, tenant))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Neighbors(ctx, tenant)
}
