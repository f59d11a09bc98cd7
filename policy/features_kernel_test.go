//go:build kernel

package policy

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/vishvananda/netns"
)

// pings sends n echo requests from namespace nsName and returns how many
// were answered.
func pings(t *testing.T, nsName, addr string, n int, interval string) int {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "exec", nsName, "ping", "-n", "-c", strconv.Itoa(n), "-i", interval, "-W", "1", addr).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, " received"); i > 0 {
			f := strings.Fields(line[:i])
			got, _ := strconv.Atoi(f[len(f)-1])
			return got
		}
	}
	t.Fatalf("ping output:\n%s", out)
	return 0
}

// dialFrom connects from a fixed source port.
func dialFrom(h netns.NsHandle, laddr, raddr string) error {
	la, err := net.ResolveTCPAddr("tcp", laddr)
	if err != nil {
		return err
	}
	return ns.Do(h, func() error {
		d := net.Dialer{LocalAddr: la, Timeout: 1500 * time.Millisecond}
		c, err := d.Dial("tcp", raddr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// TestRuleFeatures proves icmp_type, limit, sport, ct_state and log with
// traffic from the WAN host to the firewall itself.
func TestRuleFeatures(t *testing.T) {
	l := newLab(t)
	serve(t, l.fw, "203.0.113.1:7000")
	tn := tenantFrom(t, labBase+`
[[tenant.fw.rule]]
name = "ping-limited"
from = "wan"
to = "self"
proto = "icmp"
icmp_type = "echo-request"
limit = "1/minute"
limit_burst = 2
action = "accept"
[[tenant.fw.rule]]
name = "from-port-4000"
from = "wan"
to = "self"
proto = "tcp"
sport = 4000
dport = 7000
ct_state = "new"
action = "accept"
log = "fwd-test "
log_limit = "10/second"
`)
	mustApply(t, tn, l.fw)

	t.Run("icmp_type and limit", func(t *testing.T) {
		// Burst 2, then 1/minute: of 4 new echo flows (one ping process
		// each; the replies of one process are conntrack-established),
		// 2 are answered.
		got := 0
		for i := 0; i < 4; i++ {
			got += pings(t, l.wanN, "203.0.113.1", 1, "0.2")
		}
		if got != 2 {
			t.Fatalf("%d of 4 pings answered, want 2 (limit burst)", got)
		}
		if n := counterOf(t, l.fw, "ping-limited"); n != 2 {
			t.Fatalf("ping-limited counted %d, want 2", n)
		}
	})
	t.Run("sport, ct_state and log", func(t *testing.T) {
		if err := dialFrom(l.wan, "203.0.113.2:4001", "203.0.113.1:7000"); !isTimeout(err) {
			t.Fatalf("from port 4001: want timeout, got %v", err)
		}
		if err := dialFrom(l.wan, "203.0.113.2:4000", "203.0.113.1:7000"); err != nil {
			t.Fatalf("from port 4000: %v", err)
		}
		if n := counterOf(t, l.fw, "from-port-4000"); n != 1 {
			t.Fatalf("from-port-4000 counted %d, want 1 (only the new packet)", n)
		}
		out := nft(t, l.fwN, "list", "chain", "inet", TableName, "in_wan")
		if !strings.Contains(out, `log prefix "fwd:from-port-4000 fwd-test " group 4100`) || !strings.Contains(out, "ct state new") {
			t.Fatalf("kernel chain:\n%s", out)
		}
	})
}
