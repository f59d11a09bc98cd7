//go:build kernel

package bgp

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/vishvananda/netns"
)

// fibHost makes a namespace with one interface on 192.0.2.0/24 and
// 2001:db8:1::/64 (so gateways .2/.3 and ::2 are reachable) and returns
// its handle.
func fibHost(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	testkit.Require(t)
	testnet.Host(t, name)
	testnet.MustCmd(t, name, "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	testnet.MustCmd(t, name, "ip", "link", "set", "d1", "up")
	testnet.MustCmd(t, name, "ip", "addr", "add", "192.0.2.1/24", "dev", "d0")
	testnet.MustCmd(t, name, "ip", "addr", "add", "2001:db8:1::1/64", "dev", "d0", "nodad")
	testnet.MustCmd(t, name, "ip", "link", "set", "d0", "up")
	h, err := ns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// kernelFIB reads the table back with iproute2 (not through rtnl, which
// is under test): "prefix via gw proto P metric M" lines, sorted.
func kernelFIB(t *testing.T, nsName string, table uint32) []string {
	t.Helper()
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		var rs []struct {
			Dst      string `json:"dst"`
			Gateway  string `json:"gateway"`
			Protocol string `json:"protocol"`
			Metric   int    `json:"metric"`
		}
		text, err := testnet.Cmd(nsName, "ip", "-j", fam, "route", "show", "table", fmt.Sprint(table))
		if strings.Contains(text, "table does not exist") {
			continue // no route of that family was ever in the table
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(text), &rs); err != nil {
			t.Fatalf("ip -j route: %v\n%s", err, text)
		}
		for _, r := range rs {
			if r.Protocol == "244" { // the host may lack rt_protos.d/fwd.conf
				r.Protocol = ProtocolName
			}
			if r.Protocol == "kernel" || strings.HasPrefix(r.Dst, "fe80") || strings.HasPrefix(r.Dst, "multicast") {
				continue
			}
			out = append(out, fmt.Sprintf("%s via %s proto %s metric %d", r.Dst, r.Gateway, r.Protocol, r.Metric))
		}
	}
	slices.Sort(out)
	return out
}

func expectFIB(t *testing.T, step, nsName string, table uint32, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := kernelFIB(t, nsName, table); !slices.Equal(got, want) {
		t.Errorf("%s: kernel table %d:\n  %s\nwant:\n  %s", step, table, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// drain does one round of the worker goroutine: session losses, sweep,
// pending updates.
func drain(f *fib) { f.step() }

// feed queues best paths as PREFIX, NEXT-HOP pairs ("" withdraws), each
// learned from the neighbour at its next hop, and applies them.
func feed(f *fib, kv ...string) { feedFrom(f, "", kv...) }

// feedFrom is feed with the paths learned from neighbour peer ("": the
// next hop itself).
func feedFrom(f *fib, peer string, kv ...string) {
	f.mu.Lock()
	for i := 0; i < len(kv); i += 2 {
		dst := netip.MustParsePrefix(kv[i])
		if kv[i+1] == "" {
			f.pending.set(dst, 0)
			continue
		}
		gw := netip.MustParseAddr(kv[i+1])
		p := gw
		if peer != "" {
			p = netip.MustParseAddr(peer)
		}
		f.pending.set(dst, f.intern(nhKey{peer: p, gw: gw})+1)
	}
	f.mu.Unlock()
	f.step()
}

var quiet = slog.New(slog.DiscardHandler)

// The operation stream of TestBIRDInterop's speaker crash, without BIRD:
// install, restart (loadStale), re-learn some routes as they were and
// some changed, withdraw re-learned ones (the peer died), sweep the rest.
// After every step the kernel holds exactly what the FIB believes, and
// nobody else's routes are touched. Run in the main table and in a table
// above 255 (which the rtmsg header cannot carry).
func TestFIBRestartStream(t *testing.T) {
	for _, table := range []uint32{254, 1000} {
		t.Run(fmt.Sprint(table), func(t *testing.T) {
			name := fmt.Sprintf("fib%d", table)
			h := fibHost(t, name)
			tb := fmt.Sprint(table)
			// Somebody else's route for a prefix BGP also carries, at
			// another metric: never deleted by the speaker.
			testnet.MustCmd(t, name, "ip", "route", "add", "198.18.4.0/24", "via", "192.0.2.3", "proto", "static", "metric", "50", "table", tb)

			f1, err := newFIBAt(quiet, h, table, Protocol)
			if err != nil {
				t.Fatal(err)
			}
			feed(f1,
				"198.18.1.0/24", "192.0.2.2",
				"198.18.2.0/24", "192.0.2.2",
				"198.18.3.0/24", "192.0.2.3",
				"198.18.4.0/24", "192.0.2.2",
				"2001:db8:f1::/48", "2001:db8:1::2",
				"2001:db8:f2::/48", "2001:db8:1::2",
			)
			all := []string{
				"198.18.1.0/24 via 192.0.2.2 proto fwd-bgp metric 0",
				"198.18.2.0/24 via 192.0.2.2 proto fwd-bgp metric 0",
				"198.18.3.0/24 via 192.0.2.3 proto fwd-bgp metric 0",
				"198.18.4.0/24 via 192.0.2.2 proto fwd-bgp metric 0",
				"198.18.4.0/24 via 192.0.2.3 proto static metric 50",
				"2001:db8:f1::/48 via 2001:db8:1::2 proto fwd-bgp metric 1024",
				"2001:db8:f2::/48 via 2001:db8:1::2 proto fwd-bgp metric 1024",
			}
			expectFIB(t, "install", name, table, all...)
			if f1.failures != 0 {
				t.Fatalf("install: %d failures", f1.failures)
			}
			// The speaker dies (routes stay); a new one takes them over.
			f1.close()
			f2, err := newFIBAt(quiet, h, table, Protocol)
			if err != nil {
				t.Fatal(err)
			}
			defer f2.close()
			if err := f2.loadStale(); err != nil {
				t.Fatal(err)
			}
			if f2.stale != 6 || f2.installed.len() != 6 {
				t.Fatalf("loadStale: %d stale, %d installed", f2.stale, f2.installed.len())
			}
			expectFIB(t, "loadStale", name, table, all...)
			// Sessions back: two re-learned as they were (no write), one
			// with a new next hop, one IPv6 as it was.
			feed(f2,
				"198.18.1.0/24", "192.0.2.2",
				"198.18.4.0/24", "192.0.2.2",
				"198.18.2.0/24", "192.0.2.3",
				"2001:db8:f1::/48", "2001:db8:1::2",
			)
			expectFIB(t, "re-learn", name, table,
				"198.18.1.0/24 via 192.0.2.2 proto fwd-bgp metric 0",
				"198.18.2.0/24 via 192.0.2.3 proto fwd-bgp metric 0",
				"198.18.3.0/24 via 192.0.2.3 proto fwd-bgp metric 0",
				"198.18.4.0/24 via 192.0.2.2 proto fwd-bgp metric 0",
				"198.18.4.0/24 via 192.0.2.3 proto static metric 50",
				"2001:db8:f1::/48 via 2001:db8:1::2 proto fwd-bgp metric 1024",
				"2001:db8:f2::/48 via 2001:db8:1::2 proto fwd-bgp metric 1024",
			)
			// The peer dies: everything it re-sent is withdrawn at once.
			feed(f2, "198.18.1.0/24", "", "198.18.4.0/24", "", "2001:db8:f1::/48", "", "198.18.2.0/24", "")
			expectFIB(t, "withdraw", name, table,
				"198.18.3.0/24 via 192.0.2.3 proto fwd-bgp metric 0",
				"198.18.4.0/24 via 192.0.2.3 proto static metric 50",
				"2001:db8:f2::/48 via 2001:db8:1::2 proto fwd-bgp metric 1024",
			)
			// What was never re-learned goes with the sweep.
			f2.sweep()
			drain(f2)
			expectFIB(t, "sweep", name, table, "198.18.4.0/24 via 192.0.2.3 proto static metric 50")
			if f2.installed.len() != 0 || f2.stale != 0 || f2.failures != 0 {
				t.Errorf("bookkeeping after sweep: installed %d, stale %d, %d failures", f2.installed.len(), f2.stale, f2.failures)
			}
			// A withdrawal of something already gone changes nothing.
			feed(f2, "198.18.3.0/24", "")
			if f2.failures != 0 {
				t.Errorf("withdraw of a gone route failed")
			}
		})
	}
}

// TestBIRDInterop's flake, as a stream: after a restart the peer's
// session comes back and dies before the peer re-sent its route. No
// withdrawal names the route (gobgp never learned it again); the peer's
// loss settles it, and the sweep removes the route.
func TestFIBStaleRouteOfPeerLostAfterRestart(t *testing.T) {
	h := fibHost(t, "fiblost")
	// BIRD or FRR in the same namespace and table: proto 186 "bgp". The
	// sweep removes fwd's stale routes only.
	testnet.MustCmd(t, "fiblost", "ip", "route", "add", "198.18.9.0/24", "via", "192.0.2.3", "proto", "bgp")
	f1, err := newFIBAt(quiet, h, 254, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	feed(f1, "198.18.1.0/24", "192.0.2.2")
	f1.close()
	f2, err := newFIBAt(quiet, h, 254, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.close()
	if err := f2.loadStale(); err != nil {
		t.Fatal(err)
	}
	peers := newPeerTracker()
	peers.state("192.0.2.2", true)
	if peers.settled("192.0.2.2", true) {
		t.Fatal("settled before End-of-RIB")
	}
	peers.state("192.0.2.2", false) // BIRD died; no path, no withdrawal
	feed(f2)
	expectFIB(t, "peer lost", "fiblost", 254, "198.18.1.0/24 via 192.0.2.2 proto fwd-bgp metric 0",
		"198.18.9.0/24 via 192.0.2.3 proto bgp metric 0")
	if !peers.settled("192.0.2.2", false) {
		t.Fatal("a neighbour lost after the restart does not settle")
	}
	f2.sweep()
	drain(f2)
	expectFIB(t, "sweep", "fiblost", 254, "198.18.9.0/24 via 192.0.2.3 proto bgp metric 0")
}

// A previous speaker (or an operator with proto 244) left two routes for
// one prefix at different metrics: the FIB keeps one per prefix, so the
// other is removed when taken over, and a withdrawal then leaves nothing.
func TestFIBStaleDuplicateAndMetric(t *testing.T) {
	h := fibHost(t, "fibdup")
	testnet.MustCmd(t, "fibdup", "ip", "route", "add", "198.18.7.0/24", "via", "192.0.2.2", "proto", "244", "metric", "5")
	testnet.MustCmd(t, "fibdup", "ip", "route", "add", "198.18.7.0/24", "via", "192.0.2.3", "proto", "244", "metric", "9")
	testnet.MustCmd(t, "fibdup", "ip", "route", "add", "198.18.8.0/24", "via", "192.0.2.2", "proto", "244", "metric", "7")
	f, err := newFIBAt(quiet, h, 254, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	if err := f.loadStale(); err != nil {
		t.Fatal(err)
	}
	expectFIB(t, "loadStale", "fibdup", 254,
		"198.18.7.0/24 via 192.0.2.2 proto fwd-bgp metric 5",
		"198.18.8.0/24 via 192.0.2.2 proto fwd-bgp metric 7")
	// Re-learned as it was, then withdrawn: the delete names metric 7.
	feed(f, "198.18.8.0/24", "192.0.2.2")
	feed(f, "198.18.8.0/24", "", "198.18.7.0/24", "")
	expectFIB(t, "withdraw", "fibdup", 254)
}

// flushTable (a speaker stopped for good) removes the speaker's routes of
// one table only: not a static route, not another BGP daemon's (proto
// 186 "bgp", BIRD's or FRR's) in the same table.
func TestFIBFlushTable(t *testing.T) {
	h := fibHost(t, "fibflush")
	testnet.MustCmd(t, "fibflush", "ip", "route", "add", "198.18.1.0/24", "via", "192.0.2.2", "proto", "244", "table", "100")
	testnet.MustCmd(t, "fibflush", "ip", "route", "add", "2001:db8:f1::/48", "via", "2001:db8:1::2", "proto", "244", "table", "100")
	testnet.MustCmd(t, "fibflush", "ip", "route", "add", "198.18.2.0/24", "via", "192.0.2.2", "proto", "static", "table", "100")
	testnet.MustCmd(t, "fibflush", "ip", "route", "add", "198.18.5.0/24", "via", "192.0.2.3", "proto", "bgp", "table", "100")
	testnet.MustCmd(t, "fibflush", "ip", "route", "add", "2001:db8:f5::/48", "via", "2001:db8:1::2", "proto", "bgp", "table", "100")
	testnet.MustCmd(t, "fibflush", "ip", "route", "add", "198.18.3.0/24", "via", "192.0.2.2", "proto", "244", "table", "101")
	if err := flushTable(h, 100, Protocol); err != nil {
		t.Fatal(err)
	}
	expectFIB(t, "flush 100", "fibflush", 100, "198.18.2.0/24 via 192.0.2.2 proto static metric 0",
		"198.18.5.0/24 via 192.0.2.3 proto bgp metric 0", "2001:db8:f5::/48 via 2001:db8:1::2 proto bgp metric 1024")
	expectFIB(t, "flush 100", "fibflush", 101, "198.18.3.0/24 via 192.0.2.2 proto fwd-bgp metric 0")
}
