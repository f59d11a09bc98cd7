package dhcpclient

import (
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"golang.org/x/sys/unix"
)

// watchedConn is an exchange's socket. nclient4's and nclient6's receive
// loops end for good at the first read error (a packet socket reads
// ENETDOWN once when its interface goes down), so the error is kept, and
// onFail is called once, for the client to open a new socket.
type watchedConn struct {
	net.PacketConn
	ifindex int // the interface the socket is bound to
	onFail  func()

	mu     sync.Mutex
	err    error
	closed bool // by us: the read error that follows is no failure
}

func (w *watchedConn) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return w.PacketConn.Close()
}

func (w *watchedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := w.PacketConn.ReadFrom(b)
	if err != nil {
		w.mu.Lock()
		first := w.err == nil && !w.closed
		if first {
			w.err = err
		}
		w.mu.Unlock()
		if first && w.onFail != nil {
			w.onFail()
		}
	}
	return n, a, err
}

// failed returns the read error that ended the socket, or nil.
func (w *watchedConn) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// ifindex returns the index interface name has in namespace now.
func ifindex(namespace, name string) (int, error) {
	h, err := ns.Open(namespace)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	nh, err := rtnl.LinkHandle(h)
	if err != nil {
		return 0, err
	}
	defer nh.Close()
	l, err := nh.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

// bindToDevice is a net.ListenConfig Control binding the socket to
// ifname (SO_BINDTODEVICE): it sends and hears on that interface only.
func bindToDevice(ifname string) func(_, _ string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
		}); err != nil {
			return err
		}
		return serr
	}
}
