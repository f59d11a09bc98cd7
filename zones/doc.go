// Package zones owns the firewall namespaces ("tenants") and their links:
// creating and pinning namespaces, moving NICs in (and handing them back),
// creating veth pairs between tenants and macvlan/VLAN children of trunk
// NICs, addresses, MTU, link state and the namespace's forwarding sysctls.
//
// It is Observe → Plan → Apply: Observe (observe_linux.go) reads the
// default and tenant namespaces into a State (state.go); Compute
// (plan.go) is pure, desired config + observed State → a Plan of Steps;
// Manager.Apply (manager_linux.go, executing steps in apply_linux.go) is
// the only writer. Manager.Plan is Observe then Compute; a dry run is a
// Plan without Apply. Everything fwd creates or moves is marked in the
// kernel itself (interface aliases), so a restarted daemon recognises its
// own objects and never touches others'.
//
// No state is ever only in the daemon's memory, so a kill -9 at any
// moment loses nothing:
//   - A NIC's original state (name, MTU, admin up) is written as its mark
//     ("fwd:moved dev=eth1 mtu=1500 up=1") while it is still in the
//     default namespace, before anything about it changes; one message
//     then moves, renames and re-marks it (the kernel closes a NIC it
//     moves: there is no separate set-down). A hand-back moves it home
//     with its mark kept, restores MTU and admin state, and clears the
//     mark last. A marked NIC in the default namespace is "in transit":
//     the next plan moves it in with the recorded state or restores it
//     (restore-link). A move the kernel refuses half-way is undone at once.
//   - Links fwd creates (veth ends, macvlan and VLAN children) are created
//     under a temporary name ("fwdnew" and a hash) and get their declared
//     name and their mark in one message. A leftover of that name in a
//     tenant namespace, or half a marked veth pair, is deleted and made
//     again.
//   - So a link in a tenant namespace under a declared name but without
//     fwd's mark is never fwd's, whatever its kind: fwd refuses to adopt
//     it (a ConflictError naming the tenant, interface and kind fails the
//     plan) rather than re-address and later delete an operator's link.
//
// Watch (watch_linux.go) reports link events of the default namespace and
// of every tenant namespace over one socket (NETLINK_LISTEN_ALL_NSID;
// each tenant namespace gets an id in the default namespace, the Manager
// registers a namespace as it creates it). An overflow (ENOBUFS) or a
// failed subscription tells the consumer to re-scan; nothing ends a
// Watch but Close. Relevant (watch.go, pure) says which events concern a
// declared interface.
package zones
