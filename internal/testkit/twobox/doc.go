// Package twobox is the two-box test harness: it runs several "boxes" on
// one machine, each a machine of its own as far as fwd can tell, wired to
// each other and to shared host namespaces by veth pairs.
//
// A box is the test binary re-executed (by Start) with FWD_TWOBOX_BOX set,
// in new network, mount and PID namespaces. Inside, Main prepares it like
// the single-box sandbox (internal/sandbox: private mounts, tmpfs /run so
// the box has its own /run/netns and /run/fwd, its own sysfs, lo up) plus
// a /proc of its own, then serves the harness: it runs the functions the
// test package registered with Register, one call at a time, over a
// socket pair. The box is PID 1 of its PID namespace, so Kill (SIGKILL to
// it) takes the whole box down at once, every keepalived, conntrackd or
// other helper it started included: the kernel kills a PID namespace with
// its init; Kill returns once the box's links are gone as well. Restart
// starts a fresh box of the same name and re-creates its
// links (the old veths died with its network namespace).
//
// The harness process itself is the single-box sandbox made by
// testkit.Main (Main falls through to it): the shared namespaces (LAN
// host, WAN host, bridges) are ordinary testnet hosts there, and a link is
// a veth whose box end is moved into the box's network namespace through
// its PID. The host namespace of the machine is never touched.
package twobox
