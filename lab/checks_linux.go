package lab

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/fwdproject/fwd/internal/testnet"
)

// check is one connectivity probe: ping (port "") or a TCP connect.
type check struct {
	what, from, to, port string
	want                 bool
	expect               string // TCP: substring of the server's answer
	// fn, when set, replaces ping/TCP: it says whether the check holds.
	fn func() (bool, string)
	// needs names a program the check depends on; without it, it is skipped.
	needs string
}

var checks = []check{
	{what: "LAN host -> gateway (edge/lan)", from: "lan-host", to: "192.0.2.1", want: true},
	{what: "LAN host -> gateway over IPv6", from: "lan-host", to: "2001:db8:1::1", want: true},
	{what: "LAN host -> WAN host, masqueraded (the WAN host has no route to the LAN)", from: "lan-host", to: "203.0.113.1", want: true},
	{what: "LAN host -> WAN web server sees the public address", from: "lan-host", to: "203.0.113.1", port: "80", want: true, expect: "wan-web 203.0.113.2:"},
	{what: "WAN host -> port-forward 203.0.113.2:8080 -> LAN server", from: "wan-host", to: "203.0.113.2", port: "8080", want: true, expect: "lan-web 203.0.113.1:"},
	{what: "WAN host -> LAN server directly (no route, no forward)", from: "wan-host", to: "192.0.2.10", port: "80", want: false},
	{what: "WAN host -> SSH on the gateway (rejected)", from: "wan-host", to: "203.0.113.2", port: "22", want: false},
	{what: "blue -> edge over the veth pair", from: "blue", to: "198.18.0.0", want: true},
	{what: "blue -> WAN host through edge (static default route + NAT)", from: "blue", to: "203.0.113.1", want: true},
	{what: "WAN host -> management NIC (stays in the default namespace)", from: "wan-host", to: "198.51.100.1", want: false},
	{what: "edge learned 198.18.100.0/24 from the ISP over BGP (kernel route, proto 244 fwd-bgp)", want: true, needs: "bird", fn: func() (bool, string) {
		return waitFor(20*time.Second, func() (bool, string) {
			out, _ := testnet.Cmd("", "ip", "-n", "edge", "route", "show", "198.18.100.0/24")
			return strings.Contains(out, "proto 244") || strings.Contains(out, "proto fwd-bgp"), strings.TrimSpace(out)
		})
	}},
	{what: "the ISP learned the LAN 192.0.2.0/24 from edge", want: true, needs: "bird", fn: func() (bool, string) {
		return waitFor(10*time.Second, func() (bool, string) {
			out, _ := testnet.Cmd("", "birdc", "-s", birdSock, "show", "route", "for", "192.0.2.1")
			return strings.Contains(out, "192.0.2.0/24"), ""
		})
	}},
	{what: "LAN host -> 198.18.100.1 via the BGP route", from: "lan-host", to: "198.18.100.1", want: true, needs: "bird"},
}

func waitFor(timeout time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok || time.Now().After(deadline) {
			return ok, detail
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c check) run() (bool, string) {
	if c.fn != nil {
		return c.fn()
	}
	if c.port == "" {
		if c.want {
			return testnet.WaitPing(c.from, c.to, 3*time.Second), ""
		}
		return testnet.Ping(c.from, c.to), ""
	}
	out, err := testnet.DialTCP(c.from, net.JoinHostPort(c.to, c.port), 2*time.Second)
	if err != nil {
		return false, err.Error()
	}
	out = strings.TrimSpace(out)
	return strings.Contains(out, c.expect), "answer: " + out
}

// runChecks runs every check, prints one line each and returns how many
// failed. A check whose program is not installed is skipped.
func runChecks(out io.Writer) int {
	failed := 0
	for _, c := range checks {
		if c.needs != "" {
			if _, err := exec.LookPath(c.needs); err != nil {
				fmt.Fprintf(out, "   skip %s: %s is not installed\n", c.what, c.needs)
				continue
			}
		}
		got, detail := c.run()
		mark := "ok  "
		if got != c.want {
			mark, failed = "FAIL", failed+1
		}
		if detail != "" {
			detail = " (" + detail + ")"
		}
		if c.fn != nil {
			fmt.Fprintf(out, "   %s %s%s\n", mark, c.what, detail)
			continue
		}
		verb := "reaches"
		if !got {
			verb = "does not reach"
		}
		to := c.to
		if c.port != "" {
			to = net.JoinHostPort(c.to, c.port) + "/tcp"
		}
		fmt.Fprintf(out, "   %s %s: %s %s %s%s\n", mark, c.what, c.from, verb, to, detail)
	}
	return failed
}
