package policy

import "github.com/fwdproject/fwd/config"

// Automatic admission of the traffic fwd's own services need (HA pair,
// DHCP client, dnsmasq), on the interfaces where they are enabled and
// nowhere else. The rules sit in the base input and output chains after
// the hygiene rules and before the zone dispatch, so no zone policy can
// drop them; they are ordinary rules with identities (_ha/..., _svc/...)
// and comments naming the key that caused them, so `fwd plan`, counters
// and `fwd explain` show them like any other rule.
//
// Neighbour discovery and router advertisements/solicitations (ICMPv6
// 133-136) need no rule here: the hygiene rule _nd accepts them on every
// interface, because conntrack does not track them.

// Identities of the admission rules.
const (
	idHAVRRP       = "_ha/vrrp"
	idHASync       = "_ha/conntrackd"
	idDHCPClient   = "_svc/dhcp-client"
	idDHCPServer   = "_svc/dhcp"
	idDNS          = "_svc/dns"
	idDHCPv6       = "_svc/dhcpv6"
	idDHCPv6Client = "_svc/dhcp6-client"
	protoVRRP      = 112
	protoUDP       = 17
	protoTCP       = 6
	portDHCPSrv    = 67
	portDHCPCli    = 68
	portDNS        = 53
	portDHCPv6Srv  = 547
	portDHCPv6Cli  = 546
)

// serviceRules inserts the admission rules into the input and output base
// chains, before their zone dispatch.
func (c *compiler) serviceRules(input, output *Chain) {
	in, out := admits(c.t)
	input.Rules = beforeDispatch(input.Rules, in)
	output.Rules = beforeDispatch(output.Rules, out)
}

// beforeDispatch inserts rules before the first dispatch rule.
func beforeDispatch(rules, add []*Rule) []*Rule {
	if len(add) == 0 {
		return rules
	}
	i := 0
	for i < len(rules) && rules[i].ID != idDispatch {
		i++
	}
	return append(append(append([]*Rule(nil), rules[:i]...), add...), rules[i:]...)
}

// admits returns the admission rules of a tenant: in the input chain and
// in the output chain.
func admits(t *config.Tenant) (in, out []*Rule) {
	rule := func(id, comment string, stmts ...Stmt) *Rule {
		return &Rule{ID: id, Comment: comment, Stmts: append(stmts, Counter{}, Verdict{Kind: "accept"})}
	}
	udp := L4Proto{[]uint8{protoUDP}}
	port := func(dport bool, p uint16) Ports {
		return Ports{Dport: dport, Ranges: []config.PortRange{{From: p, To: p}}}
	}
	iif := func(n string) Ifname { return Ifname{Names: []string{n}} }
	oif := func(n string) Ifname { return Ifname{Out: true, Names: []string{n}} }

	if h := t.HA; h != nil && h.Peer.IsValid() {
		peer := []config.AddrRange{{From: h.Peer, To: h.Peer}}
		v6 := h.Peer.Is6()
		from := Addr{V6: v6, Ranges: peer}
		to := Addr{Daddr: true, V6: v6, Ranges: peer}
		vrrp := L4Proto{[]uint8{protoVRRP}}
		sp := uint16(h.SyncPort)
		in = append(in,
			rule(idHAVRRP, "ha.sync_interface: from the peer", iif(h.SyncInterface), from, vrrp),
			rule(idHASync, "ha.sync_interface: from the peer", iif(h.SyncInterface), from, udp, port(true, sp)))
		out = append(out,
			rule(idHAVRRP, "ha.sync_interface: to the peer", oif(h.SyncInterface), to, vrrp),
			rule(idHASync, "ha.sync_interface: to the peer", oif(h.SyncInterface), to, udp, port(true, sp)))
	}
	s := &t.Services
	for _, c := range s.DHCPClients {
		if c.V6 {
			// The requests go to ff02::1:2 and the replies come back
			// to the link-local address: not a flow conntrack pairs.
			key := "interface." + c.Interface + ".dhcp6"
			in = append(in, rule(idDHCPv6Client, key+": advertises and replies", iif(c.Interface), udp, port(false, portDHCPv6Srv), port(true, portDHCPv6Cli)))
			out = append(out, rule(idDHCPv6Client, key+": solicits and requests", oif(c.Interface), udp, port(false, portDHCPv6Cli), port(true, portDHCPv6Srv)))
			continue
		}
		key := "interface." + c.Interface + ".dhcp"
		in = append(in, rule(idDHCPClient, key+": offers and acks", iif(c.Interface), udp, port(false, portDHCPSrv), port(true, portDHCPCli)))
		out = append(out, rule(idDHCPClient, key+": requests", oif(c.Interface), udp, port(false, portDHCPCli), port(true, portDHCPSrv)))
	}
	for _, d := range s.DHCP {
		key := "dhcp." + d.Interface
		in = append(in, rule(idDHCPServer, key+": requests", iif(d.Interface), udp, port(true, portDHCPSrv)))
		// Offers to a host without an address are not replies conntrack
		// knows (the request went to the broadcast address).
		out = append(out, rule(idDHCPServer, key+": offers and acks", oif(d.Interface), udp, port(false, portDHCPSrv), port(true, portDHCPCli)))
	}
	if s.DNS != nil {
		for _, n := range s.DNS.Interfaces {
			in = append(in, rule(idDNS, "dns.interfaces: "+n, iif(n), L4Proto{[]uint8{protoTCP, protoUDP}}, port(true, portDNS)))
		}
	}
	for _, r := range s.RA {
		if r.DHCPv6() {
			key := "ra." + r.Interface + ": managed/other (DHCPv6)"
			in = append(in, rule(idDHCPv6, key, iif(r.Interface), udp, port(true, portDHCPv6Srv)))
			out = append(out, rule(idDHCPv6, key, oif(r.Interface), udp, port(false, portDHCPv6Srv)))
		}
	}
	return in, out
}
