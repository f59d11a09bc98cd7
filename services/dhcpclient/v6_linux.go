package dhcpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// exchange6 is DHCPv6 (RFC 8415) over nclient6, which matches replies
// to requests by transaction ID. Every message goes to
// All_DHCP_Relay_Agents_and_Servers (ff02::1:2) out of the interface the
// socket is bound to; replies come back to the link-local address.
type exchange6 struct {
	nc     *nclient6.Client
	wc     *watchedConn
	id     ident6
	ifname string
}

func newExchange6(h netns.NsHandle, cfg Config, onFail func()) (exchange, error) {
	conn, mac, idx, err := openConn6(h, cfg.Interface)
	if err != nil {
		return nil, err
	}
	wc := &watchedConn{PacketConn: conn, ifindex: idx, onFail: onFail}
	id, err := newIdent6(mac, cfg.Hostname, cfg.PD)
	if err != nil {
		conn.Close()
		return nil, err
	}
	nc, err := nclient6.NewWithConn(wc, mac, nclient6.WithTimeout(cfg.Timeout), nclient6.WithRetry(3))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &exchange6{nc: nc, wc: wc, id: id, ifname: cfg.Interface}, nil
}

func (x *exchange6) close() error       { return x.nc.Close() }
func (x *exchange6) conn() *watchedConn { return x.wc }

// acquire: SOLICIT, ADVERTISE, REQUEST, REPLY.
func (x *exchange6) acquire(ctx context.Context, want netip.Addr) (*Lease, error) {
	sol, err := x.id.solicit(want)
	if err != nil {
		return nil, err
	}
	// An ADVERTISE with no usable address (NoAddrsAvail) is ignored, as
	// RFC 8415 18.2.9 says: another server may still answer.
	usable := func(m *dhcpv6.Message) bool {
		if m.MessageType != dhcpv6.MessageTypeAdvertise {
			return false
		}
		_, err := FromReply6(x.ifname, m, time.Now())
		return err == nil
	}
	adv, err := x.nc.SendAndRead(ctx, x.nc.RemoteAddr(), sol, usable)
	if err != nil {
		return nil, fmt.Errorf("solicit (no usable advertise): %w", err)
	}
	req, err := dhcpv6.NewRequestFromAdvertise(adv, x.id.common()...)
	if err != nil {
		return nil, err
	}
	reply, err := x.nc.SendAndRead(ctx, x.nc.RemoteAddr(), req, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	return FromReply6(x.ifname, reply, time.Now())
}

// extend: RENEW or REBIND, REPLY.
func (x *exchange6) extend(ctx context.Context, l *Lease, rebind bool) (*Lease, error) {
	m, err := x.id.extend6(l, rebind)
	if err != nil {
		return nil, err
	}
	reply, err := x.nc.SendAndRead(ctx, x.nc.RemoteAddr(), m, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		return nil, err
	}
	nl, err := FromReply6(x.ifname, reply, time.Now())
	if !errors.Is(err, errNoBinding) {
		return nl, err
	}
	// The server lost the binding: ask it for the same one (RFC 8415
	// 18.2.10.1) before giving the address up.
	req, rerr := x.id.request6(l)
	if rerr != nil {
		return nil, err
	}
	reply, rerr = x.nc.SendAndRead(ctx, x.nc.RemoteAddr(), req, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if rerr != nil {
		return nil, fmt.Errorf("%w; request for it again: %w", err, rerr)
	}
	return FromReply6(x.ifname, reply, time.Now())
}

// releaseWait bounds the wait for the server's answer to a RELEASE.
const releaseWait = time.Second

// release: RELEASE, and the REPLY if it comes soon.
func (x *exchange6) release(l *Lease) error {
	m, err := x.id.release6(l)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseWait)
	defer cancel()
	if _, err := x.nc.SendAndRead(ctx, x.nc.RemoteAddr(), m, nclient6.IsMessageType(dhcpv6.MessageTypeReply)); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// openConn6 creates the client's UDP socket inside namespace h: bound to
// the interface (SO_BINDTODEVICE, so messages to ff02::1:2 leave by it
// and several interfaces of one namespace can each have a client) and to
// [::]:546 (no wait for the link-local address to finish DAD). It
// returns the socket with the interface's MAC and index.
func openConn6(h netns.NsHandle, ifname string) (net.PacketConn, net.HardwareAddr, int, error) {
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, nil, 0, err
	}
	defer nh.Close()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("interface %s: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: bindToDevice(ifname)}
	var conn net.PacketConn
	err = ns.Do(h, func() error {
		var err error
		conn, err = lc.ListenPacket(context.Background(), "udp6", fmt.Sprintf("[::]:%d", dhcpv6.DefaultClientPort))
		return err
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("dhcpv6 socket on %s: %w", ifname, err)
	}
	return conn, link.Attrs().HardwareAddr, link.Attrs().Index, nil
}
