// Package dnsmasq owns the LAN services of a tenant: one dnsmasq process
// per tenant, started inside the tenant's namespace, serving DHCPv4, DNS
// (forwarders and local names) and IPv6 router advertisements on the
// tenant's own interfaces and nowhere else.
//
// It is Render → Observe → Plan → Apply:
//
//   - Render (pure) turns a Config into Files: the main configuration,
//     which dnsmasq reads only when it starts, and the data files it
//     re-reads on SIGHUP (static leases, DHCP options, local names,
//     forwarders). Golden-tested under testdata/.
//   - Observe reads what is on disk in the instance's directory and
//     whether the supervised process is alive.
//   - Plan (pure) compares them: nothing, reload (SIGHUP: only re-read
//     files changed), restart (the main configuration changed), start or
//     stop.
//   - Supervisor.Apply writes the files and starts, signals or restarts
//     the process through package supervise, which restarts it with
//     backoff when it dies and lets a restarted daemon adopt it.
//
// Router advertisements come from dnsmasq (enable-ra) rather than radvd:
// one process per tenant serves DHCP, DNS and RA from one generated
// configuration, RDNSS is the same DNS address list DHCP hands out, and
// no second Debian package, supervisor entry and generator is needed.
// The cost is that the M and O flags follow the range mode (ra-only,
// ra-stateless, slaac) instead of being set one by one, and that dnsmasq
// only advertises a prefix the interface has an address in (which is
// the configuration one wants anyway).
package dnsmasq
