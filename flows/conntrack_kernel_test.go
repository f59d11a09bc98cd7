//go:build kernel

package flows

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// Two live TCP flows in a namespace are listed with their tuples and TCP
// state; a filter selects one, Delete removes exactly that one.
func TestListFilterDelete(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "ctt")
	testnet.MustCmd(t, "ctt", "ip", "addr", "add", "198.51.100.9/32", "dev", "lo")
	// Conntrack runs in a namespace only once a ruleset uses it.
	cmd := exec.Command("ip", "netns", "exec", "ctt", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("table inet ctt { chain in { type filter hook input priority 0; ct state established counter accept\n }\n}\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	var procs []*exec.Cmd
	for _, port := range []string{"7001", "7002"} {
		srv := exec.Command("ip", "netns", "exec", "ctt", "socat", "TCP-LISTEN:"+port+",bind=198.51.100.9,reuseaddr", "EXEC:cat")
		// retry: under load the listener may not be up yet (a client
		// that found no listener exited, and a flow was missing).
		cli := exec.Command("ip", "netns", "exec", "ctt", "socat", "EXEC:sleep 30", "TCP:198.51.100.9:"+port+",retry=50,interval=0.1")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, srv)
		time.Sleep(150 * time.Millisecond)
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cli)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if err := p.Process.Kill(); err != nil {
				t.Errorf("kill %s: %v", p.Path, err)
			}
			_ = p.Wait() // killed: the status says so
		}
	})
	h, err := ns.Open("ctt")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var all []Flow
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if all, err = List(h, Filter{Proto: "tcp", Dst: netip.MustParsePrefix("198.51.100.9/32")}); err != nil {
			t.Fatal(err)
		}
		if len(all) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(all) != 2 {
		t.Fatalf("want 2 tcp flows, got %+v", all)
	}
	for _, f := range all {
		if f.State != "established" || f.Proto != "tcp" || f.Orig.Src.String() != "198.51.100.9" || f.Reply.SPort != f.Orig.DPort {
			t.Errorf("flow %+v", f)
		}
	}
	one, err := List(h, Filter{Proto: "tcp", DPort: 7002})
	if err != nil || len(one) != 1 || one[0].Orig.DPort != 7002 {
		t.Fatalf("dport filter: %+v %v", one, err)
	}
	if n, err := Delete(h, one); err != nil || n != 1 {
		t.Fatalf("delete: %d %v", n, err)
	}
	left, err := List(h, Filter{Proto: "tcp", Dst: netip.MustParsePrefix("198.51.100.9/32")})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Orig.DPort != 7001 {
		t.Fatalf("after delete: %+v", left)
	}
	// Deleting what is already gone is not an error.
	if n, err := Delete(h, one); err != nil || n != 0 {
		t.Fatalf("second delete: %d %v", n, err)
	}
}
