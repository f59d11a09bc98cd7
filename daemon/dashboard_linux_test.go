package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/fwdproject/fwd/mgmt"
)

// On a token-protected API listener the page's files load without the
// token (they hold no data), the dashboard and the packet log need it,
// and the API's own routes keep their own check. Without an engine the
// dashboard still answers, with the reload history.
func TestDashboardBehindToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fwd.toml")
	writeFile(t, path, cfgA)
	d, err := New(Options{ConfigPath: path, RevisionDir: filepath.Join(dir, "revs"), Applier: &fakeApplier{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if res := d.Start(context.Background()); !res.OK() {
		t.Fatalf("start: %+v", res)
	}
	const token = "0123456789abcdef0123456789abcdef"
	srv := httptest.NewServer(d.apiHandler(mgmt.Access{Token: token, AnyHost: true}))
	defer srv.Close()
	get := func(p string, auth bool) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	for _, c := range []struct {
		path string
		auth bool
		want int
	}{
		{"/", false, 200}, {"/app.js", false, 200}, {"/style.css", false, 200},
		{"/v1/dashboard", false, 401}, {"/v1/log", false, 401}, {"/v1/status", false, 401},
		{"/v1/dashboard", true, 200}, {"/v1/log", true, 200}, {"/v1/status", true, 200},
		{"/v1/log?tenant=nosuch", true, 404}, {"/nosuch", true, 404},
	} {
		if res := get(c.path, c.auth); res.StatusCode != c.want {
			t.Errorf("GET %s (token %v): %d, want %d", c.path, c.auth, res.StatusCode, c.want)
		}
	}
	res := get("/", false)
	if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("page headers: %v", res.Header)
	}
	var db mgmt.Dashboard
	if err := json.NewDecoder(get("/v1/dashboard", true).Body).Decode(&db); err != nil {
		t.Fatal(err)
	}
	if len(db.Reloads) != 1 || db.Reloads[0].Reason != "start" || db.Reloads[0].Result != mgmt.ResultApplied || db.Store == nil || !db.Store.OK {
		t.Errorf("dashboard: reloads %+v store %+v", db.Reloads, db.Store)
	}
	for range keepReloads + 5 {
		d.Reload(context.Background(), mgmt.ReloadRequest{})
	}
	if n := len(d.dashboard().Reloads); n != keepReloads {
		t.Errorf("%d reloads kept, want %d", n, keepReloads)
	}
}
