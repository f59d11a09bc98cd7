package dhcpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// Config is one interface's DHCPv4 client.
type Config struct {
	Namespace string // pinned namespace name (the tenant)
	Interface string // name inside the namespace
	Hostname  string // option 12, optional
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

// Client runs the DHCPv4 state machine for one interface.
type Client struct {
	cfg     Config
	log     *slog.Logger
	nc      *nclient4.Client
	ctx     context.Context // cancelled by Stop
	cancel  context.CancelFunc
	release atomic.Bool // Stop's choice
	kick    chan struct{}
	done    chan struct{}

	mu    sync.Mutex
	lease *Lease
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
	h, err := ns.Open(cfg.Namespace)
	if err != nil {
		return nil, err
	}
	conn, mac, err := openConn(h, cfg.Interface)
	h.Close()
	if err != nil {
		return nil, err
	}
	nc, err := nclient4.NewWithConn(conn, mac, nclient4.WithTimeout(cfg.Timeout), nclient4.WithRetry(3))
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{cfg: cfg, log: log.With("interface", cfg.Interface), nc: nc,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var want netip.Addr
	if cfg.Kernel != nil {
		if p, ok, err := cfg.Kernel.Learned(cfg.Interface); err == nil && ok {
			want = p.Addr()
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
	c.nc.Close()
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
				c.log.Warn("no lease", "error", err, "retry_in", backoff.String())
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
			var nak *nclient4.ErrNak
			switch {
			case errors.Is(err, errStopped):
				return err
			case errors.As(err, &nak):
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
			pause := max(time.Until(phase.until)/2, min(time.Minute, max(c.cfg.MaxRenew, time.Second)))
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

func (c *Client) modifiers(want netip.Addr) []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter,
		dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName, dhcpv4.OptionClasslessStaticRoute,
		dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue)}
	if c.cfg.Hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(c.cfg.Hostname)))
	}
	if want.IsValid() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(want.AsSlice())))
	}
	return mods
}

// acquire is INIT (or INIT-REBOOT with want): DISCOVER, OFFER, REQUEST, ACK.
func (c *Client) acquire(want netip.Addr) (*Lease, error) {
	ctx := c.ctx
	// The wanted address goes in the DISCOVER only: the REQUEST asks
	// for what was offered.
	offer, err := c.nc.DiscoverOffer(ctx, c.modifiers(want)...)
	if ctx.Err() != nil {
		return nil, errStopped
	}
	if err != nil {
		return nil, err
	}
	lease, err := c.nc.RequestFromOffer(ctx, offer, c.modifiers(netip.Addr{})...)
	if ctx.Err() != nil {
		return nil, errStopped
	}
	if err != nil {
		return nil, err
	}
	return FromACK(c.cfg.Interface, lease.ACK, time.Now())
}

// extend is RENEWING (the lease's server answers) or REBINDING (any
// server answers).
func (c *Client) extend(l *Lease, rebind bool) (*Lease, error) {
	ctx := c.ctx
	req, err := dhcpv4.NewRenewFromAck(l.raw, c.modifiers(netip.Addr{})...)
	if err != nil {
		return nil, err
	}
	// Both phases broadcast: the packet socket sends from 0.0.0.0 (it has
	// no address to send from), and a unicast request from 0.0.0.0 gets
	// its answer sent nowhere by dnsmasq and others. Servers answer a
	// broadcast renewal (dhclient falls back to it); RENEWING still
	// accepts only its own server's answer, REBINDING any server's.
	match := nclient4.IsAll(nclient4.IsCorrectServer(l.Server.AsSlice()),
		nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
	if rebind || !l.Server.IsValid() {
		match = nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	}
	resp, err := c.nc.SendAndRead(ctx, nclient4.DefaultServers, req, match)
	if ctx.Err() != nil {
		return nil, errStopped
	}
	if err != nil {
		return nil, err
	}
	if resp.MessageType() == dhcpv4.MessageTypeNak {
		return nil, &nclient4.ErrNak{Offer: l.raw, Nak: resp}
	}
	return FromACK(c.cfg.Interface, resp, time.Now())
}

// bind installs l in place of the lease held and reports it.
func (c *Client) bind(kind EventKind, l *Lease) {
	old := c.Lease()
	ev := Event{Kind: kind, Interface: c.cfg.Interface, Lease: l, Old: old}
	if c.cfg.Kernel != nil {
		ev.Err = c.cfg.Kernel.Apply(c.cfg.Interface, old, l)
	}
	c.mu.Lock()
	c.lease = l
	c.mu.Unlock()
	attrs := []any{"event", string(kind), "address", l.Address.String(), "router", l.Router.String(),
		"lease_time", l.LeaseTime.String(), "server", l.Server.String()}
	if ev.Err != nil {
		c.log.Error("lease not applied", append(attrs, "error", ev.Err)...)
	} else if kind == Bound {
		c.log.Info("dhcp lease", attrs...)
	} else {
		c.log.Debug("dhcp lease", attrs...)
	}
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
	c.log.Warn("dhcp lease gone", "event", string(kind), "address", old.Address.String(), "error", ev.Err)
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
	if err := c.nc.Release(&nclient4.Lease{ACK: l.raw}); err != nil {
		c.log.Warn("dhcp release not sent", "error", fmt.Errorf("release: %w", err))
	}
	c.drop(Released)
}
