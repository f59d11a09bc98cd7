package rtnl

import (
	"errors"
	"fmt"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// Socket buffers: large enough that a chunk's error replies never
	// overflow (overflow would lose replies: ENOBUFS).
	sndBuf = 32 << 20
	rcvBuf = 64 << 20
	// chunkBytes bounds one sendmsg; ~4000 route messages.
	chunkBytes        = 256 << 10
	defaultReadBuffer = 1 << 20
)

// Conn is one rtnetlink socket created inside a namespace. It is not safe
// for concurrent use: callers that share one serialise their calls.
type Conn struct {
	fd      int
	seq     uint32
	rbuf    []byte
	wbuf    []byte // reused by every write: no per-batch allocation
	maxMsgs int    // requests per sendmsg, so that their failures fit the receive buffer
}

// Open creates a Conn in namespace h; an unopened handle (netns.None())
// means the caller's namespace (the BGP speaker runs inside its tenant's).
func Open(h netns.NsHandle) (*Conn, error) {
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
	c := &Conn{fd: fd, rbuf: make([]byte, defaultReadBuffer)}
	// Without CAP_NET_ADMIN the FORCE variants fail; the plain ones then
	// give what net.core.[rw]mem_max allows, and maxMsgs below adapts to
	// the buffer actually granted.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndBuf) != nil {
		optional(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndBuf)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		optional(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	// Every failed request queues an error (~1 KiB of buffer accounting
	// each); without CAP_NET_ADMIN the buffer stays small, so send fewer
	// requests per sendmsg rather than lose replies.
	c.maxMsgs = 1 << 16
	if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		c.maxMsgs = max(16, min(c.maxMsgs, got/2048))
	}
	// Short acks (no echo of the request), error strings, kernel-side
	// dump filtering by table and protocol. All optional: replies are
	// parsed either way, and dumps filter again in user space.
	optional(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	optional(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	optional(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return c, nil
}

// optional sets a socket option the Conn works without (an older kernel
// may not know it): a failure is not an error.
func optional(fd, level, opt, v int) { _ = unix.SetsockoptInt(fd, level, opt, v) }

// Close releases the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

func (c *Conn) nextSeq() uint32 { c.seq++; return c.seq }

func (c *Conn) send(b []byte) error {
	for {
		err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != unix.EINTR {
			return err
		}
	}
}

func (c *Conn) recv() ([]byte, error) {
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
