// Package flows reads and deletes a tenant's connection-tracking entries:
// `fwd flows`, and killing the established flows a new policy no longer
// admits (`fwd reload --kill-denied`). It talks ctnetlink through
// github.com/ti-mo/conntrack (maintained, typed flows, netip addresses)
// with the socket opened inside the tenant's namespace. The Flow value
// and its filter are pure; kernel access is in conntrack_linux.go.
package flows

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Tuple is one direction of a flow.
type Tuple struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	SPort uint16     `json:"sport,omitempty"`
	DPort uint16     `json:"dport,omitempty"`
}

// Flow is one conntrack entry.
type Flow struct {
	ID    uint32 `json:"id"`
	Proto string `json:"proto"`
	// Orig is the tuple as the first packet arrived; Reply is the tuple
	// the answers carry (it differs from the swapped Orig when NAT applies).
	Orig  Tuple `json:"orig"`
	Reply Tuple `json:"reply"`
	SNAT  bool  `json:"snat,omitempty"`
	DNAT  bool  `json:"dnat,omitempty"`
	// State is the TCP state ("established", "time_wait"…), "" otherwise.
	State     string `json:"state,omitempty"`
	Assured   bool   `json:"assured"`
	SeenReply bool   `json:"seen_reply"`
	// Timeout is how long the entry lives without traffic.
	Timeout time.Duration `json:"timeout_ns"`
	// Age is set when conntrack timestamps are on (nf_conntrack_timestamp).
	Age time.Duration `json:"age_ns,omitempty"`
	// Packets and Bytes (both directions) are set when accounting is on
	// (nf_conntrack_acct).
	Packets uint64 `json:"packets,omitempty"`
	Bytes   uint64 `json:"bytes,omitempty"`
	Mark    uint32 `json:"mark,omitempty"`

	key key // what deletion needs
}

// key identifies an entry for deletion: its original tuple and zone.
type key struct {
	proto            uint8
	icmpID           uint16
	icmpType, icmpCo uint8
	zone             uint16
}

// ProtoNumber returns the IP protocol number of a name fwd uses
// ("tcp", "udp", "icmp", "icmpv6", …) or a decimal number.
func ProtoNumber(name string) (uint8, bool) {
	switch strings.ToLower(name) {
	case "icmp":
		return 1, true
	case "tcp":
		return 6, true
	case "udp":
		return 17, true
	case "gre":
		return 47, true
	case "esp":
		return 50, true
	case "icmpv6", "ipv6-icmp":
		return 58, true
	case "sctp":
		return 132, true
	}
	n, err := strconv.ParseUint(name, 10, 8)
	return uint8(n), err == nil
}

func protoName(p uint8) string {
	for _, n := range []string{"icmp", "tcp", "udp", "gre", "esp", "icmpv6", "sctp"} {
		if q, _ := ProtoNumber(n); q == p {
			return n
		}
	}
	return strconv.Itoa(int(p))
}

var tcpStates = []string{"none", "syn_sent", "syn_recv", "established", "fin_wait", "close_wait", "last_ack", "time_wait", "close", "syn_sent2"}

func tcpState(s uint8) string {
	if int(s) < len(tcpStates) {
		return tcpStates[s]
	}
	return strconv.Itoa(int(s))
}

// Filter selects flows by their original tuple; zero fields match all.
type Filter struct {
	Src   netip.Prefix
	Dst   netip.Prefix
	Proto string
	SPort uint16
	DPort uint16
}

// Match reports whether f selects fl.
func (f Filter) Match(fl Flow) bool {
	if f.Src.IsValid() && !f.Src.Contains(fl.Orig.Src) {
		return false
	}
	if f.Dst.IsValid() && !f.Dst.Contains(fl.Orig.Dst) {
		return false
	}
	if f.Proto != "" {
		if p, ok := ProtoNumber(f.Proto); !ok || p != fl.key.proto {
			return false
		}
	}
	if f.SPort != 0 && f.SPort != fl.Orig.SPort {
		return false
	}
	if f.DPort != 0 && f.DPort != fl.Orig.DPort {
		return false
	}
	return true
}
