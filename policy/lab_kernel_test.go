//go:build kernel

package policy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var nsSeq atomic.Int32

// lab is a firewall namespace with a LAN host and a WAN host:
//
//	lan (192.0.2.10) --lan0-- fw --wan0-- wan (203.0.113.2)
type lab struct {
	prefix          string
	fw, lan, wan    netns.NsHandle
	fwN, lanN, wanN string
}

func newNS(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	h, err := ns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); _ = ns.Delete(name) })
	// No duplicate address detection: addresses are usable at once.
	sysctl(t, h, "net/ipv6/conf/all/accept_dad", "0")
	sysctl(t, h, "net/ipv6/conf/default/accept_dad", "0")
	return h
}

func nl(t *testing.T, h netns.NsHandle) *netlink.Handle {
	t.Helper()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nh.Close)
	return nh
}

func addrUp(t *testing.T, h *netlink.Handle, name string, addrs ...string) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ad, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		ad.Flags = syscall.IFA_F_NODAD
		if err := h.AddrAdd(l, ad); err != nil {
			t.Fatalf("addr %s on %s: %v", a, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	lo, _ := h.LinkByName("lo")
	_ = h.LinkSetUp(lo)
}

// veth creates a pair with one end in each namespace.
func veth(t *testing.T, a netns.NsHandle, aName string, b netns.NsHandle, bName string) {
	t.Helper()
	tmpA, tmpB := fmt.Sprintf("pva%d", nsSeq.Add(1)), fmt.Sprintf("pvb%d", nsSeq.Add(1))
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: tmpA, Namespace: netlink.NsFd(int(a))}, PeerName: tmpB, PeerNamespace: netlink.NsFd(int(b))}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatalf("veth: %v", err)
	}
	for _, x := range []struct {
		h        netns.NsHandle
		from, to string
	}{{a, tmpA, aName}, {b, tmpB, bName}} {
		h := nl(t, x.h)
		l, err := h.LinkByName(x.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetName(l, x.to); err != nil {
			t.Fatal(err)
		}
	}
}

func route(t *testing.T, h netns.NsHandle, dst, gw string) {
	t.Helper()
	if err := testnet.AddRoute(h, dst, gw); err != nil {
		t.Fatalf("route %s via %s: %v", dst, gw, err)
	}
}

func sysctl(t *testing.T, h netns.NsHandle, path, val string) {
	t.Helper()
	if err := ns.Do(h, func() error { return os.WriteFile("/proc/sys/"+path, []byte(val), 0o644) }); err != nil {
		t.Fatal(err)
	}
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testkit.Require(t)
	p := fmt.Sprintf("p%d", nsSeq.Add(1))
	l := &lab{prefix: p, fwN: p + "fw", lanN: p + "lan", wanN: p + "wan"}
	l.fw, l.lan, l.wan = newNS(t, l.fwN), newNS(t, l.lanN), newNS(t, l.wanN)
	veth(t, l.fw, "lan0", l.lan, "eth0")
	veth(t, l.fw, "wan0", l.wan, "eth0")
	addrUp(t, nl(t, l.fw), "lan0", "192.0.2.1/24")
	addrUp(t, nl(t, l.fw), "wan0", "203.0.113.1/24")
	addrUp(t, nl(t, l.lan), "eth0", "192.0.2.10/24")
	addrUp(t, nl(t, l.wan), "eth0", "203.0.113.2/24")
	route(t, l.lan, "0.0.0.0/0", "192.0.2.1")
	sysctl(t, l.fw, "net/ipv4/ip_forward", "1")
	return l
}

// serve accepts TCP connections in namespace h and writes the client's
// address as seen by the server, then echoes.
func serve(t *testing.T, h netns.NsHandle, addr string) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(h, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
}

func dialIn(h netns.NsHandle, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(h, func() (err error) { c, err = net.DialTimeout("tcp", addr, timeout); return })
	return c, err
}

// connect dials addr from namespace h and returns the peer address the
// server reports.
func connect(h netns.NsHandle, addr string) (string, error) {
	c, err := dialIn(h, addr, 1500*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// plan observes fwd's table in h and plans tn's policy (a dry run when
// not applied).
func plan(t *testing.T, tn *config.Tenant, h netns.NsHandle) *Transaction {
	t.Helper()
	st, err := Observe(h)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return Plan(tn.Name, Compile(tn), st)
}

// reconcile is the engine's pipeline for one tenant: Observe, Plan, Apply.
func reconcile(t *testing.T, tn *config.Tenant, h netns.NsHandle) ([]change.Change, error) {
	t.Helper()
	tx := plan(t, tn, h)
	if _, err := Apply(h, tx); err != nil {
		return nil, err
	}
	return tx.Changes(), nil
}

func mustApply(t *testing.T, tn *config.Tenant, h netns.NsHandle) {
	t.Helper()
	if _, err := reconcile(t, tn, h); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func tenantFrom(t *testing.T, text string) *config.Tenant {
	t.Helper()
	return testkit.Config(t, text).Tenants[0]
}

const labBase = `
[tenant.fw.interface.lan0]
device = "x1"
addresses = ["192.0.2.1/24"]
[tenant.fw.interface.wan0]
device = "x2"
addresses = ["203.0.113.1/24"]
[tenant.fw.zone.lan]
interfaces = ["lan0"]
[tenant.fw.zone.wan]
interfaces = ["wan0"]
[[tenant.fw.policy]]
from = "lan"
to = "wan"
action = "accept"
`

const labPolicy = labBase + `
[[tenant.fw.rule]]
name = "ssh-wan"
from = "wan"
to = "self"
proto = "tcp"
dport = 22
action = "reject"
[[tenant.fw.rule]]
name = "admin-wan"
from = "wan"
to = "self"
proto = "tcp"
dport = 2222
action = "accept"
[[tenant.fw.rule]]
name = "never"
from = "wan"
to = "self"
proto = "udp"
dport = 9
action = "accept"
[[tenant.fw.nat]]
type = "masquerade"
out = "wan"
[[tenant.fw.nat]]
name = "web"
type = "dnat"
in = "wan"
proto = "tcp"
dport = 8080
to = "192.0.2.10:80"
`

func nft(t *testing.T, nsName string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", nsName, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func counterOf(t *testing.T, h netns.NsHandle, id string) uint64 {
	t.Helper()
	cs, err := ReadCounters(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c.Packets
		}
	}
	t.Fatalf("no counter for rule %q", id)
	return 0
}
