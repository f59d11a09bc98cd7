package dhcpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"golang.org/x/sys/unix"
)

// Config is one interface's DHCPv4 or DHCPv6 client.
type Config struct {
	Namespace string // pinned namespace name (the tenant)
	Interface string // name inside the namespace
	V6        bool   // DHCPv6 (IA_NA) rather than DHCPv4
	PD        int    // v6: > 0 asks for a delegated prefix of this length too (IA_PD)
	Hostname  string // option 12 (v4) or the client FQDN option (v6), optional
	// Kernel applies leases; nil only reports them.
	Kernel Kernel
	// OnEvent is called, on the client's goroutine, after each lease
	// change has been applied. It must not block for long.
	OnEvent func(Event)
	// MaxRenew caps T1 (see Lease.Timers); 0: the server's timers.
	MaxRenew time.Duration
	// Timeout is the wait for one reply (doubled on each retry);
	// 0: 2 seconds.
	Timeout time.Duration
	// MaxBackoff bounds the pause between failed acquisitions; 0: one minute.
	MaxBackoff time.Duration
}

// exchange is one family's messages: the state machine (Client) is the
// same for both (RFC 2131 4.4 and RFC 8415 18.2 share INIT, BOUND,
// RENEWING at T1, REBINDING at T2, expiry and release).
type exchange interface {
	// acquire gets a new lease, asking for want if valid (DISCOVER to
	// ACK; SOLICIT to REPLY).
	acquire(ctx context.Context, want netip.Addr) (*Lease, error)
	// extend renews l with its server or, with rebind, any server. A
	// server refusing the lease (NAK, NoBinding) is ErrRefused.
	extend(ctx context.Context, l *Lease, rebind bool) (*Lease, error)
	// release gives l back.
	release(l *Lease) error
	// conn is the socket, to tell whether it still works.
	conn() *watchedConn
	close() error
}

// ErrRefused is a server refusing a lease the client holds (DHCPNAK, or
// DHCPv6 NoBinding/NotOnLink): the lease is dropped at once.
var ErrRefused = errors.New("lease refused by the server")

// Client runs the DHCP state machine for one interface.
type Client struct {
	cfg     Config
	log     *slog.Logger
	x       exchange
	ctx     context.Context // cancelled by Stop
	cancel  context.CancelFunc
	release atomic.Bool // Stop's choice
	kick    chan struct{}
	done    chan struct{}

	mu    sync.Mutex
	lease *Lease

	adopted *Lease // the state machine's: an address found at Start, until the first bind
}

// Start opens the client's socket inside the namespace and starts the
// state machine. An address a previous client left on the interface is
// asked for again, so a daemon restart keeps the WAN address.
func Start(cfg Config, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = time.Minute
	}
	c := &Client{cfg: cfg, log: log.With("interface", cfg.Interface, "family", cfg.family()),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	x, err := c.open()
	if err != nil {
		return nil, err
	}
	c.x = x
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var want netip.Addr
	if cfg.Kernel != nil {
		if p, ok, err := cfg.Kernel.Learned(cfg.Interface, cfg.V6); err == nil && ok {
			want = p.Addr()
			// The address an earlier client left: replaced by the
			// first lease, so removed if the server hands out another.
			c.adopted = &Lease{Interface: cfg.Interface, Address: p}
		}
	}
	go c.run(want)
	return c, nil
}

// Lease returns the lease held now, or nil.
func (c *Client) Lease() *Lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease
}

// Renew asks for a renewal now (as if T1 had passed); without a lease it
// retries acquisition at once.
func (c *Client) Renew() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Stop ends the client. With release, the lease is given back to the
// server and its address and routes removed (the key went away); without
// it they stay, with their kernel lifetimes, for the next daemon's client
// to take over.
func (c *Client) Stop(release bool) {
	c.release.Store(release)
	c.cancel()
	<-c.done
	_ = c.x.close()
}

// open creates an exchange on the interface as it is now, its socket
// inside the namespace.
func (c *Client) open() (exchange, error) {
	h, err := ns.Open(c.cfg.Namespace)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if c.cfg.V6 {
		return newExchange6(h, c.cfg, c.Renew)
	}
	return newExchange4(h, c.cfg, c.Renew)
}

// Stale says why the client's socket no longer works ("" when it does):
// it failed (the interface went down), or the interface is gone or was
// recreated (a driver reload: the socket is bound to the old one). The
// client opens a new socket at its next exchange; Renew makes that now.
func (c *Client) Stale() string {
	c.mu.Lock()
	x := c.x
	c.mu.Unlock()
	return c.staleOf(x)
}

func (c *Client) staleOf(x exchange) string {
	if err := x.conn().failed(); err != nil {
		return "socket failed: " + err.Error()
	}
	idx, err := ifindex(c.cfg.Namespace, c.cfg.Interface)
	switch {
	case err != nil:
		return err.Error()
	case idx != x.conn().ifindex:
		return fmt.Sprintf("interface recreated (ifindex %d, was %d)", idx, x.conn().ifindex)
	}
	return ""
}

// fresh returns the exchange to use, opening a new one in place of a
// stale one. Only the state machine's goroutine calls it.
func (c *Client) fresh() (exchange, error) {
	c.mu.Lock()
	x := c.x
	c.mu.Unlock()
	why := c.staleOf(x)
	if why == "" {
		return x, nil
	}
	nx, err := c.open()
	if err != nil {
		return nil, fmt.Errorf("%s; new socket: %w", why, err)
	}
	c.mu.Lock()
	c.x = nx
	c.mu.Unlock()
	_ = x.close()
	c.log.Info("dhcp socket reopened", "reason", why)
	// A lease still valid is still ours: its address and routes go back
	// on the interface at once (a new one has none), not after the
	// server answers.
	if l := c.Lease(); l != nil && c.cfg.Kernel != nil {
		if err := c.cfg.Kernel.Apply(c.cfg.Interface, nil, l); err != nil {
			c.log.Warn("lease not put back on the interface", "address", l.Address.String(), "error", err)
		}
	}
	return nx, nil
}

func (cfg *Config) family() string {
	if cfg.V6 {
		return "ipv6"
	}
	return "ipv4"
}

// errStopped ends the state machine.
var errStopped = errors.New("stopped")

// wait sleeps until t, a kick, or a stop. It reports whether it was kicked.
func (c *Client) wait(t time.Time) (kicked bool, err error) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-c.ctx.Done():
		return false, errStopped
	case <-c.kick:
		return true, nil
	case <-timer.C:
		return false, nil
	}
}

func (c *Client) run(want netip.Addr) {
	defer close(c.done)
	err := c.loop(want)
	if !errors.Is(err, errStopped) {
		c.log.Error("dhcp client ended", "error", err)
	}
	if c.release.Load() {
		c.giveBack()
	}
}

// loop is RFC 2131's state machine; it returns only when stopped.
func (c *Client) loop(want netip.Addr) error {
	backoff := c.cfg.Timeout
	for {
		if c.Lease() == nil {
			l, err := c.acquire(want)
			if errors.Is(err, errStopped) {
				return err
			}
			if err != nil {
				level := slog.LevelWarn
				// nclient6 flattens the send error (%v), hence the text.
				if errors.Is(err, unix.EADDRNOTAVAIL) || strings.Contains(err.Error(), unix.EADDRNOTAVAIL.Error()) {
					// No usable source yet: the link-local
					// address is still in DAD (a link just up).
					level = slog.LevelDebug
				}
				c.log.Log(c.ctx, level, "no lease", "error", err, "retry_in", backoff.String())
				if _, err := c.wait(time.Now().Add(backoff)); err != nil {
					return err
				}
				backoff = min(2*backoff, c.cfg.MaxBackoff)
				continue
			}
			backoff = c.cfg.Timeout
			c.bind(Bound, l)
			continue
		}
		if err := c.keep(); err != nil {
			return err
		}
		// A lease lost or expired is not asked for again.
		want = netip.Addr{}
	}
}

// keep holds the current lease through RENEWING and REBINDING; it
// returns with no lease held when the lease is lost or expired.
func (c *Client) keep() error {
	l := c.Lease()
	t1, t2 := l.Timers(c.cfg.MaxRenew)
	if _, err := c.wait(t1); err != nil {
		return err
	}
	for _, phase := range []struct {
		kind  EventKind
		until time.Time
	}{{Renewed, t2}, {Rebound, l.Expiry()}} {
		for time.Now().Before(phase.until) {
			nl, err := c.extend(l, phase.kind == Rebound)
			switch {
			case errors.Is(err, errStopped):
				return err
			case errors.Is(err, ErrRefused):
				c.log.Warn("lease refused", "error", err)
				c.drop(Lost)
				return nil
			case err == nil:
				kind := phase.kind
				if !nl.SameBinding(l) {
					kind = Bound
				}
				c.bind(kind, nl)
				return nil
			}
			// RFC 2131 4.4.5: retry after half the time left, at
			// least a minute (less when the timers are capped).
			floor := time.Minute
			if c.cfg.MaxRenew > 0 {
				floor = min(floor, max(c.cfg.MaxRenew, time.Second))
			}
			pause := max(time.Until(phase.until)/2, floor)
			c.log.Debug("lease not extended", "phase", string(phase.kind), "error", err)
			if _, err := c.wait(minTime(time.Now().Add(pause), phase.until)); err != nil {
				return err
			}
		}
	}
	c.drop(Expired)
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// acquire is INIT (or INIT-REBOOT with want).
func (c *Client) acquire(want netip.Addr) (*Lease, error) {
	x, err := c.fresh()
	if err != nil {
		return nil, err
	}
	l, err := x.acquire(c.ctx, want)
	if c.ctx.Err() != nil {
		return nil, errStopped
	}
	return l, err
}

// extend is RENEWING (the lease's server answers) or REBINDING (any
// server answers).
func (c *Client) extend(l *Lease, rebind bool) (*Lease, error) {
	x, err := c.fresh()
	if err != nil {
		return nil, err
	}
	nl, err := x.extend(c.ctx, l, rebind)
	if c.ctx.Err() != nil {
		return nil, errStopped
	}
	return nl, err
}

// bind installs l in place of the lease held and reports it.
func (c *Client) bind(kind EventKind, l *Lease) {
	old := c.Lease()
	ev := Event{Kind: kind, Interface: c.cfg.Interface, Lease: l, Old: old}
	if c.cfg.Kernel != nil {
		replaced := old
		if replaced == nil {
			replaced, c.adopted = c.adopted, nil
		}
		ev.Err = c.cfg.Kernel.Apply(c.cfg.Interface, replaced, l)
	}
	c.mu.Lock()
	c.lease = l
	c.mu.Unlock()
	// The owner of OnEvent logs lease changes for operators (with its
	// own context); the client's lines are for debugging.
	attrs := append([]any{"event", string(kind)}, l.LogAttrs()...)
	if ev.Err != nil {
		attrs = append(attrs, "error", ev.Err)
	}
	c.log.Debug("dhcp lease", attrs...)
	c.emit(ev)
}

// drop removes the lease held (lost, expired, released) and reports it.
func (c *Client) drop(kind EventKind) {
	old := c.Lease()
	if old == nil {
		return
	}
	ev := Event{Kind: kind, Interface: c.cfg.Interface, Old: old}
	if c.cfg.Kernel != nil {
		ev.Err = c.cfg.Kernel.Apply(c.cfg.Interface, old, nil)
	}
	c.mu.Lock()
	c.lease = nil
	c.mu.Unlock()
	attrs := []any{"event", string(kind), "address", old.Address.String()}
	if ev.Err != nil {
		attrs = append(attrs, "error", ev.Err)
	}
	c.log.Debug("dhcp lease gone", attrs...)
	c.emit(ev)
}

func (c *Client) emit(ev Event) {
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(ev)
	}
}

// giveBack releases the lease (RFC 2131 4.4.6) and removes it.
func (c *Client) giveBack() {
	l := c.Lease()
	if l == nil {
		return
	}
	if err := c.x.release(l); err != nil {
		c.log.Warn("dhcp release not sent", "error", fmt.Errorf("release: %w", err))
	}
	c.drop(Released)
}
