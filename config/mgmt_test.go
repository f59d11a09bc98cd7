package config

import (
	"strings"
	"testing"
)

func TestMgmtDefaults(t *testing.T) {
	cfg, err := Parse("fwd.toml", []byte("[mgmt]\nprotect = [\"eth0\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Mgmt
	if m.Socket != DefaultSocket || m.MetricsListen != DefaultMetricsListen || m.APIListen != "" ||
		m.RevisionDir != DefaultRevisionDir || m.Revisions != DefaultRevisions || m.LogFormat != "text" {
		t.Fatalf("defaults: %+v", m)
	}
	cfg, err = Parse("fwd.toml", []byte(`[mgmt]
socket = "/run/x.sock"
metrics_listen = ""
api_listen = "192.0.2.1:9642"
api_token_file = "/etc/fwd/token"
revision_dir = "/tmp/revs"
revisions = 5
log_format = "JSON"
`))
	if err != nil {
		t.Fatal(err)
	}
	m = cfg.Mgmt
	if m.Socket != "/run/x.sock" || m.MetricsListen != "" || m.APIListen != "192.0.2.1:9642" ||
		m.APITokenFile != "/etc/fwd/token" || m.RevisionDir != "/tmp/revs" || m.Revisions != 5 || m.LogFormat != "json" {
		t.Fatalf("set: %+v", m)
	}
}

func TestMgmtErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`socket = "fwd.sock"`, `mgmt.socket: "fwd.sock" is not an absolute path`},
		{`metrics_listen = "localhost"`, `mgmt.metrics_listen: "localhost" is not an address:port`},
		{`api_listen = "192.0.2.1:1"`, `mgmt.api_listen: a TCP API listener needs a token: set mgmt.api_token_file (any local user reaches 192.0.2.1:1)`},
		{`api_listen = "127.0.0.1:9642"`, `mgmt.api_listen: a TCP API listener needs a token: set mgmt.api_token_file (any local user reaches 127.0.0.1:9642)`},
		{`api_hosts = ["fw.example.net:9642"]`, `mgmt.api_hosts[0]: "fw.example.net:9642" is not a host name (no port, no brackets)`},
		{`api_listen = "nope"`, `mgmt.api_listen: "nope" is not an address:port`},
		{`api_token_file = "tok"`, `mgmt.api_token_file: "tok" is not an absolute path`},
		{`revision_dir = "revs"`, `mgmt.revision_dir: "revs" is not an absolute path`},
		{`revisions = 1`, `mgmt.revisions: 1 is out of range 2..10000`},
		{`log_format = "xml"`, `mgmt.log_format: "xml" is neither "text" nor "json"`},
	} {
		_, err := Parse("fwd.toml", []byte("[mgmt]\n"+tc.in+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.in, err, tc.want)
		}
	}
}
