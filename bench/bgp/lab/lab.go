// Package lab is the sandbox scaffolding the BGP benchmarks share
// (bench/bgp, bench/bgp-failover): documentation-range prefix sets, BIRD
// peers, kernel probes and process RSS. It runs only inside a sandbox
// (sandbox.Enter) and never in the shipped binary.
package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
)

// MaxPrefixes is the largest set Prefix can number for a family: IPv6
// /56s under 2001:db8::/32; IPv4 every prefix of length 15-32 inside
// 198.18.0.0/15 (the only IPv4 documentation block with room), which is
// 262,143 — an IPv4 "full table" cannot be built from documentation space.
func MaxPrefixes(family int) int {
	if family == 4 {
		return 1<<18 - 1
	}
	return 1 << 24
}

// Prefix returns the i-th prefix of family's set.
func Prefix(family, i int) netip.Prefix {
	if family == 6 {
		return netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:%x00::/56", i>>8, i&0xff))
	}
	// Length 15 holds 1 prefix, 16 holds 2, ... 32 holds 2^17.
	l, k := 15, i
	for k >= 1<<(l-15) {
		k -= 1 << (l - 15)
		l++
	}
	base := uint32(198)<<24 | uint32(18)<<16
	a := base + uint32(k)<<(32-l)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), l)
}

// ProbeAddr returns an address inside Prefix(family, i).
func ProbeAddr(family, i int) netip.Addr {
	p := Prefix(family, i)
	if family == 6 {
		return p.Addr().Next()
	}
	return p.Addr()
}

// BIRD is one BIRD 2 peer running in a namespace.
type BIRD struct {
	cmd  *exec.Cmd
	Sock string
}

// Peer describes a BIRD peer's session to the tenant and what it
// announces.
type Peer struct {
	Name      string // also the file prefix under dir
	NS        string
	RouterID  string
	Local     string // BIRD's address
	Neighbor  string // the tenant's address
	AS, TenAS int
	Family    int
	N         int
	Prepend   int // AS-path prepends on export (a less preferred path)
}

// StartBIRD writes p's config (N static blackhole routes exported over
// BGP) under dir and starts BIRD in p.NS, waiting until its routes are
// loaded.
func StartBIRD(dir string, p Peer, timeout time.Duration) (*BIRD, error) {
	var conf bytes.Buffer
	ch := "ipv6"
	if p.Family == 4 {
		ch = "ipv4"
	}
	fmt.Fprintf(&conf, "router id %s;\nprotocol device {}\nprotocol static bench { %s;\n", p.RouterID, ch)
	for i := 0; i < p.N; i++ {
		fmt.Fprintf(&conf, "  route %s blackhole;\n", Prefix(p.Family, i))
	}
	export := "all"
	if p.Prepend > 0 {
		export = "filter { " + strings.Repeat(fmt.Sprintf("bgp_path.prepend(%d); ", p.AS), p.Prepend) + "accept; }"
	}
	fmt.Fprintf(&conf, `};
protocol bgp fwd {
	local %s as %d;
	neighbor %s as %d;
	hold time 90;
	connect delay time 1;
	%s { import none; export %s; };
}
`, p.Local, p.AS, p.Neighbor, p.TenAS, ch, export)
	cf := filepath.Join(dir, p.Name+".conf")
	if err := os.WriteFile(cf, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	b := &BIRD{Sock: filepath.Join(dir, p.Name+".ctl")}
	b.cmd = exec.Command("ip", "netns", "exec", p.NS, "bird", "-f", "-c", cf, "-s", b.Sock, "-P", filepath.Join(dir, p.Name+".pid"))
	b.cmd.Stderr = os.Stderr
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bird: %w", err)
	}
	t0 := time.Now()
	for {
		if out, err := exec.Command("birdc", "-s", b.Sock, "show", "protocols", "bench").CombinedOutput(); err == nil && strings.Contains(string(out), "up") {
			return b, nil
		}
		if time.Since(t0) > timeout {
			b.Kill()
			return nil, fmt.Errorf("BIRD %s did not start", p.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Down shuts BIRD's session (a Cease notification).
func (b *BIRD) Down() error {
	if out, err := exec.Command("birdc", "-s", b.Sock, "down").CombinedOutput(); err != nil {
		return fmt.Errorf("birdc down: %v: %s", err, out)
	}
	return nil
}

// Kill ends BIRD at once (SIGKILL: the kernel closes its TCP session, no
// Cease) and reaps it. Safe to call twice.
func (b *BIRD) Kill() {
	if b.cmd.Process != nil && b.cmd.ProcessState == nil {
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
		_ = b.cmd.Wait()
	}
}

// Probe is an rtnl connection in a namespace for cheap kernel checks.
type Probe struct{ c *rtnl.Conn }

// OpenProbe opens a probe in namespace name.
func OpenProbe(name string) (*Probe, error) {
	h, err := ns.Open(name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	c, err := rtnl.Open(h)
	if err != nil {
		return nil, err
	}
	return &Probe{c}, nil
}

func (p *Probe) Close() error { return p.c.Close() }

// Count counts the speaker's routes of family without decoding them.
func (p *Probe) Count(family int) (int, error) {
	return p.c.CountRoutes(rtnl.Filter{Family: family, Protocol: bgp.Protocol})
}

// Gateway returns the gateway the kernel's FIB uses for dst (through a
// nexthop object if the route has one; objs maps IDs to gateways), or an
// invalid address.
func (p *Probe) Gateway(dst netip.Addr, objs map[uint32]netip.Addr) netip.Addr {
	r, err := p.c.Lookup(dst)
	if err != nil {
		return netip.Addr{}
	}
	if r.NHID != 0 {
		return objs[r.NHID]
	}
	if len(r.NextHops) > 0 {
		return r.NextHops[0].Gw
	}
	return netip.Addr{}
}

// Objects maps the speaker's nexthop objects to their gateways.
func (p *Probe) Objects() (map[uint32]netip.Addr, error) {
	objs, err := p.c.Nexthops(bgp.Protocol)
	m := map[uint32]netip.Addr{}
	for _, o := range objs {
		m[o.ID] = o.Gw
	}
	return m, err
}

// ByGateway counts the speaker's routes of family per gateway (resolved
// through nexthop objects): one full dump.
func (p *Probe) ByGateway(family int) (map[netip.Addr]int, error) {
	objs, err := p.Objects()
	if err != nil {
		return nil, err
	}
	rs, err := p.c.Routes(rtnl.Filter{Family: family, Protocol: bgp.Protocol})
	if err != nil {
		return nil, err
	}
	m := map[netip.Addr]int{}
	for i := range rs {
		switch {
		case rs[i].NHID != 0:
			m[objs[rs[i].NHID]]++
		case len(rs[i].NextHops) > 0:
			m[rs[i].NextHops[0].Gw]++
		default:
			m[netip.Addr{}]++
		}
	}
	return m, nil
}

// PeakRSS is a process's peak resident set (VmHWM), in bytes.
func PeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// MiB formats bytes as a NAME VALUE UNIT figure.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
