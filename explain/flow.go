package explain

import "net/netip"

// ArrivesOn returns the interface on which a packet from src to dst
// enters the tenant, InSelf when src is the tenant's own address, or ""
// when no route leads back to src.
//
// Conntrack does not record interfaces, so for a tracked flow this is
// an estimate: the interface the route lookup of the reply direction
// (dst → src) would send the answer through. With symmetric routing it
// is the interface the flow came in on; with asymmetric routing
// (policy routes by source, ECMP, BGP routes explain does not know) it
// may differ.
func (x *Explainer) ArrivesOn(src, dst netip.Addr) string {
	src, dst = src.Unmap(), dst.Unmap()
	if x.rt.local(src) {
		return InSelf
	}
	r := x.rt.lookup(dst, src, "")
	if r.Type != "unicast" {
		return ""
	}
	return r.Dev
}
