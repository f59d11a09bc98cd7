//go:build kernel

package bgp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/testnet"
)

type kroute struct {
	Dst     string `json:"dst"`
	Gateway string `json:"gateway"`
	NHID    int    `json:"nhid"`
}

// kernelRoutes reads the speaker's routes of table with iproute2: prefix
// → (gateway, nexthop ID).
func kernelRoutes(t *testing.T, nsName string, table uint32) map[string]kroute {
	t.Helper()
	out := map[string]kroute{}
	for _, fam := range []string{"-4", "-6"} {
		text, err := testnet.Cmd(nsName, "ip", "-j", fam, "route", "show", "table", fmt.Sprint(table), "proto", "244")
		if strings.Contains(text, "table does not exist") {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var rs []kroute
		if err := json.Unmarshal([]byte(text), &rs); err != nil {
			t.Fatalf("ip -j route: %v\n%s", err, text)
		}
		for _, r := range rs {
			out[r.Dst] = r
		}
	}
	return out
}

type knexthop struct {
	ID       int    `json:"id"`
	Gateway  string `json:"gateway"`
	Protocol string `json:"protocol"`
}

// kernelNexthops reads the namespace's nexthop objects: ID → object.
func kernelNexthops(t *testing.T, nsName string) map[int]knexthop {
	t.Helper()
	text, err := testnet.Cmd(nsName, "ip", "-j", "nexthop", "show")
	if err != nil {
		t.Fatal(err)
	}
	var ns []knexthop
	if strings.TrimSpace(text) != "" {
		if err := json.Unmarshal([]byte(text), &ns); err != nil {
			t.Fatalf("ip -j nexthop: %v\n%s", err, text)
		}
	}
	out := map[int]knexthop{}
	for _, n := range ns {
		out[n.ID] = n
	}
	return out
}

// Routes use nexthop objects, one per (neighbour, next hop); a session
// loss deletes the neighbour's object, which takes its routes at once;
// the withdrawals gobgp sends afterwards write nothing.
func TestFIBNexthopSessionLoss(t *testing.T) {
	h := fibHost(t, "fibnh")
	f, err := newFIBAt(quiet, h, 254, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	var a, b []string
	for i := 0; i < 300; i++ {
		a = append(a, fmt.Sprintf("198.18.%d.%d/32", i/256, i%256), "192.0.2.2")
		b = append(b, fmt.Sprintf("198.19.%d.%d/32", i/256, i%256), "192.0.2.3")
	}
	feed(f, append(a, "2001:db8:f1::/48", "2001:db8:1::2")...)
	feed(f, b...)
	rs := kernelRoutes(t, "fibnh", 254)
	if len(rs) != 601 {
		t.Fatalf("%d routes in the kernel, want 601", len(rs))
	}
	ids := map[string]int{}
	for dst, r := range rs {
		if r.NHID == 0 {
			t.Fatalf("%s has no nexthop object: %+v", dst, r)
		}
		if prev, ok := ids[r.Gateway]; ok && prev != r.NHID {
			t.Fatalf("routes via %s use objects %d and %d", r.Gateway, prev, r.NHID)
		}
		ids[r.Gateway] = r.NHID
	}
	objs := kernelNexthops(t, "fibnh")
	if len(ids) != 3 || len(objs) != 3 {
		t.Fatalf("objects by gateway %v, in the kernel %v; want 3", ids, objs)
	}
	for _, o := range objs {
		if o.Protocol != "244" && o.Protocol != ProtocolName {
			t.Errorf("object %d has protocol %q", o.ID, o.Protocol)
		}
	}

	// 192.0.2.2's session ends (no backup neighbour known).
	f.fsmPeerDown("192.0.2.2", "notification-received cease")
	drain(f)
	rs = kernelRoutes(t, "fibnh", 254)
	if len(rs) != 301 {
		t.Fatalf("after the loss: %d routes, want 301 (the other neighbour's)", len(rs))
	}
	if _, ok := kernelNexthops(t, "fibnh")[ids["192.0.2.2"]]; ok {
		t.Fatal("the lost neighbour's object is still there")
	}
	if st := f.status(); st.Routes != 301 {
		t.Errorf("status: %d routes, want 301", st.Routes)
	}
	// gobgp's withdrawals follow: no kernel message for them.
	var w []string
	for i := 0; i < len(a); i += 2 {
		w = append(w, a[i], "")
	}
	feed(f, w...)
	if len(f.ops) != 0 || f.failures != 0 {
		t.Errorf("withdrawals of routes gone with their object: %d writes, %d failures", len(f.ops), f.failures)
	}
	if f.installed.len() != 301 || f.dead != 0 {
		t.Errorf("bookkeeping: %d installed, %d dead; want 301, 0", f.installed.len(), f.dead)
	}
	// A graceful-restart end keeps everything (gobgp keeps the paths).
	f.fsmPeerDown("192.0.2.3", "graceful-restart")
	drain(f)
	if n := len(kernelRoutes(t, "fibnh", 254)); n != 301 {
		t.Errorf("graceful restart: %d routes left, want 301", n)
	}
	// The neighbour comes back with one route: a new object.
	f.peerUp("192.0.2.2")
	feed(f, "198.18.0.1/32", "192.0.2.2")
	if r := kernelRoutes(t, "fibnh", 254)["198.18.0.1"]; r.NHID == 0 || r.NHID == ids["192.0.2.2"] || r.Gateway != "192.0.2.2" {
		t.Errorf("re-learned route: %+v", r)
	}
}

// PIC-style failover: the primary's object is replaced in place with the
// backup's address, so every route points at the backup with one
// message; the best-path changes that follow write nothing; when the
// primary returns, routes move to a new object and the old one goes.
func TestFIBNexthopFailover(t *testing.T) {
	h := fibHost(t, "fibpic")
	f, err := newFIBAt(quiet, h, 100, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	var prim, back []string
	for i := 0; i < 200; i++ {
		p := fmt.Sprintf("198.18.%d.0/24", i)
		prim = append(prim, p, "192.0.2.2")
		back = append(back, p, "192.0.2.3")
	}
	f.peers.setUp(netip.MustParseAddr("192.0.2.2"), true)
	f.peers.setUp(netip.MustParseAddr("192.0.2.3"), true)
	f.peers.setAccepted(netip.MustParseAddr("192.0.2.3"), 0, 200)
	feed(f, prim...)
	before := kernelRoutes(t, "fibpic", 100)
	if len(before) != 200 {
		t.Fatalf("%d routes, want 200", len(before))
	}
	id := before["198.18.0.0/24"].NHID
	for dst, r := range before {
		if r.Gateway != "192.0.2.2" || r.NHID != id {
			t.Fatalf("before: %s %+v", dst, r)
		}
	}
	f.fsmPeerDown("192.0.2.2", "read-failed")
	drain(f)
	after := kernelRoutes(t, "fibpic", 100)
	if len(after) != 200 {
		t.Fatalf("after failover: %d routes, want 200", len(after))
	}
	for dst, r := range after {
		if r.Gateway != "192.0.2.3" || r.NHID != id {
			t.Fatalf("after failover: %s %+v, want via 192.0.2.3 on object %d", dst, r, id)
		}
	}
	// gobgp's new best paths, via the backup: already so, nothing written.
	feedFrom(f, "192.0.2.3", back...)
	if len(f.ops) != 0 {
		t.Errorf("best paths via the backup rewrote %d routes", len(f.ops))
	}
	// The primary returns: routes move to a new object, the old goes.
	f.peerUp("192.0.2.2")
	feed(f, prim...)
	back2 := kernelRoutes(t, "fibpic", 100)
	for dst, r := range back2 {
		if r.Gateway != "192.0.2.2" || r.NHID == id || r.NHID == 0 {
			t.Fatalf("primary back: %s %+v", dst, r)
		}
	}
	objs := kernelNexthops(t, "fibpic")
	if _, ok := objs[id]; ok || len(objs) != 1 {
		t.Errorf("objects after the primary's return: %v (the repointed %d must be gone)", objs, id)
	}
	// Without a qualified backup (too few prefixes), the object goes.
	f.peers.setAccepted(netip.MustParseAddr("192.0.2.3"), 0, 10)
	f.fsmPeerDown("192.0.2.2", "read-failed")
	drain(f)
	if n := len(kernelRoutes(t, "fibpic", 100)); n != 0 {
		t.Errorf("loss without a backup: %d routes left", n)
	}
}

// A restarted speaker takes over routes on nexthop objects: re-learned
// ones stay as they are (same object, no write), the rest and the
// objects nobody uses go with the sweep.
func TestFIBNexthopStaleTakeover(t *testing.T) {
	h := fibHost(t, "fibnhs")
	f1, err := newFIBAt(quiet, h, 254, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	feed(f1, "198.18.1.0/24", "192.0.2.2", "198.18.2.0/24", "192.0.2.2", "198.18.3.0/24", "192.0.2.3",
		"2001:db8:f1::/48", "2001:db8:1::2")
	// A gateway route of an earlier speaker version (fwd-bgp, 244, without a nexthop object).
	testnet.MustCmd(t, "fibnhs", "ip", "route", "add", "198.18.9.0/24", "via", "192.0.2.2", "proto", "244")
	before := kernelRoutes(t, "fibnhs", 254)
	f1.close()
	f2, err := newFIBAt(quiet, h, 254, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.close()
	if err := f2.loadStale(); err != nil {
		t.Fatal(err)
	}
	if f2.stale != 5 || f2.installed.len() != 5 {
		t.Fatalf("loadStale: %d stale, %d installed; want 5", f2.stale, f2.installed.len())
	}
	feed(f2, "198.18.1.0/24", "192.0.2.2", "2001:db8:f1::/48", "2001:db8:1::2", "198.18.9.0/24", "192.0.2.2")
	after := kernelRoutes(t, "fibnhs", 254)
	for _, p := range []string{"198.18.1.0/24", "2001:db8:f1::/48"} {
		if after[p] != before[p] {
			t.Errorf("re-learned %s: %+v, was %+v", p, after[p], before[p])
		}
	}
	if r := after["198.18.9.0/24"]; r.NHID == 0 || r.NHID != after["198.18.1.0/24"].NHID {
		t.Errorf("the gateway route is not moved onto the neighbour's object: %+v", r)
	}
	// The re-learned neighbour's session ends: its (taken over) object
	// goes with its routes.
	f2.fsmPeerDown("192.0.2.2", "read-failed")
	drain(f2)
	for _, p := range []string{"198.18.1.0/24", "198.18.2.0/24", "198.18.9.0/24"} {
		if _, ok := kernelRoutes(t, "fibnhs", 254)[p]; ok {
			t.Errorf("%s survived its neighbour's loss", p)
		}
	}
	f2.sweep()
	drain(f2)
	if rs := kernelRoutes(t, "fibnhs", 254); len(rs) != 1 {
		t.Errorf("after the sweep: %v, want only 2001:db8:f1::/48", rs)
	}
	if objs := kernelNexthops(t, "fibnhs"); len(objs) != 1 {
		t.Errorf("objects after the sweep: %v, want the IPv6 neighbour's only", objs)
	}
	// flushTable removes the routes and then the unused objects.
	if err := flushTable(h, 254, Protocol); err != nil {
		t.Fatal(err)
	}
	if objs := kernelNexthops(t, "fibnhs"); len(objs) != 0 {
		t.Errorf("objects after flushTable: %v", objs)
	}
}
