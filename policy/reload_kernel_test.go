//go:build kernel

package policy

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestReloadKeepsConnections changes the policy 20 times while a TCP
// connection through the firewall keeps transferring data; a table that
// is not fwd's survives every reload.
func TestReloadKeepsConnections(t *testing.T) {
	l := newLab(t)
	serve(t, l.wan, "203.0.113.2:80")
	nft(t, l.fwN, "add", "table", "inet", "runtime_foreign")
	nft(t, l.fwN, "add", "chain", "inet", "runtime_foreign", "keep")
	nft(t, l.fwN, "add", "rule", "inet", "runtime_foreign", "keep", "counter")

	mustApply(t, tenantFrom(t, labPolicy), l.fw)
	c, err := dialIn(l.lan, "203.0.113.2:80", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// Counters of unchanged rules survive the table replacement.
	// admin-wan accepts; nothing listens, so the host resets: the rule
	// still counted the SYN.
	_, _ = connect(l.wan, "203.0.113.1:2222")
	before := counterOf(t, l.fw, "admin-wan")
	if before == 0 {
		t.Fatal("admin-wan did not count")
	}
	for i := 0; i < 20; i++ {
		extra := fmt.Sprintf(`
[[tenant.fw.rule]]
name = "reload-%d"
from = "wan"
to = "lan"
proto = "udp"
dport = %d
action = "drop"
`, i, 1000+i)
		chg, err := reconcile(t, tenantFrom(t, labPolicy+extra), l.fw)
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if len(chg) == 0 {
			t.Fatalf("reload %d: a changed policy reported no change", i)
		}
		msg := fmt.Sprintf("ping %d\n", i)
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatalf("after reload %d: write: %v", i, err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(r, buf); err != nil || string(buf) != msg {
			t.Fatalf("after reload %d: echo %q: %v", i, buf, err)
		}
	}
	if after := counterOf(t, l.fw, "admin-wan"); after < before {
		t.Fatalf("admin-wan counter went from %d to %d across reloads", before, after)
	}
	out := nft(t, l.fwN, "list", "table", "inet", "runtime_foreign")
	if !strings.Contains(out, "chain keep") || !strings.Contains(out, "counter") {
		t.Fatalf("foreign table damaged:\n%s", out)
	}
	// A rule added behind fwd's back is drift: the next reconcile repairs it.
	nft(t, l.fwN, "insert", "rule", "inet", TableName, "in_wan", "accept")
	chg, err := reconcile(t, tenantFrom(t, labPolicy+fmt.Sprintf(`
[[tenant.fw.rule]]
name = "reload-%d"
from = "wan"
to = "lan"
proto = "udp"
dport = %d
action = "drop"
`, 19, 1019)), l.fw)
	if err != nil || len(chg) == 0 {
		t.Fatalf("drift not repaired: %v %v", chg, err)
	}
	if out := nft(t, l.fwN, "list", "chain", "inet", TableName, "in_wan"); strings.Contains(out, "\t\taccept\n") {
		t.Fatalf("foreign rule still in fwd's chain:\n%s", out)
	}
	// Dry run (planning without Apply) reports the change back to the
	// base policy without sending it.
	chg = plan(t, tenantFrom(t, labPolicy), l.fw).Changes()
	if len(chg) == 0 {
		t.Fatal("dry run: no change planned")
	}
	if !strings.Contains(nft(t, l.fwN, "list", "table", "inet", TableName), "reload-19") {
		t.Fatal("dry run changed the kernel")
	}
	t.Logf("plan: %v", chg)
	// A tenant without policy: fwd removes its table, the foreign one stays.
	chg, err = reconcile(t, tenantFrom(t, `
[tenant.fw.interface.lan0]
device = "x1"
`), l.fw)
	if err != nil || len(chg) != 1 || chg[0].Action != "delete-table" {
		t.Fatalf("removing the policy: %v %v", chg, err)
	}
	out = nft(t, l.fwN, "list", "ruleset")
	if strings.Contains(out, TableName) || !strings.Contains(out, "runtime_foreign") {
		t.Fatalf("after removing the policy:\n%s", out)
	}
}
