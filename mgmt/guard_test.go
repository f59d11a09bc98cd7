package mgmt

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const testToken = "0123456789abcdef0123456789abcdef"

// serveTCP serves h on a loopback TCP port with the daemon's kind of
// timeouts and returns its host:port.
func serveTCP(t *testing.T, h http.Handler, timeout time.Duration) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// raw sends one request and returns the status code.
func raw(t *testing.T, method, url string, hdr map[string]string, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestGuardToken(t *testing.T) {
	addr := serveTCP(t, Handler(&fakeController{}, Access{Token: testToken}), 0)
	for _, tc := range []struct {
		token string
		code  int
	}{{"", 401}, {"wrong", 401}, {testToken + "x", 401}, {testToken, 200}} {
		c := DialTCP(addr, tc.token)
		code, _ := c.do(context.Background(), "GET", "/v1/status", nil, &Status{})
		if code != tc.code {
			t.Errorf("token %q: %d, want %d", tc.token, code, tc.code)
		}
	}
	// The client sends every POST as JSON, body or not.
	c := DialTCP(addr, testToken)
	if res, err := c.Reload(context.Background(), ReloadRequest{ConfirmSeconds: 30}); err != nil || !res.OK() {
		t.Fatalf("reload: %+v %v", res, err)
	}
	if p, err := c.Confirm(context.Background()); err != nil || p.Revision != 8 {
		t.Fatalf("confirm: %+v %v", p, err)
	}
}

func TestGuardHostAndOrigin(t *testing.T) {
	mux := Routes(&fakeController{})
	ok := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }
	mux.HandleFunc("GET /{$}", ok) // where the daemon mounts the status page
	mux.HandleFunc("GET /v1/dashboard", ok)
	addr := serveTCP(t, Guard(mux, Access{Token: testToken, Hosts: []string{"fw1.example.net"}}), 0)
	_, port, _ := net.SplitHostPort(addr)
	auth := "Bearer " + testToken
	for _, tc := range []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		body   string
		code   int
	}{
		{"plain", "GET", "/v1/status", nil, "", 200},
		{"localhost", "GET", "/v1/status", map[string]string{"Host": "localhost:" + port}, "", 200},
		{"ipv6 literal", "GET", "/v1/status", map[string]string{"Host": "[::1]:" + port}, "", 200},
		{"declared name", "GET", "/v1/status", map[string]string{"Host": "FW1.example.net:" + port}, "", 200},
		{"rebinding", "GET", "/v1/status", map[string]string{"Host": "attacker.example:" + port}, "", 421},
		{"rebinding without port", "GET", "/v1/status", map[string]string{"Host": "attacker.example"}, "", 421},
		{"foreign origin", "POST", "/v1/reload", map[string]string{"Origin": "http://attacker.example", "Content-Type": "application/json"}, "{}", 403},
		{"null origin", "GET", "/v1/status", map[string]string{"Origin": "null"}, "", 403},
		{"cross-site fetch", "GET", "/v1/status", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 403},
		{"same-site other port", "GET", "/v1/status", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}, "", 403},
		{"text/plain post", "POST", "/v1/reload", map[string]string{"Content-Type": "text/plain"}, "{}", 415},
		{"form post", "POST", "/v1/rollback", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "revision=7", 415},
		{"post without type", "POST", "/v1/confirm", nil, "", 415},
		{"json post", "POST", "/v1/reload", map[string]string{"Content-Type": "application/json; charset=utf-8"}, "{}", 200},
		{"status page", "GET", "/", map[string]string{"Origin": "http://" + addr, "Sec-Fetch-Site": "same-origin"}, "", 200},
		{"dashboard", "GET", "/v1/dashboard", map[string]string{"Origin": "http://" + addr, "Sec-Fetch-Site": "same-origin"}, "", 200},
		{"dashboard by name", "GET", "/v1/dashboard", map[string]string{"Host": "fw1.example.net:" + port, "Origin": "https://fw1.example.net:" + port}, "", 200},
	} {
		hdr := map[string]string{"Authorization": auth}
		for k, v := range tc.hdr {
			hdr[k] = v
		}
		if code := raw(t, tc.method, "http://"+addr+tc.path, hdr, tc.body); code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.code)
		}
	}
	// Without the token the page is refused too.
	if code := raw(t, "GET", "http://"+addr+"/", nil, ""); code != 401 {
		t.Errorf("page without token: %d", code)
	}
}

func TestGuardUnixSocket(t *testing.T) {
	// Any Host (curl sends "localhost", fwd "fwd"), but POSTs still JSON.
	c := Dial(serveUnix(t, Handler(&fakeController{}, Access{AnyHost: true})))
	code, err := c.do(context.Background(), "GET", "/v1/status", nil, &Status{})
	if err != nil || code != 200 {
		t.Fatalf("status: %d %v", code, err)
	}
	req, _ := http.NewRequest("POST", "http://fwd/v1/reload", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Fatalf("text/plain POST on the socket: %d", resp.StatusCode)
	}
}

func TestConfirmSecondsRange(t *testing.T) {
	c := Dial(serveUnix(t, Handler(&fakeController{}, Access{AnyHost: true})))
	ctx := context.Background()
	for _, n := range []int{-1, MaxConfirmSeconds + 1, 1 << 62} {
		if _, err := c.Reload(ctx, ReloadRequest{ConfirmSeconds: n}); err == nil || !strings.Contains(err.Error(), "out of range 1-3600") {
			t.Errorf("reload confirm %d: %v", n, err)
		}
		if _, err := c.Rollback(ctx, RollbackRequest{Revision: 7, ConfirmSeconds: n}); err == nil || !strings.Contains(err.Error(), "out of range 1-3600") {
			t.Errorf("rollback confirm %d: %v", n, err)
		}
	}
	for _, n := range []int{0, MinConfirmSeconds, MaxConfirmSeconds} {
		if res, err := c.Reload(ctx, ReloadRequest{ConfirmSeconds: n}); err != nil || !res.OK() {
			t.Errorf("reload confirm %d: %+v %v", n, res, err)
		}
	}
}

func TestRevisionRedacted(t *testing.T) {
	const secret = "md5-key-of-the-upstream"
	fc := &fakeController{revisionExtra: "[[tenant.edge.bgp.neighbor]]\npassword = \"" + secret + "\"\n"}
	b, err := Dial(serveUnix(t, Handler(fc, Access{AnyHost: true}))).RevisionFile(context.Background(), 7)
	if err != nil || strings.Contains(string(b), secret) || !strings.Contains(string(b), `password = "<redacted>"`) {
		t.Fatalf("revision: %q %v", b, err)
	}
}

// TestApplyOutlastsTimeouts: the listeners' read and write timeouts must
// neither cut the answer of a long apply nor cancel it half-way.
func TestApplyOutlastsTimeouts(t *testing.T) {
	fc := &fakeController{slow: 600 * time.Millisecond}
	addr := serveTCP(t, Handler(fc, Access{Token: testToken}), 200*time.Millisecond)
	res, err := DialTCP(addr, testToken).Reload(context.Background(), ReloadRequest{})
	if err != nil || !res.OK() {
		t.Fatalf("slow reload: %+v %v", res, err)
	}
	if fc.reloadCtxErr != nil {
		t.Fatalf("the apply's context was cancelled: %v", fc.reloadCtxErr)
	}
}
