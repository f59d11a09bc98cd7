package config

// The validated edge services of a tenant: what its interfaces learn
// from the network (DHCPv4 client, SLAAC) and what it serves on its LAN
// (dnsmasq: DHCPv4, DNS, router advertisements). docs/services.md
// documents every key.

import (
	"net"
	"net/netip"
	"reflect"
	"time"
)

// Services is a tenant's edge services. The zero value is none.
type Services struct {
	DHCPClients []DHCPClient // dhcp = true, dhcp6 = true: by interface name, IPv4 first
	SLAAC       []string     // interfaces with slaac = true, sorted
	DHCP        []DHCPServer // [dhcp.IF], sorted by interface
	DNS         *DNS         // [dns]; nil: no resolver
	RA          []RA         // [ra.IF], sorted by interface
}

// LAN reports whether the tenant runs a dnsmasq (any of dhcp, dns, ra).
func (s *Services) LAN() bool { return len(s.DHCP) > 0 || s.DNS != nil || len(s.RA) > 0 }

// DHCPClient returns the DHCP client settings of an interface (its
// DHCPv4 client if it has both), or nil.
func (s *Services) DHCPClient(iface string) *DHCPClient {
	for i := range s.DHCPClients {
		if s.DHCPClients[i].Interface == iface {
			return &s.DHCPClients[i]
		}
	}
	return nil
}

// AcceptsRA reports whether the interface takes router advertisements
// although forwarding is on: for SLAAC, and for the default route of a
// DHCPv6 client (DHCPv6 carries no routes).
func (s *Services) AcceptsRA(iface string) bool {
	if s.SLAACOn(iface) {
		return true
	}
	for _, c := range s.DHCPClients {
		if c.V6 && c.Interface == iface {
			return true
		}
	}
	return false
}

// SLAACOn reports whether the interface autoconfigures from RAs.
func (s *Services) SLAACOn(iface string) bool {
	for _, n := range s.SLAAC {
		if n == iface {
			return true
		}
	}
	return false
}

// DHCPClient is the DHCPv4 or DHCPv6 client of one interface.
type DHCPClient struct {
	Interface string
	V6        bool   // DHCPv6 (IA_NA): an address and DNS servers, no routes
	Hostname  string // option 12 (v4), client FQDN option 39 (v6); "" sends none
	Table     string // "main" or a declared table (v4; v6: main): where the lease's routes go
	TableID   uint32
	Metric    uint32 // v4
	// PD (v6) > 0 asks for a delegated prefix of that length (a hint:
	// the server decides); Delegate says which /64 of it each LAN
	// interface gets.
	PD       int
	Delegate []Delegation
}

// Equal reports whether two clients have the same settings.
// (Every field: a field added later is compared without a list to keep.)
func (c DHCPClient) Equal(o DHCPClient) bool { return reflect.DeepEqual(c, o) }

// Delegation is one interface numbered from a delegated prefix
// (prefix_from, prefix_subnet): it gets the Subnet-th /64 of the prefix,
// its ::1 address fwd's (learned: with the delegation's lifetimes).
type Delegation struct {
	Interface string
	Subnet    uint64
}

// DHCPServer is DHCPv4 served on one interface.
type DHCPServer struct {
	Interface string
	Start     netip.Addr
	End       netip.Addr
	Subnet    netip.Prefix  // the interface subnet holding the range (its mask is handed out)
	LeaseTime time.Duration // 0: dnsmasq's default (1h)
	Router    []netip.Addr  // empty: the interface's address
	DNS       []netip.Addr  // empty: dnsmasq itself when [dns] serves the interface
	Domain    string
	Static    []StaticLease
}

// StaticLease is a fixed address for one MAC.
type StaticLease struct {
	MAC  net.HardwareAddr
	Addr netip.Addr
	Name string
}

// DNS is the tenant's resolver.
type DNS struct {
	Interfaces []string // where it answers (and port 53 is admitted)
	Forwarders []Forwarder
	// ForwardersFrom names interfaces with a DHCP client whose leases'
	// DNS servers are forwarders too, following the leases.
	ForwardersFrom []string
	Domain         string // answered locally, never forwarded
	CacheSize      int    // 0: dnsmasq's default
	Names          []LocalName
}

// Forwarder is an upstream DNS server, for every name or only under Domain.
type Forwarder struct {
	Addr   netip.AddrPort // port 0: 53
	Domain string
}

// LocalName is a name the resolver answers itself.
type LocalName struct {
	Name  string
	Addrs []netip.Addr
}

// RA is router advertisement on one interface.
type RA struct {
	Interface string
	Prefixes  []netip.Prefix
	// Delegated: the interface is numbered from a delegated prefix
	// (prefix_from); its /64 is advertised, whatever it is now.
	Delegated      bool
	RDNSS          []netip.Addr
	Managed, Other bool
	Start6, End6   netip.Addr // DHCPv6 range (managed)
	Interval       time.Duration
	Lifetime       time.Duration
}

// Admits DHCPv6 when the RA asks hosts to use it.
func (r *RA) DHCPv6() bool { return r.Managed || r.Other }
