package dhcpclient

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	mac6      = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x61}
	serverID6 = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}}
)

// reply6 is a server's REPLY with one IA_NA; ia edits the IA (status,
// addresses, timers) and mods the message.
func reply6(t *testing.T, ia func(*dhcpv6.OptIANA), mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeReply
	m.AddOption(dhcpv6.OptServerID(serverID6))
	o := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 0x61}, T1: 50 * time.Second, T2: 80 * time.Second}
	o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8:100::10"),
		PreferredLifetime: 100 * time.Second, ValidLifetime: 200 * time.Second})
	if ia != nil {
		ia(o)
	}
	m.AddOption(o)
	dhcpv6.WithDNS(net.ParseIP("2001:db8:100::53"))(m)
	dhcpv6.WithDomainSearchList("corp.example", "example")(m)
	for _, mod := range mods {
		mod(m)
	}
	// Through the wire format, as a client sees it.
	back, err := dhcpv6.MessageFromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestFromReply6(t *testing.T) {
	now := time.Unix(1700000000, 0)
	l, err := FromReply6("wan", reply6(t, nil), now)
	if err != nil {
		t.Fatal(err)
	}
	if l.Address != netip.MustParsePrefix("2001:db8:100::10/128") || !l.V6() || l.Router.IsValid() ||
		l.LeaseTime != 200*time.Second || l.Preferred != 100*time.Second || l.T1 != 50*time.Second || l.T2 != 80*time.Second {
		t.Fatalf("lease %+v", l)
	}
	if len(l.DNS) != 1 || l.DNS[0] != netip.MustParseAddr("2001:db8:100::53") || l.Domain != "corp.example" {
		t.Errorf("DNS %v domain %q", l.DNS, l.Domain)
	}
	if l.ServerID != "00030001020000000001" {
		t.Errorf("server id %q", l.ServerID)
	}
	if rs := l.KernelRoutes(254, 0); len(rs) != 0 {
		t.Errorf("a DHCPv6 lease installs routes: %v", rs)
	}
	if got := l.PreferredLeft(now.Add(150 * time.Second)); got != 0 {
		t.Errorf("preferred left after 150s = %v", got)
	}
}

func TestFromReply6Timers(t *testing.T) {
	// T1/T2 of 0 leave them to the client: 0.5 and 0.8 of preferred.
	l, err := FromReply6("wan", reply6(t, func(o *dhcpv6.OptIANA) { o.T1, o.T2 = 0, 0 }), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if l.T1 != 50*time.Second || l.T2 != 80*time.Second {
		t.Errorf("client timers T1 %v T2 %v, want 50s 80s", l.T1, l.T2)
	}
	// T2 beyond the valid lifetime is clamped to it.
	l, err = FromReply6("wan", reply6(t, func(o *dhcpv6.OptIANA) { o.T1, o.T2 = 100*time.Second, 500*time.Second }), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if l.T1 != 100*time.Second || l.T2 != 200*time.Second {
		t.Errorf("T1 %v T2 %v, want 100s 200s", l.T1, l.T2)
	}
}

func TestFromReply6Refusals(t *testing.T) {
	status := func(c iana.StatusCode) func(*dhcpv6.OptIANA) {
		return func(o *dhcpv6.OptIANA) {
			o.Options = dhcpv6.IdentityOptions{}
			o.Options.Add(&dhcpv6.OptStatusCode{StatusCode: c, StatusMessage: "no"})
		}
	}
	for name, tc := range map[string]struct {
		ia   func(*dhcpv6.OptIANA)
		mods []dhcpv6.Modifier
		want error
	}{
		"no binding":   {ia: status(iana.StatusNoBinding), want: ErrRefused},
		"not on link":  {ia: status(iana.StatusNotOnLink), want: ErrRefused},
		"no addresses": {ia: status(iana.StatusNoAddrsAvail), want: ErrBadLease},
		"lifetime 0": {ia: func(o *dhcpv6.OptIANA) {
			o.Options.Get(dhcpv6.OptionIAAddr)[0].(*dhcpv6.OptIAAddress).ValidLifetime = 0
		}, want: ErrRefused},
		"top-level fail": {mods: []dhcpv6.Modifier{dhcpv6.WithOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusUnspecFail})}, want: ErrBadLease},
		"link-local addr": {ia: func(o *dhcpv6.OptIANA) {
			o.Options.Get(dhcpv6.OptionIAAddr)[0].(*dhcpv6.OptIAAddress).IPv6Addr = net.ParseIP("fe80::1")
		}, want: ErrBadLease},
	} {
		_, err := FromReply6("wan", reply6(t, tc.ia, tc.mods...), time.Now())
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
		// Only NoBinding asks for the binding again with a REQUEST.
		if errors.Is(err, errNoBinding) != (name == "no binding") {
			t.Errorf("%s: errNoBinding %v", name, errors.Is(err, errNoBinding))
		}
	}
}

// Renew names the server, rebind does not, release carries the address;
// every message uses the same MAC-derived DUID-LL, whatever the time.
func TestMessages6(t *testing.T) {
	id, err := newIdent6(mac6, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := FromReply6("wan", reply6(t, nil), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sol, err := id.solicit(netip.MustParseAddr("2001:db8:100::10"))
	if err != nil {
		t.Fatal(err)
	}
	if a := sol.Options.OneIANA().Options.OneAddress(); a == nil || !a.IPv6Addr.Equal(net.ParseIP("2001:db8:100::10")) {
		t.Errorf("solicit does not ask for the held address: %v", sol)
	}
	for _, tc := range []struct {
		build      func() (*dhcpv6.Message, error)
		typ        dhcpv6.MessageType
		withServer bool
	}{
		{func() (*dhcpv6.Message, error) { return id.extend6(l, false) }, dhcpv6.MessageTypeRenew, true},
		{func() (*dhcpv6.Message, error) { return id.extend6(l, true) }, dhcpv6.MessageTypeRebind, false},
		{func() (*dhcpv6.Message, error) { return id.release6(l) }, dhcpv6.MessageTypeRelease, true},
		{func() (*dhcpv6.Message, error) { return id.request6(l) }, dhcpv6.MessageTypeRequest, true},
	} {
		m, err := tc.build()
		if err != nil {
			t.Fatal(err)
		}
		back, err := dhcpv6.MessageFromBytes(m.ToBytes())
		if err != nil {
			t.Fatal(err)
		}
		if back.MessageType != tc.typ {
			t.Errorf("type %v, want %v", back.MessageType, tc.typ)
		}
		if (back.Options.ServerID() != nil) != tc.withServer {
			t.Errorf("%v: server id present %v, want %v", tc.typ, back.Options.ServerID() != nil, tc.withServer)
		}
		if cid := back.Options.ClientID(); cid == nil || !cid.Equal(sol.Options.ClientID()) {
			t.Errorf("%v: client id %v, want the solicit's %v", tc.typ, cid, sol.Options.ClientID())
		}
		ia := back.Options.OneIANA()
		if ia == nil || ia.IaId != [4]byte{0, 0, 0, 0x61} || ia.Options.OneAddress() == nil ||
			!ia.Options.OneAddress().IPv6Addr.Equal(net.ParseIP("2001:db8:100::10")) {
			t.Errorf("%v: IA_NA %v", tc.typ, ia)
		}
	}
	if _, err := newIdent6(nil, ""); err == nil {
		t.Error("an interface without a MAC got a DUID")
	}
}
