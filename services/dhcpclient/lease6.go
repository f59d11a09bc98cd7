package dhcpclient

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// DHCPv6 (RFC 8415) for a WAN: one IA_NA, one address, DNS servers and
// the search list. The address is a /128 (DHCPv6 says nothing of
// prefixes or routers: the on-link prefix and the default route come from
// router advertisements, which the interface accepts, accept_ra = 2).
// The messages are built here, purely; v6_linux.go sends them.

// lease6 is what renew, rebind and release must repeat.
type lease6 struct {
	serverID dhcpv6.DUID
	iaid     [4]byte
	pdIAID   [4]byte
}

// ident6 is the client's identity on one interface: a DUID-LL from the
// MAC (stable across restarts, so a restarted daemon gets the same
// binding; DUID-LLT would change with the time in it), the IAID (the
// MAC's last four bytes, as nclient6 does) and the host name.
type ident6 struct {
	mac      net.HardwareAddr
	duid     dhcpv6.DUID
	iaid     [4]byte
	hostname string
	pd       int // > 0: ask for a delegated prefix of this length (IA_PD, IAID 1)
}

func newIdent6(mac net.HardwareAddr, hostname string, pd int) (ident6, error) {
	if len(mac) < 4 {
		return ident6{}, fmt.Errorf("interface has no usable MAC (%q) for a DHCPv6 DUID", mac.String())
	}
	id := ident6{mac: mac, duid: &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}, hostname: hostname, pd: pd}
	copy(id.iaid[:], mac[len(mac)-4:])
	return id, nil
}

// pdIAID is the IA_PD's IAID: one IA_PD per client.
var pdIAID = [4]byte{0, 0, 0, 1}

var oro6 = dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList)

func (id ident6) common() []dhcpv6.Modifier {
	mods := []dhcpv6.Modifier{dhcpv6.WithClientID(id.duid), dhcpv6.WithIAID(id.iaid), dhcpv6.WithOption(oro6)}
	if id.hostname != "" {
		// Flags 0: the server does the AAAA update if it does any.
		mods = append(mods, dhcpv6.WithFQDN(0, id.hostname))
	}
	return mods
}

// solicit is the SOLICIT, asking for want if valid.
func (id ident6) solicit(want netip.Addr) (*dhcpv6.Message, error) {
	mods := id.common()
	if want.IsValid() && want.Is6() {
		mods = append(mods, dhcpv6.WithIANA(dhcpv6.OptIAAddress{IPv6Addr: want.AsSlice()}))
	}
	if id.pd > 0 {
		// The length is a hint (RFC 8415 18.2.1): prefix ::/pd.
		mods = append(mods, dhcpv6.WithIAPD(pdIAID, &dhcpv6.OptIAPrefix{
			Prefix: &net.IPNet{IP: net.IPv6unspecified, Mask: net.CIDRMask(id.pd, 128)}}))
	}
	return dhcpv6.NewSolicit(id.mac, mods...)
}

// extend6 is the RENEW (to l's server) or REBIND (to any server) of l.
func (id ident6) extend6(l *Lease, rebind bool) (*dhcpv6.Message, error) {
	t := dhcpv6.MessageTypeRenew
	if rebind {
		t = dhcpv6.MessageTypeRebind
	}
	return id.about(t, l, !rebind)
}

// release6 is the RELEASE of l.
func (id ident6) release6(l *Lease) (*dhcpv6.Message, error) {
	return id.about(dhcpv6.MessageTypeRelease, l, true)
}

// about builds a message about l's binding: client, (server), IA_NA with
// the address (lifetimes 0: the server ignores them, RFC 8415 18.2.4).
func (id ident6) about(t dhcpv6.MessageType, l *Lease, withServer bool) (*dhcpv6.Message, error) {
	if l.v6 == nil {
		return nil, errors.New("not a DHCPv6 lease")
	}
	m, err := dhcpv6.NewMessage()
	if err != nil {
		return nil, err
	}
	m.MessageType = t
	m.AddOption(dhcpv6.OptClientID(id.duid))
	if withServer {
		m.AddOption(dhcpv6.OptServerID(l.v6.serverID))
	}
	m.AddOption(dhcpv6.OptElapsedTime(0))
	if t != dhcpv6.MessageTypeRelease {
		m.AddOption(oro6)
		if id.hostname != "" {
			dhcpv6.WithFQDN(0, id.hostname)(m)
		}
	}
	m.AddOption(&dhcpv6.OptIANA{IaId: l.v6.iaid, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAAddress{IPv6Addr: l.Address.Addr().AsSlice()}}}})
	if p := l.Delegated; p.IsValid() {
		m.AddOption(&dhcpv6.OptIAPD{IaId: l.v6.pdIAID, Options: dhcpv6.PDOptions{Options: dhcpv6.Options{
			&dhcpv6.OptIAPrefix{Prefix: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}}}})
	} else if id.pd > 0 && t != dhcpv6.MessageTypeRelease {
		// Still asking for the prefix the server did not give yet.
		dhcpv6.WithIAPD(pdIAID, &dhcpv6.OptIAPrefix{
			Prefix: &net.IPNet{IP: net.IPv6unspecified, Mask: net.CIDRMask(id.pd, 128)}})(m)
	}
	return m, nil
}

// errNoBinding marks a server that does not know the binding (it lost
// its lease database): RFC 8415 18.2.10.1 has the client send a REQUEST
// for it rather than give the address up.
var errNoBinding = errors.New("server has no binding")

// request6 is the REQUEST that asks l's server for l's binding again.
func (id ident6) request6(l *Lease) (*dhcpv6.Message, error) {
	return id.about(dhcpv6.MessageTypeRequest, l, true)
}

// refused reports a status code saying the binding is gone: the lease is
// dropped and the client starts over.
func refused(c iana.StatusCode) bool {
	return c == iana.StatusNoBinding || c == iana.StatusNotOnLink
}

// statusErr turns a non-success status option into an error.
func statusErr(where string, st *dhcpv6.OptStatusCode) error {
	if st == nil || st.StatusCode == iana.StatusSuccess {
		return nil
	}
	err := fmt.Errorf("%s: %s (%d) %q", where, st.StatusCode, st.StatusCode, st.StatusMessage)
	if st.StatusCode == iana.StatusNoBinding {
		return fmt.Errorf("%w: %w: %w", ErrRefused, errNoBinding, err)
	}
	if refused(st.StatusCode) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return fmt.Errorf("%w: %w", ErrBadLease, err)
}

// FromReply6 reads a lease out of a DHCPv6 REPLY (or an ADVERTISE, to
// check it offers an address) received at now. It is pure.
func FromReply6(ifname string, reply *dhcpv6.Message, now time.Time) (*Lease, error) {
	if err := statusErr("status", reply.Options.Status()); err != nil {
		return nil, err
	}
	ia := reply.Options.OneIANA()
	if ia == nil {
		return nil, fmt.Errorf("%w: no IA_NA", ErrBadLease)
	}
	if err := statusErr("IA_NA status", ia.Options.Status()); err != nil {
		return nil, err
	}
	var addr *dhcpv6.OptIAAddress
	for _, a := range ia.Options.Addresses() {
		if a.ValidLifetime > 0 {
			addr = a
			break
		}
	}
	if addr == nil {
		// Every address at valid lifetime 0: the server took them back.
		return nil, fmt.Errorf("%w: no address with a lifetime in IA_NA", ErrRefused)
	}
	ip, ok := netip.AddrFromSlice(addr.IPv6Addr)
	if !ok || !ip.Is6() || ip.Is4In6() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
		return nil, fmt.Errorf("%w: address %s", ErrBadLease, addr.IPv6Addr)
	}
	sid := reply.Options.ServerID()
	if sid == nil {
		return nil, fmt.Errorf("%w: no server identifier", ErrBadLease)
	}
	l := &Lease{Interface: ifname, Address: netip.PrefixFrom(ip, 128), Obtained: now,
		LeaseTime: addr.ValidLifetime, Preferred: min(addr.PreferredLifetime, addr.ValidLifetime),
		ServerID: hex.EncodeToString(sid.ToBytes()), v6: &lease6{serverID: sid, iaid: ia.IaId}}
	// RFC 8415 21.4: T1/T2 of 0 leave the timers to the client (0.5
	// and 0.8 of the preferred lifetime); T1 > T2 is ignored.
	l.T1, l.T2 = ia.T1, ia.T2
	if l.T1 == 0 || l.T2 == 0 || l.T1 > l.T2 {
		base := l.Preferred
		if base <= 0 {
			base = l.LeaseTime
		}
		l.T1, l.T2 = base/2, base*4/5
	}
	l.T2 = min(l.T2, l.LeaseTime)
	l.T1 = min(l.T1, l.T2)
	for _, d := range reply.Options.DNS() {
		if a, ok := netip.AddrFromSlice(d); ok {
			l.DNS = append(l.DNS, a)
		}
	}
	if s := reply.Options.DomainSearchList(); s != nil && len(s.Labels) > 0 {
		l.Domain = s.Labels[0]
	}
	readPD(l, reply)
	return l, nil
}

// readPD takes the delegated prefix out of a reply's IA_PD: the first
// prefix with a lifetime, of at most /64 (a delegation must hold /64s).
// No IA_PD, or one with a status (NoPrefixAvail), leaves the lease
// without one: the address stands on its own.
func readPD(l *Lease, reply *dhcpv6.Message) {
	pd := reply.Options.OneIAPD()
	if pd == nil || statusErr("IA_PD status", pd.Options.Status()) != nil {
		return
	}
	// A renumbering server may list the old prefix deprecated
	// (preferred 0) beside the new one: a preferred prefix wins.
	var best *dhcpv6.OptIAPrefix
	var bestP netip.Prefix
	for _, o := range pd.Options.Prefixes() {
		if o.Prefix == nil || o.ValidLifetime <= 0 {
			continue
		}
		a, ok := netip.AddrFromSlice(o.Prefix.IP)
		ones, bits := o.Prefix.Mask.Size()
		if !ok || bits != 128 || ones > 64 || ones == 0 || !a.Is6() || a.Is4In6() {
			continue
		}
		if best == nil || best.PreferredLifetime <= 0 && o.PreferredLifetime > 0 {
			best, bestP = o, netip.PrefixFrom(a, ones).Masked()
		}
	}
	if best == nil {
		return
	}
	l.Delegated = bestP
	l.DelegatedValid = best.ValidLifetime
	l.DelegatedPreferred = min(best.PreferredLifetime, best.ValidLifetime)
	l.v6.pdIAID = pd.IaId
	// Renew in time for the shorter of the two IAs: the IA_PD's timers,
	// or (0: the client's choice) 0.5 and 0.8 of its preferred lifetime.
	t1, t2 := pd.T1, pd.T2
	if t1 == 0 || t2 == 0 || t1 > t2 {
		base := l.DelegatedPreferred
		if base <= 0 {
			base = l.DelegatedValid
		}
		t1, t2 = base/2, base*4/5
	}
	l.T1 = min(l.T1, t1)
	l.T2 = max(min(l.T2, t2), l.T1)
}

// SubnetOf returns the n-th /64 of the delegated prefix p (n must fit).
func SubnetOf(p netip.Prefix, n uint64) netip.Prefix {
	b := p.Masked().Addr().As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	hi |= n
	for i := 0; i < 8; i++ {
		b[i] = byte(hi >> (56 - 8*i))
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}
