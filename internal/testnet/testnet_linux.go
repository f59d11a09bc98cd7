// Package testnet builds test topologies inside the sandbox: "host"
// namespaces standing for machines around the gateway, and simulated NICs
// (veth pairs whose near end sits in the sandbox's default namespace, where
// fwd finds its NICs, and whose far end sits in a host namespace). Only for
// tests, benchmarks and the lab; it refuses to run outside a sandbox.
//
// The lab links this package into the shipped binary, so it does not
// import "testing": the helpers for tests take a T, the part of
// testing.TB they use.
package testnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/fwdproject/fwd/internal/sandbox"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// T is the part of testing.TB the test helpers use (*testing.T,
// *testing.B and testing.TB satisfy it).
type T interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// Host creates a namespace for a simulated machine and removes it at cleanup.
func Host(t T, name string) {
	t.Helper()
	if err := AddHost(name); err != nil {
		t.Fatal(err)
	}
	// The sandbox goes away with the test binary: a namespace that could
	// not be deleted here is gone then.
	t.Cleanup(func() { _ = ns.Delete(name) })
}

// AddHost creates a host namespace with lo up.
func AddHost(name string) error {
	if !sandbox.Ready() {
		return fmt.Errorf("testnet: refusing to create %q outside the sandbox", name)
	}
	h, err := ns.Create(name)
	if err != nil {
		return err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	return nh.LinkSetUp(lo)
}

// NIC creates a simulated NIC: nic in the default namespace, its far end
// hostIf in namespace host with the given addresses (and default route via
// gw when gw is valid). The NIC is removed at cleanup wherever it went.
func NIC(t T, nic, host, hostIf string, gw netip.Addr, addrs ...string) {
	t.Helper()
	if err := AddNIC(nic, "", host, hostIf, gw, addrs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { DelLinkEverywhere(nic) })
}

// AddNIC is NIC without a testing.TB (for the lab and benchmarks).
func AddNIC(nic, mac, host, hostIf string, gw netip.Addr, addrs ...string) error {
	if !sandbox.Ready() {
		return fmt.Errorf("testnet: refusing to create %q outside the sandbox", nic)
	}
	hns, err := ns.Open(host)
	if err != nil {
		return err
	}
	defer hns.Close()
	attrs := netlink.LinkAttrs{Name: nic}
	if mac != "" {
		attrs.HardwareAddr, _ = net.ParseMAC(mac)
	}
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: hostIf, PeerNamespace: netlink.NsFd(int(hns))}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("create NIC %s: %w", nic, err)
	}
	hh, err := netlink.NewHandleAt(hns)
	if err != nil {
		return err
	}
	defer hh.Close()
	l, err := hh.LinkByName(hostIf)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		p := netip.MustParsePrefix(a)
		ad := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, Flags: 0x80 /* IFA_F_NODAD */}
		if err := hh.AddrAdd(l, ad); err != nil {
			return fmt.Errorf("address %s on %s/%s: %w", a, host, hostIf, err)
		}
	}
	if err := hh.LinkSetUp(l); err != nil {
		return err
	}
	if gw.IsValid() {
		// Routes are written by internal/rtnl alone; a simulated host's
		// one route is set up the way an administrator would.
		family := "-4"
		if gw.Is6() {
			family = "-6"
		}
		if _, err := Cmd("", "ip", family, "-n", host, "route", "add", "default", "via", gw.String(), "dev", hostIf); err != nil {
			return fmt.Errorf("default route on %s: %w", host, err)
		}
	}
	return nil
}

// Veth links namespace nsA's ifA to nsB's ifB with a veth pair, both
// ends up.
func Veth(t T, nsA, ifA, nsB, ifB string) {
	t.Helper()
	a, err := ns.Open(nsA)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ns.Open(nsB)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h, err := netlink.NewHandleAt(a)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ifA}, PeerName: ifB, PeerNamespace: netlink.NsFd(int(b))}); err != nil {
		t.Fatal(err)
	}
	MustCmd(t, "", "ip", "-n", nsA, "link", "set", ifA, "up")
	MustCmd(t, "", "ip", "-n", nsB, "link", "set", ifB, "up")
}

// DelLinkEverywhere deletes the link of that name from the sandbox's
// default namespace, if it is there (handed back, or never moved). A NIC
// still inside a namespace needs nothing: a veth pair dies with the
// namespace of either end.
func DelLinkEverywhere(name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkDel(l) // gone meanwhile is as good
	}
}

// Cmd runs argv inside namespace nsName ("" for the sandbox's default
// namespace) and returns combined output.
func Cmd(nsName string, argv ...string) (string, error) {
	if nsName != "" {
		argv = append([]string{"ip", "netns", "exec", nsName}, argv...)
	}
	c := exec.Command(argv[0], argv[1:]...)
	var b bytes.Buffer
	c.Stdout, c.Stderr = &b, &b
	err := c.Run()
	if err != nil {
		return b.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(b.String()))
	}
	return b.String(), nil
}

// MustCmd is Cmd that fails the test on error.
func MustCmd(t T, nsName string, argv ...string) string {
	t.Helper()
	out, err := Cmd(nsName, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// JSON runs a command printing JSON (ip -j, nft -j) and decodes it into v.
func JSON(t T, v any, nsName string, argv ...string) {
	t.Helper()
	out := MustCmd(t, nsName, argv...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: decode JSON: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// Ping reports whether nsName reaches addr with one ICMP echo.
func Ping(nsName, addr string) bool {
	argv := []string{"ping", "-c", "1", "-W", "1", addr}
	if strings.Contains(addr, ":") {
		argv[0] = "ping"
		argv = append([]string{"ping", "-6"}, argv[1:]...)
	}
	_, err := Cmd(nsName, argv...)
	return err == nil
}

// WaitPing pings until success or timeout (neighbour discovery, DAD).
func WaitPing(nsName, addr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if Ping(nsName, addr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// IPAddr is the part of `ip -j addr` tests look at.
type IPAddr struct {
	IfName   string `json:"ifname"`
	MTU      int    `json:"mtu"`
	Flags    []string
	Address  string `json:"address"`
	IfAlias  string `json:"ifalias"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

// Addrs returns `ip -j addr` of namespace nsName, keyed by interface name.
func Addrs(t T, nsName string) map[string]IPAddr {
	t.Helper()
	var list []IPAddr
	argv := []string{"ip", "-j", "addr"}
	if nsName != "" {
		argv = []string{"ip", "-j", "-n", nsName, "addr"}
	}
	JSON(t, &list, "", argv...)
	// `ip addr` does not print aliases; `ip link` does.
	var links []IPAddr
	argv[len(argv)-1] = "link"
	JSON(t, &links, "", argv...)
	alias := map[string]string{}
	for _, l := range links {
		alias[l.IfName] = l.IfAlias
	}
	m := map[string]IPAddr{}
	for _, a := range list {
		a.IfAlias = alias[a.IfName]
		m[a.IfName] = a
	}
	return m
}

// GlobalAddrs lists "addr/len" of scope global on an interface.
func (a IPAddr) GlobalAddrs() []string {
	var out []string
	for _, i := range a.AddrInfo {
		if i.Scope == "global" {
			out = append(out, fmt.Sprintf("%s/%d", i.Local, i.PrefixLen))
		}
	}
	return out
}

// AddRoute adds a static route (protocol boot, as `ip route add` makes)
// to dst via gw in the namespace h: what a simulated host's routes are.
func AddRoute(h netns.NsHandle, dst, gw string) error {
	c, err := rtnl.Open(h)
	if err != nil {
		return err
	}
	defer c.Close()
	r := rtnl.Route{Table: unix.RT_TABLE_MAIN, Dst: netip.MustParsePrefix(dst),
		NextHops: []rtnl.NextHop{{Gw: netip.MustParseAddr(gw)}}}
	res, err := c.WriteRoutes(unix.RTPROT_BOOT, rtnl.AckEach, 1, func(int) (rtnl.Kind, *rtnl.Route) { return rtnl.Create, &r })
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("route %s via %s: %w", dst, gw, res.Failed[0].Err)
	}
	return nil
}
