package daemon

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Limits that keep a local user from crashing or starving the daemon.
//
// The nftables library (google/nftables, the version we pin) checks its
// netlink socket with pselect(2) and a unix.FdSet, which holds descriptors
// 0-1023 only: a socket numbered 1024 or more makes it panic (index out
// of range), taking the daemon down in the middle of an apply. Go raises
// the soft RLIMIT_NOFILE to the hard limit when a program starts, so
// nothing stopped descriptors from growing past 1023: 1,100 idle
// connections to the metrics port, which any local user may open, were
// enough. So:
//   - every fwd process puts its soft limit back to 1024
//     (LimitDescriptors): past it socket(2) fails with EMFILE, an error
//     the caller reports, never a descriptor the library cannot handle;
//   - every listener accepts at most a fixed number of connections
//     (limitListener): the rest wait in the kernel's backlog without
//     costing a descriptor, so the listeners together hold at most
//     apiConns+apiConns+metricsConns of the 1024 and the kernel sockets of
//     applies and scrapes keep the rest;
//   - connections time out (serverTimeouts): a client that sends nothing,
//     sends slowly or idles on a keep-alive connection loses it;
//   - should accept(2) still fail with EMFILE, http.Server sleeps and
//     retries (up to a second) instead of stopping the listener.

// descriptorLimit is the highest soft RLIMIT_NOFILE fwd runs with: the
// size of a select(2) descriptor set (FD_SETSIZE).
const descriptorLimit = 1024

// Connections each listener serves at once.
const (
	apiConns     = 64
	metricsConns = 16
	// metricsInFlight bounds concurrent scrapes (each reads the kernel);
	// more get 503.
	metricsInFlight = 4
)

// LimitDescriptors sets the soft RLIMIT_NOFILE of this process (and of
// the processes it starts) to at most 1024, see above. Call it first
// thing in main.
func LimitDescriptors() error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if rl.Cur <= descriptorLimit {
		return nil
	}
	rl.Cur = descriptorLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_NOFILE %d: %w", descriptorLimit, err)
	}
	return nil
}

// serverTimeouts sets the timeouts of one listener's server. Requests
// that apply a configuration lift the read and write deadlines once they
// are authorised (mgmt's applyDeadlines): an apply may take longer.
func serverTimeouts(s *http.Server) {
	s.ReadHeaderTimeout = 5 * time.Second
	s.ReadTimeout = 15 * time.Second // bodies are at most 1 MiB
	s.WriteTimeout = 30 * time.Second
	s.IdleTimeout = 30 * time.Second
	s.MaxHeaderBytes = 64 << 10
}

// limitListener accepts at most n connections at a time; Accept waits
// while n are open. golang.org/x/net/netutil.LimitListener does the same;
// this one is a few lines and needs no new dependency.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{} // closed by Close: a waiting Accept returns
	closeOnce sync.Once
}

func limitConns(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
