package dhcpclient

import (
	"fmt"
	"net"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// openConn creates the client's packet socket on ifname inside namespace
// h (the socket stays in the namespace it was created in) and returns it
// with the interface's MAC.
func openConn(h netns.NsHandle, ifname string) (net.PacketConn, net.HardwareAddr, error) {
	filter, err := bpf.Assemble(udpToClientPort)
	if err != nil {
		return nil, nil, err
	}
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, nil, err
	}
	defer nh.Close()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", ifname, err)
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
		return nil, nil, fmt.Errorf("packet socket on %s: %w", ifname, err)
	}
	return nclient4.NewBroadcastUDPConn(raw, &net.UDPAddr{Port: nclient4.ClientPort}), a.HardwareAddr, nil
}
