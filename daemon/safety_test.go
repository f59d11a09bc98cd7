package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/mgmt"
)

// A file without tenants reloaded into a daemon that runs tenants would
// remove them all and hand back every NIC: refused unless asked for.
func TestFaultReloadRefusesEmptyConfig(t *testing.T) {
	ctx := context.Background()
	for _, empty := range []string{"", "# nothing yet\n\n# really\n", "[mgmt]\nrevisions = 5\n"} {
		d, fa, path := newTest(t, cfgB)
		writeFile(t, path, empty)
		n := len(fa.applied)
		res := d.Reload(ctx, mgmt.ReloadRequest{})
		if res.Result != mgmt.ResultRejected || len(fa.applied) != n || !strings.Contains(strings.Join(res.Errors, "\n"), "--allow-empty") {
			t.Fatalf("%q: reload: %+v", empty, res)
		}
		if rm := res.Removals; rm == nil || strings.Join(rm.Tenants, ",") != "a,b" || strings.Join(rm.NICs, ",") != "eth1,eth2" {
			t.Fatalf("%q: removals: %+v", empty, res.Removals)
		}
		if st := d.Status(ctx); st.Revision != 1 {
			t.Fatalf("%q: status: %+v", empty, st)
		}
		// Asked for explicitly: applied.
		if res := d.Reload(ctx, mgmt.ReloadRequest{AllowEmpty: true}); !res.OK() || fa.last() != "" || res.Revision != 2 {
			t.Fatalf("%q: reload --allow-empty: %+v", empty, res)
		}
	}
}

// A file the daemon would block on (a FIFO) is rejected at once.
func TestFaultReloadRejectsFIFO(t *testing.T) {
	d, _, path := newTest(t, cfgA)
	os.Remove(path)
	if err := mkfifo(path); err != nil {
		t.Skip(err)
	}
	done := make(chan *mgmt.Result, 1)
	go func() { done <- d.Reload(context.Background(), mgmt.ReloadRequest{}) }()
	select {
	case res := <-done:
		if res.Result != mgmt.ResultRejected || !strings.Contains(res.Errors[0], "not a regular file") {
			t.Fatalf("reload of a FIFO: %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reload of a FIFO hangs")
	}
}

// cfgRecorder records every configuration applied.
type cfgRecorder struct {
	mu  sync.Mutex
	got []*config.Config
}

func (r *cfgRecorder) Apply(ctx context.Context, cfg *config.Config, dryRun bool) (*engine.Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, cfg)
	return &engine.Report{}, nil
}

func (r *cfgRecorder) lastSet(t *testing.T) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.got[len(r.got)-1].Tenants[0].Policy.Sets[0]
	var out []string
	for _, a := range s.V4 {
		out = append(out, a.From.String())
	}
	return strings.Join(out, ",")
}

// A revision holds the set files too: a set-file-only change is a new
// revision, and a rollback restores the old set, on disk and applied.
func TestSetFilesAreInRevisions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, set := filepath.Join(dir, "fwd.toml"), filepath.Join(dir, "block.txt")
	writeFile(t, path, "[tenant.a.interface.wan]\ndevice = \"eth1\"\n[tenant.a.zone.wan]\ninterfaces = [\"wan\"]\n[tenant.a.set.block]\nfile = \"block.txt\"\n")
	writeFile(t, set, "192.0.2.1\n")
	rec := &cfgRecorder{}
	d, err := New(Options{ConfigPath: path, RevisionDir: filepath.Join(dir, "revs"), Applier: rec})
	if err != nil {
		t.Fatal(err)
	}
	if res := d.Start(ctx); !res.OK() || res.Revision != 1 {
		t.Fatalf("start: %+v", res)
	}
	writeFile(t, set, "198.51.100.7\n")
	if res := d.Reload(ctx, mgmt.ReloadRequest{}); !res.OK() || res.Revision != 2 || rec.lastSet(t) != "198.51.100.7" {
		t.Fatalf("set-file-only reload: %+v set=%s", res, rec.lastSet(t))
	}
	revs, _ := d.Revisions()
	if len(revs) != 2 || len(revs[1].Files) != 1 || revs[1].Files[0].Path != set {
		t.Fatalf("revisions: %+v", revs)
	}
	res, err := d.Rollback(ctx, mgmt.RollbackRequest{Revision: 1})
	if err != nil || !res.OK() || rec.lastSet(t) != "192.0.2.1" {
		t.Fatalf("rollback: %+v %v set=%s", res, err, rec.lastSet(t))
	}
	if b, _ := os.ReadFile(set); string(b) != "192.0.2.1\n" {
		t.Fatalf("set file after rollback: %q", b)
	}
	// Restarting on the rolled-back files adopts the revision.
	d2, err := New(Options{ConfigPath: path, RevisionDir: filepath.Join(dir, "revs"), Applier: &cfgRecorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if res := d2.Start(ctx); !res.OK() || res.Revision != 3 {
		t.Fatalf("restart: %+v", res)
	}
}

// gatedApplier blocks every apply after the first until released.
type gatedApplier struct {
	fakeApplier
	entered chan struct{}
	release chan struct{}
	gate    bool
	closed  chan struct{}
	running sync.Mutex // held during an apply
	bad     chan string
}

func newGated() *gatedApplier {
	return &gatedApplier{entered: make(chan struct{}, 8), release: make(chan struct{}), closed: make(chan struct{}), bad: make(chan string, 1)}
}

func (g *gatedApplier) Apply(ctx context.Context, cfg *config.Config, dryRun bool) (*engine.Report, error) {
	g.running.Lock()
	defer g.running.Unlock()
	if g.gate {
		g.entered <- struct{}{}
		<-g.release
	}
	g.gate = true
	return g.fakeApplier.Apply(ctx, cfg, dryRun)
}

// Close fails the test (through bad) when called while an apply runs.
func (g *gatedApplier) Close() {
	if !g.running.TryLock() {
		g.bad <- "engine closed while an apply runs"
		return
	}
	g.running.Unlock()
	close(g.closed)
}

// `fwd confirm` arriving while a newer `reload --confirm` applies
// confirms the pending change; the newer one's rollback target is then
// that confirmed revision, not the one before it.
func TestFaultConfirmDuringReloadConfirm(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "fwd.toml")
	writeFile(t, path, cfgA)
	g := newGated()
	d, err := New(Options{ConfigPath: path, RevisionDir: filepath.Join(dir, "revs"), Applier: g})
	if err != nil {
		t.Fatal(err)
	}
	d.Start(ctx)
	writeFile(t, path, cfgB)
	go func() { <-g.entered; g.release <- struct{}{} }()
	if res := d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 60}); res.PendingConfirm == nil || res.PendingConfirm.Previous != 1 {
		t.Fatalf("first reload --confirm: %+v", res)
	}
	writeFile(t, path, cfgA+"[tenant.c.interface.wan]\ndevice = \"eth3\"\n")
	done := make(chan *mgmt.Result, 1)
	go func() { done <- d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 60}) }()
	<-g.entered
	if p, err := d.Confirm(ctx); err != nil || p.Revision != 2 {
		t.Fatalf("confirm during the reload: %+v %v", p, err)
	}
	g.release <- struct{}{}
	res := <-done
	if res.PendingConfirm == nil || res.PendingConfirm.Revision != 3 || res.PendingConfirm.Previous != 2 {
		t.Fatalf("second reload --confirm: rollback target %+v, want revision 2 (confirmed meanwhile)", res.PendingConfirm)
	}
	d.mu.Lock()
	d.pending.timer.Stop()
	d.mu.Unlock()
}

// A store that cannot be written: the change runs, the caller is told
// (no "applied revision 0"), status shows it.
func TestFaultStoreFailureReported(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "fwd.toml")
	writeFile(t, path, cfgA)
	notADir := filepath.Join(dir, "revs")
	writeFile(t, notADir, "a file where the directory should be")
	d, err := New(Options{ConfigPath: path, RevisionDir: notADir, Applier: &fakeApplier{}})
	if err != nil {
		t.Fatal(err)
	}
	if res := d.Start(ctx); !res.OK() || res.StoreError == "" || res.Revision != 0 {
		t.Fatalf("start with an unwritable store: %+v", res)
	}
	writeFile(t, path, cfgB)
	if res := d.Reload(ctx, mgmt.ReloadRequest{}); !res.OK() || res.StoreError == "" {
		t.Fatalf("reload with an unwritable store: %+v", res)
	}
	if st := d.Status(ctx); st.Store == nil || st.Store.OK || st.Store.Error == "" {
		t.Fatalf("status: %+v", st.Store)
	}
	os.Remove(notADir)
	writeFile(t, path, cfgA)
	if res := d.Reload(ctx, mgmt.ReloadRequest{}); !res.OK() || res.StoreError != "" || res.Revision != 1 || !d.Status(ctx).Store.OK {
		t.Fatalf("after the store recovered: %+v", res)
	}
}

// An empty or torn pending.json never cancels a commit-confirm rollback.
func TestFaultCorruptPendingStillRollsBack(t *testing.T) {
	for _, body := range []string{"", `{"revision": 2, "prev`} {
		ctx := context.Background()
		d, _, path := newTest(t, cfgA)
		writeFile(t, path, cfgB)
		if res := d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 60}); res.PendingConfirm == nil {
			t.Fatalf("no pending: %+v", res)
		}
		d.mu.Lock()
		d.pending.timer.Stop() // the daemon "dies"
		d.mu.Unlock()
		writeFile(t, filepath.Join(d.store.Dir, "pending.json"), body)
		fa := &fakeApplier{}
		d2, err := New(Options{ConfigPath: path, RevisionDir: d.store.Dir, Applier: fa})
		if err != nil {
			t.Fatal(err)
		}
		d2.Start(ctx)
		deadline := time.Now().Add(5 * time.Second)
		for fa.last() != "a" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if st := idleStatus(d2); fa.last() != "a" || st.Revision != 3 || st.PendingConfirm != nil {
			t.Fatalf("%q: unconfirmed change not rolled back: last=%s %+v", body, fa.last(), st)
		}
		if b, _ := os.ReadFile(path); string(b) != cfgA {
			t.Fatalf("%q: config file: %q", body, b)
		}
	}
}

// The pid file names the daemon only with the PID's start time and the
// fwd program: a live unrelated process (a reused PID) is not the daemon.
func TestFaultPidFileIgnoresUnrelatedProcess(t *testing.T) {
	sleep := startSleep(t)
	path := filepath.Join(t.TempDir(), "fwd.pid")
	for _, body := range []string{
		fmt.Sprintf("%d\n", sleep.Process.Pid), // the old format
		fmt.Sprintf("%d %d\n", sleep.Process.Pid, procStart(t, sleep.Process.Pid)),
	} {
		writeFile(t, path, body)
		if pid, err := DaemonPID(path); err == nil {
			t.Fatalf("%q: %d taken for the daemon", body, pid)
		}
		if err := writePid(path); err != nil {
			t.Fatalf("%q: start refused: %v", body, err)
		}
	}
	// This process wrote it: it is "the daemon" for a second instance.
	if pid, err := DaemonPID(path); err != nil || pid != os.Getpid() {
		t.Fatalf("own pid file: %d %v", pid, err)
	}
}
