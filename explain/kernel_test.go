//go:build kernel

package explain

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// TestMain runs the kernel-tagged test binary in a private sandbox.
func TestMain(m *testing.M) { testkit.Main(m) }

// host is a machine around the firewall of testdata/fw.toml.
type host struct {
	name, nic, hostIf string
	in                string // the firewall interface it is behind
	gw4, gw6          string
	addrs             []string
}

var hosts = []host{
	{"ehwan", "x3", "eth0", "wan0", "203.0.113.1", "2001:db8:2::1", []string{"203.0.113.2/24", "203.0.113.7/24", "203.0.113.66/24", "203.0.113.100/24", "2001:db8:2::2/64", "2001:db8:2::7/64", "2001:db8:2::66/64"}},
	{"ehlan", "x1", "eth0", "lan0", "192.0.2.1", "2001:db8:1::1", []string{"192.0.2.10/25", "2001:db8:1::10/64"}},
	{"ehlan1", "x4", "eth0", "lan1", "192.0.2.129", "", []string{"192.0.2.130/25"}},
	{"ehdmz", "x2", "eth0", "dmz0", "198.51.100.1", "", []string{"198.51.100.10/24", "198.51.100.11/24"}},
}

var (
	tcpPorts = []int{22, 25, 80, 81, 443, 2525, 8080}
	udpPorts = []int{22, 53, 54, 5000}
)

// serveHost answers TCP and UDP on every test port with "NAME PEER-ADDR"
// so a client learns who answered and which source it saw (NAT).
func serveHost(t *testing.T, nsName string, addrs []string) {
	t.Helper()
	for _, p := range tcpPorts {
		var l net.Listener
		if err := ns.DoNamed(nsName, func() (err error) { l, err = net.Listen("tcp", fmt.Sprintf(":%d", p)); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s %s\n", nsName, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
				c.Close()
			}
		}()
	}
	// UDP is bound per address: a reply must leave from the address the
	// client sent to, or its connected socket ignores it.
	for _, a := range addrs {
		ip := netip.MustParsePrefix(a).Addr()
		for _, p := range udpPorts {
			var pc net.PacketConn
			if err := ns.DoNamed(nsName, func() (err error) {
				pc, err = net.ListenPacket("udp", netip.AddrPortFrom(ip, uint16(p)).String())
				return
			}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 512)
				for {
					_, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					ua := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
					_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", nsName, ua)), from)
				}
			}()
		}
	}
}

// observed is what the sender saw.
type observed struct {
	verdict string
	by      string     // namespace that answered (accepted flows)
	seen    netip.Addr // source address the server saw
	detail  string
}

const dropWait = 300 * time.Millisecond

func classify(err error) observed {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return observed{verdict: Drop, detail: "timeout"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return observed{verdict: Reject, detail: "refused (reset or port unreachable)"}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES):
		return observed{verdict: Reject, detail: err.Error()}
	}
	return observed{verdict: "error", detail: err.Error()}
}

func answered(line string) observed {
	f := strings.Fields(line)
	if len(f) != 2 {
		return observed{verdict: "error", detail: "reply " + line}
	}
	a, _ := netip.ParseAddr(f[1])
	return observed{verdict: Accept, by: f[0], seen: a}
}

// probe sends q's packet from namespace from and reports the outcome.
func probe(from string, q Query) observed {
	var out observed
	err := ns.DoNamed(from, func() error {
		switch q.Proto {
		case 6:
			d := net.Dialer{Timeout: dropWait, LocalAddr: &net.TCPAddr{IP: q.Src.AsSlice()}}
			c, err := d.Dial("tcp", netip.AddrPortFrom(q.Dst, q.DPort).String())
			if err != nil {
				out = classify(err)
				return nil
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				out = observed{verdict: "error", detail: "connected, no greeting: " + err.Error()}
				return nil
			}
			out = answered(strings.TrimSpace(line))
		case 17:
			d := net.Dialer{LocalAddr: &net.UDPAddr{IP: q.Src.AsSlice()}}
			c, err := d.Dial("udp", netip.AddrPortFrom(q.Dst, q.DPort).String())
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(dropWait))
			_, _ = c.Write([]byte("hi"))
			buf := make([]byte, 512)
			n, err := c.Read(buf)
			if err != nil {
				out = classify(err)
				return nil
			}
			out = answered(strings.TrimSpace(string(buf[:n])))
		}
		return nil
	})
	if err != nil {
		return observed{verdict: "error", detail: err.Error()}
	}
	if q.Proto == 1 || q.Proto == 58 {
		o, err := testnet.Cmd(from, "ping", "-c", "1", "-W", "1", "-I", q.Src.String(), q.Dst.String())
		switch {
		case err == nil:
			return observed{verdict: Accept, detail: "echo reply"}
		case strings.Contains(o, "Unreachable") || strings.Contains(o, "Prohibited"):
			return observed{verdict: Reject, detail: strings.TrimSpace(o)}
		}
		return observed{verdict: Drop, detail: "no echo reply"}
	}
	return out
}

func hostOf(a netip.Addr) string {
	for _, h := range hosts {
		for _, p := range h.addrs {
			if netip.MustParsePrefix(p).Addr() == a {
				return h.name
			}
		}
	}
	return "fw"
}

// TestExplainAgreesWithKernel applies testdata/fw.toml with the engine,
// sends a real packet for every case and checks that Explain predicted
// what the kernel did: the verdict and, for accepted flows, which host
// answered (DNAT) and the source it saw (SNAT, masquerade, hairpin).
func TestExplainAgreesWithKernel(t *testing.T) {
	testkit.Require(t)
	for _, h := range hosts {
		testnet.Host(t, h.name)
		testnet.MustCmd(t, h.name, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
		testnet.NIC(t, h.nic, h.name, h.hostIf, netip.MustParseAddr(h.gw4), h.addrs...)
		if h.gw6 != "" {
			testnet.MustCmd(t, h.name, "ip", "-6", "route", "add", "default", "via", h.gw6)
		}
	}
	path, _ := os.Getwd()
	cfg, err := config.Load(path + "/testdata/fw.toml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := eng.Apply(context.Background(), &config.Config{}, false); err != nil {
			t.Errorf("teardown: %v", err)
		}
		eng.Close()
	})
	if _, err := eng.Apply(context.Background(), cfg, false); err != nil {
		t.Fatalf("apply: %v", err)
	}
	// The kernel rate-limits ICMP errors per destination host, and the
	// redirect it sends for the hairpinned flow (in and out of lan0) uses
	// up that host's budget: a reject would then look like a drop. Lift
	// the limits so that every reject is seen.
	testnet.MustCmd(t, "fw", "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.lan0.send_redirects=0", "net.ipv4.conf.lan1.send_redirects=0",
		"net.ipv4.conf.dmz0.send_redirects=0", "net.ipv4.conf.wan0.send_redirects=0")
	for _, h := range hosts {
		serveHost(t, h.name, h.addrs)
	}
	serveHost(t, "fw", nil) // the firewall's own services (ssh-admins)
	// Neighbours resolved and addresses usable before any timing matters.
	// (Sources are explicit: ehwan also holds blocked addresses.)
	for _, w := range [][3]string{{"ehlan", "192.0.2.10", "192.0.2.1"}, {"ehlan1", "192.0.2.130", "192.0.2.129"}, {"ehwan", "203.0.113.2", "203.0.113.1"},
		{"ehdmz", "198.51.100.10", "198.51.100.1"}, {"ehlan", "2001:db8:1::10", "2001:db8:1::1"}, {"ehwan", "2001:db8:2::2", "2001:db8:2::1"}} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := testnet.Cmd(w[0], "ping", "-c", "1", "-W", "1", "-I", w[1], w[2]); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s cannot ping %s from %s", w[0], w[2], w[1])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	type tc struct {
		from     string
		src, dst string
		proto    uint8
		dport    uint16
	}
	cases := []tc{
		// From the WAN.
		{"ehwan", "203.0.113.2", "192.0.2.10", 6, 80},        // wan → lan: default drop
		{"ehwan", "203.0.113.2", "192.0.2.130", 6, 80},       // same, other LAN interface
		{"ehwan", "203.0.113.2", "192.0.2.10", 17, 53},       // udp wan → lan
		{"ehwan", "203.0.113.2", "203.0.113.1", 6, 8080},     // port-forward web → lan
		{"ehwan", "203.0.113.7", "203.0.113.1", 6, 8080},     // port-forward, other source
		{"ehwan", "203.0.113.100", "203.0.113.1", 6, 8080},   // blocked source: the DNAT admit comes first
		{"ehwan", "203.0.113.2", "203.0.113.1", 6, 2525},     // port-forward mail → dmz
		{"ehwan", "203.0.113.2", "198.51.100.10", 6, 80},     // merged member
		{"ehwan", "203.0.113.2", "198.51.100.10", 6, 443},    // merged member
		{"ehwan", "203.0.113.2", "198.51.100.11", 6, 25},     // merged member, reject
		{"ehwan", "203.0.113.2", "198.51.100.10", 17, 53},    // merged member, udp
		{"ehwan", "203.0.113.2", "198.51.100.10", 17, 54},    // named reject after the group
		{"ehwan", "203.0.113.2", "198.51.100.11", 17, 22},    // same
		{"ehwan", "203.0.113.2", "198.51.100.10", 6, 81},     // group miss: default drop
		{"ehwan", "203.0.113.2", "198.51.100.11", 6, 80},     // group miss on the address
		{"ehwan", "203.0.113.100", "198.51.100.10", 6, 80},   // set member (range) blocked
		{"ehwan", "203.0.113.66", "198.51.100.10", 6, 80},    // set member (address) blocked
		{"ehwan", "203.0.113.66", "203.0.113.1", 6, 22},      // blocked towards self
		{"ehwan", "203.0.113.7", "203.0.113.1", 6, 22},       // ssh from an admin (set)
		{"ehwan", "203.0.113.2", "203.0.113.1", 6, 22},       // ssh from another: wan → self reject
		{"ehwan", "203.0.113.2", "203.0.113.1", 17, 5000},    // udp to self: reject (icmp)
		{"ehwan", "203.0.113.2", "203.0.113.1", 1, 0},        // ping self
		{"ehwan", "203.0.113.2", "192.0.2.1", 1, 0},          // ping the LAN address from the WAN
		{"ehwan", "2001:db8:2::2", "2001:db8:1::10", 6, 80},  // web6
		{"ehwan", "2001:db8:2::2", "2001:db8:1::10", 6, 81},  // v6 default drop
		{"ehwan", "2001:db8:2::66", "2001:db8:1::10", 6, 80}, // v6 set member blocked
		{"ehwan", "2001:db8:2::7", "2001:db8:2::1", 6, 22},   // v6 admin ssh
		{"ehwan", "2001:db8:2::2", "2001:db8:2::1", 6, 22},   // v6 reject to self
		{"ehwan", "2001:db8:2::2", "2001:db8:2::1", 58, 0},   // ping6 self
		// From the LAN.
		{"ehlan", "192.0.2.10", "203.0.113.2", 6, 80},       // masqueraded
		{"ehlan", "192.0.2.10", "203.0.113.2", 17, 53},      // masqueraded udp
		{"ehlan", "192.0.2.10", "203.0.113.1", 6, 8080},     // hairpin
		{"ehlan", "192.0.2.10", "198.51.100.10", 6, 443},    // lan-web-dmz
		{"ehlan", "192.0.2.10", "198.51.100.10", 6, 22},     // lan → dmz default reject
		{"ehlan", "192.0.2.10", "198.51.100.10", 17, 22},    // same, udp: icmp
		{"ehlan", "192.0.2.10", "192.0.2.1", 6, 22},         // lan → self default drop
		{"ehlan", "192.0.2.10", "192.0.2.1", 1, 0},          // ping self
		{"ehlan", "192.0.2.10", "198.18.0.5", 6, 80},        // blackhole route
		{"ehlan", "2001:db8:1::10", "2001:db8:2::2", 6, 80}, // v6 masqueraded
		{"ehlan", "2001:db8:1::10", "2001:db8:1::1", 6, 22}, // v6 lan → self drop
		{"ehlan", "2001:db8:1::10", "2001:db8:1::1", 58, 0}, // ping6 self
		// From the upper LAN half: policy routing sends it via the DMZ.
		{"ehlan1", "192.0.2.130", "203.0.113.2", 6, 80},   // table alt → dmz0: lan → dmz reject
		{"ehlan1", "192.0.2.130", "198.51.100.10", 6, 80}, // lan-web-dmz
		// From the DMZ.
		{"ehdmz", "198.51.100.10", "192.0.2.10", 6, 80},      // dmz-to-lan-drop
		{"ehdmz", "198.51.100.11", "192.0.2.130", 17, 53},    // same rule, udp
		{"ehdmz", "198.51.100.10", "203.0.113.2", 6, 80},     // masqueraded
		{"ehdmz", "198.51.100.10", "198.51.100.1", 17, 5000}, // dmz → self: built-in default drop
		// An unreachable route answers with an ICMP error limited per
		// source host by net.ipv4.route.error_cost, which only the initial
		// namespace can change: use a source no other error went to.
		{"ehdmz", "198.51.100.11", "198.18.1.5", 6, 80}, // unreachable route
	}
	inOf := map[string]string{}
	for _, h := range hosts {
		inOf[h.name] = h.in
	}
	count := map[string]int{}
	start := time.Now()
	for _, c := range cases {
		q := Query{Tenant: "fw", In: inOf[c.from], Src: netip.MustParseAddr(c.src), Dst: netip.MustParseAddr(c.dst), Proto: c.proto, DPort: c.dport}
		name := fmt.Sprintf("%s/%s→%s/%s:%d", c.from, c.src, c.dst, protoName(c.proto), c.dport)
		tr, err := Explain(cfg, q)
		if err != nil {
			t.Errorf("%s: explain: %v", name, err)
			continue
		}
		got := probe(c.from, q)
		count[got.verdict]++
		if tr.NAT != nil {
			count["nat"]++
		}
		fail := ""
		switch {
		case got.verdict != tr.Verdict:
			fail = fmt.Sprintf("kernel %s (%s), explain %s", got.verdict, got.detail, tr.Verdict)
		case got.verdict == Accept && got.by != "" && got.by != hostOf(tr.After.Dst):
			fail = fmt.Sprintf("answered by %s, explain sends it to %s (%s)", got.by, tr.After.Dst, hostOf(tr.After.Dst))
		case got.verdict == Accept && got.seen.IsValid() && got.seen != tr.After.Src:
			fail = fmt.Sprintf("server saw source %s, explain says %s", got.seen, tr.After.Src)
		}
		if fail != "" {
			var b bytes.Buffer
			_ = tr.WriteText(&b)
			t.Errorf("%s: %s\n%s", name, fail, b.String())
		}
	}
	t.Logf("%d cases in %v: %v", len(cases), time.Since(start).Round(time.Millisecond), count)
	if len(cases) < 40 || count[Accept] == 0 || count[Drop] == 0 || count[Reject] == 0 || count["nat"] == 0 {
		t.Fatalf("the table must cover accept, drop, reject and NAT with at least 40 cases: %v", count)
	}
}
