// Package pktlog turns the packets that fwd's `log = true` rules hand to
// NFLOG into structured log entries: one per packet, naming the tenant,
// the rule (its fwd identity), the interfaces, addresses, protocol and
// ports. Tenant namespaces drop the kernel's own `log` output (unless
// nf_log_all_netns is set, which would mix every tenant into the host's
// kernel log), so the policy logs to an NFLOG group instead and the daemon
// reads that group in every tenant namespace.
//
// Decoding (this file) is pure; reading the group is in reader_linux.go,
// and Ring keeps the recent entries for `fwd log`.
package pktlog

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Group is the NFLOG group fwd's log rules use. NFLOG groups are per
// network namespace, so every tenant uses the same number.
const Group = 4100

// PrefixMarker starts every prefix fwd writes into a log rule: the rule
// identity follows it, then (after a space) the operator's own prefix.
const PrefixMarker = "fwd:"

// Prefix builds the NFLOG prefix for a rule: marker, identity and the
// operator's prefix, cut to what the kernel keeps (127 bytes).
func Prefix(ruleID, userPrefix string) string {
	p := PrefixMarker + ruleID
	if userPrefix != "" {
		p += " " + userPrefix
	}
	if len(p) > 127 {
		p = p[:127]
	}
	return p
}

// SplitPrefix is the inverse of Prefix. ok is false for a prefix fwd did
// not write (another tool's log rule in the same group).
func SplitPrefix(p string) (ruleID, userPrefix string, ok bool) {
	rest, found := strings.CutPrefix(p, PrefixMarker)
	if !found {
		return "", p, false
	}
	ruleID, userPrefix, _ = strings.Cut(rest, " ")
	return ruleID, userPrefix, true
}

// Entry is one logged packet.
type Entry struct {
	Time   time.Time  `json:"time"`
	Tenant string     `json:"tenant"`
	Rule   string     `json:"rule,omitempty"`   // fwd rule identity
	Prefix string     `json:"prefix,omitempty"` // the operator's log prefix
	In     string     `json:"in,omitempty"`
	Out    string     `json:"out,omitempty"`
	Family string     `json:"family"` // "ip" or "ip6"
	Proto  string     `json:"proto"`
	Src    netip.Addr `json:"src"`
	Dst    netip.Addr `json:"dst"`
	SPort  uint16     `json:"sport,omitempty"`
	DPort  uint16     `json:"dport,omitempty"`
	// ICMPType and ICMPCode are set for ICMP and ICMPv6.
	ICMPType *uint8 `json:"icmp_type,omitempty"`
	ICMPCode *uint8 `json:"icmp_code,omitempty"`
	Length   int    `json:"length"` // bytes of the network-layer packet
}

// Decode fills e's network and transport fields from an IP packet (as
// NFLOG copies it: starting at the IP header). It reports false when the
// packet is too short or not IP; what could be read stays in e.
func Decode(e *Entry, pkt []byte) bool {
	if len(pkt) < 1 {
		return false
	}
	var proto uint8
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return false
		}
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || len(pkt) < ihl {
			return false
		}
		e.Family = "ip"
		e.Length = int(binary.BigEndian.Uint16(pkt[2:4]))
		e.Src = netip.AddrFrom4([4]byte(pkt[12:16]))
		e.Dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		proto = pkt[9]
		// Only the first fragment carries the transport header.
		if binary.BigEndian.Uint16(pkt[6:8])&0x1fff == 0 {
			l4 = pkt[ihl:]
		}
	case 6:
		if len(pkt) < 40 {
			return false
		}
		e.Family = "ip6"
		e.Length = 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
		e.Src = netip.AddrFrom16([16]byte(pkt[8:24]))
		e.Dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		proto, l4 = skipExtHeaders(pkt[6], pkt[40:])
	default:
		return false
	}
	e.Proto = protoName(proto)
	switch proto {
	case 6, 17, 132, 136: // tcp, udp, sctp, udplite: ports first
		if len(l4) >= 4 {
			e.SPort = binary.BigEndian.Uint16(l4[0:2])
			e.DPort = binary.BigEndian.Uint16(l4[2:4])
		}
	case 1, 58: // icmp, icmpv6
		if len(l4) >= 2 {
			t, c := l4[0], l4[1]
			e.ICMPType, e.ICMPCode = &t, &c
		}
	}
	return true
}

// skipExtHeaders walks IPv6 extension headers to the transport header.
func skipExtHeaders(next uint8, b []byte) (uint8, []byte) {
	for range 8 {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < 8 {
				return next, nil
			}
			n := 8 + int(b[1])*8
			if len(b) < n {
				return next, nil
			}
			next, b = b[0], b[n:]
		case 44: // fragment
			if len(b) < 8 {
				return next, nil
			}
			if binary.BigEndian.Uint16(b[2:4])&0xfff8 != 0 {
				return b[0], nil // not the first fragment
			}
			next, b = b[0], b[8:]
		default:
			return next, b
		}
	}
	return next, nil
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}
