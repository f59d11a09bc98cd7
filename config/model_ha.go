package config

// The validated HA pair of a tenant (docs/ha.md documents every key).

import (
	"net/netip"
	"time"
)

// HA defaults (the same as package ha's: config cannot import it).
const (
	DefaultHAVRID           = 51
	DefaultHAAdvertInterval = 500 * time.Millisecond
	DefaultHAPreemptDelay   = 10 * time.Second
	DefaultHASyncPort       = 3780
)

// HA is one tenant's half of an HA pair: keepalived (VRRPv3, holding the
// VIPs) and conntrackd (state sync), both talking to Peer over
// SyncInterface only.
type HA struct {
	Line          int    // line of the [tenant.T.ha] header; 0 when unknown
	SyncInterface string // a declared interface dedicated to HA traffic
	// LocalAddress is this box's address on SyncInterface: the one in
	// Peer's subnet (there is no key for it).
	LocalAddress netip.Addr
	Peer         netip.Addr
	Priority     int // 1..254
	VRID         int // 1..255
	// AdvertInterval is VRRP's; master-down time is about three of it.
	AdvertInterval time.Duration
	PreemptDelay   time.Duration
	SyncPort       int      // conntrackd's UDP port
	Track          []string // more interfaces whose loss means FAULT
	VIPs           []VIP
}

// VIP is a virtual address keepalived holds on the master.
type VIP struct {
	Interface string
	Prefix    netip.Prefix // address with its subnet length
}

// OwnAddresses are the tenant's configured interface addresses: the
// addresses conntrackd does not sync (connections ending on this box).
func (t *Tenant) OwnAddresses() []netip.Addr {
	var out []netip.Addr
	for _, i := range t.Interfaces {
		for _, a := range i.Addresses {
			out = append(out, a.Addr())
		}
	}
	return out
}
