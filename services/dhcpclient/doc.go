// Package dhcpclient owns what a tenant's WAN interface learns from the
// network: a DHCPv4 client running for one interface of one tenant
// namespace, the application of its lease to the kernel (address with the
// lease's lifetime, routes under fwd's protocol into the tenant's table),
// and the accept_ra switch that lets an IPv6 WAN autoconfigure (SLAAC)
// although forwarding is on.
//
// The client is github.com/insomniacslk/dhcp's nclient4 driven by a
// RFC 2131 state machine here (INIT → BOUND → RENEWING at T1 →
// REBINDING at T2 → expiry; NAK or expiry back to INIT; RELEASE on
// removal). It runs as goroutines of the daemon, not as a dhclient
// process: no extra Debian package, no script hook to parse, lease events
// arrive in-process as values (Event) for the log, metrics, `fwd show`
// and the routing plan. It needs no thread in the namespace: its only
// socket, a packet socket on the interface, is created inside the
// namespace through the internal/ns door and stays bound there. A BPF
// filter on that socket passes only UDP to port 68, so a busy WAN does
// not copy its traffic to userspace.
//
// Addresses are installed with the lease's remaining time as their
// valid and preferred lifetimes: an address with a finite lifetime is a
// learned one (zones must leave it alone), and if fwd dies the kernel
// removes it when the lease runs out, as the DHCP server expects.
package dhcpclient
