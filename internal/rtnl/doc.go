// Package rtnl is fwd's one route-netlink layer: the only code that sends
// RTM_NEWROUTE/RTM_DELROUTE and RTM_NEWNEXTHOP/RTM_DELNEXTHOP, and the one
// place dumps are retried when the kernel interrupts them. It is also the
// only code that opens NETLINK_ROUTE sockets itself: the one request
// vishvananda/netlink cannot express, moving a link between namespaces
// renamed and marked in one RTM_SETLINK (MoveLink), lives here too.
//
// A Conn is an rtnetlink socket created inside one namespace (through the
// internal/ns door) and stays there. Writes are batched: many messages per
// sendmsg, each marked with the caller's rtm_protocol (the static-route
// installer uses 243, the BGP speaker 244), with an explicit AckPolicy and
// per-message errors that errors.Is can test (ErrNotFound, ErrExists,
// ErrUnreachable, ErrBadSource). Dumps restart by themselves when the
// kernel sets NLM_F_DUMP_INTR, so callers never see a half-read table.
// Retry does the same for dumps made with vishvananda/netlink (links,
// addresses, rules).
//
// Routes are encoded and decoded by hand, not through vishvananda/netlink,
// because a full BGP table or a million static routes must be written
// with thousands of messages per sendmsg and no per-route allocation.
package rtnl
