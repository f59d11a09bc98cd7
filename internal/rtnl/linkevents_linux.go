package rtnl

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LinkEvent is one RTM_NEWLINK or RTM_DELLINK notification.
type LinkEvent struct {
	Deleted bool // RTM_DELLINK: deleted, or moved out of the namespace
	Index   int
	Name    string
	Kind    string // IFLA_INFO_KIND ("veth", "macvlan", …); "" for a plain device
	MAC     net.HardwareAddr
	Alias   string
	// NSID is the id (in the subscription's namespace) of the namespace
	// the event happened in, for a subscription to all namespaces; -1
	// for the subscription's own.
	NSID int
}

// ErrOverflow is what Read returns when the kernel dropped notifications
// because the receive buffer was full (ENOBUFS). The subscription stays
// usable; what was lost must be re-read some other way.
var ErrOverflow = errors.New("link events lost: receive buffer overflow")

// LinkSubscription receives the link notifications of one namespace or,
// with allNamespaces, of every namespace that has an id in it
// (NETLINK_LISTEN_ALL_NSID; Conn.NamespaceID assigns one): one descriptor
// for a daemon and all its tenants. It costs no buffer while it waits: a
// read buffer is taken from a shared pool only while a datagram is
// copied out (vishvananda/netlink's keeps 64 KiB per waiting
// subscription). The socket goes through Go's poller, and Close from
// another goroutine ends a blocked Read.
type LinkSubscription struct {
	f  *os.File
	rc syscall.RawConn
}

// SubscribeLinks opens a subscription in namespace h (netns.None(): the
// caller's). rcvbuf > 0 sets the receive buffer (forced above
// net.core.rmem_max when the caller has CAP_NET_ADMIN).
func SubscribeLinks(h netns.NsHandle, rcvbuf int, allNamespaces bool) (*LinkSubscription, error) {
	fd := -1
	open := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		return err
	}
	var err error
	if h.IsOpen() {
		err = ns.Do(h, open) // a socket stays in the namespace it was created in
	} else {
		err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if rcvbuf > 0 && unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		optional(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	if allNamespaces {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_LISTEN_ALL_NSID, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("netlink listen to all namespaces: %w", err)
		}
	}
	f := os.NewFile(uintptr(fd), "rtnl-link-events")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &LinkSubscription{f: f, rc: rc}, nil
}

// Close ends the subscription; a Read in progress returns os.ErrClosed.
func (s *LinkSubscription) Close() error { return s.f.Close() }

var eventBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Read waits for notifications and returns those of one datagram.
func (s *LinkSubscription) Read() ([]LinkEvent, error) {
	var evs []LinkEvent
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		evs, rerr = nil, nil
		// The datagram's length first (MSG_PEEK|MSG_TRUNC), so that no
		// message is ever cut whatever its size.
		n, _, err := unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EAGAIN || err == unix.EINTR {
			return false
		}
		if err != nil {
			rerr = err
			return true
		}
		bp := eventBufs.Get().(*[]byte)
		defer eventBufs.Put(bp)
		if len(*bp) < n {
			*bp = make([]byte, n)
		}
		var oob [64]byte
		n, oobn, _, from, err := unix.Recvmsg(int(fd), *bp, oob[:], 0)
		if err != nil {
			rerr = err
			return err != unix.EAGAIN
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			return true // not from the kernel
		}
		nsid := -1
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_NETLINK && cm.Header.Type == unix.NETLINK_LISTEN_ALL_NSID && len(cm.Data) >= 4 {
					nsid = int(int32(ne.Uint32(cm.Data)))
				}
			}
		}
		evs, rerr = parseLinkEvents((*bp)[:n], nsid)
		return true
	})
	if err != nil {
		return nil, err
	}
	if errors.Is(rerr, unix.ENOBUFS) {
		return nil, ErrOverflow
	}
	return evs, rerr
}

// ifinfomsg: family, pad, type (2), index (4), flags (4), change (4).
const ifinfomsgLen = 16

func parseLinkEvents(b []byte, nsid int) ([]LinkEvent, error) {
	var evs []LinkEvent
	err := walk(b, func(typ, _ uint16, _ uint32, body []byte) error {
		if (typ != unix.RTM_NEWLINK && typ != unix.RTM_DELLINK) || len(body) < ifinfomsgLen {
			return nil
		}
		ev := LinkEvent{Deleted: typ == unix.RTM_DELLINK, Index: int(int32(ne.Uint32(body[4:]))), NSID: nsid}
		parseAttrs(body[ifinfomsgLen:], func(t uint16, d []byte) {
			switch t {
			case unix.IFLA_IFNAME:
				ev.Name = cstring(d)
			case unix.IFLA_IFALIAS:
				ev.Alias = cstring(d)
			case unix.IFLA_ADDRESS:
				ev.MAC = net.HardwareAddr(append([]byte(nil), d...))
			case unix.IFLA_LINKINFO:
				parseAttrs(d, func(t uint16, d []byte) {
					if t == unix.IFLA_INFO_KIND {
						ev.Kind = cstring(d)
					}
				})
			}
		})
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}

func cstring(d []byte) string {
	for i, c := range d {
		if c == 0 {
			return string(d[:i])
		}
	}
	return string(d)
}
