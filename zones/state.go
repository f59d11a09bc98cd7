package zones

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Kernel-resident marks. An interface alias is at most 255 bytes; ours are
// short. The loopback of every fwd namespace carries NamespaceMark.
const (
	NamespaceMark = "fwd:tenant"
	markPrefix    = "fwd:"
)

// Origin says how a link came to be in a tenant namespace.
type Origin string

const (
	OriginMoved   Origin = "moved"   // a NIC moved from the default namespace; handed back on removal
	OriginCreated Origin = "created" // a link fwd created; deleted on removal
)

// Mark is the parsed alias of a link fwd owns.
type Mark struct {
	Origin Origin
	Device string // moved: original name in the default namespace
	MTU    int    // moved: original MTU
	Up     bool   // moved: was administratively up in the default namespace
	Kind   string // created: veth, macvlan, vlan
	Peer   string // created veth: "tenant/name" of the other end
	Parent string // created macvlan/vlan: parent NIC
	VLANID int    // created vlan
	Mode   string // created macvlan: mode
}

// String renders the mark as an alias: "fwd:moved dev=eth1 mtu=1500".
func (m Mark) String() string {
	parts := []string{markPrefix + string(m.Origin)}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("dev", m.Device)
	if m.MTU > 0 {
		add("mtu", strconv.Itoa(m.MTU))
	}
	if m.Up {
		add("up", "1")
	}
	add("kind", m.Kind)
	add("peer", m.Peer)
	add("parent", m.Parent)
	if m.VLANID > 0 {
		add("id", strconv.Itoa(m.VLANID))
	}
	add("mode", m.Mode)
	return strings.Join(parts, " ")
}

// ParseMark parses an alias; ok is false when the link is not fwd's.
func ParseMark(alias string) (m Mark, ok bool) {
	f := strings.Fields(alias)
	if len(f) == 0 || !strings.HasPrefix(f[0], markPrefix) {
		return Mark{}, false
	}
	m.Origin = Origin(strings.TrimPrefix(f[0], markPrefix))
	if m.Origin != OriginMoved && m.Origin != OriginCreated {
		return Mark{}, false
	}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "dev":
			m.Device = v
		case "mtu":
			m.MTU, _ = strconv.Atoi(v)
		case "up":
			m.Up = v == "1"
		case "kind":
			m.Kind = v
		case "peer":
			m.Peer = v
		case "parent":
			m.Parent = v
		case "id":
			m.VLANID, _ = strconv.Atoi(v)
		case "mode":
			m.Mode = v
		}
	}
	return m, true
}

// Link is an observed network interface.
type Link struct {
	Index   int              `json:"ifindex"`
	Name    string           `json:"name"`
	Kind    string           `json:"kind"` // netlink type: device, veth, macvlan, vlan, …
	MAC     net.HardwareAddr `json:"-"`
	MTU     int              `json:"mtu"`
	Up      bool             `json:"admin_up"`
	Oper    string           `json:"oper_state"`
	Alias   string           `json:"alias,omitempty"`
	Addrs   []netip.Prefix   `json:"addresses"`         // global/site scope only; link-local is the kernel's
	Learned []netip.Prefix   `json:"learned,omitempty"` // of Addrs, those with a finite lifetime (DHCP, SLAAC): never fwd's to delete
	RxBytes uint64           `json:"rx_bytes"`
	TxBytes uint64           `json:"tx_bytes"`
	RxPkts  uint64           `json:"rx_packets"`
	TxPkts  uint64           `json:"tx_packets"`
	RxDrop  uint64           `json:"rx_dropped"`
	TxDrop  uint64           `json:"tx_dropped"`
}

// Mark returns the link's fwd mark, if any.
func (l *Link) Mark() (Mark, bool) { return ParseMark(l.Alias) }

// Namespace is an observed fwd namespace.
type Namespace struct {
	Name        string  `json:"name"`
	LoUp        bool    `json:"lo_up"`
	Forwarding4 bool    `json:"ipv4_forwarding"`
	Forwarding6 bool    `json:"ipv6_forwarding"`
	Links       []*Link `json:"interfaces"` // without lo
}

// Link returns the namespace's link of that name, or nil.
func (n *Namespace) Link(name string) *Link {
	for _, l := range n.Links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// State is the part of the kernel that zones cares about.
type State struct {
	Default []*Link // links of the default namespace
	// DefaultRouteLinks are the ifindexes carrying a default route in the
	// default namespace: the way the operator reaches the box. Never moved.
	DefaultRouteLinks map[int]bool
	Tenants           map[string]*Namespace // fwd-marked namespaces
	Foreign           map[string]bool       // pinned namespaces that are not fwd's
}

// DefaultLink finds a default-namespace link by name.
func (s *State) DefaultLink(name string) *Link {
	for _, l := range s.Default {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func (l *Link) String() string { return fmt.Sprintf("%s(%d)", l.Name, l.Index) }
