package trace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Match selects the packets to trace. Zero fields match anything.
type Match struct {
	In    string       // input interface (prerouting only: locally sent packets are then not traced)
	Src   netip.Prefix // source address or prefix
	Dst   netip.Prefix
	Proto uint8 // IP protocol number; required with ports
	SPort uint16
	DPort uint16
}

func (m Match) check() error {
	if m.Src.IsValid() && m.Dst.IsValid() && m.Src.Addr().Is4() != m.Dst.Addr().Is4() {
		return fmt.Errorf("source %s and destination %s are of different families", m.Src, m.Dst)
	}
	if (m.SPort != 0 || m.DPort != 0) && m.Proto != unix.IPPROTO_TCP && m.Proto != unix.IPPROTO_UDP && m.Proto != unix.IPPROTO_SCTP && m.Proto != unix.IPPROTO_UDPLITE {
		return fmt.Errorf("ports need proto tcp, udp, sctp or udplite")
	}
	return nil
}

// String renders the match in nft syntax.
func (m Match) String() string {
	var parts []string
	if m.In != "" {
		parts = append(parts, fmt.Sprintf("iifname %q", m.In))
	}
	for _, a := range []struct {
		p   netip.Prefix
		key string
	}{{m.Src, "saddr"}, {m.Dst, "daddr"}} {
		if !a.p.IsValid() {
			continue
		}
		fam := "ip"
		if a.p.Addr().Is6() {
			fam = "ip6"
		}
		s := a.p.Masked().String()
		if a.p.IsSingleIP() {
			s = a.p.Addr().String()
		}
		parts = append(parts, fam+" "+a.key+" "+s)
	}
	if m.Proto != 0 {
		parts = append(parts, fmt.Sprintf("meta l4proto %d", m.Proto))
	}
	if m.SPort != 0 {
		parts = append(parts, fmt.Sprintf("th sport %d", m.SPort))
	}
	if m.DPort != 0 {
		parts = append(parts, fmt.Sprintf("th dport %d", m.DPort))
	}
	if len(parts) == 0 {
		return "every packet"
	}
	return strings.Join(parts, " ")
}

const reg = 1

func cmpEq(b []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: b} }

// exprs builds the rule "match … meta nftrace set 1". out: the rule is
// for the output hook, where there is no input interface.
func (m Match) exprs(out bool) []expr.Any {
	var e []expr.Any
	if m.In != "" && !out {
		name := make([]byte, unix.IFNAMSIZ)
		copy(name, m.In)
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg}, cmpEq(name))
	}
	fam := func(v6 bool) {
		p := byte(unix.NFPROTO_IPV4)
		if v6 {
			p = unix.NFPROTO_IPV6
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg}, cmpEq([]byte{p}))
	}
	famDone := false
	for _, a := range []struct {
		p     netip.Prefix
		daddr bool
	}{{m.Src, false}, {m.Dst, true}} {
		if !a.p.IsValid() {
			continue
		}
		v6 := a.p.Addr().Is6()
		if !famDone {
			fam(v6)
			famDone = true
		}
		off, ln := uint32(12), uint32(4)
		if v6 {
			off, ln = 8, 16
		}
		if a.daddr {
			off += ln
		}
		e = append(e, &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: ln})
		p := a.p.Masked()
		if p.Bits() < p.Addr().BitLen() {
			mask := make([]byte, ln)
			for i := 0; i < p.Bits(); i++ {
				mask[i/8] |= 0x80 >> (i % 8)
			}
			e = append(e, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: ln, Mask: mask, Xor: make([]byte, ln)})
		}
		e = append(e, cmpEq(p.Addr().AsSlice()))
	}
	if m.Proto != 0 {
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}, cmpEq([]byte{m.Proto}))
	}
	for _, p := range []struct {
		v   uint16
		off uint32
	}{{m.SPort, 0}, {m.DPort, 2}} {
		if p.v != 0 {
			e = append(e, &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: p.off, Len: 2},
				cmpEq([]byte{byte(p.v >> 8), byte(p.v)}))
		}
	}
	return append(e,
		&expr.Immediate{Register: reg, Data: []byte{1}},
		&expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: reg})
}
