package daemon

import (
	"context"
	"sort"
	"time"

	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/zones"
	"github.com/vishvananda/netns"
)

// ReadTenants is what `fwd show` prints: the running daemon's view, asked
// over its API socket, or the kernel read directly when no daemon answers
// (show must work while the daemon is down).
func ReadTenants(ctx context.Context, socket string) ([]mgmt.Namespace, error) {
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if list, err := mgmt.Dial(socket).Show(actx); err == nil {
		return list, nil
	}
	h, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	st, err := zones.Observe(h)
	if err != nil {
		return nil, err
	}
	return showNamespaces(st), nil
}

// showNamespaces converts zones' observed state into the API's plain
// values, sorted by tenant and interface name.
func showNamespaces(st *zones.State) []mgmt.Namespace {
	list := []mgmt.Namespace{}
	for _, n := range st.Tenants {
		ns := mgmt.Namespace{Name: n.Name, LoUp: n.LoUp, Forwarding4: n.Forwarding4, Forwarding6: n.Forwarding6, Interfaces: []mgmt.Interface{}}
		for _, l := range n.Links {
			ns.Interfaces = append(ns.Interfaces, mgmt.Interface{
				Index: l.Index, Name: l.Name, Kind: l.Kind, MTU: l.MTU, Up: l.Up, Oper: l.Oper, Alias: l.Alias,
				Addrs:   l.Addrs,
				RxBytes: l.RxBytes, TxBytes: l.TxBytes, RxPkts: l.RxPkts, TxPkts: l.TxPkts, RxDrop: l.RxDrop, TxDrop: l.TxDrop,
			})
		}
		sort.Slice(ns.Interfaces, func(i, j int) bool { return ns.Interfaces[i].Name < ns.Interfaces[j].Name })
		list = append(list, ns)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}
