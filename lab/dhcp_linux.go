package lab

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/services/dhcpclient"
)

// leaseLANHost gives lan-host its IPv4 address the way a LAN host gets
// it: a DHCP client in lan-host asks edge's dnsmasq ([tenant.edge.dhcp.lan]
// in lab.toml), which hands out 192.0.2.10 (the range is that one
// address, so the port forward's target stays put), the router and the
// DNS server. The returned function stops the client.
func leaseLANHost(out io.Writer) (func(), error) {
	h, err := ns.Open("lan-host")
	if err != nil {
		return nil, err
	}
	ev := make(chan dhcpclient.Event, 4)
	c, err := dhcpclient.Start(dhcpclient.Config{Namespace: "lan-host", Interface: "lan0", Kernel: dhcpclient.NewApplier(h, 0, 0),
		OnEvent: func(e dhcpclient.Event) { ev <- e }, Timeout: 500 * time.Millisecond, MaxBackoff: 2 * time.Second}, nil)
	if err != nil {
		h.Close()
		return nil, err
	}
	stop := func() { c.Stop(true); h.Close() }
	select {
	case e := <-ev:
		if e.Lease == nil || e.Err != nil {
			stop()
			return nil, fmt.Errorf("lan-host: DHCP %s: %v", e.Kind, e.Err)
		}
		l := e.Lease
		fmt.Fprintf(out, "   lan-host got %s by DHCP from edge's dnsmasq (router %s, DNS %v, lease %s)\n", l.Address, l.Router, l.DNS, l.LeaseTime)
		return stop, nil
	case <-time.After(20 * time.Second):
		stop()
		return nil, errors.New("lan-host: no DHCP lease from edge's dnsmasq in 20s")
	}
}
