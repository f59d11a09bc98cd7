package rtnl

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Filter selects the routes a dump returns. Zero fields match anything.
type Filter struct {
	Family   int    // 4 or 6; 0: both
	Table    uint32 // 0: every table
	Protocol uint8  // 0: every protocol
}

func (f Filter) families() []uint8 {
	switch f.Family {
	case 4:
		return []uint8{unix.AF_INET}
	case 6:
		return []uint8{unix.AF_INET6}
	}
	return []uint8{unix.AF_INET, unix.AF_INET6}
}

// errInterrupted: the table changed during a dump; it is restarted.
var errInterrupted = errors.New("dump interrupted")

// dump sends a dump request and calls fn with each reply body.
func (c *Conn) dump(req []byte, seq uint32, fn func(typ uint16, body []byte)) error {
	if err := c.send(req); err != nil {
		return err
	}
	intr := false
	for {
		b, err := c.recv()
		if err != nil {
			return err
		}
		done := false
		err = walk(b, func(typ, flags uint16, s uint32, body []byte) error {
			if s != seq {
				return nil // a late reply to something else
			}
			if flags&nlmFDumpIntr != 0 {
				intr = true
			}
			switch typ {
			case unix.NLMSG_DONE:
				// A dump that failed midway says so in NLMSG_DONE.
				done = true
				if len(body) >= 4 && int32(ne.Uint32(body)) < 0 {
					return nlError(flags, body)
				}
			case unix.NLMSG_ERROR:
				done = true
				return nlError(flags, body)
			default:
				fn(typ, body)
			}
			return nil
		})
		if err != nil {
			// Drain to NLMSG_DONE is not needed: an error ends the dump.
			return err
		}
		if done {
			if intr {
				return errInterrupted
			}
			return nil
		}
	}
}

// eachRoute runs one dump per family of f, restarting a family's dump
// (after calling reset) when the kernel interrupted it. Filtering happens
// in the kernel where it can (strict checking) and is repeated here for
// kernels that ignore the filter.
func (c *Conn) eachRoute(f Filter, reset func(af uint8), fn func(body []byte, r *Route), decode bool) error {
	for _, af := range f.families() {
		var err error
		for range dumpAttempts {
			reset(af)
			seq := c.nextSeq()
			req := appendHdr(c.wbuf[:0], unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
			tb := uint8(0)
			if f.Table != 0 && f.Table < 256 {
				tb = uint8(f.Table)
			}
			req = append(req, af, 0, 0, 0, tb, f.Protocol, 0, 0)
			req = ne.AppendUint32(req, 0)
			if f.Table != 0 {
				req = appendU32Attr(req, unix.RTA_TABLE, f.Table)
			}
			req = finish(req, 0)
			c.wbuf = req[:0]
			err = c.dump(req, seq, func(typ uint16, body []byte) {
				if typ != unix.RTM_NEWROUTE {
					return
				}
				if !decode {
					fn(body, nil)
					return
				}
				r, ok := parseRoute(body)
				if !ok || (f.Table != 0 && r.Table != f.Table) || (f.Protocol != 0 && r.Protocol != f.Protocol) {
					return
				}
				fn(body, &r)
			})
			if !errors.Is(err, errInterrupted) {
				break
			}
		}
		if errors.Is(err, errInterrupted) {
			return fmt.Errorf("route dump: %w %d times", ErrDumpInterrupted, dumpAttempts)
		}
		if f.Table != 0 && errors.Is(err, unix.ENOENT) {
			continue // the family has no such table (yet): it is empty
		}
		if err != nil {
			return fmt.Errorf("route dump: %w", err)
		}
	}
	return nil
}

// Routes reads the routes f selects, one dump per family. Interrupted
// dumps are restarted: the result is always one consistent read per
// family. Cloned (cache) routes are skipped.
func (c *Conn) Routes(f Filter) ([]Route, error) {
	var out []Route
	mark, cur := 0, uint8(0)
	err := c.eachRoute(f, func(af uint8) {
		if af != cur { // a new family: keep what the previous one read
			mark, cur = len(out), af
		}
		out = out[:mark]
	}, func(_ []byte, r *Route) {
		out = append(out, *r)
	}, true)
	return out, err
}

// EachRoute calls fn for every route f selects, in dump order, without
// collecting them: for scanning a large table (a full BGP feed) for a few
// prefixes. r is only valid during the call. A dump that restarts after
// an interruption (see Routes) calls fn again from the start of that
// family, so fn must be idempotent (e.g. set membership).
func (c *Conn) EachRoute(f Filter, fn func(r *Route)) error {
	return c.eachRoute(f, func(uint8) {}, func(_ []byte, r *Route) { fn(r) }, true)
}

// CountRoutes counts the routes f selects without decoding next hops: a
// cheap probe of a table holding a full BGP feed.
func (c *Conn) CountRoutes(f Filter) (int, error) {
	total, n, cur := 0, 0, uint8(0)
	err := c.eachRoute(f, func(af uint8) {
		if af != cur {
			total, cur = total+n, af
		}
		n = 0
	}, func(body []byte, _ *Route) {
		if len(body) < rtmsgLen {
			return
		}
		fam, tbl, proto, flags := body[0], uint32(body[4]), body[5], ne.Uint32(body[8:])
		if flags&rtmFCloned != 0 || (fam != unix.AF_INET && fam != unix.AF_INET6) {
			return
		}
		if f.Protocol != 0 && proto != f.Protocol {
			return
		}
		if f.Table != 0 && (f.Table >= 256 || tbl != f.Table) {
			// The header holds only 8 bits of the table: decode.
			if r, ok := parseRoute(body); !ok || r.Table != f.Table {
				return
			}
		}
		n++
	}, false)
	return total + n, err
}

// Lookup returns the route the kernel's FIB uses for dst (what `ip route
// get fibmatch` prints): one request, no dump, so it is a cheap probe of
// a table too large to read. No route to dst is an *Error (ENETUNREACH,
// errors.Is ErrUnreachable).
func (c *Conn) Lookup(dst netip.Addr) (Route, error) {
	seq := c.nextSeq()
	b := appendHdr(make([]byte, 0, 64), unix.RTM_GETROUTE, unix.NLM_F_REQUEST, seq)
	// struct rtmsg: family, dst_len, src_len, tos, table, protocol,
	// scope, type, flags.
	b = append(b, afOf(dst), uint8(dst.BitLen()), 0, 0, 0, 0, 0, 0)
	b = ne.AppendUint32(b, unix.RTM_F_FIB_MATCH)
	b = appendAddrAttr(b, unix.RTA_DST, dst)
	var r Route
	found := false
	err := c.request(finish(b, 0), seq, func(typ uint16, body []byte) {
		if typ == unix.RTM_NEWROUTE {
			r, found = parseRoute(body)
		}
	})
	if err != nil {
		return Route{}, fmt.Errorf("route lookup %s: %w", dst, err)
	}
	if !found {
		return Route{}, fmt.Errorf("route lookup %s: no route in the answer", dst)
	}
	return r, nil
}
