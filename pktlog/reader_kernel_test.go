//go:build kernel

package pktlog

import (
	"context"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// A log rule in a tenant namespace reaches the reader as one entry with
// the rule identity, prefix, interface, addresses and ports; a foreign
// rule logging to the same group is ignored.
func TestReaderSeesLoggedPackets(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "logt")
	testnet.MustCmd(t, "logt", "ip", "addr", "add", "198.51.100.7/32", "dev", "lo")
	ruleset := `table inet fwdlogtest {
	chain in {
		type filter hook input priority 0;
		udp dport 5353 counter log group 4100 prefix "fwd:lan->wan/dns hello"
		udp dport 5454 counter log group 4100 prefix "someone-else"
	}
}`
	cmd := exec.Command("ip", "netns", "exec", "logt", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	h, err := ns.Open("logt")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	r, err := Open("logt", h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan Entry, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, func(e Entry) { got <- e }) }()
	time.Sleep(200 * time.Millisecond) // the group is bound
	for _, port := range []string{"5454", "5353"} {
		testnet.MustCmd(t, "logt", "sh", "-c", "echo hi | socat -u - UDP:198.51.100.7:"+port+",sourceport=40000")
	}
	select {
	case e := <-got:
		if e.Rule != "lan->wan/dns" || e.Prefix != "hello" || e.Tenant != "logt" || e.In != "lo" ||
			e.Proto != "udp" || e.Src.String() != "198.51.100.7" || e.Dst.String() != "198.51.100.7" ||
			e.SPort != 40000 || e.DPort != 5353 || e.Family != "ip" {
			t.Fatalf("entry %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no log entry within 5 s")
	}
	select {
	case e := <-got:
		t.Fatalf("unexpected second entry (foreign prefix must be ignored): %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
