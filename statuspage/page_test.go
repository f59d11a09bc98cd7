package statuspage

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHeadersAndReadOnly(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, p := range []string{"/", "/app.js", "/style.css"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", p, res.Header.Get("X-Frame-Options"))
		}
	}
	res, err := http.Post(srv.URL+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", res.StatusCode)
	}
	res, _ = http.Get(srv.URL + "/../../etc/passwd")
	if res.StatusCode != 404 {
		t.Errorf("traversal: %d", res.StatusCode)
	}
}

// The script must never build markup from data: no innerHTML, no
// insertAdjacentHTML, no document.write.
func TestScriptEscapesEverything(t *testing.T) {
	b, err := assets.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(string(b), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	html, _ := assets.ReadFile("assets/index.html")
	if strings.Contains(string(html), "http://") || strings.Contains(string(html), "https://") {
		t.Error("index.html refers to an external asset")
	}
}
