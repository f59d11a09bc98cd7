package rtnl

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

var ne = binary.NativeEndian

const (
	nlmsgHdrLen = 16
	rtmsgLen    = 12

	rtaNHID  = 30 // RTA_NH_ID
	nhaID    = 1
	nhaOIF   = 5
	nhaGW    = 6
	rtmNewNH = 104
	rtmDelNH = 105

	nlmsgerrAttrMsg = 1
	nlmFAckTLVs     = 0x200
	rtmFCloned      = 0x200
	rtnhFOnlink     = 4
	nlmFDumpIntr    = 0x10
)

func appendHdr(b []byte, typ, flags uint16, seq uint32) []byte {
	return ne.AppendUint32(ne.AppendUint32(ne.AppendUint16(ne.AppendUint16(ne.AppendUint32(b, 0), typ), flags), seq), 0)
}

// finish sets the length of the message that starts at off.
func finish(b []byte, off int) []byte {
	ne.PutUint32(b[off:], uint32(len(b)-off))
	return b
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = ne.AppendUint16(ne.AppendUint16(b, uint16(4+len(data))), typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendU32Attr(b []byte, typ uint16, v uint32) []byte {
	b = ne.AppendUint16(ne.AppendUint16(b, 8), typ)
	return ne.AppendUint32(b, v)
}

// appendAddrAttr appends an address without the allocation of AsSlice.
func appendAddrAttr(b []byte, typ uint16, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return appendAttr(b, typ, v[:])
	}
	v := a.As16()
	return appendAttr(b, typ, v[:])
}

func afOf(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// appendRouteMsg encodes an RTM_NEWROUTE (or, with del, RTM_DELROUTE)
// for r under protocol proto. A delete carries exactly the route's key
// (table, destination, priority) and the protocol, so the kernel removes
// that route of that owner and nothing else; scope "nowhere" and type 0
// match any scope and type.
func appendRouteMsg(b []byte, typ, flags uint16, seq uint32, proto uint8, r *Route, del bool) []byte {
	off := len(b)
	b = appendHdr(b, typ, flags, seq)
	tbl := uint8(unix.RT_TABLE_COMPAT)
	if r.Table < 256 {
		tbl = uint8(r.Table)
	}
	scope, rtype := uint8(unix.RT_SCOPE_UNIVERSE), r.RouteType()
	var rflags uint32
	if del {
		scope, rtype = unix.RT_SCOPE_NOWHERE, 0
	} else if len(r.NextHops) == 1 && !r.NextHops[0].Gw.IsValid() && r.NHID == 0 {
		scope = unix.RT_SCOPE_LINK
	}
	if !del && len(r.NextHops) == 1 && r.NextHops[0].OnLink {
		rflags |= rtnhFOnlink
	}
	b = append(b, afOf(r.Dst.Addr()), uint8(r.Dst.Bits()), 0, 0, tbl, proto, scope, rtype)
	b = ne.AppendUint32(b, rflags)
	b = appendU32Attr(b, unix.RTA_TABLE, r.Table)
	if r.Dst.Bits() > 0 {
		b = appendAddrAttr(b, unix.RTA_DST, r.Dst.Addr())
	}
	b = appendU32Attr(b, unix.RTA_PRIORITY, r.Metric)
	if del {
		return finish(b, off)
	}
	if r.Src.IsValid() {
		b = appendAddrAttr(b, unix.RTA_PREFSRC, r.Src)
	}
	switch {
	case r.NHID != 0:
		b = appendU32Attr(b, rtaNHID, r.NHID)
	case len(r.NextHops) == 1:
		nh := &r.NextHops[0]
		if nh.Gw.IsValid() {
			b = appendAddrAttr(b, unix.RTA_GATEWAY, nh.Gw)
		}
		if nh.Ifindex != 0 {
			b = appendU32Attr(b, unix.RTA_OIF, uint32(nh.Ifindex))
		}
	case len(r.NextHops) > 1:
		mp := len(b)
		b = appendAttr(b, unix.RTA_MULTIPATH, nil)
		for i := range r.NextHops {
			nh := &r.NextHops[i]
			nhOff := len(b)
			var fl uint8
			if nh.OnLink {
				fl = rtnhFOnlink
			}
			b = ne.AppendUint16(b, 0)
			b = append(b, fl, uint8(Weight(nh.Weight)-1))
			b = ne.AppendUint32(b, uint32(nh.Ifindex))
			if nh.Gw.IsValid() {
				b = appendAddrAttr(b, unix.RTA_GATEWAY, nh.Gw)
			}
			ne.PutUint16(b[nhOff:], uint16(len(b)-nhOff))
		}
		ne.PutUint16(b[mp:], uint16(len(b)-mp))
	}
	return finish(b, off)
}

// appendNexthopMsg encodes an RTM_NEWNEXTHOP (or, with del,
// RTM_DELNEXTHOP, which needs only the ID).
func appendNexthopMsg(b []byte, flags uint16, seq uint32, proto uint8, nh *Nexthop, del bool) []byte {
	off := len(b)
	if del {
		b = appendHdr(b, rtmDelNH, flags, seq)
		b = append(b, unix.AF_UNSPEC, 0, 0, 0)
		b = ne.AppendUint32(b, 0)
		b = appendU32Attr(b, nhaID, nh.ID)
		return finish(b, off)
	}
	b = appendHdr(b, rtmNewNH, flags, seq)
	var fl uint32
	if nh.OnLink {
		fl = rtnhFOnlink
	}
	b = append(b, afOf(nh.Gw), 0, proto, 0)
	b = ne.AppendUint32(b, fl)
	b = appendU32Attr(b, nhaID, nh.ID)
	b = appendU32Attr(b, nhaOIF, uint32(nh.Ifindex))
	b = appendAddrAttr(b, nhaGW, nh.Gw)
	return finish(b, off)
}

func parseAttrs(b []byte, fn func(typ uint16, data []byte)) {
	for len(b) >= 4 {
		l := int(ne.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		fn(ne.Uint16(b[2:])&0x3fff, b[4:l])
		al := (l + 3) &^ 3
		if al > len(b) {
			return
		}
		b = b[al:]
	}
}

// addrFrom decodes an address attribute. An IPv4-mapped IPv6 address is
// returned as is: the kernel never reports one for an IPv4 gateway.
func addrFrom(d []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(d)
	return a
}

// parseRoute decodes an RTM_NEWROUTE body (after the netlink header).
func parseRoute(b []byte) (Route, bool) {
	if len(b) < rtmsgLen {
		return Route{}, false
	}
	fam, dstLen, tbl, proto, scope, typ := b[0], b[1], b[4], b[5], b[6], b[7]
	flags := ne.Uint32(b[8:])
	if flags&rtmFCloned != 0 || (fam != unix.AF_INET && fam != unix.AF_INET6) {
		return Route{}, false
	}
	r := Route{Table: uint32(tbl), Type: typ, Protocol: proto, Scope: scope}
	var dst netip.Addr
	var single NextHop
	hasSingle := false
	parseAttrs(b[rtmsgLen:], func(t uint16, d []byte) {
		switch t {
		case unix.RTA_TABLE:
			if len(d) >= 4 {
				r.Table = ne.Uint32(d)
			}
		case unix.RTA_DST:
			dst = addrFrom(d)
		case unix.RTA_PRIORITY:
			if len(d) >= 4 {
				r.Metric = ne.Uint32(d)
			}
		case unix.RTA_PREFSRC:
			r.Src = addrFrom(d)
		case unix.RTA_GATEWAY:
			single.Gw, hasSingle = addrFrom(d), true
		case unix.RTA_OIF:
			if len(d) >= 4 {
				single.Ifindex, hasSingle = int(ne.Uint32(d)), true
			}
		case rtaNHID:
			if len(d) >= 4 {
				r.NHID = ne.Uint32(d)
			}
		case unix.RTA_MULTIPATH:
			for len(d) >= 8 {
				l := int(ne.Uint16(d))
				if l < 8 || l > len(d) {
					break
				}
				nh := NextHop{OnLink: d[2]&rtnhFOnlink != 0, Weight: int(d[3]) + 1, Ifindex: int(int32(ne.Uint32(d[4:])))}
				parseAttrs(d[8:l], func(t uint16, v []byte) {
					if t == unix.RTA_GATEWAY {
						nh.Gw = addrFrom(v)
					}
				})
				r.NextHops = append(r.NextHops, nh)
				d = d[min((l+3)&^3, len(d)):]
			}
		}
	})
	if !dst.IsValid() {
		if fam == unix.AF_INET {
			dst = netip.IPv4Unspecified()
		} else {
			dst = netip.IPv6Unspecified()
		}
	}
	r.Dst = netip.PrefixFrom(dst, int(dstLen))
	if hasSingle && len(r.NextHops) == 0 && r.NHID == 0 {
		single.OnLink = flags&rtnhFOnlink != 0
		single.Weight = 1
		r.NextHops = []NextHop{single}
	}
	if r.RouteType() != TypeUnicast && r.RouteType() != TypeLocal {
		r.NextHops = nil // blackhole & co report dev lo: not a path
	}
	return r, true
}

// nlError decodes an NLMSG_ERROR body: nil for an ack, else an *Error
// with the extended-ack message, if any.
func nlError(flags uint16, body []byte) error {
	if len(body) < 4 {
		return errors.New("short netlink error")
	}
	errno := -int32(ne.Uint32(body))
	if errno == 0 {
		return nil
	}
	e := &Error{Errno: syscall.Errno(errno)}
	if flags&nlmFAckTLVs != 0 && len(body) >= 4+nlmsgHdrLen {
		// With NETLINK_CAP_ACK only the request's header is echoed.
		parseAttrs(body[4+nlmsgHdrLen:], func(t uint16, d []byte) {
			if t == nlmsgerrAttrMsg && len(d) > 0 {
				msg := string(d)
				if msg[len(msg)-1] == 0 {
					msg = msg[:len(msg)-1]
				}
				e.Msg = msg
			}
		})
	}
	return e
}
