package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fwdproject/fwd/mgmt"
)

// `fwd show leases`: the addresses the tenants' WAN DHCP clients hold and
// the leases their dnsmasq handed out on the LAN, from the daemon (the
// clients live in it).

func init() {
	showSubcommands["leases"] = showLeases
}

// TenantLeases is one tenant's `fwd show leases -j` entry.
type TenantLeases struct {
	Tenant string           `json:"tenant"`
	WAN    []mgmt.DHCPLease `json:"wan"`
	LAN    []mgmt.LANLease  `json:"lan"`
}

func showLeases(s *command, args []string) int {
	fs := flags(s, nil)
	socket := socketFlag(fs)
	asJSON := fs.Bool("j", false, "JSON output")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	st, err := mgmt.Dial(*socket).Status(context.Background())
	if err != nil {
		return fail("no running daemon (the DHCP clients run in it): %v", err)
	}
	out := []TenantLeases{}
	for _, t := range st.Tenants {
		if fs.NArg() > 0 && t.Name != fs.Arg(0) {
			continue
		}
		tl := TenantLeases{Tenant: t.Name, WAN: []mgmt.DHCPLease{}, LAN: []mgmt.LANLease{}}
		if sv := t.Services; sv != nil {
			tl.WAN = append(tl.WAN, sv.DHCP...)
			tl.LAN = append(tl.LAN, sv.LAN...)
		}
		out = append(out, tl)
	}
	if fs.NArg() > 0 && len(out) == 0 {
		return fail("no fwd tenant %q", fs.Arg(0))
	}
	if *asJSON {
		printJSON(out)
		return exitOK
	}
	now := time.Now()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, tl := range out {
		if len(tl.WAN) == 0 && len(tl.LAN) == 0 {
			continue
		}
		fmt.Fprintf(w, "tenant %s\n", tl.Tenant)
		if len(tl.WAN) > 0 {
			fmt.Fprintln(w, "  CLIENT\tINTERFACE\tSTATE\tADDRESS\tDETAILS")
		}
		for _, l := range tl.WAN {
			addr := "-"
			if l.Address.IsValid() {
				addr = l.Address.String()
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", clientName(l.Family), l.Interface, l.State, addr, leaseDetails(l))
		}
		if len(tl.LAN) > 0 {
			fmt.Fprintln(w, "  LAN LEASE\tMAC/DUID\tHOSTNAME\tEXPIRES\t")
		}
		for _, l := range tl.LAN {
			exp := "never (static)"
			if !l.Expires.IsZero() {
				exp = "in " + until(now, l.Expires)
			}
			host := l.Hostname
			if host == "" {
				host = "-"
			}
			id := l.MAC
			if id == "" {
				id = "duid " + l.DUID
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t\n", l.Address, id, host, exp)
		}
	}
	w.Flush()
	return exitOK
}

// clientName names a WAN client by family.
func clientName(family string) string {
	if family == "ipv6" {
		return "dhcp6"
	}
	return "dhcp"
}

// leaseSummary is one line about a WAN lease: address and details.
func leaseSummary(l mgmt.DHCPLease) string {
	if !l.Address.IsValid() {
		return "-"
	}
	return l.Address.String() + ", " + leaseDetails(l)
}

// leaseDetails are a WAN lease's router, DNS, server, renewal and expiry.
func leaseDetails(l mgmt.DHCPLease) string {
	if !l.Address.IsValid() {
		return "-"
	}
	now := time.Now()
	var parts []string
	if l.Router.IsValid() {
		parts = append(parts, "via "+l.Router.String())
	}
	if l.Delegated.IsValid() {
		parts = append(parts, "prefix "+l.Delegated.String())
	}
	if len(l.DNS) > 0 {
		parts = append(parts, "dns "+joinAddrs(l.DNS))
	}
	switch {
	case l.Server.IsValid():
		parts = append(parts, "server "+l.Server.String())
	case l.ServerID != "":
		parts = append(parts, "server duid "+l.ServerID)
	}
	if !l.Renew.IsZero() {
		parts = append(parts, "renew in "+until(now, l.Renew))
	}
	parts = append(parts, "expires in "+until(now, l.Expires))
	return strings.Join(parts, ", ")
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// until is the time left, rounded to the second ("0s" once past).
func until(now, t time.Time) string {
	return max(t.Sub(now), 0).Round(time.Second).String()
}
