package mgmt

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/change"
)

func TestUnifiedDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n"
	got := UnifiedDiff("revision 1", "revision 2", []byte(a), []byte(b))
	want := `--- revision 1
+++ revision 2
@@ -1,10 +1,11 @@
 a
 b
 c
-d
+D
 e
 f
 g
 h
 i
 j
+k
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	far := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"
	far2 := "x\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ny\n"
	got = UnifiedDiff("a", "b", []byte(far), []byte(far2))
	if strings.Count(got, "@@ -") != 2 || !strings.Contains(got, "@@ -1,4 +1,4 @@\n-1\n+x\n") || !strings.Contains(got, "@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+y\n") {
		t.Fatalf("two hunks expected:\n%s", got)
	}
	if UnifiedDiff("a", "b", []byte(a), []byte(a)) != "" {
		t.Fatal("equal files differ")
	}
	if got := UnifiedDiff("a", "b", nil, []byte("x\n")); got != "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n" {
		t.Fatalf("from empty: %q", got)
	}
}

func TestStore(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "revs"), Keep: 3}
	if revs, err := s.List(); err != nil || len(revs) != 0 {
		t.Fatalf("empty: %v %v", revs, err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 1; i <= 5; i++ {
		r, err := s.Add([]byte(strings.Repeat("x", i)), nil, "reload", now)
		if err != nil || r.Number != i || r.Size != i || r.SHA256 != Checksum([]byte(strings.Repeat("x", i))) {
			t.Fatalf("add %d: %+v %v", i, r, err)
		}
	}
	revs, err := s.List()
	if err != nil || len(revs) != 3 || revs[0].Number != 3 || revs[2].Number != 5 {
		t.Fatalf("pruned list: %+v %v", revs, err)
	}
	if _, _, err := s.Get(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned revision: %v", err)
	}
	r, data, err := s.Get(4)
	if err != nil || string(data) != "xxxx" || r.Reason != "reload" || !r.Time.Equal(now) {
		t.Fatalf("get: %+v %q %v", r, data, err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "000004.toml"), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(4); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("tampered: %v", err)
	}
	if st, _ := os.Stat(s.Dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", st.Mode())
	}
}

type fakeController struct {
	pending *Pending
	// revisionExtra is appended to revision 7's file.
	revisionExtra string
	// slow makes Reload take that long; reloadCtxErr is its context's
	// error afterwards.
	slow         time.Duration
	reloadCtxErr error
}

func (f *fakeController) Status(ctx context.Context) Status {
	return Status{ConfigFile: "/etc/fwd/fwd.toml", Revision: 7, Tenants: []TenantStatus{{Name: "edge", Interfaces: 2, InterfacesUp: 1}}}
}

func (f *fakeController) Reload(ctx context.Context, req ReloadRequest) *Result {
	if f.slow > 0 {
		time.Sleep(f.slow)
		f.reloadCtxErr = ctx.Err()
	}
	if req.ConfirmSeconds == 99 {
		return &Result{Result: ResultRejected, Errors: []string{"fwd.toml:3: tenant.x: bad"}, Changes: []change.Change{}}
	}
	r := &Result{Result: ResultApplied, Revision: 8, Changes: []change.Change{{Tenant: "edge", Subsystem: "zones", Action: "move-link", Object: "eth1 -> wan"}}}
	if req.ConfirmSeconds > 0 {
		f.pending = &Pending{Revision: 8, Previous: 7, Deadline: time.Now().Add(time.Duration(req.ConfirmSeconds) * time.Second)}
		r.PendingConfirm = f.pending
	}
	return r
}

func (f *fakeController) Rollback(ctx context.Context, req RollbackRequest) (*Result, error) {
	if req.Revision != 7 {
		return nil, ErrNotFound
	}
	return &Result{Result: ResultFailed, Errors: []string{`tenant "b": routing: no`}, Restore: &Restore{Revision: 8}}, nil
}

func (f *fakeController) Confirm(ctx context.Context) (*Pending, error) {
	if f.pending == nil {
		return nil, ErrNotPending
	}
	p := f.pending
	f.pending = nil
	return p, nil
}

func (f *fakeController) Revisions() ([]Revision, error) {
	return []Revision{{Number: 7, SHA256: "ab"}}, nil
}

func (f *fakeController) Revision(n int) (Revision, []byte, error) {
	if n != 7 {
		return Revision{}, nil, ErrNotFound
	}
	return Revision{Number: 7}, []byte("[mgmt]\n" + f.revisionExtra), nil
}

func (f *fakeController) Show(ctx context.Context) ([]Namespace, error) {
	return []Namespace{{Name: "edge", Interfaces: []Interface{{Name: "wan", Oper: "up"}}}}, nil
}

func serveUnix(t *testing.T, h http.Handler) string {
	path := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }() // ends with ErrServerClosed at cleanup
	t.Cleanup(func() { srv.Close() })
	return path
}

func TestAPIOverUnixSocket(t *testing.T) {
	fc := &fakeController{}
	c := Dial(serveUnix(t, Handler(fc, Access{AnyHost: true})))
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.Revision != 7 || len(st.Tenants) != 1 || st.Tenants[0].InterfacesUp != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	res, err := c.Reload(ctx, ReloadRequest{})
	if err != nil || !res.OK() || res.Revision != 8 || len(res.Changes) != 1 {
		t.Fatalf("reload: %+v %v", res, err)
	}
	res, err = c.Reload(ctx, ReloadRequest{ConfirmSeconds: 99})
	if err != nil || res.Result != ResultRejected || res.Errors[0] != "fwd.toml:3: tenant.x: bad" {
		t.Fatalf("rejected reload: %+v %v", res, err)
	}
	if _, err := c.Confirm(ctx); err == nil || !strings.Contains(err.Error(), "no change awaits") {
		t.Fatalf("confirm without pending: %v", err)
	}
	res, _ = c.Reload(ctx, ReloadRequest{ConfirmSeconds: 30})
	if res.PendingConfirm == nil || res.PendingConfirm.Previous != 7 {
		t.Fatalf("pending: %+v", res)
	}
	if p, err := c.Confirm(ctx); err != nil || p.Revision != 8 {
		t.Fatalf("confirm: %+v %v", p, err)
	}
	res, err = c.Rollback(ctx, RollbackRequest{Revision: 7})
	if err != nil || res.Result != ResultFailed || res.Restore.Revision != 8 {
		t.Fatalf("failed rollback: %+v %v", res, err)
	}
	var apiErr *APIError
	if _, err := c.Rollback(ctx, RollbackRequest{Revision: 3}); !errors.As(err, &apiErr) || apiErr.Code != 404 {
		t.Fatalf("rollback to missing: %v", err)
	}
	if revs, err := c.Revisions(ctx); err != nil || len(revs) != 1 || revs[0].Number != 7 {
		t.Fatalf("revisions: %+v %v", revs, err)
	}
	if b, err := c.RevisionFile(ctx, 7); err != nil || string(b) != "[mgmt]\n" {
		t.Fatalf("revision file: %q %v", b, err)
	}
	if list, err := c.Show(ctx); err != nil || len(list) != 1 || list[0].Interfaces[0].Name != "wan" {
		t.Fatalf("show: %+v %v", list, err)
	}
	if _, err := c.RevisionFile(ctx, 8); !errors.As(err, &apiErr) || apiErr.Code != 404 {
		t.Fatalf("missing revision file: %v", err)
	}
}
