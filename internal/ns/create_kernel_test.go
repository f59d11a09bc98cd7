//go:build kernel

package ns_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func deleteNS(t *testing.T, name string) {
	t.Helper()
	if err := ns.Delete(name); err != nil {
		t.Error(err)
	}
}

func markLo(h netns.NsHandle) error {
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	return nh.LinkSetAlias(lo, "fwd:tenant")
}

func loAlias(t *testing.T, name string) string {
	t.Helper()
	h, err := ns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	return lo.Attrs().Alias
}

// A kill -9 between "create the pin file" and "mount the namespace" used
// to leave an empty /run/netns/NAME that made every later apply fail. Such
// a file is now recognised (Open: ErrLeftover, List: not listed as a
// namespace it can enter) and replaced by the next Create.
func TestCreateReplacesLeftoverPin(t *testing.T) {
	testkit.Require(t)
	if _, err := ns.Create("warmup"); err != nil { // makes RunDir
		t.Fatal(err)
	}
	if err := ns.Delete("warmup"); err != nil {
		t.Fatal(err)
	}
	pin := ns.Path("left")
	if err := os.WriteFile(pin, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Open("left"); !errors.Is(err, ns.ErrLeftover) {
		t.Fatalf("Open of a leftover: %v", err)
	}
	if ns.Exists("left") {
		t.Fatal("a leftover file counts as an existing namespace")
	}
	h, err := ns.CreateMarked("left", markLo)
	if err != nil {
		t.Fatalf("create over leftover: %v", err)
	}
	h.Close()
	t.Cleanup(func() { deleteNS(t, "left") })
	if a := loAlias(t, "left"); a != "fwd:tenant" {
		t.Fatalf("lo alias %q", a)
	}
	// A second Create refuses: the name holds a live namespace.
	if _, err := ns.CreateMarked("left", markLo); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over a live namespace: %v", err)
	}
}

// The namespace is pinned under its name only after mark succeeded; a
// failing mark leaves nothing behind.
func TestCreateFailingMarkLeavesNothing(t *testing.T) {
	testkit.Require(t)
	boom := errors.New("boom")
	if _, err := ns.CreateMarked("nomark", func(netns.NsHandle) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("want mark error, got %v", err)
	}
	ents, _ := os.ReadDir(ns.RunDir)
	for _, e := range ents {
		if e.Name() == "nomark" || filepath.Ext(e.Name()) == ".nomark" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// What a kill -9 inside Create can leave (a mounted or empty temporary
// pin, an empty final pin) is removed by Sweep, and only that: a live
// namespace and a foreign file survive.
func TestSweepRemovesOnlyLeftovers(t *testing.T) {
	testkit.Require(t)
	live, err := ns.CreateMarked("live", markLo)
	if err != nil {
		t.Fatal(err)
	}
	live.Close()
	t.Cleanup(func() { deleteNS(t, "live") })
	// A temporary pin with a namespace mounted on it (killed after mount).
	tmp := filepath.Join(ns.RunDir, ".fwd-creating.half")
	if err := os.WriteFile(tmp, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/proc/self/ns/net", tmp, "none", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(ns.RunDir, ".fwd-creating.empty"),
		ns.Path("half"),    // fwd's tenant, never mounted
		ns.Path("foreign"), // not one of ours: left alone
	} {
		if err := os.WriteFile(p, nil, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	defer os.Remove(ns.Path("foreign"))
	removed, err := ns.Sweep([]string{"half", "live"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{".fwd-creating.half": true, ".fwd-creating.empty": true, "half": true}
	if len(removed) != len(want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, r := range removed {
		if !want[r] {
			t.Errorf("removed %s", r)
		}
	}
	if !ns.Exists("live") {
		t.Error("live namespace swept")
	}
	if _, err := os.Stat(ns.Path("foreign")); err != nil {
		t.Error("foreign file swept")
	}
	names, _ := ns.List()
	for _, n := range names {
		if n[0] == '.' {
			t.Errorf("List shows %s", n)
		}
	}
}
