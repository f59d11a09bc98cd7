package config

import (
	"net/netip"
	"path/filepath"
	"strings"
)

// maxSocketPath is the longest path a Unix socket can bind: sun_path is
// 108 bytes with the terminating NUL.
const maxSocketPath = 107

// validateAPIListener validates the TCP API listener. It always needs a
// token, loopback included: every local user reaches 127.0.0.1. The
// daemon reads the token file when it starts (ReadSecretFile: mode 0600,
// at least MinTokenBytes).
func validateAPIListener(r reporter, raw *rawMgmt, m *Mgmt) {
	m.APIListen = ""
	if raw.APIListen != nil {
		m.APIListen = *raw.APIListen
	}
	if raw.APITokenFile != nil {
		m.APITokenFile = *raw.APITokenFile
	}
	if m.APIListen != "" {
		_, err := netip.ParseAddrPort(m.APIListen)
		switch {
		case err != nil:
			r.in("api_listen").errorf("%q is not an address:port", m.APIListen)
		case m.APITokenFile == "":
			r.in("api_listen").errorf("a TCP API listener needs a token: set mgmt.api_token_file (any local user reaches %s)", m.APIListen)
		}
	}
	if m.APITokenFile != "" && !filepath.IsAbs(m.APITokenFile) {
		r.in("api_token_file").errorf("%q is not an absolute path", m.APITokenFile)
	}
	hr := r.in("api_hosts")
	for i, h := range raw.APIHosts {
		if h == "" || strings.ContainsAny(h, ":/[] ") {
			hr.at(i).errorf("%q is not a host name (no port, no brackets)", h)
		}
	}
	m.APIHosts = append([]string(nil), raw.APIHosts...)
}

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
	validateAPIListener(r, raw, m)
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
