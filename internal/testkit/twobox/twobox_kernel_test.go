//go:build kernel

package twobox

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testnet"
)

func init() {
	Register("whoami", func([]string) (string, error) {
		l, err := os.Readlink("/proc/self/ns/net")
		return Name() + " " + l, err
	})
}

// Two boxes on a shared bridge reach each other; each has its own network
// namespace and /run; Kill takes a box's whole process tree down (a
// detached grandchild included); Restart brings it back with its links.
func TestTwoBoxes(t *testing.T) {
	testnet.Host(t, "seg")
	Bridge(t, "seg", "br0", "192.0.2.254/24")
	a, b := Start(t, "a"), Start(t, "b")
	a.Link(t, "eth0", "seg", "a-eth0", "br0")
	b.Link(t, "eth0", "seg", "b-eth0", "br0")
	a.MustCall(t, "sh", "ip addr add 192.0.2.1/24 dev eth0")
	b.MustCall(t, "sh", "ip addr add 192.0.2.2/24 dev eth0")
	if _, err := a.Call("sh", "ping -c1 -W2 192.0.2.2"); err != nil {
		t.Fatal(err)
	}
	wa, wb := a.MustCall(t, "whoami"), b.MustCall(t, "whoami")
	self, _ := os.Readlink("/proc/self/ns/net")
	if !strings.HasPrefix(wa, "a ") || !strings.HasPrefix(wb, "b ") || wa[2:] == wb[2:] || strings.HasSuffix(wa, self) {
		t.Fatalf("boxes share a namespace: %q %q (harness %s)", wa, wb, self)
	}
	a.MustCall(t, "sh", "touch /run/netns/mine")
	if out := b.MustCall(t, "sh", "ls /run/netns"); strings.Contains(out, "mine") {
		t.Fatal("boxes share /run")
	}
	// A process that left the box's process group and session.
	a.MustCall(t, "sh", "setsid sleep 1000 >/dev/null 2>&1 < /dev/null &")
	deadline := time.Now().Add(3 * time.Second)
	for len(Leftovers("sleep")) != 1 { // setsid forks after sh returned
		if time.Now().After(deadline) {
			t.Fatalf("want one sleep in box a, got %v", Leftovers("sleep"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.Kill()
	if l := Leftovers("sleep"); len(l) != 0 {
		t.Fatalf("kill -9 of the box left %v", l)
	}
	if testnet.Ping("seg", "192.0.2.1") {
		t.Fatal("killed box still answers")
	}
	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	a.MustCall(t, "sh", "ip addr add 192.0.2.1/24 dev eth0")
	if !testnet.WaitPing("seg", "192.0.2.1", 3*time.Second) {
		t.Fatal("restarted box unreachable")
	}
}
