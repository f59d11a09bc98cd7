//go:build kernel

package policy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
)

// writeBlocklist writes n4 IPv4 /32s and n6 IPv6 /64s, none adjacent (so
// nothing merges), plus extra lines.
func writeBlocklist(t testing.TB, path string, n4, n6 int, extra ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# generated blocklist\n")
	a := netip.MustParseAddr("198.18.0.0")
	for i := 0; i < n4; i++ {
		fmt.Fprintf(&b, "%s/32\n", a)
		a = a.Next().Next()
	}
	for i := 0; i < n6; i++ {
		fmt.Fprintf(&b, "2001:db8:%x:%x::/64   # host %d\n", (2*i)>>16, (2*i)&0xffff, i)
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func nftSetLen(t *testing.T, nsName, set string) int {
	t.Helper()
	var out struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(nft(t, nsName, "-j", "list", "set", "inet", TableName, set)), &out); err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Nftables {
		if o.Set != nil {
			return len(o.Set.Elem)
		}
	}
	return -1
}

// TestLargeSetFromFile loads 100k CIDRs from a file (relative to the
// config file), checks every element is in the kernel, and that an address
// in the set is dropped.
func TestLargeSetFromFile(t *testing.T) {
	l := newLab(t)
	serve(t, l.wan, "203.0.113.2:80")
	route(t, l.wan, "192.0.2.0/24", "203.0.113.1")
	dir := t.TempDir()
	writeBlocklist(t, filepath.Join(dir, "block.txt"), 60000, 40000, "192.0.2.10")
	conf := labBase + `
[tenant.fw.set.block]
file = "block.txt"
[[tenant.fw.rule]]
name = "blocked"
from = "lan"
to = "wan"
saddr = "@block"
action = "drop"
`
	tn := testkit.ConfigAt(t, filepath.Join(dir, "fwd.toml"), conf).Tenant("fw")
	start := time.Now()
	mustApply(t, tn, l.fw)
	t.Logf("applied 100k-element policy in %v", time.Since(start))
	if n := nftSetLen(t, l.fwN, "block_v4"); n != 60001 {
		t.Fatalf("block_v4 holds %d elements, want 60001", n)
	}
	if n := nftSetLen(t, l.fwN, "block_v6"); n != 40000 {
		t.Fatalf("block_v6 holds %d elements, want 40000", n)
	}
	if _, err := connect(l.lan, "203.0.113.2:80"); !isTimeout(err) {
		t.Fatalf("blocked source: want timeout, got %v", err)
	}
	if n := counterOf(t, l.fw, "blocked"); n == 0 {
		t.Fatal("blocked rule did not count")
	}
	// Unblock: the file changes, the set is replaced.
	writeBlocklist(t, filepath.Join(dir, "block.txt"), 60000, 40000)
	mustApply(t, testkit.ConfigAt(t, filepath.Join(dir, "fwd.toml"), conf).Tenant("fw"), l.fw)
	if _, err := connect(l.lan, "203.0.113.2:80"); err != nil {
		t.Logf("%s", nft(t, l.fwN, "list", "chain", "inet", TableName, "fw_lan_wan"))
		t.Logf("%s", nft(t, l.fwN, "get", "element", "inet", TableName, "block_v4", "{ 192.0.2.10 }"))
		t.Fatalf("after unblocking: %v", err)
	}
}
