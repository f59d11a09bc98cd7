package mgmt

import "net/netip"

// Namespace is one tenant's namespace as the kernel has it: what
// GET /v1/show serves and `fwd show -j` prints. The daemon fills it from
// its own observation of the kernel; mgmt only carries it.
type Namespace struct {
	Name        string      `json:"name"`
	LoUp        bool        `json:"lo_up"`
	Forwarding4 bool        `json:"ipv4_forwarding"`
	Forwarding6 bool        `json:"ipv6_forwarding"`
	Interfaces  []Interface `json:"interfaces"` // without lo, sorted by name
}

// Interface is one network interface of a tenant namespace.
type Interface struct {
	Index int    `json:"ifindex"`
	Name  string `json:"name"`
	Kind  string `json:"kind"` // netlink type: device, veth, macvlan, vlan, …
	MTU   int    `json:"mtu"`
	Up    bool   `json:"admin_up"`
	Oper  string `json:"oper_state"`
	// Alias is the kernel's interface alias; fwd's own links carry their
	// origin there ("fwd:moved dev=eth1 …").
	Alias   string         `json:"alias,omitempty"`
	Addrs   []netip.Prefix `json:"addresses"` // global/site scope only
	RxBytes uint64         `json:"rx_bytes"`
	TxBytes uint64         `json:"tx_bytes"`
	RxPkts  uint64         `json:"rx_packets"`
	TxPkts  uint64         `json:"tx_packets"`
	RxDrop  uint64         `json:"rx_dropped"`
	TxDrop  uint64         `json:"tx_dropped"`
}
