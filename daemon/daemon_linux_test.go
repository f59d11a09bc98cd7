package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/mgmt"
)

// fakeApplier records which tenants each apply asked for and fails any
// config holding a tenant called "bad" after applying the tenants before it.
type fakeApplier struct {
	mu      sync.Mutex
	applied [][]string
}

func (f *fakeApplier) Apply(ctx context.Context, cfg *config.Config, dryRun bool) (*engine.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	rep := &engine.Report{Duration: time.Millisecond}
	for _, t := range cfg.Tenants {
		names = append(names, t.Name)
		if t.Name == "bad" {
			f.applied = append(f.applied, names)
			return rep, errors.New(`tenant "bad": routing: add route 198.51.100.0/24: invalid argument`)
		}
		rep.Changes = append(rep.Changes, change.Change{Tenant: t.Name, Subsystem: "zones", Action: "create-namespace", Object: t.Name})
	}
	f.applied = append(f.applied, names)
	return rep, nil
}

func (f *fakeApplier) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.applied[len(f.applied)-1], ",")
}

const (
	cfgA = "[tenant.a.interface.wan]\ndevice = \"eth1\"\n"
	cfgB = cfgA + "[tenant.b.interface.wan]\ndevice = \"eth2\"\n"
	// "bad" sorts after "a": the second of two tenants fails.
	cfgBad = cfgA + "[tenant.bad.interface.wan]\ndevice = \"eth3\"\n"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// idleStatus waits for a running apply (a confirm-timeout rollback) to
// finish and returns the status it left.
func idleStatus(d *Daemon) mgmt.Status {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	return d.Status(context.Background())
}

func newTest(t *testing.T, initial string) (*Daemon, *fakeApplier, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "fwd.toml")
	writeFile(t, path, initial)
	fa := &fakeApplier{}
	d, err := New(Options{ConfigPath: path, RevisionDir: filepath.Join(dir, "revs"), Applier: fa,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if res := d.Start(context.Background()); !res.OK() || res.Revision != 1 {
		t.Fatalf("start: %+v", res)
	}
	return d, fa, path
}

func TestReloadRevisionsRollback(t *testing.T) {
	ctx := context.Background()
	d, fa, path := newTest(t, cfgA)
	// Same file again: no new revision.
	if res := d.Reload(ctx, mgmt.ReloadRequest{}); !res.OK() || res.Revision != 1 {
		t.Fatalf("reload unchanged: %+v", res)
	}
	writeFile(t, path, cfgB)
	if res := d.Reload(ctx, mgmt.ReloadRequest{}); !res.OK() || res.Revision != 2 || fa.last() != "a,b" {
		t.Fatalf("reload: %+v", res)
	}
	// Invalid: rejected, nothing applied.
	writeFile(t, path, "[tenant.x]\nbogus = 1\n")
	n := len(fa.applied)
	res := d.Reload(ctx, mgmt.ReloadRequest{})
	if res.Result != mgmt.ResultRejected || len(fa.applied) != n || !strings.Contains(res.Errors[0], "tenant.x.bogus: unknown key") {
		t.Fatalf("invalid reload: %+v", res)
	}
	if st := d.Status(ctx); st.Revision != 2 || st.LastReload.Result != mgmt.ResultRejected {
		t.Fatalf("status: %+v", st)
	}
	// Rollback applies revision 1, stores it as 3, writes the file.
	res, err := d.Rollback(ctx, mgmt.RollbackRequest{Revision: 1})
	if err != nil || !res.OK() || res.Revision != 3 || fa.last() != "a" {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if b, _ := os.ReadFile(path); string(b) != cfgA {
		t.Fatalf("config file after rollback: %q", b)
	}
	revs, _ := d.Revisions()
	if len(revs) != 3 || revs[2].Reason != "rollback to revision 1" || revs[2].SHA256 != revs[0].SHA256 {
		t.Fatalf("revisions: %+v", revs)
	}
	if _, err := d.Rollback(ctx, mgmt.RollbackRequest{Revision: 42}); !errors.Is(err, mgmt.ErrNotFound) {
		t.Fatalf("rollback to missing: %v", err)
	}
}

func TestFailedApplyRestoresPrevious(t *testing.T) {
	ctx := context.Background()
	d, fa, path := newTest(t, cfgB)
	writeFile(t, path, cfgBad)
	res := d.Reload(ctx, mgmt.ReloadRequest{})
	if res.Result != mgmt.ResultFailed || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], `tenant "bad": routing`) {
		t.Fatalf("failed reload: %+v", res)
	}
	if res.Restore == nil || res.Restore.Revision != 1 || res.Restore.Error != "" || res.Revision != 1 {
		t.Fatalf("restore: %+v", res.Restore)
	}
	// Both tenants of revision 1 were applied again after the failure.
	if fa.last() != "a,b" {
		t.Fatalf("last apply: %s", fa.last())
	}
	if revs, _ := d.Revisions(); len(revs) != 1 {
		t.Fatalf("a failed config became a revision: %+v", revs)
	}
	if st := d.Status(ctx); st.Revision != 1 || st.LastReload.Result != mgmt.ResultFailed {
		t.Fatalf("status: %+v", st)
	}
}

func TestCommitConfirm(t *testing.T) {
	ctx := context.Background()
	d, fa, path := newTest(t, cfgA)
	writeFile(t, path, cfgB)
	res := d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 1})
	if !res.OK() || res.PendingConfirm == nil || res.PendingConfirm.Previous != 1 || res.PendingConfirm.Revision != 2 {
		t.Fatalf("reload --confirm: %+v", res)
	}
	if st := d.Status(ctx); st.PendingConfirm == nil {
		t.Fatal("status shows no pending confirm")
	}
	// No confirm: back to revision 1's config within the second.
	deadline := time.Now().Add(5 * time.Second)
	for d.Status(ctx).PendingConfirm != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	st := idleStatus(d) // the rollback holds applyMu until done
	if st.PendingConfirm != nil || fa.last() != "a" || st.Revision != 3 || !strings.HasPrefix(st.LastReload.Reason, "confirm timeout") {
		t.Fatalf("after timeout: %+v last=%s", st, fa.last())
	}
	if b, _ := os.ReadFile(path); string(b) != cfgA {
		t.Fatalf("config file not restored: %q", b)
	}

	// Confirmed: stays.
	writeFile(t, path, cfgB)
	res = d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 1})
	if !res.OK() || res.PendingConfirm == nil {
		t.Fatalf("reload --confirm: %+v", res)
	}
	if p, err := d.Confirm(ctx); err != nil || p.Revision != res.Revision {
		t.Fatalf("confirm: %+v %v", p, err)
	}
	time.Sleep(1500 * time.Millisecond)
	if fa.last() != "a,b" || d.Status(ctx).Revision != res.Revision {
		t.Fatalf("confirmed change rolled back: %s", fa.last())
	}
	if _, err := d.Confirm(ctx); !errors.Is(err, mgmt.ErrNotPending) {
		t.Fatalf("second confirm: %v", err)
	}
}

func TestFailureWhilePendingRestoresConfirmed(t *testing.T) {
	ctx := context.Background()
	d, fa, path := newTest(t, cfgA)
	writeFile(t, path, cfgB)
	if res := d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 60}); res.PendingConfirm == nil {
		t.Fatalf("no pending: %+v", res)
	}
	writeFile(t, path, cfgBad)
	res := d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 60})
	if res.Result != mgmt.ResultFailed || res.Restore == nil || res.Restore.Revision != 1 || fa.last() != "a" {
		t.Fatalf("failed reload while pending: %+v last=%s", res, fa.last())
	}
	if st := d.Status(ctx); st.PendingConfirm != nil || st.Revision != 1 {
		t.Fatalf("status: %+v", st)
	}
}

func TestPendingConfirmSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	d, _, path := newTest(t, cfgA)
	writeFile(t, path, cfgB)
	if res := d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 60}); res.PendingConfirm == nil {
		t.Fatalf("no pending: %+v", res)
	}
	restart := func() (*Daemon, *fakeApplier) {
		fa := &fakeApplier{}
		d2, err := New(Options{ConfigPath: path, RevisionDir: d.store.Dir, Applier: fa, Log: d.log})
		if err != nil {
			t.Fatal(err)
		}
		if res := d2.Start(ctx); !res.OK() {
			t.Fatalf("restart: %+v", res)
		}
		return d2, fa
	}
	d.mu.Lock()
	d.pending.timer.Stop() // the first daemon "dies"
	d.mu.Unlock()
	d2, _ := restart()
	st := d2.Status(ctx)
	if st.PendingConfirm == nil || st.PendingConfirm.Revision != 2 || st.PendingConfirm.Previous != 1 || st.Revision != 2 {
		t.Fatalf("pending not resumed: %+v", st)
	}
	// Deadline passed while the daemon was away: rolled back at start.
	d2.mu.Lock()
	d2.pending.timer.Stop()
	d2.mu.Unlock()
	p, _ := d2.store.LoadPending()
	p.Deadline = time.Now().Add(-time.Second)
	if err := d2.store.SavePending(p); err != nil {
		t.Fatal(err)
	}
	d3, fa3 := restart()
	deadline := time.Now().Add(5 * time.Second)
	for d3.Status(ctx).PendingConfirm != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := idleStatus(d3); fa3.last() != "a" || st.Revision != 3 {
		t.Fatalf("overdue change not rolled back: last=%s %+v", fa3.last(), st)
	}
	if p, _ := d3.store.LoadPending(); p != nil {
		t.Fatalf("pending record left: %+v", p)
	}
	if b, _ := os.ReadFile(path); string(b) != cfgA {
		t.Fatalf("config file: %q", b)
	}
}
