package routing

// Raw rtnetlink for routes and nexthop objects. fwd speaks it directly
// rather than through vishvananda/netlink because the installer must
// batch thousands of messages per sendmsg and parse million-route dumps
// without per-route allocations of library objects.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var ne = binary.NativeEndian

const (
	nlmsgHdrLen = 16
	rtmsgLen    = 12
	nhmsgLen    = 8

	// Socket buffers: large enough that a chunk's error replies never
	// overflow (overflow would lose replies: ENOBUFS).
	sndBuf = 32 << 20
	rcvBuf = 64 << 20
	// chunkBytes bounds one sendmsg; ~4000 route messages.
	chunkBytes = 256 << 10

	rtaNHID  = 30 // RTA_NH_ID
	nhaID    = 1
	nhaOIF   = 5
	nhaGW    = 6
	rtmNewNH = 104
	rtmDelNH = 105

	netlinkCapAck     = 10
	netlinkExtAck     = 11
	netlinkStrictChk  = 12
	nlmsgerrAttrMsg   = 1
	nlmFAckTLVs       = 0x200
	rtmFCloned        = 0x200
	rtnhFOnlink       = 4
	nlmFDumpIntr      = 0x10
	defaultReadBuffer = 1 << 20
)

// errDumpInterrupted: the table changed during a dump; retry it.
var errDumpInterrupted = errors.New("netlink dump interrupted")

// conn is one rtnetlink socket opened inside a namespace.
type conn struct {
	fd      int
	seq     uint32
	rbuf    []byte
	wbuf    []byte // reused by batch: the BGP FIB calls it for every coalesced update
	maxMsgs int    // requests per sendmsg, so that their failures fit the receive buffer
}

func openConn(h netns.NsHandle) (*conn, error) {
	fd := -1
	open := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		return err
	}
	var err error
	if h.IsOpen() {
		// A socket stays in the namespace it was created in.
		err = ns.Do(h, open)
	} else {
		err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	c := &conn{fd: fd, rbuf: make([]byte, defaultReadBuffer)}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndBuf) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndBuf)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	// Every failed request queues an error (~1 KiB of buffer accounting
	// each); without CAP_NET_ADMIN the buffer stays small, so send fewer
	// requests per sendmsg rather than lose replies.
	c.maxMsgs = 1 << 16
	if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		c.maxMsgs = max(16, min(c.maxMsgs, got/2048))
	}
	// Short acks (no echo of the request), error strings, kernel-side
	// dump filtering by table and protocol. All optional.
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, netlinkCapAck, 1)
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, netlinkExtAck, 1)
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, netlinkStrictChk, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return c, nil
}

func (c *conn) close() error { return unix.Close(c.fd) }

// --- encoding ---

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
	var d [4]byte
	ne.PutUint32(d[:], v)
	return appendAttr(b, typ, d[:])
}

func afOf(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func appendRouteMsg(b []byte, typ, flags uint16, seq uint32, proto uint8, r *Route, del bool) []byte {
	off := len(b)
	b = appendHdr(b, typ, flags, seq)
	tbl := uint8(unix.RT_TABLE_COMPAT)
	if r.Table < 256 {
		tbl = uint8(r.Table)
	}
	scope, rtype := uint8(unix.RT_SCOPE_UNIVERSE), r.typ()
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
		b = appendAttr(b, unix.RTA_DST, r.Dst.Addr().AsSlice())
	}
	b = appendU32Attr(b, unix.RTA_PRIORITY, r.Metric)
	if del {
		return finish(b, off)
	}
	if r.Src.IsValid() {
		b = appendAttr(b, unix.RTA_PREFSRC, r.Src.AsSlice())
	}
	switch {
	case r.NHID != 0:
		b = appendU32Attr(b, rtaNHID, r.NHID)
	case len(r.NextHops) == 1:
		nh := r.NextHops[0]
		if nh.Gw.IsValid() {
			b = appendAttr(b, unix.RTA_GATEWAY, nh.Gw.AsSlice())
		}
		if nh.Ifindex != 0 {
			b = appendU32Attr(b, unix.RTA_OIF, uint32(nh.Ifindex))
		}
	case len(r.NextHops) > 1:
		mp := len(b)
		b = appendAttr(b, unix.RTA_MULTIPATH, nil)
		for _, nh := range r.NextHops {
			nhOff := len(b)
			var fl uint8
			if nh.OnLink {
				fl = rtnhFOnlink
			}
			b = ne.AppendUint16(b, 0)
			b = append(b, fl, uint8(weight(nh.Weight)-1))
			b = ne.AppendUint32(b, uint32(nh.Ifindex))
			if nh.Gw.IsValid() {
				b = appendAttr(b, unix.RTA_GATEWAY, nh.Gw.AsSlice())
			}
			ne.PutUint16(b[nhOff:], uint16(len(b)-nhOff))
		}
		ne.PutUint16(b[mp:], uint16(len(b)-mp))
	}
	return finish(b, off)
}

// --- decoding ---

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
				d = d[(l+3)&^3:]
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
	if r.typ() != TypeUnicast && r.typ() != 2 /* local */ {
		r.NextHops = nil // blackhole & co report dev lo: not a path
	}
	return r, true
}

// --- exchange ---

func (c *conn) nextSeq() uint32 { c.seq++; return c.seq }

func (c *conn) send(b []byte) error {
	for {
		err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != unix.EINTR {
			return err
		}
	}
}

func (c *conn) recv() ([]byte, error) {
	for {
		n, _, err := unix.Recvfrom(c.fd, c.rbuf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return c.rbuf[:n], nil
	}
}

// nlError decodes an NLMSG_ERROR body: errno (0 is an ack) and the
// extended-ack message, if any.
func nlError(flags uint16, body []byte) error {
	if len(body) < 4 {
		return errors.New("short netlink error")
	}
	errno := -int32(ne.Uint32(body))
	if errno == 0 {
		return nil
	}
	var err error = syscall.Errno(errno)
	if flags&nlmFAckTLVs != 0 && len(body) >= 4+nlmsgHdrLen {
		// With NETLINK_CAP_ACK only the request's header is echoed.
		parseAttrs(body[4+nlmsgHdrLen:], func(t uint16, d []byte) {
			if t == nlmsgerrAttrMsg && len(d) > 0 {
				msg := string(d)
				if msg[len(msg)-1] == 0 {
					msg = msg[:len(msg)-1]
				}
				err = &kernelError{errno: syscall.Errno(errno), msg: msg}
			}
		})
	}
	return err
}

type kernelError struct {
	errno syscall.Errno
	msg   string
}

func (e *kernelError) Error() string { return e.errno.Error() + ": " + e.msg }
func (e *kernelError) Unwrap() error { return e.errno }

// walk calls fn for every message in a receive buffer.
func walk(b []byte, fn func(typ, flags uint16, seq uint32, body []byte) error) error {
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return errors.New("malformed netlink message")
		}
		if err := fn(ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:]), b[nlmsgHdrLen:l]); err != nil {
			return err
		}
		al := (l + 3) &^ 3
		if al > len(b) {
			break
		}
		b = b[al:]
	}
	return nil
}

// dump sends a dump request and calls fn with each reply body.
func (c *conn) dump(req []byte, seq uint32, fn func(typ uint16, body []byte)) error {
	if err := c.send(req); err != nil {
		return err
	}
	intr := false
	for {
		b, err := c.recv()
		if err != nil {
			return err
		}
		done := false
		err = walk(b, func(typ, flags uint16, s uint32, body []byte) error {
			if s != seq {
				return nil // a late reply to something else
			}
			if flags&nlmFDumpIntr != 0 {
				intr = true
			}
			switch typ {
			case unix.NLMSG_DONE:
				// A dump that failed midway says so in NLMSG_DONE.
				done = true
				if len(body) >= 4 && int32(ne.Uint32(body)) < 0 {
					return nlError(flags, body)
				}
			case unix.NLMSG_ERROR:
				done = true
				return nlError(flags, body)
			default:
				fn(typ, body)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			if intr {
				return errDumpInterrupted
			}
			return nil
		}
	}
}

// dumpRoutes reads the routes of one family (unix.AF_INET/AF_INET6) in
// one table (0: all) and, when proto is not 0, of that protocol only.
// Filtering happens in the kernel where it can (strict checking) and is
// repeated here for kernels that ignore the filter.
func (c *conn) dumpRoutes(af uint8, table uint32, proto uint8, fn func(Route)) error {
	for range 10 {
		seq := c.nextSeq()
		req := appendHdr(make([]byte, 0, 64), unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
		tb := uint8(0)
		if table != 0 && table < 256 {
			tb = uint8(table)
		}
		req = append(req, af, 0, 0, 0, tb, proto, 0, 0)
		req = ne.AppendUint32(req, 0)
		if table != 0 {
			req = appendU32Attr(req, unix.RTA_TABLE, table)
		}
		req = finish(req, 0)
		err := c.dump(req, seq, func(typ uint16, body []byte) {
			if typ != unix.RTM_NEWROUTE {
				return
			}
			r, ok := parseRoute(body)
			if !ok || (table != 0 && r.Table != table) || (proto != 0 && r.Protocol != proto) {
				return
			}
			fn(r)
		})
		if errors.Is(err, errDumpInterrupted) {
			continue
		}
		if table != 0 && errors.Is(err, unix.ENOENT) {
			return nil // the family has no such table (yet): it is empty
		}
		return err
	}
	return fmt.Errorf("route dump: %w 10 times", errDumpInterrupted)
}

// batch sends n requests, built by build, several per sendmsg. Only the
// last request of each sendmsg asks for an ack; the kernel processes a
// sendmsg's requests in order and answers failures anyway, so when that
// ack arrives every failure of the chunk has been read. It returns the
// failures by request index.
func (c *conn) batch(n int, build func(b []byte, i int, flags uint16, seq uint32) []byte) (map[int]error, error) {
	errs := map[int]error{}
	if c.wbuf == nil {
		c.wbuf = make([]byte, 0, chunkBytes+4096)
	}
	buf := c.wbuf
	for i := 0; i < n; {
		buf = buf[:0]
		first := i
		base := c.seq + 1
		var lastSeq uint32
		for i < n && len(buf) < chunkBytes && i-first < c.maxMsgs {
			lastSeq = c.nextSeq()
			flags := uint16(unix.NLM_F_REQUEST)
			start := len(buf)
			buf = build(buf, i, flags, lastSeq)
			// Ask for an ack on the chunk's last message; we know it is
			// last only afterwards, so patch the flags in place.
			if i+1 == n || len(buf) >= chunkBytes || i+1-first >= c.maxMsgs {
				ne.PutUint16(buf[start+6:], ne.Uint16(buf[start+6:])|unix.NLM_F_ACK)
			}
			i++
		}
		c.wbuf = buf[:0] // keep any growth for the next call
		if err := c.send(buf); err != nil {
			return errs, fmt.Errorf("netlink send: %w", err)
		}
		for done := false; !done; {
			b, err := c.recv()
			if err != nil {
				return errs, fmt.Errorf("netlink receive: %w", err)
			}
			walk(b, func(typ, flags uint16, seq uint32, body []byte) error {
				if typ != unix.NLMSG_ERROR || seq < base || seq > lastSeq {
					return nil
				}
				if err := nlError(flags, body); err != nil {
					errs[first+int(seq-base)] = err
				}
				if seq == lastSeq {
					done = true
				}
				return nil
			})
		}
	}
	return errs, nil
}
