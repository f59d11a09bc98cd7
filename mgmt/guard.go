package mgmt

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Access says who may use a listener. The Unix socket is guarded by its
// file mode (root only) and passes the zero Access plus AnyHost; every TCP
// listener passes a Token.
//
// A TCP listener is reachable by every local user and, through a browser
// on the same machine, by every web page that user opens. So, beyond the
// token:
//   - the Host header must name the listener by an IP literal,
//     "localhost" or one of Hosts: a name an attacker's DNS resolves to
//     127.0.0.1 (DNS rebinding) is refused;
//   - a request a browser marks as coming from another origin (Origin
//     that does not match Host, or Sec-Fetch-Site: cross-site) is refused
//     (CSRF);
//   - a request that changes something (any method but GET and HEAD)
//     must be "Content-Type: application/json", which no HTML form can
//     send and a cross-origin script cannot send without a preflight.
//
// A same-origin GET of the status page and of /v1/dashboard with the
// token in the Authorization header passes.
type Access struct {
	// Token is the bearer token every request must carry
	// ("Authorization: Bearer TOKEN"); "" requires none.
	Token string
	// Hosts are host names (without port) accepted in the Host header
	// besides IP literals and "localhost", e.g. the name an operator
	// reaches a non-loopback listener by.
	Hosts []string
	// AnyHost skips the Host and Origin checks: a Unix socket, which no
	// browser reaches.
	AnyHost bool
}

// Guard wraps h with the checks of a.
func Guard(h http.Handler, a Access) http.Handler {
	hosts := map[string]bool{"localhost": true}
	for _, n := range a.Hosts {
		hosts[strings.ToLower(strings.TrimSuffix(n, "."))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.AnyHost {
			if !hostAllowed(r.Host, hosts) {
				writeError(w, http.StatusMisdirectedRequest, "unexpected Host header: use the listener's address")
				return
			}
			if !sameOrigin(r) {
				writeError(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
		}
		if a.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="fwd"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "requests that change something must be Content-Type: application/json")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the Host header names the listener by an
// IP literal or an accepted name.
func hostAllowed(hostport string, names map[string]bool) bool {
	if hostport == "" {
		return false
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	if net.ParseIP(host) != nil {
		return true
	}
	return names[strings.ToLower(host)]
}

// sameOrigin reports whether a browser's request comes from the page the
// listener serves itself (or from no browser at all).
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false // including "null": sandboxed frames, file: pages
	}
	return strings.EqualFold(u.Host, r.Host)
}
