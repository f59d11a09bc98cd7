//go:build kernel

package bgp

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// birdSession is a BIRD peer announcing prefix (and holding addr on lo
// for pings), with extra lines in its bgp protocol.
func birdSession(local string, asn int, prefix, extra string) string {
	return fmt.Sprintf(`
protocol static sa { ipv4; route %s blackhole; }
protocol bgp fwd {
	local %s as %d;
	neighbor 192.0.2.1 as 64512;
	hold time 6;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	%s
	ipv4 { import all; export all; };
}
`, prefix, local, asn, extra)
}

// birdEstablished reports whether BIRD's session "fwd" is up.
func birdEstablished(b *bird) bool {
	return strings.Contains(b.c("show", "protocols", "fwd"), "Established")
}

const twoPeerTenant = `
[tenant.%[1]s.interface.x0]
device = "x0"
addresses = ["192.0.2.1/24"]
[tenant.%[1]s.interface.x1]
device = "x1"
addresses = ["198.51.100.1/24"]
[tenant.%[1]s.bgp]
asn = 64512
announce = ["203.0.113.0/24"]
[[tenant.%[1]s.bgp.neighbor]]
address = "192.0.2.2"
asn = 64513
hold_time = 6
keepalive = 2
%[2]s
[[tenant.%[1]s.bgp.neighbor]]
address = "198.51.100.2"
asn = 64514
hold_time = 6
keepalive = 2
%[3]s
`

// twoPeers builds tenant with BIRD peers A (192.0.2.2, AS 64513,
// announcing 198.18.1.0/24) and B (198.51.100.2, AS 64514, announcing
// 198.18.2.0/24).
func twoPeers(t *testing.T, tenant, extraA, extraB string) (a, b *bird) {
	t.Helper()
	testnet.Host(t, tenant)
	testnet.Host(t, tenant+"a")
	testnet.Host(t, tenant+"b")
	link(t, tenant, "x0", "192.0.2.1/24", tenant+"a", "p0", "192.0.2.2/24")
	link(t, tenant, "x1", "198.51.100.1/24", tenant+"b", "p0", "198.51.100.2/24")
	testnet.MustCmd(t, "", "ip", "-n", tenant+"a", "addr", "add", "198.18.1.1/32", "dev", "lo")
	a = startBird(t, tenant+"a", "192.0.2.2", birdSession("192.0.2.2", 64513, "198.18.1.0/24", extraA))
	b = startBird(t, tenant+"b", "198.51.100.2",
		strings.Replace(birdSession("198.51.100.2", 64514, "198.18.2.0/24", extraB), "neighbor 192.0.2.1", "neighbor 198.51.100.1", 1))
	return a, b
}

// TCP MD5 (RFC 2385) against BIRD: with the same password on both sides
// the session comes up; with a wrong one it never does, until the
// password is fixed.
func TestBIRDTCPMD5(t *testing.T) {
	testkit.Require(t)
	a, b := twoPeers(t, "md5", `password "s3cret-md5";`, `password "s3cret-md5";`)
	s := newTestSupervisor(t)
	good := `password = "s3cret-md5"`
	reconcile(t, s, testkit.Config(t, fmt.Sprintf(twoPeerTenant, "md5", good, `password = "wrong-md5"`)))

	waitFor(t, 30*time.Second, "session with the right password", func() bool { return neighbor(t, s, "md5", "192.0.2.2").State == "established" })
	waitFor(t, 10*time.Second, "route over the MD5 session", func() bool {
		return strings.Contains(kernelRoute(t, "md5", "main", "198.18.1.0/24"), "via 192.0.2.2")
	})
	if !birdEstablished(a) {
		t.Error("BIRD A does not see the session established")
	}
	// Several connection attempts on both sides (BIRD retries every 2 s,
	// gobgp every 5 s) all fail.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if st := neighbor(t, s, "md5", "198.51.100.2").State; st == "established" || st == "openconfirm" || st == "opensent" {
			t.Fatalf("session with the wrong password reached %s", st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if birdEstablished(b) || kernelRoute(t, "md5", "main", "198.18.2.0/24") != "" {
		t.Error("BIRD B established with a wrong password")
	}

	// Fixing the password resets only that neighbour, which comes up.
	got := reconcile(t, s, testkit.Config(t, fmt.Sprintf(twoPeerTenant, "md5", good, good)))
	if want := "reset-neighbor neighbor 198.51.100.2"; strings.Join(got, ",") != want {
		t.Errorf("changes: %v, want %s", got, want)
	}
	waitFor(t, 30*time.Second, "session with the fixed password", func() bool {
		return neighbor(t, s, "md5", "198.51.100.2").State == "established"
	})
	waitFor(t, 10*time.Second, "route over the fixed session", func() bool {
		return strings.Contains(kernelRoute(t, "md5", "main", "198.18.2.0/24"), "via 198.51.100.2")
	})
}

// Graceful restart (RFC 4724) against BIRD: when the speaker dies, the
// kernel keeps forwarding over its routes, and BIRD A (graceful restart
// on) keeps the tenant's routes while BIRD B (off) drops them at once;
// the restarted speaker takes over without a gap.
func TestBIRDGracefulRestart(t *testing.T) {
	testkit.Require(t)
	a, b := twoPeers(t, "gr", "graceful restart on;", "graceful restart off;")
	s := newTestSupervisor(t)
	reconcile(t, s, testkit.Config(t, fmt.Sprintf(twoPeerTenant, "gr",
		"graceful_restart = true\ngraceful_restart_time = 60", "graceful_restart = true")))
	for _, n := range []string{"192.0.2.2", "198.51.100.2"} {
		waitFor(t, 30*time.Second, "session "+n, func() bool { return neighbor(t, s, "gr", n).State == "established" })
	}
	learned := func(x *bird) bool {
		out, _ := exec.Command("birdc", "-s", x.sock, "show", "route", "203.0.113.0/24").CombinedOutput()
		return strings.Contains(string(out), "203.0.113.0/24")
	}
	waitFor(t, 10*time.Second, "BIRD A learns our route", func() bool { return learned(a) })
	waitFor(t, 10*time.Second, "BIRD B learns our route", func() bool { return learned(b) })
	waitFor(t, 10*time.Second, "route from A in the kernel", func() bool {
		return strings.Contains(kernelRoute(t, "gr", "main", "198.18.1.0/24"), "via 192.0.2.2")
	})
	if out := a.c("show", "protocols", "all", "fwd"); !strings.Contains(out[strings.Index(out, "Neighbor capabilities")+1:], "Graceful restart") {
		t.Fatalf("graceful restart not negotiated with BIRD A:\n%s", out)
	}
	if !testnet.WaitPing("gr", "198.18.1.1", 5*time.Second) {
		t.Fatal("no traffic before the restart")
	}

	pid := s.Speakers()[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The restart window: both BIRDs lost the session.
	waitFor(t, 5*time.Second, "BIRD A sees the session down", func() bool { return !birdEstablished(a) })
	waitFor(t, 3*time.Second, "BIRD B drops our route (no graceful restart)", func() bool { return !learned(b) })
	if !learned(a) {
		t.Error("BIRD A dropped our route during the restart window")
	}
	if kernelRoute(t, "gr", "main", "198.18.1.0/24") == "" {
		t.Error("kernel route removed when the speaker died")
	}
	if !testnet.Ping("gr", "198.18.1.1") {
		t.Error("forwarding stopped during the restart window")
	}

	// The new speaker comes back; both BIRDs have the route again, and
	// forwarding never stopped.
	waitFor(t, 30*time.Second, "speaker restarted", func() bool {
		st := s.Speakers()
		return len(st) == 1 && st[0].Running && st[0].PID != pid
	})
	waitFor(t, 30*time.Second, "session A back", func() bool { return neighbor(t, s, "gr", "192.0.2.2").State == "established" })
	waitFor(t, 10*time.Second, "BIRD B relearns our route", func() bool { return learned(b) })
	if !learned(a) {
		t.Error("BIRD A lost our route after the restart")
	}
	if !testnet.WaitPing("gr", "198.18.1.1", 5*time.Second) {
		t.Error("no traffic after the restart")
	}
}
