package pktlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	nflog "github.com/florianl/go-nflog/v2"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// snapLen is how much of each packet the kernel copies to us: enough for
// an IPv6 header, a few extension headers and the transport ports.
const snapLen = 128

// Reader reads fwd's NFLOG group in one tenant namespace. It uses
// github.com/florianl/go-nflog (a maintained nfnetlink_log client over
// mdlayher/netlink, whose sockets use the runtime poller: no select() and
// its 1024-descriptor limit) with the socket opened inside the namespace
// through the library's NetNS option.
type Reader struct {
	tenant string
	log    *slog.Logger
	nf     *nflog.Nflog
	links  *netlink.Handle // ifindex → name inside the tenant

	mu    sync.Mutex
	names map[uint32]string

	// Lost counts packets the kernel could not queue to us (our socket
	// overflowed: ENOBUFS); the rule's log_limit bounds the rate upstream.
	Lost atomic.Uint64
}

// Open binds fwd's NFLOG group in the namespace h.
func Open(tenant string, h netns.NsHandle, log *slog.Logger) (*Reader, error) {
	nf, err := nflog.Open(&nflog.Config{
		NetNS:    int(h),
		Group:    Group,
		Copymode: nflog.CopyPacket,
		Bufsize:  snapLen,
		// Flush a partly filled batch after 10 ms so a single packet's
		// line is not delayed.
		Timeout: 1,
		Logger:  nflogLogger{log},
	})
	if err != nil {
		return nil, fmt.Errorf("nflog group %d: %w", Group, err)
	}
	links, err := netlink.NewHandleAt(h)
	if err != nil {
		nf.Close()
		return nil, err
	}
	// A burst of logged packets must not overflow the socket before we
	// read it; the kernel caps this at rmem_max unless we may force it.
	_ = nf.Con.SetReadBuffer(4 << 20)
	return &Reader{tenant: tenant, log: log, nf: nf, links: links, names: map[uint32]string{}}, nil
}

// Run delivers every logged packet to emit until ctx is done. A socket
// overflow is counted and reading goes on; it returns only when ctx ends
// or the socket fails for good.
func (r *Reader) Run(ctx context.Context, emit func(Entry)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, 1)
	hook := func(a nflog.Attribute) int {
		if a.Prefix == nil || a.Payload == nil {
			return 0
		}
		id, user, ours := SplitPrefix(*a.Prefix)
		if !ours {
			return 0
		}
		e := Entry{Time: time.Now(), Tenant: r.tenant, Rule: id, Prefix: user}
		if a.Timestamp != nil {
			e.Time = *a.Timestamp
		}
		if a.InDev != nil {
			e.In = r.name(*a.InDev)
		}
		if a.OutDev != nil {
			e.Out = r.name(*a.OutDev)
		}
		Decode(&e, *a.Payload)
		emit(e)
		return 0
	}
	onErr := func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		if errors.Is(err, unix.ENOBUFS) {
			n := r.Lost.Add(1)
			if n&(n-1) == 0 { // 1, 2, 4, 8…: a flood does not flood the log
				r.log.Warn("packet log overflowed; some logged packets were lost", "overflows", n)
			}
			return 0
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			return 0
		}
		select {
		case failed <- err:
		default:
		}
		return 1
	}
	if err := r.nf.RegisterWithErrorFunc(ctx, hook, onErr); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

// Close releases the sockets.
func (r *Reader) Close() error {
	r.links.Close()
	return r.nf.Close()
}

func (r *Reader) name(idx uint32) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.names[idx]; ok {
		return n
	}
	l, err := r.links.LinkByIndex(int(idx))
	if err != nil {
		return fmt.Sprintf("if%d", idx)
	}
	n := l.Attrs().Name
	r.names[idx] = n
	return n
}

// nflogLogger routes the library's own diagnostics to our logger.
type nflogLogger struct{ log *slog.Logger }

func (l nflogLogger) Debugf(format string, args ...any) {
	l.log.Debug("nflog: " + fmt.Sprintf(format, args...))
}
func (l nflogLogger) Errorf(format string, args ...any) {
	l.log.Debug("nflog: " + fmt.Sprintf(format, args...))
}
