//go:build kernel

package rtnl_test

import (
	"errors"
	"testing"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A move renames, marks and sets the MTU in one message: the link arrives
// under its new name with its alias, even where its old name is taken.
func TestMoveLink(t *testing.T) {
	c := host(t, "mvsrc")
	testnet.Host(t, "mvdst")
	// The target already has a link named like the source one.
	testnet.MustCmd(t, "mvdst", "ip", "link", "add", "v1", "type", "veth", "peer", "name", "v2")
	src, err := ns.Open("mvsrc")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := ns.Open("mvdst")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	sh, err := netlink.NewHandleAt(src)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	dh, err := netlink.NewHandleAt(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer dh.Close()
	l, err := sh.LinkByName("v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MoveLink(rtnl.LinkMove{Index: l.Attrs().Index, Target: dst, Name: "wan", Alias: "fwd:moved dev=v1", MTU: 1400}); err != nil {
		t.Fatal(err)
	}
	got, err := dh.LinkByName("wan")
	if err != nil {
		t.Fatal(err)
	}
	if a := got.Attrs(); a.Alias != "fwd:moved dev=v1" || a.MTU != 1400 {
		t.Fatalf("moved link: alias %q mtu %d", a.Alias, a.MTU)
	}
	if _, err := sh.LinkByName("v1"); err == nil {
		t.Fatal("v1 still in the source namespace")
	}
	// A refused move is a typed error and moves nothing.
	err = c.MoveLink(rtnl.LinkMove{Index: 999999, Target: dst, Name: "x"})
	var re *rtnl.Error
	if !errors.As(err, &re) || !errors.Is(err, unix.ENODEV) {
		t.Fatalf("move of a missing link: %v", err)
	}
}

// A rename carries the alias in the same message: the link shows up
// under its new name already marked.
func TestRenameLinkAt(t *testing.T) {
	host(t, "rnsrc")
	testnet.MustCmd(t, "rnsrc", "ip", "link", "add", "tmp0", "type", "veth", "peer", "name", "tmp1")
	h, err := ns.Open("rnsrc")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	l, err := nh.LinkByName("tmp0")
	if err != nil {
		t.Fatal(err)
	}
	if err := rtnl.RenameLinkAt(h, l.Attrs().Index, "lan", "fwd:created kind=veth"); err != nil {
		t.Fatal(err)
	}
	got, err := nh.LinkByIndex(l.Attrs().Index)
	if err != nil {
		t.Fatal(err)
	}
	if a := got.Attrs(); a.Name != "lan" || a.Alias != "fwd:created kind=veth" {
		t.Fatalf("renamed link: name %q alias %q", a.Name, a.Alias)
	}
	// A refused rename is a typed error.
	err = rtnl.RenameLinkAt(h, l.Attrs().Index, "v0", "x") // v0 exists
	if !errors.Is(err, unix.EEXIST) {
		t.Fatalf("rename onto an existing name: %v", err)
	}
}
