package policy

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// Live sets. A set declared `dynamic = true` is created by Apply (empty,
// or seeded with its config elements) and then belongs to automation
// (fail2ban, CrowdSec…): SetAdd, SetDel and SetFlush change its elements
// in one small batch, without a reload, and reloads never touch them.
// Static sets (from the config) are read-only here: ErrStaticSet.

// ErrStaticSet is returned when a live-set operation names a static set.
var ErrStaticSet = errors.New("set is static (from the config); only dynamic sets can be changed")

// ErrNoSet is returned when fwd's table has no such set.
var ErrNoSet = errors.New("no such set")

// SetElem is one element of a live set.
type SetElem struct {
	Range config.AddrRange
	// Expires is the time left before the element expires (0: never).
	Expires time.Duration
}

// SetCount is the number of elements of one config set (both families).
type SetCount struct {
	Set      string `json:"set"`
	Dynamic  bool   `json:"dynamic"`
	Elements int    `json:"elements"`
}

// liveSets returns the kernel sets (IPv4, IPv6) of config set name, which
// must be dynamic.
func liveSets(c *nftables.Conn, name string) ([2]*nftables.Set, error) {
	var out [2]*nftables.Set
	for i, v6 := range []bool{false, true} {
		s, err := c.GetSetByName(table, setName(name, v6))
		if err != nil {
			if isNotFound(err) {
				return out, fmt.Errorf("set %q: %w", name, ErrNoSet)
			}
			return out, fmt.Errorf("set %q: %w", name, err)
		}
		if !s.HasTimeout {
			return out, fmt.Errorf("set %q: %w", name, ErrStaticSet)
		}
		s.Table = table
		out[i] = s
	}
	return out, nil
}

// liveElems encodes ranges as interval elements, the start of each
// carrying the timeout (0: the set's default, or none; the kernel refuses
// a timeout on an interval's end element).
func liveElems(rs []config.AddrRange, timeout time.Duration) []nftables.SetElement {
	el := addrIntervals(rs)
	for i := range el {
		if !el[i].IntervalEnd {
			el[i].Timeout = timeout
		}
	}
	return el
}

// byFamily splits ranges into IPv4 and IPv6, each sorted and merged.
func byFamily(rs []config.AddrRange) [2][]config.AddrRange {
	var out [2][]config.AddrRange
	for _, r := range rs {
		i := 0
		if r.From.Is6() && !r.From.Is4In6() {
			i = 1
		}
		out[i] = append(out[i], r)
	}
	out[0], out[1] = MergeRanges(out[0]), MergeRanges(out[1])
	return out
}

// liveBatch runs one batch on the live sets of name in namespace h.
func liveBatch(h netns.NsHandle, name string, fn func(c *nftables.Conn, sets [2]*nftables.Set) error) error {
	if !h.IsOpen() {
		return errNoNamespace
	}
	c, err := dial(h, nftables.AsLasting())
	if err != nil {
		return err
	}
	defer func() { _ = c.CloseLasting() }()
	sets, err := liveSets(c, name)
	if err != nil {
		return err
	}
	if err := fn(c, sets); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("set %q: %w", name, err)
	}
	return nil
}

// SetAdd adds elements (addresses, prefixes, ranges) to dynamic set name
// in namespace h, in one batch, without a reload. timeout > 0 makes them
// expire; 0 uses the set's default timeout (none if it has none). An
// element overlapping one already in the set is an error (the kernel
// refuses overlapping intervals); adding an existing element again is
// not.
func SetAdd(h netns.NsHandle, name string, elems []config.AddrRange, timeout time.Duration) error {
	fam := byFamily(elems)
	return liveBatch(h, name, func(c *nftables.Conn, sets [2]*nftables.Set) error {
		for i, s := range sets {
			if err := c.SetAddElements(s, liveElems(fam[i], timeout)); err != nil {
				return fmt.Errorf("set %q: %w", name, err)
			}
		}
		return nil
	})
}

// SetDel removes elements from dynamic set name. Each must be exactly an
// element of the set (as SetList shows it); an element that is not there
// is ignored.
func SetDel(h netns.NsHandle, name string, elems []config.AddrRange) error {
	fam := byFamily(elems)
	return liveBatch(h, name, func(c *nftables.Conn, sets [2]*nftables.Set) error {
		for i, s := range sets {
			if err := c.SetDestroyElements(s, liveElems(fam[i], 0)); err != nil {
				return fmt.Errorf("set %q: %w", name, err)
			}
		}
		return nil
	})
}

// SetFlush removes every element of dynamic set name.
func SetFlush(h netns.NsHandle, name string) error {
	return liveBatch(h, name, func(c *nftables.Conn, sets [2]*nftables.Set) error {
		for _, s := range sets {
			c.FlushSet(s)
		}
		return nil
	})
}

// SetList returns the elements of dynamic set name, IPv4 first, in
// address order, with the time each has left.
func SetList(h netns.NsHandle, name string) ([]SetElem, error) {
	if !h.IsOpen() {
		return nil, errNoNamespace
	}
	c, err := dial(h, nftables.AsLasting())
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.CloseLasting() }()
	return setList(c, name)
}

// setList is SetList on an open connection.
func setList(c *nftables.Conn, name string) ([]SetElem, error) {
	sets, err := liveSets(c, name)
	if err != nil {
		return nil, err
	}
	var out []SetElem
	for i, s := range sets {
		el, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("set %q: %w", name, err)
		}
		out = append(out, intervalsOf(el, i == 1)...)
	}
	return out, nil
}

// SetCounts returns the element count of every config set of rs (the
// ruleset applied in namespace h): static sets from rs (their kernel
// content is what rs says, so no 100k-element dump is needed), dynamic
// sets from the kernel.
func SetCounts(h netns.NsHandle, rs *Ruleset) ([]SetCount, error) {
	if rs == nil {
		return nil, nil
	}
	var out []SetCount
	idx := map[string]int{}
	for _, s := range rs.Sets {
		name := s.Name[:len(s.Name)-3] // strip _v4 / _v6
		i, ok := idx[name]
		if !ok {
			i = len(out)
			idx[name] = i
			out = append(out, SetCount{Set: name, Dynamic: s.Dynamic})
		}
		if !s.Dynamic {
			out[i].Elements += len(s.Elems)
		}
	}
	var c *nftables.Conn // one socket for every dynamic set of the scrape
	for i := range out {
		if !out[i].Dynamic {
			continue
		}
		if c == nil {
			if !h.IsOpen() {
				return nil, errNoNamespace
			}
			var err error
			if c, err = dial(h, nftables.AsLasting()); err != nil {
				return nil, err
			}
			defer func() { _ = c.CloseLasting() }()
		}
		el, err := setList(c, out[i].Set)
		if err != nil {
			return nil, err
		}
		out[i].Elements = len(el)
	}
	return out, nil
}

// intervalsOf turns a dump of interval elements (starts and ends, in any
// order) into ranges.
func intervalsOf(el []nftables.SetElement, v6 bool) []SetElem {
	sort.SliceStable(el, func(i, j int) bool {
		if c := bytes.Compare(el[i].Key, el[j].Key); c != 0 {
			return c < 0
		}
		return el[i].IntervalEnd && !el[j].IntervalEnd // an end before a start at the same key
	})
	var out []SetElem
	for i := 0; i < len(el); i++ {
		if el[i].IntervalEnd {
			continue
		}
		from, ok := netip.AddrFromSlice(el[i].Key)
		if !ok {
			continue
		}
		to := maxAddr(v6)
		if i+1 < len(el) && el[i+1].IntervalEnd {
			if end, ok := netip.AddrFromSlice(el[i+1].Key); ok {
				to = end.Prev()
			}
		}
		out = append(out, SetElem{Range: config.AddrRange{From: from, To: to}, Expires: el[i].Expires})
	}
	return out
}

func maxAddr(v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	return netip.AddrFrom4([4]byte{0xff, 0xff, 0xff, 0xff})
}
