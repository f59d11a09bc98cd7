package policy

import (
	"fmt"
	"net/netip"

	"github.com/fwdproject/fwd/config"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// builder turns statements into netlink expressions, queueing the
// anonymous sets they need on the connection's batch.
type builder struct {
	c   *nftables.Conn
	t   *nftables.Table
	err error
}

const reg = 1 // NFT_REG_1 (128 bits)

func (b *builder) anon(keyType nftables.SetDatatype, interval, isMap bool, elems []nftables.SetElement) *nftables.Set {
	s := &nftables.Set{Table: b.t, Anonymous: true, Constant: true, Interval: interval, IsMap: isMap, KeyType: keyType}
	if isMap {
		s.DataType = nftables.TypeVerdict
	}
	if keyType == nftables.TypeCTState {
		s.KeyByteOrder = binaryutil.NativeEndian
	}
	if err := b.c.AddSet(s, elems); err != nil && b.err == nil {
		b.err = err
	}
	return s
}

func lookup(s *nftables.Set) *expr.Lookup {
	return &expr.Lookup{SourceRegister: reg, SetName: s.Name, SetID: s.ID}
}

func ifnameBytes(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func cmp(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data} }

func addrBytes(a netip.Addr) []byte { return a.AsSlice() }

// intervalElems encodes inclusive ranges as kernel interval elements.
func intervalElems(n int, from, next func(i int) ([]byte, bool)) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*n)
	for i := 0; i < n; i++ {
		k, _ := from(i)
		out = append(out, nftables.SetElement{Key: k})
		if end, ok := next(i); ok {
			out = append(out, nftables.SetElement{Key: end, IntervalEnd: true})
		}
	}
	return out
}

func addrIntervals(rs []config.AddrRange) []nftables.SetElement {
	return intervalElems(len(rs),
		func(i int) ([]byte, bool) { return addrBytes(rs[i].From), true },
		func(i int) ([]byte, bool) {
			n := rs[i].To.Next()
			if !n.IsValid() || n.Is4() != rs[i].To.Is4() {
				return nil, false
			}
			return addrBytes(n), true
		})
}

// addIfSet queues a named interface set or dispatch map, or (refill) a
// flush of its elements and the new ones. Host byte order in the set's
// metadata makes nft print the names.
func addIfSet(c *nftables.Conn, s *IfSet, refill bool) error {
	ks := &nftables.Set{Table: table, Name: s.Name, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	var el []nftables.SetElement
	if s.Map {
		ks.IsMap, ks.DataType = true, nftables.TypeVerdict
		for _, e := range s.Elems {
			el = append(el, nftables.SetElement{Key: ifnameBytes(e.Key), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.Chain}})
		}
	} else {
		for _, n := range s.Names {
			el = append(el, nftables.SetElement{Key: ifnameBytes(n)})
		}
	}
	if refill {
		c.FlushSet(ks)
		return c.SetAddElements(ks, el)
	}
	return c.AddSet(ks, el)
}

func (b *builder) exprs(s Stmt) []expr.Any {
	switch s := s.(type) {
	case Ifname:
		key := expr.MetaKeyIIFNAME
		if s.Out {
			key = expr.MetaKeyOIFNAME
		}
		load := &expr.Meta{Key: key, Register: reg}
		if s.Set != "" {
			return []expr.Any{load, &expr.Lookup{SourceRegister: reg, SetName: s.Set}}
		}
		if len(s.Names) == 1 {
			return []expr.Any{load, cmp(ifnameBytes(s.Names[0]))}
		}
		var el []nftables.SetElement
		for _, n := range s.Names {
			el = append(el, nftables.SetElement{Key: ifnameBytes(n)})
		}
		return []expr.Any{load, lookup(b.anon(nftables.TypeIFName, false, false, el))}
	case IfnameVmap:
		key := expr.MetaKeyIIFNAME
		if s.Out {
			key = expr.MetaKeyOIFNAME
		}
		return []expr.Any{&expr.Meta{Key: key, Register: reg}, &expr.Lookup{SourceRegister: reg, DestRegister: 0, IsDestRegSet: true, SetName: s.Map}}
	case L4Proto:
		load := &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}
		if len(s.Protos) == 1 {
			return []expr.Any{load, cmp([]byte{s.Protos[0]})}
		}
		var el []nftables.SetElement
		for _, p := range s.Protos {
			el = append(el, nftables.SetElement{Key: []byte{p}})
		}
		return []expr.Any{load, lookup(b.anon(nftables.TypeInetProto, false, false, el))}
	case NFProto:
		return nfproto(s.V6)
	case Addr:
		off, ln := uint32(12), uint32(4)
		kt := nftables.TypeIPAddr
		if s.V6 {
			off, ln, kt = 8, 16, nftables.TypeIP6Addr
		}
		if s.Daddr {
			off += ln
		}
		out := append(nfproto(s.V6), &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: ln})
		switch {
		case s.Set != "":
			return append(out, &expr.Lookup{SourceRegister: reg, SetName: s.Set})
		case len(s.Ranges) == 1:
			r := s.Ranges[0]
			if r.From == r.To {
				return append(out, cmp(addrBytes(r.From)))
			}
			if p, ok := asPrefix(r); ok {
				mask := make([]byte, ln)
				for i := 0; i < p.Bits(); i++ {
					mask[i/8] |= 0x80 >> (i % 8)
				}
				return append(out, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: ln, Mask: mask, Xor: make([]byte, ln)}, cmp(addrBytes(r.From)))
			}
			return append(out, &expr.Range{Op: expr.CmpOpEq, Register: reg, FromData: addrBytes(r.From), ToData: addrBytes(r.To)})
		}
		return append(out, lookup(b.anon(kt, true, false, addrIntervals(s.Ranges))))
	case Ports:
		off := uint32(0)
		if s.Dport {
			off = 2
		}
		out := []expr.Any{&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2}}
		if len(s.Ranges) == 1 {
			r := s.Ranges[0]
			if r.From == r.To {
				return append(out, cmp(portBytes(r.From)))
			}
			return append(out, &expr.Range{Op: expr.CmpOpEq, Register: reg, FromData: portBytes(r.From), ToData: portBytes(r.To)})
		}
		el := intervalElems(len(s.Ranges),
			func(i int) ([]byte, bool) { return portBytes(s.Ranges[i].From), true },
			func(i int) ([]byte, bool) {
				if s.Ranges[i].To == 65535 {
					return nil, false
				}
				return portBytes(s.Ranges[i].To + 1), true
			})
		return append(out, lookup(b.anon(nftables.TypeInetService, true, false, el)))
	case ICMPType:
		out := []expr.Any{&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1}}
		if len(s.Types) == 1 {
			return append(out, cmp([]byte{s.Types[0]}))
		}
		kt := nftables.TypeICMPType
		if s.V6 {
			kt = nftables.TypeICMP6Type
		}
		var el []nftables.SetElement
		for _, t := range s.Types {
			el = append(el, nftables.SetElement{Key: []byte{t}})
		}
		return append(out, lookup(b.anon(kt, false, false, el)))
	case CtState:
		var mask uint32
		for _, st := range s.States {
			mask |= ctBits[st]
		}
		return ctMask(expr.CtKeySTATE, mask)
	case CtStatusDNAT:
		return ctMask(expr.CtKeySTATUS, 1<<5) // IPS_DST_NAT
	case CtStateVmap:
		var el []nftables.SetElement
		for _, e := range []struct {
			st string
			v  expr.VerdictKind
		}{{"established", expr.VerdictAccept}, {"related", expr.VerdictAccept}} {
			el = append(el, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(ctBits[e.st]), VerdictData: &expr.Verdict{Kind: e.v}})
		}
		if s.Invalid != "" {
			el = append(el, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(ctBits["invalid"]), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: s.Invalid}})
		}
		m := b.anon(nftables.TypeCTState, false, true, el)
		return []expr.Any{&expr.Ct{Key: expr.CtKeySTATE, Register: reg}, &expr.Lookup{SourceRegister: reg, IsDestRegSet: true, SetName: m.Name, SetID: m.ID}}
	case Limit:
		return []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: s.Rate.Count, Unit: limitUnits[s.Rate.Unit], Burst: burst(s.Rate)}}
	case Log:
		l := &expr.Log{}
		if s.Prefix != "" {
			l.Key |= 1 << unix.NFTA_LOG_PREFIX
			l.Data = []byte(s.Prefix)
		}
		if s.Group != 0 {
			l.Key |= 1 << unix.NFTA_LOG_GROUP
			l.Group = s.Group
		}
		return []expr.Any{l}
	case Counter:
		return []expr.Any{&expr.Counter{Packets: s.Packets, Bytes: s.Bytes}}
	case Verdict:
		kinds := map[string]expr.VerdictKind{"accept": expr.VerdictAccept, "drop": expr.VerdictDrop, "goto": expr.VerdictGoto, "jump": expr.VerdictJump, "return": expr.VerdictReturn}
		return []expr.Any{&expr.Verdict{Kind: kinds[s.Kind], Chain: s.Chain}}
	case RejectStmt:
		if s.TCP {
			return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
		}
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}}
	case Masquerade:
		return []expr.Any{&expr.Masq{}}
	case ConcatVmap:
		return b.concatVmap(s)
	case CtCount:
		return s.exprs() // quota_linux.go
	case NATStmt:
		typ := expr.NATTypeSourceNAT
		if s.Kind == "dnat" {
			typ = expr.NATTypeDestNAT
		}
		a := s.Addr
		if s.Prefix.IsValid() {
			a = s.Prefix.Addr()
		}
		fam := uint32(unix.NFPROTO_IPV4)
		if a.Is6() {
			fam = unix.NFPROTO_IPV6
		}
		n := &expr.NAT{Type: typ, Family: fam, RegAddrMin: 1}
		out := []expr.Any{&expr.Immediate{Register: 1, Data: addrBytes(a)}}
		switch {
		case s.Prefix.IsValid():
			out = append(out, &expr.Immediate{Register: 2, Data: addrBytes(config.PrefixLast(s.Prefix))})
			n.RegAddrMax, n.Prefix = 2, true
		case s.AddrEnd.IsValid():
			out = append(out, &expr.Immediate{Register: 2, Data: addrBytes(s.AddrEnd)})
			n.RegAddrMax = 2
		}
		if s.Port != 0 {
			out = append(out, &expr.Immediate{Register: 3, Data: portBytes(s.Port)})
			n.RegProtoMin, n.Specified = 3, true
		}
		return append(out, n)
	}
	if b.err == nil {
		b.err = fmt.Errorf("no netlink encoding for %T", s)
	}
	return nil
}

var ctBits = map[string]uint32{"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}

var limitUnits = map[string]expr.LimitTime{"second": expr.LimitTimeSecond, "minute": expr.LimitTimeMinute, "hour": expr.LimitTimeHour, "day": expr.LimitTimeDay}

func nfproto(v6 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if v6 {
		p = unix.NFPROTO_IPV6
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg}, cmp([]byte{p})}
}

func ctMask(key expr.CtKey, mask uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: reg},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: make([]byte, 4)},
	}
}

func asPrefix(r config.AddrRange) (netip.Prefix, bool) {
	for l := 0; l <= r.From.BitLen(); l++ {
		p := netip.PrefixFrom(r.From, l)
		if p.Masked().Addr() == r.From && config.PrefixLast(p) == r.To {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// concatVmap loads each key field into consecutive 32-bit registers and
// looks the concatenation up in an anonymous interval verdict map (the
// kernel picks the pipapo backend).
func (b *builder) concatVmap(s ConcatVmap) []expr.Any {
	var out []expr.Any
	var types []nftables.SetDatatype
	r := uint32(8) // NFT_REG32_00
	addr := func(daddr bool) {
		off, ln, kt := uint32(12), uint32(4), nftables.TypeIPAddr
		if s.Shape.fam == 6 {
			off, ln, kt = 8, 16, nftables.TypeIP6Addr
		}
		if daddr {
			off += ln
		}
		out = append(out, &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: ln})
		types = append(types, kt)
		r += ln / 4
	}
	if s.Shape.fam != 0 {
		out = append(out, nfproto(s.Shape.fam == 6)...)
	}
	if s.Shape.proto {
		out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r})
		types = append(types, nftables.TypeInetProto)
		r++
	}
	if s.Shape.saddr {
		addr(false)
	}
	if s.Shape.daddr {
		addr(true)
	}
	if s.Shape.dport {
		out = append(out, &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: r, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		types = append(types, nftables.TypeInetService)
		r++
	}
	kinds := map[string]expr.VerdictKind{"accept": expr.VerdictAccept, "drop": expr.VerdictDrop, "goto": expr.VerdictGoto}
	el := make([]nftables.SetElement, len(s.Elems))
	for i, e := range s.Elems {
		var k, kend []byte
		for _, f := range e.Fields {
			k = append(k, pad(append([]byte(nil), f.lo...))...)
			kend = append(kend, pad(append([]byte(nil), f.hi...))...)
		}
		el[i] = nftables.SetElement{Key: k, KeyEnd: kend, VerdictData: &expr.Verdict{Kind: kinds[e.Verdict.Kind], Chain: e.Verdict.Chain}}
	}
	kt := types[0]
	concat := len(types) > 1
	if concat {
		kt = nftables.MustConcatSetType(types...)
	}
	set := &nftables.Set{Table: b.t, Anonymous: true, Constant: true, Interval: !s.Exact, Concatenation: concat, IsMap: true, KeyType: kt, DataType: nftables.TypeVerdict}
	switch {
	case s.Exact:
		for i := range el {
			el[i].KeyEnd = nil
			if !concat {
				el[i].Key = el[i].Key[:kt.Bytes]
			}
		}
	case !concat:
		// A single field is a plain interval map: start/end elements.
		el = el[:0]
		for _, e := range s.Elems {
			f := field{e.Fields[0].lo[:kt.Bytes], e.Fields[0].hi[:kt.Bytes]}
			el = append(el, nftables.SetElement{Key: f.lo, VerdictData: &expr.Verdict{Kind: kinds[e.Verdict.Kind], Chain: e.Verdict.Chain}})
			if end, ok := next(f.hi); ok {
				el = append(el, nftables.SetElement{Key: end, IntervalEnd: true})
			}
		}
	}
	if err := b.c.AddSet(set, el); err != nil && b.err == nil {
		b.err = err
	}
	return append(out, &expr.Lookup{SourceRegister: 8, IsDestRegSet: true, SetName: set.Name, SetID: set.ID})
}

// next returns b+1 as a big-endian number, false on overflow.
func next(b []byte) ([]byte, bool) {
	out := append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, true
		}
	}
	return nil, false
}
