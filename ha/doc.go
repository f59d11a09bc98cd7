// Package ha owns a tenant's high-availability pair: it renders the
// keepalived (VRRPv3) and conntrackd (FTFW state sync) configurations from
// a Spec, runs both daemons inside the tenant's namespace through package
// supervise, and reports the pair's state (master, backup, fault), the
// last transition and conntrackd's sync counters.
//
// fwd does not speak VRRP or sync conntrack itself: keepalived owns the
// VIPs (it adds and removes them; nothing else in fwd may), and conntrackd
// owns the state copy. The glue between them is the notify script
// (NotifyScript), which does what conntrackd's primary-backup.sh does on
// each transition and records the new state in a file the daemon reads.
//
// Render and the Status parsers are pure; Manager (manager_linux.go) is
// the only code that writes files, starts processes or signals them.
// docs/ha.md explains each generated setting and the measured failover.
package ha
