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
package zones
