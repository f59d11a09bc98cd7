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
	id, err := newIdent6(mac6, "gw1", 0)
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
	if _, err := newIdent6(nil, "", 0); err == nil {
		t.Error("an interface without a MAC got a DUID")
	}
}

func withPD(prefix string, valid time.Duration, status iana.StatusCode) dhcpv6.Modifier {
	return func(d dhcpv6.DHCPv6) {
		o := &dhcpv6.OptIAPD{IaId: [4]byte{0, 0, 0, 1}, T1: 30 * time.Second, T2: 60 * time.Second}
		if status != iana.StatusSuccess {
			o.Options.Add(&dhcpv6.OptStatusCode{StatusCode: status})
		} else {
			_, n, _ := net.ParseCIDR(prefix)
			o.Options.Add(&dhcpv6.OptIAPrefix{Prefix: n, ValidLifetime: valid, PreferredLifetime: valid / 2})
		}
		d.AddOption(o)
	}
}

// IA_PD: the delegated prefix with its own lifetimes, the timers the
// shorter of the two IAs'; NoPrefixAvail leaves the address alone; a
// longer-than-/64 prefix is no delegation.
func TestFromReply6Delegated(t *testing.T) {
	l, err := FromReply6("wan", reply6(t, nil, withPD("2001:db8:f00::/56", 300*time.Second, iana.StatusSuccess)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if l.Delegated != netip.MustParsePrefix("2001:db8:f00::/56") || l.DelegatedValid != 300*time.Second ||
		l.DelegatedPreferred != 150*time.Second || l.T1 != 30*time.Second || l.T2 != 60*time.Second {
		t.Fatalf("lease %+v", l)
	}
	if rs := l.KernelRoutes(254, 0); len(rs) != 1 || rs[0].Dst != l.Delegated || rs[0].Type != 7 || rs[0].Metric != 1024 {
		t.Errorf("routes %v, want the prefix unreachable", rs)
	}
	for name, mod := range map[string]dhcpv6.Modifier{
		"no prefix available": withPD("", 0, iana.StatusNoPrefixAvail),
		"a /72":               withPD("2001:db8:f00::/72", 300*time.Second, iana.StatusSuccess),
		"lifetime 0":          withPD("2001:db8:f00::/56", 0, iana.StatusSuccess),
	} {
		l, err := FromReply6("wan", reply6(t, nil, mod), time.Now())
		if err != nil || l.Delegated.IsValid() {
			t.Errorf("%s: lease %+v, %v; want the address without a prefix", name, l, err)
		}
	}
}

// The solicit asks for ::/56; a renewal repeats the prefix held.
func TestMessages6Delegated(t *testing.T) {
	id, err := newIdent6(mac6, "", 56)
	if err != nil {
		t.Fatal(err)
	}
	sol, err := id.solicit(netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	pd := sol.Options.OneIAPD()
	if pd == nil || len(pd.Options.Prefixes()) != 1 || pd.Options.Prefixes()[0].Prefix.String() != "::/56" {
		t.Fatalf("solicit IA_PD %v", pd)
	}
	l, err := FromReply6("wan", reply6(t, nil, withPD("2001:db8:f00::/56", 300*time.Second, iana.StatusSuccess)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, err := id.extend6(l, false)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := dhcpv6.MessageFromBytes(m.ToBytes())
	if pd := back.Options.OneIAPD(); pd == nil || pd.IaId != [4]byte{0, 0, 0, 1} || pd.Options.Prefixes()[0].Prefix.String() != "2001:db8:f00::/56" {
		t.Fatalf("renew IA_PD %v", back.Options.OneIAPD())
	}
}

func TestDelegatedAddr(t *testing.T) {
	p := netip.MustParsePrefix("2001:db8:f00::/56")
	for n, want := range map[uint64]string{0: "2001:db8:f00::1/64", 1: "2001:db8:f00:1::1/64", 255: "2001:db8:f00:ff::1/64"} {
		if got, ok := DelegatedAddr(p, n); !ok || got.String() != want {
			t.Errorf("subnet %d: %s %v, want %s", n, got, ok, want)
		}
	}
	if got, _ := DelegatedAddr(netip.MustParsePrefix("2001:db8:0:ab00::/56"), 0x12); got.String() != "2001:db8:0:ab12::1/64" {
		t.Errorf("got %s", got)
	}
	// The server may delegate less than the hint: a /64 has one subnet,
	// and subnet 1 would be outside it.
	if got, ok := DelegatedAddr(netip.MustParsePrefix("2001:db8:0:4::/64"), 1); ok {
		t.Errorf("subnet 1 of a /64 gave %s", got)
	}
	if _, ok := DelegatedAddr(netip.MustParsePrefix("2001:db8:0:4::/64"), 0); !ok {
		t.Error("subnet 0 of a /64 refused")
	}
}

// A renumbering server listing the old prefix deprecated first: the
// preferred one is taken. IA_PD timers of 0 leave them to the client,
// from the delegation's preferred lifetime, when shorter than IA_NA's.
func TestReadPDRenumberAndTimers(t *testing.T) {
	m := reply6(t, nil, func(d dhcpv6.DHCPv6) {
		o := &dhcpv6.OptIAPD{IaId: [4]byte{0, 0, 0, 1}}
		_, old, _ := net.ParseCIDR("2001:db8:f00::/56")
		_, nu, _ := net.ParseCIDR("2001:db8:f01::/56")
		o.Options.Add(&dhcpv6.OptIAPrefix{Prefix: old, ValidLifetime: 60 * time.Second, PreferredLifetime: 0})
		o.Options.Add(&dhcpv6.OptIAPrefix{Prefix: nu, ValidLifetime: 80 * time.Second, PreferredLifetime: 40 * time.Second})
		d.AddOption(o)
	})
	l, err := FromReply6("wan", m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if l.Delegated.String() != "2001:db8:f01::/56" {
		t.Errorf("delegated %s, want the preferred 2001:db8:f01::/56", l.Delegated)
	}
	if l.T1 != 20*time.Second || l.T2 != 32*time.Second {
		t.Errorf("T1 %v T2 %v, want 20s and 32s (0.5 and 0.8 of the prefix's 40s)", l.T1, l.T2)
	}
}
