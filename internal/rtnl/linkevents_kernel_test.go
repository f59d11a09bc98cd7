//go:build kernel

package rtnl_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

func subscribe(t *testing.T, name string, rcvbuf int) *rtnl.LinkSubscription {
	t.Helper()
	h, err := ns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s, err := rtnl.SubscribeLinks(h, rcvbuf, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Notifications of the subscription's namespace are decoded (name, kind,
// alias, deletion); an overflow is ErrOverflow and the subscription goes
// on working.
func TestLinkSubscription(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "evns")
	s := subscribe(t, "evns", 0)
	testnet.MustCmd(t, "evns", "ip", "link", "add", "ev0", "type", "veth", "peer", "name", "ev1")
	testnet.MustCmd(t, "evns", "ip", "link", "set", "ev0", "alias", "marked")
	testnet.MustCmd(t, "evns", "ip", "link", "del", "ev0")
	var seen []string
	for len(seen) < 100 && !strings.Contains(strings.Join(seen, " "), "del:ev0") {
		evs, err := s.Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			tag := "new:"
			if e.Deleted {
				tag = "del:"
			}
			seen = append(seen, tag+e.Name+"/"+e.Kind+"/"+e.Alias)
		}
	}
	got := strings.Join(seen, " ")
	for _, want := range []string{"new:ev0/veth/", "new:ev1/veth/", "del:ev0/veth/marked"} {
		if !strings.Contains(got, want) {
			t.Fatalf("events %s: missing %s", got, want)
		}
	}

	// Nobody reads while a burst arrives: the kernel's minimum buffer overflows.
	o := subscribe(t, "evns", 1)
	var batch strings.Builder
	for i := range 40 {
		fmt.Fprintf(&batch, "link add ob%d type veth peer name ob%dp\n", i, i)
	}
	bf := filepath.Join(t.TempDir(), "burst")
	if err := os.WriteFile(bf, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	testnet.MustCmd(t, "evns", "ip", "-batch", bf)
	overflowed := false
	for range 200 {
		_, err := o.Read()
		if errors.Is(err, rtnl.ErrOverflow) {
			overflowed = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !overflowed {
		t.Fatal("no overflow reported")
	}
	// Until its queue is drained the socket is congested and the kernel
	// drops what comes (what the caller's re-scan is for); then events
	// flow again.
	names := make(chan string, 1024)
	go func() {
		for {
			evs, err := o.Read()
			if err != nil && !errors.Is(err, rtnl.ErrOverflow) {
				close(names)
				return
			}
			for _, e := range evs {
				names <- e.Name
			}
		}
	}()
	for i := range 20 {
		name := fmt.Sprintf("after%d", i)
		testnet.MustCmd(t, "evns", "ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
		deadline := time.After(200 * time.Millisecond)
	wait:
		for {
			select {
			case n := <-names:
				if n == name {
					return
				}
			case <-deadline:
				break wait
			}
		}
	}
	t.Fatal("no event after the overflow")
}

// One subscription to all namespaces sees the events of a namespace once
// that namespace has an id (NamespaceID assigns it), tagged with the id;
// its own namespace's events carry -1.
func TestLinkSubscriptionAllNamespaces(t *testing.T) {
	c := host(t, "allsrc")
	testnet.Host(t, "allt")
	src, err := ns.Open("allsrc")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tgt, err := ns.Open("allt")
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	s, err := rtnl.SubscribeLinks(src, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id, err := c.LookupNamespaceID(tgt); err != nil || id != -1 {
		t.Fatalf("id before assignment: %d %v", id, err)
	}
	id, err := c.NamespaceID(tgt)
	if err != nil || id < 0 {
		t.Fatalf("NamespaceID: %d %v", id, err)
	}
	if again, err := c.NamespaceID(tgt); err != nil || again != id {
		t.Fatalf("NamespaceID again: %d %v, want %d", again, err, id)
	}
	testnet.MustCmd(t, "allt", "ip", "link", "add", "far0", "type", "veth", "peer", "name", "far1")
	testnet.MustCmd(t, "allsrc", "ip", "link", "add", "near0", "type", "veth", "peer", "name", "near1")
	got := map[string]int{}
	for len(got) < 2 {
		evs, err := s.Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Name == "far0" || e.Name == "near0" {
				got[e.Name] = e.NSID
			}
		}
	}
	if got["far0"] != id || got["near0"] != -1 {
		t.Fatalf("event namespace ids %v, want far0=%d near0=-1", got, id)
	}
}
