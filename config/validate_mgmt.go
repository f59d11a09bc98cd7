package config

import (
	"net/netip"
	"path/filepath"
	"strings"
)

// maxSocketPath is the longest path a Unix socket can bind: sun_path is
// 108 bytes with the terminating NUL.
const maxSocketPath = 107

// validateMgmt validates the [mgmt] table and applies its defaults.
func validateMgmt(r reporter, raw *rawMgmt, m *Mgmt) {
	pr := r.in("protect")
	for i, p := range raw.Protect {
		if why := ValidIfName(p); why != "" {
			pr.at(i).errorf("%s", why)
		}
	}
	m.Protect = append([]string(nil), raw.Protect...)
	str := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	absolute := func(key, path string) {
		if !filepath.IsAbs(path) {
			r.in(key).errorf("%q is not an absolute path", path)
		}
	}
	m.Socket = str(raw.Socket, DefaultSocket)
	absolute("socket", m.Socket)
	if len(m.Socket) > maxSocketPath {
		r.in("socket").errorf("path is %d bytes, more than the %d a Unix socket address holds (sun_path)", len(m.Socket), maxSocketPath)
	}
	m.MetricsListen = str(raw.MetricsListen, DefaultMetricsListen)
	if m.MetricsListen != "" {
		if _, err := netip.ParseAddrPort(m.MetricsListen); err != nil {
			r.in("metrics_listen").errorf("%q is not an address:port (\"\" turns metrics off)", m.MetricsListen)
		}
	}
	m.APIListen = str(raw.APIListen, "")
	m.APITokenFile = str(raw.APITokenFile, "")
	if m.APIListen != "" {
		ap, err := netip.ParseAddrPort(m.APIListen)
		switch {
		case err != nil:
			r.in("api_listen").errorf("%q is not an address:port", m.APIListen)
		case m.APITokenFile == "" && !ap.Addr().IsLoopback():
			r.in("api_listen").errorf("%s is not a loopback address: set mgmt.api_token_file", m.APIListen)
		}
	}
	if m.APITokenFile != "" {
		absolute("api_token_file", m.APITokenFile)
	}
	m.RevisionDir = str(raw.RevisionDir, DefaultRevisionDir)
	absolute("revision_dir", m.RevisionDir)
	m.Revisions = DefaultRevisions
	if raw.Revisions != nil {
		m.Revisions = *raw.Revisions
		if m.Revisions < 2 || m.Revisions > 10000 {
			r.in("revisions").errorf("%d is out of range 2..10000", m.Revisions)
		}
	}
	m.Rehearse = raw.Rehearse != nil && *raw.Rehearse
	m.LogFormat = strings.ToLower(str(raw.LogFormat, "text"))
	if m.LogFormat != "text" && m.LogFormat != "json" {
		r.in("log_format").errorf("%q is neither \"text\" nor \"json\"", m.LogFormat)
	}
}
