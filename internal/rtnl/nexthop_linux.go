package rtnl

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

const (
	rtmGetNH   = 106
	nhmsgLen   = 8
	nhaGroup   = 2
	nhaBlackho = 4
)

// Nexthops reads the namespace's single-gateway nexthop objects (groups
// and blackholes are skipped) of protocol proto (0: every protocol), one
// dump, restarted if the kernel interrupted it. The kernel cannot filter
// nexthop dumps by protocol: that is done here.
func (c *Conn) Nexthops(proto uint8) ([]Nexthop, error) {
	var out []Nexthop
	var err error
	for range dumpAttempts {
		out = out[:0]
		seq := c.nextSeq()
		req := appendHdr(c.wbuf[:0], rtmGetNH, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
		// struct nhmsg: family, scope, protocol, resvd, flags; all zero
		// (a strict kernel refuses anything else in a dump request).
		req = append(req, unix.AF_UNSPEC, 0, 0, 0)
		req = ne.AppendUint32(req, 0)
		req = finish(req, 0)
		c.wbuf = req[:0]
		err = c.dump(req, seq, func(typ uint16, body []byte) {
			if typ != rtmNewNH {
				return
			}
			if nh, ok := parseNexthop(body); ok && (proto == 0 || nh.Protocol == proto) {
				out = append(out, nh)
			}
		})
		if !errors.Is(err, errInterrupted) {
			break
		}
	}
	if errors.Is(err, errInterrupted) {
		return nil, fmt.Errorf("nexthop dump: %w %d times", ErrDumpInterrupted, dumpAttempts)
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		return nil, nil // a kernel without nexthop objects holds none
	}
	if err != nil {
		return nil, fmt.Errorf("nexthop dump: %w", err)
	}
	return out, nil
}

// parseNexthop decodes an RTM_NEWNEXTHOP body; ok is false for groups
// and blackholes.
func parseNexthop(b []byte) (Nexthop, bool) {
	if len(b) < nhmsgLen {
		return Nexthop{}, false
	}
	nh := Nexthop{Protocol: b[2], OnLink: ne.Uint32(b[4:])&rtnhFOnlink != 0}
	single := true
	parseAttrs(b[nhmsgLen:], func(t uint16, d []byte) {
		switch t {
		case nhaID:
			if len(d) >= 4 {
				nh.ID = ne.Uint32(d)
			}
		case nhaOIF:
			if len(d) >= 4 {
				nh.Ifindex = int(ne.Uint32(d))
			}
		case nhaGW:
			nh.Gw = addrFrom(d)
		case nhaGroup, nhaBlackho:
			single = false
		}
	})
	return nh, single && nh.ID != 0
}
