package config

// Edge services validation (docs/services.md documents every key):
//
//	[tenant.T.interface.IF]  dhcp, dhcp6, dhcp_table, dhcp_metric, dhcp_hostname, slaac
//	[tenant.T.dhcp.IF]       range, lease_time, router, dns, domain, [[static]] mac/address/name
//	[tenant.T.dns]           interfaces, forwarders, domain, cache_size, [names]
//	[tenant.T.ra.IF]         prefixes, rdnss, managed, other, dhcp6_range, interval, lifetime

import (
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// minDHCPLease is dnsmasq's floor: it raises anything shorter to 2m.
const minDHCPLease = 2 * time.Minute

var reDNSLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// validDNSName reports whether s is a host or domain name: dot-separated
// labels of letters, digits and inner hyphens, at most 253 bytes.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !reDNSLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// parseDuration reads a duration key between lo and hi; "" is 0 (the
// default) and reported nowhere.
func parseDuration(r reporter, s string, lo, hi time.Duration) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		r.errorf("invalid duration %q: write e.g. \"30s\", \"12h\"", s)
		return 0
	case d < lo || d > hi:
		r.errorf("%s is outside %s..%s", d, lo, hi)
		return 0
	}
	return d
}

// addrList parses a list of addresses of one family (v6 false: IPv4).
func addrList(r reporter, list []string, v6 bool) []netip.Addr {
	var out []netip.Addr
	for i, s := range list {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || a.Zone() != "":
			r.at(i).errorf("invalid address %q", s)
		case a.Is6() != v6 || a.Is4In6():
			r.at(i).errorf("%s is not an %s address", s, map[bool]string{false: "IPv4", true: "IPv6"}[v6])
		default:
			out = append(out, a)
		}
	}
	return out
}

// validateServices validates a tenant's service keys; r is the tenant's
// reporter. It runs after interfaces and routing (it names tables).
func validateServices(r reporter, raw *rawTenant, t *Tenant) {
	s := &t.Services
	ir := r.in("interface")
	for _, name := range sortedKeys(raw.Interface) {
		l := raw.Interface[name].rawLearned
		validateLearned(ir.in(name), name, &l, t)
	}
	dr := r.in("dhcp")
	for _, name := range sortedKeys(raw.DHCP) {
		rd := raw.DHCP[name]
		if d, ok := validateDHCPServer(dr.in(name), name, &rd, t); ok {
			s.DHCP = append(s.DHCP, d)
		}
	}
	if raw.DNS != nil {
		s.DNS = validateDNS(r.in("dns"), raw.DNS, t)
	}
	validateDelegations(ir, raw, t)
	rr := r.in("ra")
	for _, name := range sortedKeys(raw.RA) {
		ra := raw.RA[name]
		if v, ok := validateRA(rr.in(name), name, &ra, t); ok {
			s.RA = append(s.RA, v)
		}
	}
}

// validateLearned validates the DHCP client and SLAAC keys of one
// [tenant.T.interface.IF] table. dhcp and dhcp6 each add a client;
// dhcp_hostname names the box to both (option 12, FQDN option 39).
func validateLearned(r reporter, name string, l *rawLearned, t *Tenant) {
	s := &t.Services
	iface := t.Interface(name)
	if l.DHCPHostname != "" && !reDNSLabel.MatchString(l.DHCPHostname) {
		r.in("dhcp_hostname").errorf("%q is not a host name (one label: letters, digits, inner '-')", l.DHCPHostname)
	}
	if l.SLAAC {
		s.SLAAC = append(s.SLAAC, name)
	}
	if l.DHCPHostname != "" && !l.DHCP && !l.DHCP6 {
		r.in("dhcp_hostname").errorf("needs dhcp = true or dhcp6 = true on this interface")
	}
	if l.DHCP6 {
		if a, ok := staticAddr(iface, true); ok {
			r.in("dhcp6").errorf("dhcp6 = true and a static IPv6 address (%s): the address comes from the DHCPv6 server", a)
		}
		// After the DHCPv4 client of the interface, if any. No table or
		// metric: DHCPv6 carries no routes (the default route comes
		// from the router advertisements, accept_ra = 2); the table is
		// main, for the delegated prefix's unreachable route.
		c6 := DHCPClient{Interface: name, V6: true, Hostname: l.DHCPHostname, Table: "main", TableID: t.Routing.TableID("main")}
		if l.DHCP6PD != nil {
			if n := *l.DHCP6PD; n < 32 || n > 64 {
				r.in("dhcp6_pd").errorf("prefix length %d is outside 32..64 (a delegated prefix holds /64s)", n)
			} else {
				c6.PD = int(n)
			}
		}
		defer func() { s.DHCPClients = append(s.DHCPClients, c6) }()
	} else if l.DHCP6PD != nil {
		r.in("dhcp6_pd").errorf("needs dhcp6 = true on this interface")
	}
	if !l.DHCP {
		for key, set := range map[string]bool{"dhcp_table": l.DHCPTable != "", "dhcp_metric": l.DHCPMetric != nil} {
			if set {
				r.in(key).errorf("needs dhcp = true on this interface")
			}
		}
		return
	}
	c := DHCPClient{Interface: name, Hostname: l.DHCPHostname, Table: "main"}
	if a, ok := staticAddr(iface, false); ok {
		r.in("dhcp").errorf("dhcp = true and a static IPv4 address (%s): the address comes from the DHCP server", a)
	}
	if l.DHCPTable != "" {
		c.Table = l.DHCPTable
	}
	if c.TableID = t.Routing.TableID(c.Table); c.TableID == 0 {
		r.in("dhcp_table").errorf("table %q is not declared (declare [tenant.%s.table.%s] or use \"main\")", c.Table, t.Name, c.Table)
	}
	if l.DHCPMetric != nil {
		if m := *l.DHCPMetric; m < 0 || m > math.MaxUint32 {
			r.in("dhcp_metric").errorf("metric %d is outside 0..%d", m, uint32(math.MaxUint32))
		} else {
			c.Metric = uint32(m)
		}
	}
	s.DHCPClients = append(s.DHCPClients, c)
}

// validateDelegations validates prefix_from and prefix_subnet, once every
// interface's DHCP clients are known, and records each delegation on the
// DHCPv6 client it takes its prefix from.
func validateDelegations(ir reporter, raw *rawTenant, t *Tenant) {
	s := &t.Services
	taken := map[Delegation]string{}
	for _, name := range sortedKeys(raw.Interface) {
		l := raw.Interface[name].rawLearned
		r := ir.in(name)
		if l.PrefixFrom == "" {
			if l.PrefixSubnet != nil {
				r.in("prefix_subnet").errorf("needs prefix_from")
			}
			continue
		}
		pr := r.in("prefix_from")
		var from *DHCPClient
		for i := range s.DHCPClients {
			if c := &s.DHCPClients[i]; c.V6 && c.Interface == l.PrefixFrom {
				from = c
			}
		}
		switch {
		case t.Interface(l.PrefixFrom) == nil:
			pr.errorf("interface %q is not declared in tenant %q", l.PrefixFrom, t.Name)
			continue
		case from == nil || from.PD == 0:
			pr.errorf("interface %q asks for no delegated prefix (set dhcp6 = true and dhcp6_pd = 56 there)", l.PrefixFrom)
			continue
		case l.PrefixFrom == name || hasClient(s, name):
			pr.errorf("interface %q gets its own address by DHCP: it cannot be numbered from a delegated prefix", name)
			continue
		}
		d := Delegation{Interface: name}
		if l.PrefixSubnet != nil {
			sr := r.in("prefix_subnet")
			switch n, most := *l.PrefixSubnet, uint64(1)<<(64-from.PD); {
			case n < 0 || uint64(n) >= most:
				sr.errorf("subnet %d is outside 0..%d (a /%d holds %d /64s)", n, most-1, from.PD, most)
				continue
			default:
				d.Subnet = uint64(n)
			}
		}
		if prev, ok := taken[Delegation{l.PrefixFrom, d.Subnet}]; ok {
			r.in("prefix_subnet").errorf("subnet %d of %s's prefix is already %s's", d.Subnet, l.PrefixFrom, prev)
			continue
		}
		taken[Delegation{l.PrefixFrom, d.Subnet}] = name
		from.Delegate = append(from.Delegate, d)
	}
}

// DelegatedFrom returns the DHCPv6 client whose delegated prefix numbers
// iface, or nil.
func (s *Services) DelegatedFrom(iface string) *DHCPClient {
	for i := range s.DHCPClients {
		for _, d := range s.DHCPClients[i].Delegate {
			if d.Interface == iface {
				return &s.DHCPClients[i]
			}
		}
	}
	return nil
}

// staticAddr returns the first configured address of one family, which
// a DHCP client of that family would fight.
func staticAddr(iface *Interface, v6 bool) (netip.Prefix, bool) {
	if iface == nil {
		return netip.Prefix{}, false
	}
	for _, a := range iface.Addresses {
		if a.Addr().Is6() == v6 {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

// hasClient reports whether interface n runs a DHCP client of either family.
func hasClient(s *Services, n string) bool {
	for _, c := range s.DHCPClients {
		if c.Interface == n {
			return true
		}
	}
	return false
}

// servedInterface checks that a service's table names a declared
// interface that does not get its own address by DHCP.
func servedInterface(r reporter, name string, t *Tenant) *Interface {
	iface := t.Interface(name)
	switch {
	case iface == nil:
		r.errorf("interface %q is not declared in tenant %q", name, t.Name)
		return nil
	case t.Services.DHCPClient(name) != nil:
		r.errorf("interface %q has dhcp = true: it is a DHCP client, it cannot serve", name)
		return nil
	}
	return iface
}

// validateDHCPServer validates one [tenant.T.dhcp.IF] table.
func validateDHCPServer(r reporter, name string, rd *rawDHCPServer, t *Tenant) (DHCPServer, bool) {
	before := r.problems()
	d := DHCPServer{Interface: name, Domain: rd.Domain}
	iface := servedInterface(r, name, t)
	rr := r.in("range")
	if len(rd.Range) != 2 {
		rr.errorf("want [\"FIRST\", \"LAST\"], two IPv4 addresses")
	} else if as := addrList(rr, rd.Range, false); len(as) == 2 {
		d.Start, d.End = as[0], as[1]
		if d.End.Less(d.Start) {
			rr.errorf("last address %s is before the first %s", d.End, d.Start)
		} else if iface != nil {
			for _, a := range iface.Addresses {
				if p := a.Masked(); a.Addr().Is4() && p.Contains(d.Start) && p.Contains(d.End) {
					d.Subnet = p
					break
				}
			}
			if !d.Subnet.IsValid() {
				rr.errorf("range %s-%s is not inside a subnet of an IPv4 address of interface %q", d.Start, d.End, name)
			}
		}
	}
	d.LeaseTime = parseDuration(r.in("lease_time"), rd.LeaseTime, minDHCPLease, 365*24*time.Hour)
	d.Router = addrList(r.in("router"), rd.Router, false)
	d.DNS = addrList(r.in("dns"), rd.DNS, false)
	if d.Domain != "" && !validDNSName(d.Domain) {
		r.in("domain").errorf("%q is not a domain name", d.Domain)
	}
	macs, addrs := map[string]int{}, map[netip.Addr]int{}
	sr := r.in("static")
	for i, st := range rd.Static {
		er := sr.at(i)
		mac, err := net.ParseMAC(st.MAC)
		if err != nil || len(mac) != 6 {
			er.in("mac").errorf("invalid MAC address %q", st.MAC)
		} else if prev, dup := macs[mac.String()]; dup {
			er.in("mac").errorf("MAC %s already has a static lease at static[%d]", mac, prev)
		} else {
			macs[mac.String()] = i
		}
		a, err := netip.ParseAddr(st.Address)
		switch {
		case err != nil || !a.Is4():
			er.in("address").errorf("invalid IPv4 address %q", st.Address)
		case d.Subnet.IsValid() && !d.Subnet.Contains(a):
			er.in("address").errorf("%s is not inside %s, the subnet of the range", a, d.Subnet)
		default:
			if prev, dup := addrs[a]; dup {
				er.in("address").errorf("%s already has a static lease at static[%d]", a, prev)
			}
			addrs[a] = i
		}
		if st.Name != "" && !reDNSLabel.MatchString(st.Name) {
			er.in("name").errorf("%q is not a host name (one label)", st.Name)
		}
		d.Static = append(d.Static, StaticLease{MAC: mac, Addr: a, Name: st.Name})
	}
	return d, r.problems() == before
}

// validateDNS validates [tenant.T.dns].
func validateDNS(r reporter, rd *rawDNS, t *Tenant) *DNS {
	d := &DNS{Domain: rd.Domain}
	ir := r.in("interfaces")
	if len(rd.Interfaces) == 0 {
		ir.errorf("name at least one interface to answer on")
	}
	for i, n := range rd.Interfaces {
		if servedInterface(ir.at(i), n, t) != nil {
			if slices.Contains(d.Interfaces, n) {
				ir.at(i).errorf("interface %q is listed twice", n)
				continue
			}
			d.Interfaces = append(d.Interfaces, n)
		}
	}
	slices.Sort(d.Interfaces)
	fr := r.in("forwarders")
	for i, s := range rd.Forwarders {
		if f, ok := parseForwarder(s); ok {
			d.Forwarders = append(d.Forwarders, f)
		} else {
			fr.at(i).errorf("invalid forwarder %q: want ADDRESS, ADDRESS#PORT or DOMAIN=ADDRESS", s)
		}
	}
	ff := r.in("forwarders_from")
	for i, n := range rd.FwdFrom {
		switch {
		case t.Interface(n) == nil:
			ff.at(i).errorf("interface %q is not declared in tenant %q", n, t.Name)
		case !hasClient(&t.Services, n):
			ff.at(i).errorf("interface %q has neither dhcp = true nor dhcp6 = true: it learns no DNS servers", n)
		case slices.Contains(d.ForwardersFrom, n):
			ff.at(i).errorf("interface %q is listed twice", n)
		default:
			d.ForwardersFrom = append(d.ForwardersFrom, n)
		}
	}
	if d.Domain != "" && !validDNSName(d.Domain) {
		r.in("domain").errorf("%q is not a domain name", d.Domain)
	}
	if rd.CacheSize != nil {
		if n := *rd.CacheSize; n < 0 || n > 100000 {
			r.in("cache_size").errorf("%d is outside 0..100000", n)
		} else {
			d.CacheSize = int(n)
		}
	}
	nr := r.in("names")
	for _, n := range sortedKeys(rd.Names) {
		er := nr.in(n)
		if !validDNSName(n) {
			er.errorf("%q is not a DNS name", n)
			continue
		}
		if len(rd.Names[n]) == 0 {
			er.errorf("name %q has no address", n)
			continue
		}
		var addrs []netip.Addr
		for i, s := range rd.Names[n] {
			if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" || a.Is4In6() {
				er.at(i).errorf("invalid address %q", s)
			} else {
				addrs = append(addrs, a)
			}
		}
		d.Names = append(d.Names, LocalName{Name: n, Addrs: addrs})
	}
	return d
}

// parseForwarder reads ADDR, ADDR#PORT or DOMAIN=ADDR[#PORT].
func parseForwarder(s string) (Forwarder, bool) {
	var f Forwarder
	if dom, rest, ok := strings.Cut(s, "="); ok {
		if !validDNSName(dom) {
			return f, false
		}
		f.Domain, s = dom, rest
	}
	addr, port, hasPort := strings.Cut(s, "#")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return f, false
	}
	var p uint64
	if hasPort {
		if p, err = strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return f, false
		}
	}
	f.Addr = netip.AddrPortFrom(a, uint16(p))
	return f, true
}

// validateRA validates one [tenant.T.ra.IF] table.
func validateRA(r reporter, name string, rr *rawRA, t *Tenant) (RA, bool) {
	before := r.problems()
	ra := RA{Interface: name, Managed: rr.Managed, Other: rr.Other}
	iface := servedInterface(r, name, t)
	pr := r.in("prefixes")
	for i, s := range rr.Prefixes {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil || !p.Addr().Is6() || p.Addr().Is4In6():
			pr.at(i).errorf("invalid IPv6 prefix %q", s)
			continue
		case p != p.Masked():
			pr.at(i).errorf("%s has host bits set (want %s)", s, p.Masked())
			continue
		case p.Bits() != 64:
			pr.at(i).errorf("%s is not a /64: SLAAC needs a /64", s)
			continue
		}
		if iface != nil && !slices.ContainsFunc(iface.Addresses, func(a netip.Prefix) bool { return p.Contains(a.Addr()) }) {
			pr.at(i).errorf("interface %q has no address in %s (dnsmasq advertises only prefixes of its addresses)", name, p)
		}
		ra.Prefixes = append(ra.Prefixes, p)
	}
	ra.Delegated = t.Services.DelegatedFrom(name) != nil
	switch {
	case ra.Delegated && len(rr.Prefixes) > 0:
		pr.errorf("interface %q is numbered from a delegated prefix (prefix_from): its /64 is advertised, list no prefixes", name)
	case ra.Delegated && ra.Managed:
		r.in("managed").errorf("managed = true needs a dhcp6_range, which a delegated prefix cannot have (it is not known in advance)")
	case len(rr.Prefixes) == 0 && !ra.Managed && !ra.Delegated:
		pr.errorf("name at least one prefix to advertise (or managed = true with dhcp6_range, or number the interface with prefix_from)")
	}
	ra.RDNSS = addrList(r.in("rdnss"), rr.RDNSS, true)
	dr := r.in("dhcp6_range")
	switch {
	case len(rr.DHCP6Range) == 0:
		if ra.Managed {
			r.in("managed").errorf("managed = true needs dhcp6_range")
		}
	case len(rr.DHCP6Range) != 2:
		dr.errorf("want [\"FIRST\", \"LAST\"], two IPv6 addresses")
	case !ra.Managed:
		dr.errorf("dhcp6_range is only used with managed = true")
	default:
		if as := addrList(dr, rr.DHCP6Range, true); len(as) == 2 {
			ra.Start6, ra.End6 = as[0], as[1]
			if ra.End6.Less(ra.Start6) {
				dr.errorf("last address %s is before the first %s", ra.End6, ra.Start6)
			} else if len(ra.Prefixes) > 0 && !slices.ContainsFunc(ra.Prefixes, func(p netip.Prefix) bool { return p.Contains(ra.Start6) && p.Contains(ra.End6) }) {
				dr.errorf("range %s-%s is not inside an advertised prefix", ra.Start6, ra.End6)
			}
		}
	}
	// RFC 4861 6.2.1: MaxRtrAdvInterval 4..1800 s, AdvDefaultLifetime 0
	// or MaxRtrAdvInterval..9000 s.
	ra.Interval = parseDuration(r.in("interval"), rr.Interval, 4*time.Second, 1800*time.Second)
	ra.Lifetime = parseDuration(r.in("lifetime"), rr.Lifetime, 0, 9000*time.Second)
	if ra.Interval > 0 && ra.Lifetime > 0 && ra.Lifetime < ra.Interval {
		r.in("lifetime").errorf("router lifetime %s is shorter than the interval %s", ra.Lifetime, ra.Interval)
	}
	return ra, r.problems() == before
}
