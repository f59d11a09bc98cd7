// Package policy compiles a tenant's firewall policy (zones, rules, sets,
// NAT) into nftables objects and reconciles them into the tenant's
// namespace in one transaction.
package policy
