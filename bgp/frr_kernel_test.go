//go:build kernel

package bgp

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"golang.org/x/sys/unix"
)

const frrDir = "/usr/lib/frr"

var (
	frrTmpOnce sync.Once
	frrTmpErr  error
)

// frrPrivateTmp gives FRR a private /var/tmp/frr (where it writes crash
// logs): a tmpfs over /var/tmp in the sandbox's own mount namespace, so
// nothing lands on the host's disk and the host's /var/tmp is untouched.
func frrPrivateTmp(t *testing.T) {
	t.Helper()
	frrTmpOnce.Do(func() {
		if frrTmpErr = unix.Mount("fwd-frr", "/var/tmp", "tmpfs", 0, "mode=1777"); frrTmpErr == nil {
			frrTmpErr = os.MkdirAll("/var/tmp/frr", 0o755)
		}
	})
	if frrTmpErr != nil {
		t.Fatalf("private /var/tmp for FRR: %v", frrTmpErr)
	}
}

type frr struct {
	t   *testing.T
	dir string // config, pid file, vty socket, log
	cmd *exec.Cmd
}

// startFRR runs FRR's bgpd in namespace nsName without zebra (-Z: it
// installs no routes) and without a TCP vty, with its state in a temp
// dir, as root (-S).
func startFRR(t *testing.T, nsName, conf string) *frr {
	t.Helper()
	if _, err := os.Stat(filepath.Join(frrDir, "bgpd")); err != nil {
		t.Fatal("frr is not installed (apt-get install -y frr)")
	}
	frrPrivateTmp(t)
	f := &frr{t: t, dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.dir, "bgpd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	f.cmd = exec.Command("ip", "netns", "exec", nsName, filepath.Join(frrDir, "bgpd"),
		"-f", filepath.Join(f.dir, "bgpd.conf"), "-i", filepath.Join(f.dir, "bgpd.pid"),
		"--vty_socket", f.dir, "-P", "0", "-Z", "-S", "-n",
		"--log", "file:"+filepath.Join(f.dir, "bgpd.log"))
	f.cmd.Stdout, f.cmd.Stderr = os.Stderr, os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(f.dir, "bgpd.log"))
			t.Logf("bgpd.log:\n%s", b)
		}
	})
	waitFor(t, 10*time.Second, "bgpd vty socket", func() bool {
		_, err := os.Stat(filepath.Join(f.dir, "bgpd.vty"))
		return err == nil
	})
	return f
}

func (f *frr) stop() {
	if f.cmd != nil && f.cmd.Process != nil {
		// A stop signal may find it gone already; Wait reaps it either way.
		_ = f.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = f.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = f.cmd.Process.Kill()
			<-done
		}
		f.cmd = nil
	}
}

// vtysh runs one show command against this bgpd.
func (f *frr) vtysh(cmd string) (string, error) {
	out, err := exec.Command("vtysh", "--vty_socket", f.dir, "-d", "bgpd", "-c", cmd).CombinedOutput()
	return string(out), err
}

// frrRoute is FRR's best path for a prefix, from `show bgp ... json`.
type frrRoute struct {
	Paths []struct {
		Valid  bool `json:"valid"`
		ASPath struct {
			String string `json:"string"`
		} `json:"aspath"`
		Community struct {
			String string `json:"string"`
		} `json:"community"`
		LargeCommunity struct {
			String string `json:"string"`
		} `json:"largeCommunity"`
		Med int `json:"metric"`
	} `json:"paths"`
}

func (f *frr) route(family, prefix string) (frrRoute, bool) {
	var r frrRoute
	out, err := f.vtysh(fmt.Sprintf("show bgp %s unicast %s json", family, prefix))
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || len(r.Paths) == 0 {
		return r, false
	}
	return r, true
}

const frrPeerConf = `frr defaults traditional
hostname frrpeer
!
route-map TOFWD permit 10
 match ip address prefix-list TAGGED
 set community 64520:80
route-map TOFWD permit 20
!
ip prefix-list TAGGED seq 5 permit 198.18.11.0/24
!
router bgp 64520
 bgp router-id 192.0.2.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 2 6
 neighbor 192.0.2.1 remote-as 64512
 neighbor 192.0.2.1 timers connect 2
 neighbor 2001:db8:6::1 remote-as 64512
 neighbor 2001:db8:6::1 timers connect 2
 !
 address-family ipv4 unicast
  network 198.18.10.0/24
  network 198.18.11.0/24
  network 198.18.12.0/24
  neighbor 192.0.2.1 route-map TOFWD out
  no neighbor 2001:db8:6::1 activate
 exit-address-family
 !
 address-family ipv6 unicast
  network 2001:db8:310::/48
  neighbor 2001:db8:6::1 activate
 exit-address-family
!
`

const frrTenant = `
[tenant.fr.interface.f0]
device = "f0"
addresses = ["192.0.2.1/24", "2001:db8:6::1/64"]

[tenant.fr.bgp]
asn = 64512
announce = ["203.0.113.0/24", "2001:db8:100::/48"]

[[tenant.fr.bgp.neighbor]]
address = "192.0.2.2"
asn = 64520
hold_time = 6
keepalive = 2
import = { deny = ["198.18.12.0/24"], rule = [{ community = ["64520:80"], local_pref = 80 }] }
export = { prepend = 1, med = 33, add_community = ["64512:200", "64512:2:3"] }

[[tenant.fr.bgp.neighbor]]
address = "2001:db8:6::2"
asn = 64520
hold_time = 6
keepalive = 2
`

// Interop with FRR: an FRR bgpd peer exchanges IPv4 and IPv6 routes with
// a tenant; FRR's routes land in the tenant's kernel table (through the
// import filter), and FRR receives ours with the export changes.
func TestFRRInterop(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "fr")
	testnet.Host(t, "pfr")
	testnet.MustCmd(t, "", "ip", "link", "add", "f0", "netns", "fr", "type", "veth", "peer", "name", "p0", "netns", "pfr")
	for _, a := range [][]string{
		{"fr", "192.0.2.1/24", "f0"}, {"pfr", "192.0.2.2/24", "p0"},
		{"fr", "2001:db8:6::1/64", "f0"}, {"pfr", "2001:db8:6::2/64", "p0"},
	} {
		argv := []string{"ip", "-n", a[0], "addr", "add", a[1], "dev", a[2]}
		if strings.Contains(a[1], ":") {
			argv = append(argv, "nodad")
		}
		testnet.MustCmd(t, "", argv...)
	}
	testnet.MustCmd(t, "", "ip", "-n", "fr", "link", "set", "f0", "up")
	testnet.MustCmd(t, "", "ip", "-n", "pfr", "link", "set", "p0", "up")
	testnet.MustCmd(t, "", "ip", "-n", "pfr", "addr", "add", "198.18.10.1/32", "dev", "lo")
	testnet.MustCmd(t, "", "ip", "-n", "pfr", "addr", "add", "2001:db8:310::1/128", "dev", "lo")
	f := startFRR(t, "pfr", frrPeerConf)

	s := newTestSupervisor(t)
	reconcile(t, s, testkit.Config(t, frrTenant))
	waitFor(t, 30*time.Second, "IPv4 session with FRR", func() bool { return neighbor(t, s, "fr", "192.0.2.2").State == "established" })
	waitFor(t, 30*time.Second, "IPv6 session with FRR", func() bool { return neighbor(t, s, "fr", "2001:db8:6::2").State == "established" })

	// FRR → tenant: in the kernel table, through the import filter.
	for _, p := range []string{"198.18.10.0/24", "198.18.11.0/24"} {
		waitFor(t, 10*time.Second, p+" from FRR in the kernel", func() bool {
			return strings.Contains(kernelRoute(t, "fr", "main", p), "via 192.0.2.2")
		})
	}
	waitFor(t, 10*time.Second, "IPv6 route from FRR in the kernel", func() bool {
		return strings.Contains(kernelRoute6(t, "fr", "2001:db8:310::/48"), "via 2001:db8:6::2")
	})
	if r := kernelRoute(t, "fr", "main", "198.18.12.0/24"); r != "" {
		t.Errorf("denied prefix from FRR installed: %s", r)
	}
	if p := ribBest(t, s, "fr", "198.18.11.0/24"); p.localPref != 80 || strings.Join(p.communities, ",") != "64520:80" {
		t.Errorf("FRR's tagged route: local_pref %d, communities %v; want 80 and 64520:80", p.localPref, p.communities)
	}
	if !testnet.WaitPing("fr", "198.18.10.1", 5*time.Second) || !testnet.WaitPing("fr", "2001:db8:310::1", 5*time.Second) {
		t.Error("no traffic over the routes from FRR")
	}

	// Tenant → FRR, with the export changes.
	var r4 frrRoute
	waitFor(t, 10*time.Second, "FRR learns 203.0.113.0/24", func() bool {
		var ok bool
		r4, ok = f.route("ipv4", "203.0.113.0/24")
		return ok
	})
	if p := r4.Paths[0]; !p.Valid || p.ASPath.String != "64512 64512" || p.Med != 33 ||
		p.Community.String != "64512:200" || p.LargeCommunity.String != "64512:2:3" {
		t.Errorf("FRR's path for 203.0.113.0/24: %+v", p)
	}
	waitFor(t, 10*time.Second, "FRR learns 2001:db8:100::/48", func() bool {
		r6, ok := f.route("ipv6", "2001:db8:100::/48")
		return ok && r6.Paths[0].Valid && r6.Paths[0].ASPath.String == "64512"
	})
	// FRR withdraws: the kernel route goes.
	if out, err := f.vtysh("configure terminal\nrouter bgp 64520\naddress-family ipv4 unicast\nno network 198.18.10.0/24"); err != nil {
		t.Fatalf("vtysh: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "198.18.10.0/24 withdrawn by FRR", func() bool { return kernelRoute(t, "fr", "main", "198.18.10.0/24") == "" })
}
