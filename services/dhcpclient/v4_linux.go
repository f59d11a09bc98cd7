package dhcpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// exchange4 is DHCPv4 (RFC 2131) over nclient4.
type exchange4 struct {
	nc        *nclient4.Client
	wc        *watchedConn
	namespace string
	ifname    string
	hostname  string
}

func newExchange4(h netns.NsHandle, cfg Config, onFail func()) (exchange, error) {
	conn, mac, idx, err := openConn4(h, cfg.Interface)
	if err != nil {
		return nil, err
	}
	wc := &watchedConn{PacketConn: conn, ifindex: idx, onFail: onFail}
	nc, err := nclient4.NewWithConn(wc, mac, nclient4.WithTimeout(cfg.Timeout), nclient4.WithRetry(3))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &exchange4{nc: nc, wc: wc, namespace: cfg.Namespace, ifname: cfg.Interface, hostname: cfg.Hostname}, nil
}

func (x *exchange4) close() error       { return x.nc.Close() }
func (x *exchange4) conn() *watchedConn { return x.wc }

func (x *exchange4) modifiers(want netip.Addr) []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter,
		dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName, dhcpv4.OptionClasslessStaticRoute,
		dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue)}
	if x.hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(x.hostname)))
	}
	if want.IsValid() && want.Is4() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(want.AsSlice())))
	}
	return mods
}

// acquire: DISCOVER, OFFER, REQUEST, ACK.
func (x *exchange4) acquire(ctx context.Context, want netip.Addr) (*Lease, error) {
	// The wanted address goes in the DISCOVER only: the REQUEST asks
	// for what was offered.
	offer, err := x.nc.DiscoverOffer(ctx, x.modifiers(want)...)
	if err != nil {
		return nil, err
	}
	lease, err := x.nc.RequestFromOffer(ctx, offer, x.modifiers(netip.Addr{})...)
	var nak *nclient4.ErrNak
	if errors.As(err, &nak) {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if err != nil {
		return nil, err
	}
	return FromACK(x.ifname, lease.ACK, time.Now())
}

// extend: REQUEST in RENEWING or REBINDING.
func (x *exchange4) extend(ctx context.Context, l *Lease, rebind bool) (*Lease, error) {
	req, err := dhcpv4.NewRenewFromAck(l.raw4, x.modifiers(netip.Addr{})...)
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
	resp, err := x.nc.SendAndRead(ctx, nclient4.DefaultServers, req, match)
	if err != nil {
		return nil, err
	}
	if resp.MessageType() == dhcpv4.MessageTypeNak {
		return nil, fmt.Errorf("%w: DHCPNAK from %s: %s", ErrRefused, resp.ServerIPAddr, resp.Message())
	}
	return FromACK(x.ifname, resp, time.Now())
}

// release: DHCPRELEASE (RFC 2131 4.4.6), unicast to the server, no
// answer expected. It goes through a UDP socket from the leased address
// (still on the interface): the packet socket sends from 0.0.0.0, which
// a server's kernel drops as a martian source when the destination is
// not a broadcast.
func (x *exchange4) release(l *Lease) error {
	msg, err := dhcpv4.NewReleaseFromACK(l.raw4)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if !l.Server.IsValid() {
		return errors.New("release: the lease names no server")
	}
	h, err := ns.Open(x.namespace)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	defer h.Close()
	lc := net.ListenConfig{Control: bindToDevice(x.ifname)}
	var conn net.PacketConn
	err = ns.Do(h, func() error {
		var err error
		conn, err = lc.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(l.Address.Addr(), nclient4.ClientPort).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("release: socket: %w", err)
	}
	defer conn.Close()
	if _, err := conn.WriteTo(msg.ToBytes(), &net.UDPAddr{IP: l.Server.AsSlice(), Port: nclient4.ServerPort}); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// openConn4 creates the client's packet socket on ifname inside namespace
// h (the socket stays in the namespace it was created in) and returns it
// with the interface's MAC and index.
func openConn4(h netns.NsHandle, ifname string) (net.PacketConn, net.HardwareAddr, int, error) {
	filter, err := bpf.Assemble(udpToClientPort)
	if err != nil {
		return nil, nil, 0, err
	}
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, nil, 0, err
	}
	defer nh.Close()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("interface %s: %w", ifname, err)
	}
	a := link.Attrs()
	ifi := &net.Interface{Index: a.Index, MTU: a.MTU, Name: a.Name, HardwareAddr: a.HardwareAddr, Flags: a.Flags}
	var raw *packet.Conn
	err = ns.Do(h, func() error {
		var err error
		raw, err = packet.Listen(ifi, packet.Datagram, unix.ETH_P_IP, &packet.Config{Filter: filter})
		return err
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("packet socket on %s: %w", ifname, err)
	}
	return nclient4.NewBroadcastUDPConn(raw, &net.UDPAddr{Port: nclient4.ClientPort}), a.HardwareAddr, a.Index, nil
}
