// Package routing owns a tenant's static routing: route tables, static
// and policy routes (ip rules), all marked with rtm_protocol Protocol
// (243, "fwd").
//
// It is Observe → Plan → Apply: Compile turns config into a Desired
// value, Observe reads the namespace into a State value, Plan (pure)
// computes the Steps, and Apply is the only code that writes them. Route
// writes go through an Installer, this package's owner on the kernel-route
// layer internal/rtnl. The BGP speaker is a separate owner on rtnl under
// its own protocol (244, "fwd-bgp"); the two share rtnl, not the installer, and each
// deletes only routes carrying its own number.
package routing
