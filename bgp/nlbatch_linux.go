package bgp

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// nlWriter writes routes in batches: many RTM_NEWROUTE/RTM_DELROUTE
// messages per sendmsg, then their acks. With one request and one ack per
// route (and a 64 KiB receive buffer allocated per request by the generic
// library) a full table spends its time in syscalls and the garbage
// collector.
type nlWriter struct {
	fd  int
	seq uint32
	buf []byte
	rb  []byte
	ops []nlOp
}

type nlOp struct {
	dst netip.Prefix
	gw  netip.Addr // invalid: delete
}

const nlBatch = 1024

func newNLWriter() (*nlWriter, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Acks carry only the header of the request; room for a full batch.
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 0)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	return &nlWriter{fd: fd, buf: make([]byte, 0, nlBatch*96), rb: make([]byte, 1<<20)}, nil
}

func (w *nlWriter) close() { unix.Close(w.fd) }

func nlAttr(b []byte, typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (w *nlWriter) appendMsg(table uint32, op nlOp, seq uint32) {
	b := w.buf
	off := len(b)
	typ, flags := uint16(unix.RTM_NEWROUTE), uint16(unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	scope, rtype := uint8(unix.RT_SCOPE_UNIVERSE), uint8(unix.RTN_UNICAST)
	if !op.gw.IsValid() {
		typ, flags = unix.RTM_DELROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK
		scope, rtype = unix.RT_SCOPE_NOWHERE, 0
	}
	b = binary.NativeEndian.AppendUint32(b, 0) // length, set below
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	fam := uint8(unix.AF_INET)
	if op.dst.Addr().Is6() {
		fam = unix.AF_INET6
	}
	tbl := uint8(unix.RT_TABLE_UNSPEC)
	if table < 256 {
		tbl = uint8(table)
	}
	b = append(b, fam, uint8(op.dst.Bits()), 0, 0, tbl, Protocol, scope, rtype, 0, 0, 0, 0)
	b = nlAttr(b, unix.RTA_DST, op.dst.Addr().AsSlice())
	if op.gw.IsValid() {
		b = nlAttr(b, unix.RTA_GATEWAY, op.gw.AsSlice())
	}
	b = nlAttr(b, unix.RTA_TABLE, binary.NativeEndian.AppendUint32(nil, table))
	binary.NativeEndian.PutUint32(b[off:], uint32(len(b)-off))
	w.buf = b
}

// write applies ops and returns the error of each failed one (by index).
// Deleting a route that is already gone is not an error.
func (w *nlWriter) write(table uint32, ops []nlOp) (map[int]error, error) {
	failed := map[int]error{}
	for start := 0; start < len(ops); start += nlBatch {
		end := min(start+nlBatch, len(ops))
		w.buf = w.buf[:0]
		first := w.seq + 1
		for i := start; i < end; i++ {
			w.seq++
			w.appendMsg(table, ops[i], w.seq)
		}
		if err := unix.Sendto(w.fd, w.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return failed, fmt.Errorf("netlink send: %w", err)
		}
		pending := end - start
		for pending > 0 {
			n, _, err := unix.Recvfrom(w.fd, w.rb, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return failed, fmt.Errorf("netlink receive: %w", err)
			}
			b := w.rb[:n]
			for len(b) >= unix.NLMSG_HDRLEN {
				l := int(binary.NativeEndian.Uint32(b[0:]))
				if l < unix.NLMSG_HDRLEN || l > len(b) {
					return failed, fmt.Errorf("netlink: truncated message")
				}
				typ := binary.NativeEndian.Uint16(b[4:])
				seq := binary.NativeEndian.Uint32(b[8:])
				if typ == unix.NLMSG_ERROR && seq >= first && seq <= w.seq && l >= unix.NLMSG_HDRLEN+4 {
					pending--
					if errno := -int32(binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:])); errno != 0 {
						i := start + int(seq-first)
						if !(errno == int32(unix.ESRCH) && !ops[i].gw.IsValid()) {
							failed[i] = unix.Errno(errno)
						}
					}
				}
				b = b[min((l+3)&^3, len(b)):]
			}
		}
	}
	return failed, nil
}
