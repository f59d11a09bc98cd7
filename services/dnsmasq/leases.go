package dnsmasq

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Lease is one lease dnsmasq handed out, as its lease file says: a
// DHCPv4 lease by MAC, or a DHCPv6 one (managed RA) by DUID.
type Lease struct {
	Expiry   time.Time        `json:"expiry"` // zero: infinite
	MAC      net.HardwareAddr `json:"mac,omitempty"`
	DUID     string           `json:"duid,omitempty"` // DHCPv6: the client's DUID
	Addr     netip.Addr       `json:"addr"`
	Hostname string           `json:"hostname,omitempty"`
}

// ParseLeases reads dnsmasq's lease file: "expiry mac ip name clientid"
// lines, then, after the "duid" line (the server's), the DHCPv6 ones,
// "expiry iaid ip name clientduid". Malformed lines are skipped: the file
// is dnsmasq's, written while we read.
func ParseLeases(b []byte) []Lease {
	var out []Lease
	v6 := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "duid" {
			v6 = true
			continue
		}
		if len(f) < 4 {
			continue
		}
		exp, err1 := strconv.ParseInt(f[0], 10, 64)
		addr, err3 := netip.ParseAddr(f[2])
		if err1 != nil || err3 != nil || addr.Is6() != v6 {
			continue
		}
		l := Lease{Addr: addr}
		if v6 {
			if len(f) < 5 {
				continue
			}
			l.DUID = f[4]
		} else {
			mac, err := net.ParseMAC(f[1])
			if err != nil {
				continue
			}
			l.MAC = mac
		}
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
