package rtnl

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// WriteRoutes sends n route messages, msg(i) giving the i-th, many per
// sendmsg, all under rtm_protocol proto (the owner's mark: a delete only
// removes a route of that protocol). It returns once the kernel has
// answered every message it sent, with the refused ones in Result.Failed
// (a delete of a missing route fails with ErrNotFound: callers decide
// whether that matters). err reports a socket failure, after which
// Result.Done says how far the outcome is known. msg is called exactly
// once per message, in order; the batch reuses one buffer, so writing
// allocates nothing per route.
func (c *Conn) WriteRoutes(proto uint8, ack AckPolicy, n int, msg func(i int) (Kind, *Route)) (Result, error) {
	return c.batch(n, ack, func(b []byte, i int, flags uint16, seq uint32) []byte {
		k, r := msg(i)
		switch k {
		case Create:
			return appendRouteMsg(b, unix.RTM_NEWROUTE, flags|unix.NLM_F_CREATE|unix.NLM_F_EXCL, seq, proto, r, false)
		case Replace:
			return appendRouteMsg(b, unix.RTM_NEWROUTE, flags|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq, proto, r, false)
		default:
			return appendRouteMsg(b, unix.RTM_DELROUTE, flags, seq, proto, r, true)
		}
	})
}

// WriteNexthops is WriteRoutes for nexthop objects. Replacing a nexthop
// moves every route using it at once; deleting one withdraws them all.
func (c *Conn) WriteNexthops(proto uint8, ack AckPolicy, n int, msg func(i int) (Kind, *Nexthop)) (Result, error) {
	return c.batch(n, ack, func(b []byte, i int, flags uint16, seq uint32) []byte {
		k, nh := msg(i)
		switch k {
		case Create:
			return appendNexthopMsg(b, flags|unix.NLM_F_CREATE|unix.NLM_F_EXCL, seq, proto, nh, false)
		case Replace:
			return appendNexthopMsg(b, flags|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq, proto, nh, false)
		default:
			return appendNexthopMsg(b, flags, seq, proto, nh, true)
		}
	})
}

// batch sends n requests, built by build, several per sendmsg, and reads
// their replies per ack. A chunk is complete when the reply to its last
// message (always acked) has arrived: the kernel processes a sendmsg's
// messages in order and answers each failure before that.
func (c *Conn) batch(n int, ack AckPolicy, build func(b []byte, i int, flags uint16, seq uint32) []byte) (Result, error) {
	var res Result
	if c.wbuf == nil || cap(c.wbuf) < chunkBytes+4096 {
		c.wbuf = make([]byte, 0, chunkBytes+4096)
	}
	buf := c.wbuf
	for i := 0; i < n; {
		buf = buf[:0]
		first := i
		base := c.seq + 1
		var lastSeq uint32
		for i < n && len(buf) < chunkBytes && i-first < c.maxMsgs {
			lastSeq = c.nextSeq()
			flags := uint16(unix.NLM_F_REQUEST)
			if ack == AckEach {
				flags |= unix.NLM_F_ACK
			}
			start := len(buf)
			buf = build(buf, i, flags, lastSeq)
			// The chunk's last message always asks for an ack; we know it
			// is last only afterwards, so patch the flags in place.
			if i+1 == n || len(buf) >= chunkBytes || i+1-first >= c.maxMsgs {
				ne.PutUint16(buf[start+6:], ne.Uint16(buf[start+6:])|unix.NLM_F_ACK)
			}
			i++
		}
		c.wbuf = buf[:0] // keep any growth for the next call
		if err := c.send(buf); err != nil {
			return res, fmt.Errorf("netlink send: %w", err)
		}
		for done := false; !done; {
			b, err := c.recv()
			if err != nil {
				// The chunk's outcome is unknown (ENOBUFS: replies lost).
				return res, fmt.Errorf("netlink receive: %w", err)
			}
			err = walk(b, func(typ, flags uint16, seq uint32, body []byte) error {
				if typ != unix.NLMSG_ERROR || seq < base || seq > lastSeq {
					return nil // a late reply to an earlier, failed batch
				}
				if err := nlError(flags, body); err != nil {
					res.Failed = append(res.Failed, Failure{Index: first + int(seq-base), Err: err})
				}
				if seq == lastSeq {
					done = true
				}
				return nil
			})
			if err != nil {
				return res, fmt.Errorf("netlink receive: %w", err)
			}
		}
		res.Done = i
	}
	return res, nil
}
