package ha

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func edgeSpec() Spec {
	return Spec{
		Tenant:        "edge",
		Dir:           "/run/fwd/edge/ha",
		SyncInterface: "sync",
		LocalAddress:  netip.MustParseAddr("198.18.9.1"),
		Peer:          netip.MustParseAddr("198.18.9.2"),
		Priority:      150,
		VIPs: []VIP{
			{Interface: "wan", Prefix: netip.MustParsePrefix("203.0.113.5/24")},
			{Interface: "lan", Prefix: netip.MustParsePrefix("192.0.2.1/24")},
			{Interface: "lan", Prefix: netip.MustParsePrefix("2001:db8:1::1/64")},
		},
		TrackInterfaces: []string{"uplink2", "wan"},
		IgnoreAddresses: []netip.Addr{netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("192.0.2.2")},
	}.WithDefaults()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, got)
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"edge", edgeSpec()},
		{"edge6", func() Spec {
			s := edgeSpec()
			s.Tenant, s.Dir = "edge6", "/run/fwd/edge6/ha"
			s.LocalAddress, s.Peer = netip.MustParseAddr("2001:db8:9::1"), netip.MustParseAddr("2001:db8:9::2")
			s.AdvertInterval, s.PreemptDelay, s.VRID, s.SyncPort = 200*time.Millisecond, 3*time.Second, 7, 3781
			return s
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.spec.Validate(); err != nil {
				t.Fatal(err)
			}
			ka, ct := Render(tc.spec)
			golden(t, tc.name+".keepalived.conf", ka)
			golden(t, tc.name+".conntrackd.conf", ct)
			ka2, ct2 := Render(tc.spec)
			if !bytes.Equal(ka, ka2) || !bytes.Equal(ct, ct2) {
				t.Fatal("Render is not deterministic")
			}
		})
	}
}

// keepalived parses what we generate without a complaint. keepalived is in
// the Makefile's DEB_DEPS: a machine without it fails this test.
func TestKeepalivedAcceptsConfig(t *testing.T) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal("keepalived is not installed (make deps)")
	}
	s := edgeSpec()
	s.Dir = t.TempDir()
	ka, _ := Render(s)
	conf := filepath.Join(s.Dir, "keepalived.conf")
	if err := os.WriteFile(conf, ka, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.notifyScript(), NotifyScript, 0o700); err != nil {
		t.Fatal(err)
	}
	// The interfaces exist only in a tenant namespace (the kernel test runs
	// keepalived -t there and accepts no line at all); here every line but
	// the missing-interface ones is a problem.
	out, _ := exec.Command(bin, "-t", "-f", conf).CombinedOutput()
	if p := ConfigProblems(out, true); len(p) > 0 {
		t.Fatalf("keepalived -t complains:\n%s", strings.Join(p, "\n"))
	}
	if !strings.Contains(string(out), "interface sync for vrrp_instance fwd_edge doesn't exist") {
		t.Fatalf("keepalived -t did not look at the config:\n%s", out)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"ok", func(*Spec) {}, ""},
		{"priority", func(s *Spec) { s.Priority = 255 }, "priority 255 is outside 1..254"},
		{"vrid", func(s *Spec) { s.VRID = 256 }, "vrid 256 is outside 1..255"},
		{"advert", func(s *Spec) { s.AdvertInterval = 15 * time.Millisecond }, "advert interval 15ms must be a multiple of 10ms"},
		{"peer self", func(s *Spec) { s.Peer = s.LocalAddress }, "peer 198.18.9.1 is this box's own sync address"},
		{"families", func(s *Spec) { s.Peer = netip.MustParseAddr("2001:db8::2") }, "different families"},
		{"no vip", func(s *Spec) { s.VIPs = nil }, "no VIP"},
		{"vip on sync", func(s *Spec) { s.VIPs[0].Interface = "sync" }, `vip 203.0.113.5/24 is on the sync interface "sync"`},
		{"vip twice", func(s *Spec) { s.VIPs[1].Prefix = netip.MustParsePrefix("203.0.113.5/32") }, "vip 203.0.113.5 is listed twice"},
		{"dir", func(s *Spec) { s.Dir = "run/x" }, `run directory "run/x" must be an absolute path`},
		{"dir blank", func(s *Spec) { s.Dir = "/run/a b" }, `run directory "/run/a b" must be an absolute path`},
		{"dir long", func(s *Spec) { s.Dir = "/" + strings.Repeat("d", 100) }, "too long for conntrackd's unix socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := edgeSpec()
			s.VIPs = append([]VIP(nil), s.VIPs...)
			tc.edit(&s)
			err := s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
