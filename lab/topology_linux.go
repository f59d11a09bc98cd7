package lab

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"syscall"

	"github.com/fwdproject/fwd/internal/testnet"
)

// host is a simulated machine attached to one simulated NIC.
type host struct {
	ns, nic, hostIf, gw string
	addrs               []string
}

var hosts = []host{
	{"mgmt-host", "eth0", "mgmt0", "", []string{"198.51.100.10/24"}},
	// No route back to the LAN: its traffic can only come back through NAT.
	// 198.18.100.1 sits behind the "ISP": edge reaches it only by the route
	// it learns over BGP.
	{"wan-host", "eth1", "wan0", "", []string{"203.0.113.1/24", "2001:db8:ffff::1/64", "198.18.100.1/24"}},
	// IPv4 address and default route come by DHCP from edge (dhcp_linux.go).
	{"lan-host", "eth2", "lan0", "", []string{"2001:db8:1::10/64"}},
}

// buildHosts creates the simulated hosts and NICs, and addresses the
// management NIC that stays in the default namespace.
func buildHosts(out io.Writer) error {
	for _, h := range hosts {
		if err := testnet.AddHost(h.ns); err != nil {
			return err
		}
		var gw netip.Addr
		if h.gw != "" {
			gw = netip.MustParseAddr(h.gw)
		}
		if err := testnet.AddNIC(h.nic, "", h.ns, h.hostIf, gw, h.addrs...); err != nil {
			return err
		}
		fmt.Fprintf(out, "   NIC %-5s <-> %s (%s)\n", h.nic, h.ns, h.addrs[0])
	}
	if _, err := testnet.Cmd("", "ip", "addr", "add", "198.51.100.1/24", "dev", "eth0"); err != nil {
		return err
	}
	_, err := testnet.Cmd("", "ip", "link", "set", "eth0", "up")
	return err
}

const birdSock = "/run/fwd/lab-bird.ctl"

// birdConf is the ISP's router in the lab: BIRD 2 in wan-host announcing
// 198.18.100.0/24 to edge.
const birdConf = `router id 203.0.113.1;
protocol device {}
protocol static isp { ipv4; route 198.18.100.0/24 blackhole; }
protocol bgp edge {
	local 203.0.113.1 as 64600;
	neighbor 203.0.113.2 as 64512;
	hold time 6;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	ipv4 { import all; export all; };
}
`

// startBird starts the ISP's BIRD; the returned function stops it.
func startBird() (func(), error) {
	if err := os.WriteFile("/run/fwd/lab-bird.conf", []byte(birdConf), 0o644); err != nil {
		return nil, err
	}
	c := exec.Command("ip", "netns", "exec", "wan-host", "bird", "-f", "-c", "/run/fwd/lab-bird.conf", "-s", birdSock, "-P", "/run/fwd/lab-bird.pid")
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	}, nil
}
