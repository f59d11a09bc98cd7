package trace

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Event is one step of a traced packet's walk through the ruleset.
type Event struct {
	// Packet numbers the traced packets 1, 2, … in order of appearance;
	// ID is the kernel's trace id (one per packet).
	Packet int    `json:"packet"`
	ID     uint32 `json:"id"`
	Family string `json:"family"` // ip, ip6, inet …
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	// Type: rule (a rule matched), return (the chain ended, back to the
	// caller) or policy (a base chain's policy decided).
	Type    string `json:"type"`
	Handle  uint64 `json:"handle,omitempty"`
	Verdict string `json:"verdict,omitempty"` // accept, drop, continue, jump C, goto C, return …
	// RuleID and Comment name the rule in fwd's terms (fwd's table only).
	RuleID  string `json:"rule,omitempty"`
	Comment string `json:"comment,omitempty"`
	In      string `json:"in,omitempty"`
	Out     string `json:"out,omitempty"`
	// The packet as the hook saw it (after any NAT already applied).
	Proto uint8      `json:"proto,omitempty"`
	Src   netip.Addr `json:"src,omitempty"`
	Dst   netip.Addr `json:"dst,omitempty"`
	SPort uint16     `json:"sport,omitempty"`
	DPort uint16     `json:"dport,omitempty"`

	iif, oif uint32
}

// rawEvent is a decoded NFT_MSG_TRACE before names are resolved.
type rawEvent struct {
	Event
	network, transport []byte
}

var traceTypes = map[uint32]string{unix.NFT_TRACETYPE_POLICY: "policy", unix.NFT_TRACETYPE_RETURN: "return", unix.NFT_TRACETYPE_RULE: "rule"}

var familyNames = map[uint8]string{unix.NFPROTO_INET: "inet", unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6", unix.NFPROTO_ARP: "arp", unix.NFPROTO_BRIDGE: "bridge", unix.NFPROTO_NETDEV: "netdev"}

// verdictName renders a netfilter verdict code.
func verdictName(code int32, chain string) string {
	switch code {
	case 0:
		return "drop"
	case 1:
		return "accept"
	case 2:
		return "stolen"
	case 3:
		return "queue"
	case 4:
		return "repeat"
	case -1:
		return "continue"
	case -2:
		return "break"
	case -3:
		return "jump " + chain
	case -4:
		return "goto " + chain
	case -5:
		return "return"
	}
	if code&0xffff == 3 { // NF_QUEUE with a queue number
		return "queue"
	}
	return fmt.Sprintf("verdict %d", code)
}

// decode parses one trace message (the nfgenmsg header, then attributes).
func decode(m netlink.Message) (*rawEvent, error) {
	if len(m.Data) < 4 {
		return nil, fmt.Errorf("short trace message")
	}
	ev := &rawEvent{}
	ev.Family = familyNames[m.Data[0]]
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_TRACE_TABLE:
			ev.Table = ad.String()
		case unix.NFTA_TRACE_CHAIN:
			ev.Chain = ad.String()
		case unix.NFTA_TRACE_RULE_HANDLE:
			ev.Handle = ad.Uint64()
		case unix.NFTA_TRACE_TYPE:
			ev.Type = traceTypes[ad.Uint32()]
		case unix.NFTA_TRACE_ID:
			ev.ID = ad.Uint32()
		case unix.NFTA_TRACE_IIF:
			ev.iif = ad.Uint32()
		case unix.NFTA_TRACE_OIF:
			ev.oif = ad.Uint32()
		case unix.NFTA_TRACE_NFPROTO:
			if f, ok := familyNames[uint8(ad.Uint32())]; ok {
				ev.Family = f
			}
		case unix.NFTA_TRACE_NETWORK_HEADER:
			ev.network = ad.Bytes()
		case unix.NFTA_TRACE_TRANSPORT_HEADER:
			ev.transport = ad.Bytes()
		case unix.NFTA_TRACE_POLICY:
			ev.Verdict = verdictName(int32(ad.Uint32()), "")
		case unix.NFTA_TRACE_VERDICT:
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				var code int32
				var chain string
				for nd.Next() {
					switch nd.Type() {
					case unix.NFTA_VERDICT_CODE:
						code = int32(nd.Uint32())
					case unix.NFTA_VERDICT_CHAIN:
						chain = nd.String()
					}
				}
				ev.Verdict = verdictName(code, chain)
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	ev.parseHeaders()
	return ev, nil
}

// parseHeaders fills addresses, protocol and ports from the copies of
// the network and transport headers the kernel sends.
func (ev *rawEvent) parseHeaders() {
	h := ev.network
	switch {
	case len(h) >= 20 && h[0]>>4 == 4:
		ev.Proto = h[9]
		ev.Src, _ = netip.AddrFromSlice(h[12:16])
		ev.Dst, _ = netip.AddrFromSlice(h[16:20])
	case len(h) >= 40 && h[0]>>4 == 6:
		ev.Proto = h[6] // extension headers are not followed
		ev.Src, _ = netip.AddrFromSlice(h[8:24])
		ev.Dst, _ = netip.AddrFromSlice(h[24:40])
	}
	if t := ev.transport; len(t) >= 4 && (ev.Proto == 6 || ev.Proto == 17 || ev.Proto == 132 || ev.Proto == 136) {
		ev.SPort = binary.BigEndian.Uint16(t[0:2])
		ev.DPort = binary.BigEndian.Uint16(t[2:4])
	}
}
