//go:build kernel

package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/mgmt"
	"golang.org/x/sys/unix"
)

// The fault suite (`make test-faults`): full disks, read-only
// directories, SIGTERM during a long reload. Small sizes; the sandbox's
// private mount namespace holds the tmpfs mounts.

// tinyFS mounts a tmpfs of size bytes at a fresh directory.
func tinyFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// fill writes to dir until it is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func gauge(t *testing.T, d *Daemon, name string) float64 {
	t.Helper()
	mfs, err := d.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func newFaultDaemon(t *testing.T, cfgPath, revDir string) (*Daemon, *fakeApplier) {
	t.Helper()
	fa := &fakeApplier{}
	d, err := New(Options{ConfigPath: cfgPath, RevisionDir: revDir, Applier: fa})
	if err != nil {
		t.Fatal(err)
	}
	if res := d.Start(context.Background()); !res.OK() || res.Revision != 1 || res.StoreError != "" {
		t.Fatalf("start: %+v", res)
	}
	return d, fa
}

// A revision store that fills up: the change runs, the caller, status
// and the metric say it is not stored, and nothing stored before is
// damaged: history still lists it and rollback still works.
func TestFaultFullRevisionStore(t *testing.T) {
	testkit.Require(t)
	ctx := context.Background()
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, cfgA)
	store := tinyFS(t, "64k")
	d, fa := newFaultDaemon(t, cfg, store)
	fill(t, store)
	writeFile(t, cfg, cfgB)
	res := d.Reload(ctx, mgmt.ReloadRequest{})
	if !res.OK() || res.StoreError == "" || res.Revision != 0 || fa.last() != "a,b" {
		t.Fatalf("reload on a full store: %+v", res)
	}
	if st := d.Status(ctx); st.Store == nil || st.Store.OK || gauge(t, d, "fwd_revision_store_ok") != 0 {
		t.Fatalf("status on a full store: %+v", st.Store)
	}
	revs, err := d.Revisions()
	if err != nil || len(revs) != 1 {
		t.Fatalf("history on a full store: %+v %v", revs, err)
	}
	if _, data, err := d.Revision(1); err != nil || string(data) != cfgA {
		t.Fatalf("revision 1 damaged: %q %v", data, err)
	}
	// No partial files left behind.
	ents, _ := os.ReadDir(store)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "000002") {
			t.Errorf("left in the store: %s", e.Name())
		}
	}
	// A commit-confirm on a full disk: the pending record cannot be
	// written, and that is reported too.
	writeFile(t, cfg, cfgA)
	if res := d.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: 60}); !res.OK() || res.StoreError == "" {
		t.Fatalf("reload --confirm on a full store: %+v", res)
	}
	os.Remove(filepath.Join(store, "filler"))
	writeFile(t, cfg, cfgB)
	if res := d.Reload(ctx, mgmt.ReloadRequest{}); !res.OK() || res.StoreError != "" || res.Revision != 2 || gauge(t, d, "fwd_revision_store_ok") != 1 {
		t.Fatalf("after space came back: %+v", res)
	}
}

// The config file on a full disk: a rollback that cannot rewrite it
// leaves it whole (never a 0-byte file that a later reload would apply)
// and says so.
func TestFaultFullConfigDisk(t *testing.T) {
	testkit.Require(t)
	ctx := context.Background()
	etc := tinyFS(t, "64k")
	cfg := filepath.Join(etc, "fwd.toml")
	writeFile(t, cfg, cfgA)
	d, _ := newFaultDaemon(t, cfg, filepath.Join(t.TempDir(), "revs"))
	writeFile(t, cfg, cfgB)
	if res := d.Reload(ctx, mgmt.ReloadRequest{}); !res.OK() || res.Revision != 2 {
		t.Fatalf("reload: %+v", res)
	}
	fill(t, etc)
	res, err := d.Rollback(ctx, mgmt.RollbackRequest{Revision: 1})
	if err != nil || !res.OK() || !strings.Contains(res.StoreError, "config file not restored") {
		t.Fatalf("rollback with a full config disk: %+v %v", res, err)
	}
	if b, _ := os.ReadFile(cfg); string(b) != cfgB {
		t.Fatalf("config file after a failed rewrite: %q", b)
	}
}

// A read-only revision directory: reported at start and on every change.
func TestFaultReadOnlyRevisionStore(t *testing.T) {
	testkit.Require(t)
	ctx := context.Background()
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, cfgA)
	store := tinyFS(t, "1m")
	d, _ := newFaultDaemon(t, cfg, store)
	if err := unix.Mount("", store, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, cfgB)
	res := d.Reload(ctx, mgmt.ReloadRequest{})
	if !res.OK() || !strings.Contains(res.StoreError, "read-only") {
		t.Fatalf("reload on a read-only store: %+v", res)
	}
	if st := d.Status(ctx); st.Store.OK {
		t.Fatalf("status: %+v", st.Store)
	}
	// A daemon starting on it says so at once.
	d2, err := New(Options{ConfigPath: cfg, RevisionDir: store, Applier: &fakeApplier{}})
	if err != nil {
		t.Fatal(err)
	}
	if st := d2.Status(ctx); st.Store.OK {
		t.Fatalf("new daemon on a read-only store: %+v", st.Store)
	}
}

// SIGTERM (or the context ending) while an API reload applies: the
// daemon waits for it, the client gets its whole reply, the revision is
// stored, and the engine is closed only afterwards.
func TestFaultStopDuringReload(t *testing.T) {
	testkit.Require(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fwd.toml")
	writeFile(t, cfg, cfgA)
	sock := filepath.Join(dir, "api.sock")
	g := newGated()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfg, Socket: sock, RevisionDir: filepath.Join(dir, "revs"), MetricsListen: "off", Applier: g, StopTimeout: 20 * time.Second})
	}()
	c := mgmt.Dial(sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Status(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("API never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	writeFile(t, cfg, cfgB)
	reply := make(chan *mgmt.Result, 1)
	go func() {
		res, err := c.Reload(context.Background(), mgmt.ReloadRequest{})
		if err != nil {
			t.Errorf("reload reply: %v", err)
		}
		reply <- res
	}()
	<-g.entered
	cancel() // what SIGTERM does
	select {
	case err := <-done:
		t.Fatalf("daemon stopped in the middle of an apply: %v", err)
	case <-time.After(2500 * time.Millisecond): // past the listeners' 2 s shutdown
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	res := <-reply
	if res == nil || !res.OK() || res.Revision != 2 {
		t.Fatalf("reply: %+v", res)
	}
	select {
	case msg := <-g.bad:
		t.Fatal(msg)
	case <-g.closed:
	default:
		t.Fatal("engine not closed at exit")
	}
	s := &mgmt.Store{Dir: filepath.Join(dir, "revs")}
	if revs, err := s.List(); err != nil || len(revs) != 2 {
		t.Fatalf("revision of the reload not stored: %+v %v", revs, err)
	}
}
