package dnsmasq

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Lease is one DHCPv4 lease dnsmasq handed out, as its lease file says.
type Lease struct {
	Expiry   time.Time        `json:"expiry"` // zero: infinite
	MAC      net.HardwareAddr `json:"mac"`
	Addr     netip.Addr       `json:"addr"`
	Hostname string           `json:"hostname,omitempty"`
}

// ParseLeases reads dnsmasq's lease file ("expiry mac ip name clientid"
// lines; DHCPv6 leases, after the "duid" line, are skipped). Malformed
// lines are skipped: the file is dnsmasq's, written while we read.
func ParseLeases(b []byte) []Lease {
	var out []Lease
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "duid" {
			break
		}
		if len(f) < 4 {
			continue
		}
		exp, err1 := strconv.ParseInt(f[0], 10, 64)
		mac, err2 := net.ParseMAC(f[1])
		addr, err3 := netip.ParseAddr(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		l := Lease{MAC: mac, Addr: addr}
		if exp != 0 {
			l.Expiry = time.Unix(exp, 0)
		}
		if f[3] != "*" {
			l.Hostname = f[3]
		}
		out = append(out, l)
	}
	return out
}
