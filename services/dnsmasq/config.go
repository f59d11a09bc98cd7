package dnsmasq

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// MinLeaseTime is the shortest lease dnsmasq hands out (it raises
// anything shorter to two minutes).
const MinLeaseTime = 2 * time.Minute

// Config is one tenant's dnsmasq instance: what the engine compiles from
// the tenant's [dhcp.*], [dns] and [ra.*] tables. Interface names are
// names inside the tenant's namespace.
type Config struct {
	// Dir holds every file of the instance: configuration, data files,
	// lease file, pid file and log (the supervisor sets it).
	Dir string
	// User and Group are what dnsmasq drops privileges to after binding.
	User, Group string

	DHCP []DHCPRange   // one per LAN interface serving DHCPv4
	DNS  *DNS          // nil: no DNS service (port=0)
	RA   []RA          // one per interface sending router advertisements
	Host []StaticLease // fixed addresses by MAC
}

// DHCPRange is DHCPv4 on one interface.
type DHCPRange struct {
	Interface string
	Start     netip.Addr
	End       netip.Addr
	Mask      netip.Prefix // the subnet (its length is the mask handed out)
	LeaseTime time.Duration
	Router    []netip.Addr // option 3; empty: the interface's own address
	DNS       []netip.Addr // option 6; empty: dnsmasq itself when DNS runs
	Domain    string       // option 15
}

// StaticLease is a fixed address for one MAC.
type StaticLease struct {
	MAC       net.HardwareAddr
	Addr      netip.Addr
	Name      string        // optional host name, also answered by DNS
	LeaseTime time.Duration // 0: the range's
}

// DNS is the resolver served on the tenant's LAN interfaces.
type DNS struct {
	Interfaces []string // where the policy admits port 53
	Forwarders []Forwarder
	Local      []LocalName
	Domain     string // local domain: never forwarded, DHCP names under it
	CacheSize  int    // 0: dnsmasq's default
}

// Forwarder is an upstream server, for every name or only under Domain.
type Forwarder struct {
	Addr   netip.AddrPort // port 0 means 53
	Domain string
}

// LocalName is a name dnsmasq answers itself.
type LocalName struct {
	Name  string
	Addrs []netip.Addr
}

// RA is router advertisement on one interface.
type RA struct {
	Interface string
	Prefixes  []netip.Prefix // advertised for SLAAC (each should be a /64)
	// Constructor advertises the /64s of the interface's own global
	// addresses, whatever they are now (dnsmasq's constructor:): an
	// interface numbered from a delegated prefix. Prefixes must be empty.
	Constructor bool
	RDNSS       []netip.Addr // empty: the router's own address when DNS runs
	// Managed sets M (addresses from DHCPv6: Start6-End6 is served);
	// Other sets O (DNS and other options from stateless DHCPv6).
	Managed, Other bool
	Start6, End6   netip.Addr    // the DHCPv6 range when Managed
	Interval       time.Duration // 0: dnsmasq's default
	Lifetime       time.Duration // router lifetime; 0: dnsmasq's default
	// PrefixLifetime is the prefixes' valid lifetime (and DHCPv6 lease
	// time); 0: one hour.
	PrefixLifetime time.Duration
}

// Interfaces returns the interfaces the instance listens on, sorted:
// every interface named by DHCP, RA or DNS. dnsmasq answers DNS on each
// interface it listens on (it has no per-interface DNS switch); the
// policy admits port 53 only on DNS.Interfaces.
func (c *Config) Interfaces() []string {
	var out []string
	if c.DNS != nil {
		out = append(out, c.DNS.Interfaces...)
	}
	for _, d := range c.DHCP {
		out = append(out, d.Interface)
	}
	for _, r := range c.RA {
		out = append(out, r.Interface)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Check reports the errors Render would refuse the configuration for.
// The config package validates the TOML keys with their paths; these are
// the generator's own invariants, so a wrong Config never becomes a
// dnsmasq that dies at start.
func (c *Config) Check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Dir == "" {
		bad("no directory")
	}
	seen := map[string]bool{}
	for _, d := range c.DHCP {
		if err := checkIfName(d.Interface); err != nil {
			bad("dhcp: %w", err)
			continue
		}
		if seen[d.Interface] {
			bad("dhcp %s: two ranges on one interface", d.Interface)
		}
		seen[d.Interface] = true
		switch {
		case !d.Start.Is4() || !d.End.Is4():
			bad("dhcp %s: range must be IPv4", d.Interface)
		case d.End.Less(d.Start):
			bad("dhcp %s: range end %s before start %s", d.Interface, d.End, d.Start)
		case !d.Mask.IsValid() || !d.Mask.Contains(d.Start) || !d.Mask.Contains(d.End):
			bad("dhcp %s: range %s-%s outside subnet %s", d.Interface, d.Start, d.End, d.Mask)
		}
		if d.LeaseTime != 0 && d.LeaseTime < MinLeaseTime {
			bad("dhcp %s: lease time %s below dnsmasq's minimum %s", d.Interface, d.LeaseTime, MinLeaseTime)
		}
		for _, a := range append(slices.Clone(d.Router), d.DNS...) {
			if !a.Is4() {
				bad("dhcp %s: option address %s is not IPv4", d.Interface, a)
			}
		}
	}
	for _, h := range c.Host {
		if len(h.MAC) != 6 {
			bad("static lease %s: need a 6-byte MAC", h.Addr)
		}
		if !h.Addr.Is4() {
			bad("static lease %s: address must be IPv4", h.MAC)
		}
	}
	ra := map[string]bool{}
	for _, r := range c.RA {
		if err := checkIfName(r.Interface); err != nil {
			bad("ra: %w", err)
			continue
		}
		if ra[r.Interface] {
			bad("ra %s: declared twice", r.Interface)
		}
		ra[r.Interface] = true
		switch {
		case r.Constructor && (len(r.Prefixes) > 0 || r.Managed):
			bad("ra %s: constructor takes its prefixes from the interface (no prefixes, not managed)", r.Interface)
		case len(r.Prefixes) == 0 && !r.Managed && !r.Constructor:
			bad("ra %s: no prefix to advertise", r.Interface)
		}
		for _, p := range r.Prefixes {
			if !p.Addr().Is6() || p.Addr().Is4In6() {
				bad("ra %s: prefix %s is not IPv6", r.Interface, p)
			}
		}
		if r.Managed && (!r.Start6.Is6() || !r.End6.Is6() || r.End6.Less(r.Start6)) {
			bad("ra %s: managed needs an IPv6 range start-end", r.Interface)
		}
	}
	if c.DNS != nil {
		for _, n := range c.DNS.Interfaces {
			if err := checkIfName(n); err != nil {
				bad("dns: %w", err)
			}
		}
		for _, f := range c.DNS.Forwarders {
			if !f.Addr.Addr().IsValid() {
				bad("dns: forwarder without address")
			}
		}
		for _, l := range c.DNS.Local {
			if l.Name == "" || len(l.Addrs) == 0 {
				bad("dns: local name %q needs a name and addresses", l.Name)
			}
		}
	}
	if len(c.Interfaces()) == 0 {
		bad("no interface to serve")
	}
	return errors.Join(errs...)
}

// checkIfName refuses what would break a dnsmasq line or a file name.
func checkIfName(n string) error {
	if n == "" || len(n) > 15 || n == "lo" {
		return fmt.Errorf("bad interface name %q", n)
	}
	for _, r := range n {
		if r == ',' || r == '/' || r == ' ' || r == '\n' || r == '=' {
			return fmt.Errorf("bad interface name %q", n)
		}
	}
	return nil
}
