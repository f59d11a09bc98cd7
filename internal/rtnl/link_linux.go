package rtnl

import (
	"errors"
	"fmt"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LinkMove is one move of a link into another namespace.
type LinkMove struct {
	Index  int            // the link's index in the Conn's namespace
	Target netns.NsHandle // the namespace it goes to
	Name   string         // its name there
	Alias  string         // its alias there ("" clears it)
	MTU    int            // its MTU there; 0 keeps it
}

// MoveLink moves a link of the Conn's namespace into m.Target, renaming
// it, setting its alias and (if m.MTU > 0) its MTU, all in one
// RTM_SETLINK: the kernel applies them together, so the name can clash in
// neither namespace and the link never shows up in the target without
// its alias (fwd's ownership mark). vishvananda/netlink can only do these
// one by one.
func (c *Conn) MoveLink(m LinkMove) error {
	err := c.setLink(m.Index, func(b []byte) []byte {
		b = appendU32Attr(b, unix.IFLA_NET_NS_FD, uint32(m.Target))
		b = appendAttr(b, unix.IFLA_IFNAME, append([]byte(m.Name), 0))
		b = appendAttr(b, unix.IFLA_IFALIAS, []byte(m.Alias))
		if m.MTU > 0 {
			b = appendU32Attr(b, unix.IFLA_MTU, uint32(m.MTU))
		}
		return b
	})
	if err != nil {
		return fmt.Errorf("move link %d as %s: %w", m.Index, m.Name, err)
	}
	return nil
}

// RenameLinkAt renames a link of namespace h and sets its alias in one
// RTM_SETLINK, so that it carries its final name only once it carries
// its mark: fwd creates links under a temporary name, and a crash can
// then leave a link fwd recognises by that name, never a link under a
// declared name without its mark. The link must be down (the kernel
// refuses to rename a running one).
func RenameLinkAt(h netns.NsHandle, index int, name, alias string) error {
	c, err := openSmall(h)
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.setLink(index, func(b []byte) []byte {
		b = appendAttr(b, unix.IFLA_IFNAME, append([]byte(name), 0))
		return appendAttr(b, unix.IFLA_IFALIAS, []byte(alias))
	})
	if err != nil {
		return fmt.Errorf("rename link %d to %s: %w", index, name, err)
	}
	return nil
}

// MoveLinkAt is Conn.MoveLink for a link of namespace h.
func MoveLinkAt(h netns.NsHandle, m LinkMove) error {
	c, err := openSmall(h)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.MoveLink(m)
}

// openSmall opens a Conn in h for one request on a link: a socket of its
// own with an 8 KiB read buffer, which the caller closes at once. A
// Conn from Open has buffers sized for route batches (1 MiB in user
// space), and an apply acts on links in every tenant namespace, where
// keeping a Conn each would also cost a descriptor each.
func openSmall(h netns.NsHandle) (*Conn, error) {
	fd := -1
	err := ns.Do(h, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	optional(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	optional(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &Conn{fd: fd, rbuf: make([]byte, 8<<10)}, nil
}

// LinkHandle returns a vishvananda/netlink handle in namespace h for
// links, addresses and their attributes, with a route-family socket only
// (the library opens three by default: route, xfrm, netfilter): callers
// keep one per tenant while they apply, under the daemon's
// 1024-descriptor limit.
func LinkHandle(h netns.NsHandle) (*netlink.Handle, error) {
	return netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
}

// NamespaceID returns the id (nsid) the Conn's namespace knows target
// by, assigning a free one if it has none (RTM_NEWNSID, as `ip netns set
// NAME auto` does): the link events of a namespace reach a
// LinkSubscription opened with allNamespaces only if it has one.
func (c *Conn) NamespaceID(target netns.NsHandle) (int, error) {
	id, err := c.LookupNamespaceID(target)
	if err != nil || id >= 0 {
		return id, err
	}
	seq := c.nextSeq()
	b := appendHdr(make([]byte, 0, 64), unix.RTM_NEWNSID, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
	b = append(b, unix.AF_UNSPEC, 0, 0, 0) // struct rtgenmsg, padded
	b = appendU32Attr(b, unix.NETNSA_FD, uint32(target))
	b = appendU32Attr(b, unix.NETNSA_NSID, ^uint32(0)) // -1: any free id
	if err := c.request(finish(b, 0), seq, nil); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("assign a namespace id: %w", err)
	}
	return c.LookupNamespaceID(target)
}

// LookupNamespaceID returns the id the Conn's namespace knows target by,
// or -1 if it has none.
func (c *Conn) LookupNamespaceID(target netns.NsHandle) (int, error) {
	seq := c.nextSeq()
	b := appendHdr(make([]byte, 0, 64), unix.RTM_GETNSID, unix.NLM_F_REQUEST, seq)
	b = append(b, unix.AF_UNSPEC, 0, 0, 0)
	b = appendU32Attr(b, unix.NETNSA_FD, uint32(target))
	id := -1
	err := c.request(finish(b, 0), seq, func(typ uint16, body []byte) {
		if typ != unix.RTM_NEWNSID || len(body) < 4 {
			return
		}
		parseAttrs(body[4:], func(t uint16, d []byte) {
			if t == unix.NETNSA_NSID && len(d) >= 4 {
				id = int(int32(ne.Uint32(d)))
			}
		})
	})
	if err != nil {
		return -1, fmt.Errorf("namespace id: %w", err)
	}
	return id, nil
}

// setLink sends one RTM_SETLINK for the link of that index, with the
// attributes attrs appends, and waits for the kernel's ack.
func (c *Conn) setLink(index int, attrs func([]byte) []byte) error {
	seq := c.nextSeq()
	b := appendHdr(make([]byte, 0, 128), unix.RTM_SETLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
	// struct ifinfomsg: family, pad, type, index, flags, change.
	b = append(b, unix.AF_UNSPEC, 0)
	b = ne.AppendUint16(b, 0)
	b = ne.AppendUint32(b, uint32(int32(index)))
	b = ne.AppendUint32(ne.AppendUint32(b, 0), 0)
	return c.request(finish(attrs(b), 0), seq, nil)
}

// request sends one message and waits for the kernel's answer to it:
// reply gets every other message carrying its sequence number (nil: none
// expected); the result is nil once the request is acked (or, without
// NLM_F_ACK, answered), or the *Error the kernel refused it with.
func (c *Conn) request(msg []byte, seq uint32, reply func(typ uint16, body []byte)) error {
	if err := c.send(msg); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	for {
		b, err := c.recv()
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		var answer error
		done := false
		err = walk(b, func(typ, flags uint16, s uint32, body []byte) error {
			switch {
			case s != seq:
			case typ == unix.NLMSG_ERROR:
				done, answer = true, nlError(flags, body)
			case reply != nil:
				reply(typ, body)
				done = flags&unix.NLM_F_MULTI == 0
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		if done {
			return answer
		}
	}
}
