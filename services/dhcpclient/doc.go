// Package dhcpclient owns what a tenant's WAN interface learns from the
// network: a DHCPv4 or DHCPv6 (IA_NA) client running for one interface
// of one tenant namespace, the application of its lease to the kernel
// (address with the lease's lifetimes; for DHCPv4 routes under fwd's
// protocol into the tenant's table), and the accept_ra/autoconf switches
// that let an IPv6 WAN take router advertisements (default route, SLAAC)
// although forwarding is on.
//
// One state machine (client_linux.go: INIT → BOUND → RENEWING at T1 →
// REBINDING at T2 → expiry; a refusal or expiry back to INIT; RELEASE
// on removal) drives either exchange: github.com/insomniacslk/dhcp's
// nclient4 (RFC 2131, v4_linux.go) or its dhcpv6 messages over nclient6
// (RFC 8415, lease6.go builds the messages, v6_linux.go sends them). It
// runs as goroutines of the daemon, not as a dhclient process: no extra
// Debian package, no script hook to parse, lease events arrive
// in-process as values (Event) for the log, metrics, `fwd show leases`
// and the routing plan. It needs no thread in the namespace: its socket
// (DHCPv4: a packet socket with a BPF filter passing only UDP to port
// 68, so a busy WAN is not copied to userspace; DHCPv6: a UDP socket
// bound to the interface) is created inside the namespace through the
// internal/ns door and stays there. A socket that fails (the interface
// went down) or whose interface was recreated is replaced at the next
// exchange (socket_linux.go), and a lease still valid is put back on the
// new interface at once.
//
// Addresses are installed with the lease's remaining time as their
// valid and preferred lifetimes: an address with a finite lifetime is a
// learned one (zones must leave it alone), and if fwd dies the kernel
// removes it when the lease runs out, as the DHCP server expects.
package dhcpclient
