package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// The [mgmt] table: settings of the management plane, which always lives
// in the default namespace.

type rawMgmt struct {
	Protect       []string `toml:"protect"`
	Socket        *string  `toml:"socket"`
	MetricsListen *string  `toml:"metrics_listen"`
	APIListen     *string  `toml:"api_listen"`
	APITokenFile  *string  `toml:"api_token_file"`
	RevisionDir   *string  `toml:"revision_dir"`
	Revisions     *int     `toml:"revisions"`
	LogFormat     *string  `toml:"log_format"`
}

// Defaults of the [mgmt] table.
const (
	DefaultSocket        = "/run/fwd/fwd.sock"
	DefaultMetricsListen = "127.0.0.1:9641"
	DefaultRevisionDir   = "/var/lib/fwd/revisions"
	DefaultRevisions     = 50
)

// Mgmt holds settings of the management plane (default namespace).
type Mgmt struct {
	// Protect lists NICs fwd must never move, whatever the tenants say.
	Protect []string
	// Socket is the API's Unix socket (root only).
	Socket string
	// MetricsListen is the Prometheus listener ("" = off).
	MetricsListen string
	// APIListen is an optional TCP listener for the API ("" = off); a
	// non-loopback address requires APITokenFile.
	APIListen    string
	APITokenFile string
	// RevisionDir holds the applied configurations; Revisions bounds
	// how many are kept.
	RevisionDir string
	Revisions   int
	// LogFormat is "text" or "json".
	LogFormat string
}

func validateMgmt(r *reporter, raw *rawMgmt, m *Mgmt) {
	for i, p := range raw.Protect {
		if why := ValidIfName(p); why != "" {
			r.add(fmt.Sprintf("mgmt.protect[%d]", i), "%s", why)
		}
	}
	m.Protect = append([]string(nil), raw.Protect...)
	str := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	m.Socket = str(raw.Socket, DefaultSocket)
	if !filepath.IsAbs(m.Socket) {
		r.add("mgmt.socket", "%q is not an absolute path", m.Socket)
	}
	m.MetricsListen = str(raw.MetricsListen, DefaultMetricsListen)
	if m.MetricsListen != "" {
		if _, err := netip.ParseAddrPort(m.MetricsListen); err != nil {
			r.add("mgmt.metrics_listen", "%q is not an address:port (\"\" turns metrics off)", m.MetricsListen)
		}
	}
	m.APIListen = str(raw.APIListen, "")
	m.APITokenFile = str(raw.APITokenFile, "")
	if m.APIListen != "" {
		ap, err := netip.ParseAddrPort(m.APIListen)
		switch {
		case err != nil:
			r.add("mgmt.api_listen", "%q is not an address:port", m.APIListen)
		case m.APITokenFile == "" && !ap.Addr().IsLoopback():
			r.add("mgmt.api_listen", "%s is not a loopback address: set mgmt.api_token_file", m.APIListen)
		}
	}
	if m.APITokenFile != "" && !filepath.IsAbs(m.APITokenFile) {
		r.add("mgmt.api_token_file", "%q is not an absolute path", m.APITokenFile)
	}
	m.RevisionDir = str(raw.RevisionDir, DefaultRevisionDir)
	if !filepath.IsAbs(m.RevisionDir) {
		r.add("mgmt.revision_dir", "%q is not an absolute path", m.RevisionDir)
	}
	m.Revisions = DefaultRevisions
	if raw.Revisions != nil {
		m.Revisions = *raw.Revisions
		if m.Revisions < 2 || m.Revisions > 10000 {
			r.add("mgmt.revisions", "%d is out of range 2..10000", m.Revisions)
		}
	}
	m.LogFormat = strings.ToLower(str(raw.LogFormat, "text"))
	if m.LogFormat != "text" && m.LogFormat != "json" {
		r.add("mgmt.log_format", "%q is neither \"text\" nor \"json\"", m.LogFormat)
	}
}
