package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads, decodes and validates a config file. A returned error is an
// Errors value listing every problem, or an I/O error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and validates data; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	var raw rawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, Errors{decodeError(name, err)}
	}
	r := &reporter{file: name, idx: buildKeyIndex(data)}
	for _, k := range md.Undecoded() {
		for _, key := range r.idx.expand(k.String()) {
			r.add(key, "unknown key")
		}
	}
	if len(r.errs) > 0 {
		return nil, r.errs.sorted()
	}
	cfg := validate(r, &raw)
	if len(r.errs) > 0 {
		return nil, r.errs.sorted()
	}
	cfg.File = name
	return cfg, nil
}

func decodeError(name string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Key: pe.LastKey, Msg: pe.Message}
	}
	if m := reTomlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Key: m[2], Msg: m[3]}
	}
	return &Error{File: name, Msg: err.Error()}
}

var (
	reTenantName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,14}$`)
	macvlanModes = map[string]bool{"": true, "bridge": true, "private": true, "vepa": true, "passthru": true}
)

// ValidIfName reports why name is not a valid Linux interface name, or "".
func ValidIfName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 15:
		return fmt.Sprintf("%q is longer than 15 bytes (IFNAMSIZ)", name)
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a valid interface name", name)
	case strings.ContainsAny(name, "/: \t\n%"):
		return fmt.Sprintf("%q contains a character not allowed in interface names", name)
	}
	return ""
}

func validate(r *reporter, raw *rawFile) *Config {
	cfg := &Config{}
	validateMgmt(r, &raw.Mgmt, &cfg.Mgmt)
	protected := map[string]bool{}
	for _, p := range cfg.Mgmt.Protect {
		protected[p] = true
	}

	names := make([]string, 0, len(raw.Tenant))
	for n := range raw.Tenant {
		names = append(names, n)
	}
	sort.Strings(names)

	claimedDev := map[string]string{} // device name -> key
	claimedMAC := map[string]string{}
	parents := map[string]string{}
	vlans := map[string]string{}
	for _, tn := range names {
		rt := raw.Tenant[tn]
		tkey := "tenant." + tn
		if !reTenantName.MatchString(tn) {
			r.add(tkey, "invalid tenant name %q: use 1-15 characters a-z, 0-9, '-' or '_', starting with a letter", tn)
		}
		t := &Tenant{Name: tn, Forwarding: true}
		if rt.Forwarding != nil {
			t.Forwarding = *rt.Forwarding
		}
		inames := make([]string, 0, len(rt.Interface))
		for n := range rt.Interface {
			inames = append(inames, n)
		}
		sort.Strings(inames)
		addrOwner := map[netip.Addr]string{}
		type subnet struct {
			p   netip.Prefix
			key string
		}
		var subnets []subnet
		for _, in := range inames {
			ri := rt.Interface[in]
			ikey := tkey + ".interface." + in
			iface := &Interface{Tenant: tn, Name: in, MTU: ri.MTU}
			if why := ValidIfName(in); why != "" {
				r.add(ikey, "interface name %s", why)
			} else if in == "lo" {
				r.add(ikey, "interface name \"lo\" is the namespace's loopback")
			}
			sources := 0
			if ri.Device != "" {
				sources++
			}
			if ri.MAC != "" {
				sources++
			}
			if ri.Peer != nil {
				sources++
			}
			if ri.Macvlan != nil {
				sources++
			}
			if ri.VLAN != nil {
				sources++
			}
			if sources != 1 {
				r.add(ikey, "exactly one of device, mac, peer, macvlan or vlan is required (found %d)", sources)
			}
			switch {
			case ri.Device != "":
				iface.Kind, iface.Device = KindPhysical, ri.Device
				if why := ValidIfName(ri.Device); why != "" {
					r.add(ikey+".device", "%s", why)
				}
				if protected[ri.Device] {
					r.add(ikey+".device", "%q is protected by mgmt.protect and is never moved", ri.Device)
				}
				if prev, ok := claimedDev[ri.Device]; ok {
					r.add(ikey+".device", "device %q is already claimed by %s", ri.Device, prev)
				} else {
					claimedDev[ri.Device] = ikey
				}
			case ri.MAC != "":
				iface.Kind = KindPhysical
				mac, err := net.ParseMAC(ri.MAC)
				if err != nil || len(mac) != 6 {
					r.add(ikey+".mac", "invalid MAC address %q", ri.MAC)
					break
				}
				iface.MAC = mac
				if prev, ok := claimedMAC[mac.String()]; ok {
					r.add(ikey+".mac", "MAC %s is already claimed by %s", mac, prev)
				} else {
					claimedMAC[mac.String()] = ikey
				}
			case ri.Peer != nil:
				iface.Kind, iface.PeerTenant, iface.PeerName = KindVeth, ri.Peer.Tenant, ri.Peer.Name
				if ri.Peer.Tenant == "" || ri.Peer.Name == "" {
					r.add(ikey+".peer", "peer needs both tenant and name")
				}
			case ri.Macvlan != nil:
				iface.Kind, iface.Parent, iface.MacvlanMode = KindMacvlan, ri.Macvlan.Parent, ri.Macvlan.Mode
				if why := ValidIfName(ri.Macvlan.Parent); why != "" {
					r.add(ikey+".macvlan.parent", "%s", why)
				}
				if !macvlanModes[ri.Macvlan.Mode] {
					r.add(ikey+".macvlan.mode", "unknown macvlan mode %q (bridge, private, vepa, passthru)", ri.Macvlan.Mode)
				}
				if iface.MacvlanMode == "" {
					iface.MacvlanMode = "bridge"
				}
				parents[ri.Macvlan.Parent] = ikey + ".macvlan.parent"
			case ri.VLAN != nil:
				iface.Kind, iface.Parent, iface.VLANID = KindVLAN, ri.VLAN.Parent, ri.VLAN.ID
				if why := ValidIfName(ri.VLAN.Parent); why != "" {
					r.add(ikey+".vlan.parent", "%s", why)
				}
				if ri.VLAN.ID < 1 || ri.VLAN.ID > 4094 {
					r.add(ikey+".vlan.id", "VLAN id %d out of range 1-4094", ri.VLAN.ID)
				}
				vk := fmt.Sprintf("%s.%d", ri.VLAN.Parent, ri.VLAN.ID)
				if prev, ok := vlans[vk]; ok {
					r.add(ikey+".vlan", "VLAN %d on %s is already used by %s", ri.VLAN.ID, ri.VLAN.Parent, prev)
				} else {
					vlans[vk] = ikey
				}
				parents[ri.VLAN.Parent] = ikey + ".vlan.parent"
			}
			if ri.MTU != 0 && (ri.MTU < 68 || ri.MTU > 65535) {
				r.add(ikey+".mtu", "MTU %d out of range 68-65535", ri.MTU)
			}
			hasV6 := false
			for ai, a := range ri.Addresses {
				akey := fmt.Sprintf("%s.addresses[%d]", ikey, ai)
				p, err := netip.ParsePrefix(a)
				if err != nil {
					r.add(akey, "invalid address %q: want address/prefix-length, e.g. 192.0.2.1/24", a)
					continue
				}
				if p.Addr().Zone() != "" || p.Addr().Is4In6() {
					r.add(akey, "invalid address %q", a)
					continue
				}
				if p.Addr().Is6() {
					hasV6 = true
				}
				if p.Addr().IsLinkLocalUnicast() && p.Addr().Is6() {
					r.add(akey, "%s is link-local: the kernel assigns IPv6 link-local addresses", a)
					continue
				}
				if p.Addr().IsMulticast() || p.Addr().IsUnspecified() || p.Addr().IsLoopback() {
					r.add(akey, "%s is not a unicast host address", a)
					continue
				}
				if p.Addr().Is4() && p.Bits() < 31 {
					if p.Addr() == p.Masked().Addr() {
						r.add(akey, "%s is the network address of %s", p.Addr(), p.Masked())
						continue
					}
					if p.Addr() == lastAddr(p) {
						r.add(akey, "%s is the broadcast address of %s", p.Addr(), p.Masked())
						continue
					}
				}
				if prev, ok := addrOwner[p.Addr()]; ok {
					r.add(akey, "address %s is already assigned at %s", p.Addr(), prev)
					continue
				}
				addrOwner[p.Addr()] = akey
				for _, s := range subnets {
					if s.p.Overlaps(p.Masked()) && !strings.HasPrefix(s.key, ikey+".") {
						r.add(akey, "prefix %s overlaps %s at %s", p.Masked(), s.p, s.key)
					}
				}
				subnets = append(subnets, subnet{p.Masked(), akey})
				iface.Addresses = append(iface.Addresses, p)
			}
			if hasV6 && ri.MTU != 0 && ri.MTU < 1280 {
				r.add(ikey+".mtu", "MTU %d is below the IPv6 minimum of 1280 and the interface has IPv6 addresses", ri.MTU)
			}
			sort.Slice(iface.Addresses, func(i, j int) bool { return iface.Addresses[i].String() < iface.Addresses[j].String() })
			t.Interfaces = append(t.Interfaces, iface)
		}
		validatePolicy(r, tkey, &rt, t)
		validateRouting(r, tkey, &rt, t)
		validateBGP(r, tkey, &rt, t)
		cfg.Tenants = append(cfg.Tenants, t)
	}
	for p, key := range parents {
		if prev, ok := claimedDev[p]; ok {
			r.add(key, "parent %q stays in the default namespace but is moved by %s", p, prev)
		}
	}
	// veth peers must exist and be mutual.
	for _, t := range cfg.Tenants {
		for _, i := range t.Interfaces {
			if i.Kind != KindVeth || i.PeerTenant == "" || i.PeerName == "" {
				continue
			}
			key := "tenant." + t.Name + ".interface." + i.Name + ".peer"
			pt := cfg.Tenant(i.PeerTenant)
			if pt == nil {
				r.add(key, "peer tenant %q is not declared", i.PeerTenant)
				continue
			}
			if pt == t {
				r.add(key, "a veth peer must be in another tenant")
				continue
			}
			pi := pt.Interface(i.PeerName)
			if pi == nil {
				r.add(key, "peer interface %q is not declared in tenant %q", i.PeerName, i.PeerTenant)
				continue
			}
			if pi.Kind != KindVeth || pi.PeerTenant != t.Name || pi.PeerName != i.Name {
				r.add(key, "peer is not mutual: tenant.%s.interface.%s must have peer = { tenant = %q, name = %q }", pt.Name, pi.Name, t.Name, i.Name)
			}
		}
	}
	return cfg
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
