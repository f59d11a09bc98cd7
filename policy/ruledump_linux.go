package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ruleDumps counts the full rule dumps (tests: a reload that trusts its
// memory dumps nothing).
var ruleDumps atomic.Int64

// dumpRules reads every rule of fwd's table in one netlink dump and
// decodes only what Observe needs: chain, handle, userdata (comment and
// fwd's identity TLVs) and the counter. google/nftables' GetRules decodes
// every expression of every rule, which for 10k rules costs more than the
// whole rest of a reload.
func dumpRules(h netns.NsHandle) (map[string][]ObservedRule, error) {
	ruleDumps.Add(1)
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(h)})
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	defer conn.Close()
	if err := conn.SetReadBuffer(readBuffer); err != nil {
		return nil, fmt.Errorf("netlink read buffer: %w", err)
	}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_RULE_TABLE, Data: []byte(TableName + "\x00")}})
	if err != nil {
		return nil, err
	}
	req := netlink.Message{
		Header: netlink.Header{Type: nftSubsys | unix.NFT_MSG_GETRULE, Flags: netlink.Request | netlink.Dump},
		Data:   append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	}
	for attempt := 0; ; attempt++ {
		msgs, err := conn.Execute(req)
		if err != nil {
			return nil, fmt.Errorf("list rules: %w", err)
		}
		interrupted := false
		out := map[string][]ObservedRule{}
		for _, m := range msgs {
			if m.Header.Flags&netlink.DumpInterrupted != 0 {
				interrupted = true
			}
			if m.Header.Type != nftSubsys|unix.NFT_MSG_NEWRULE || len(m.Data) < 4 {
				continue
			}
			chain, r, err := decodeRule(m.Data[4:])
			if err != nil {
				return nil, fmt.Errorf("list rules: %w", err)
			}
			out[chain] = append(out[chain], r)
		}
		if !interrupted {
			return out, nil
		}
		if attempt == 4 {
			return nil, errors.New("list rules: dump interrupted 5 times")
		}
	}
}

// readCounters reads the counters of the given rules, one GETRULE by
// handle each, on one socket. A rule that has no counter is left out; a
// rule that does not exist is an error.
func readCounters(h netns.NsHandle, refs []ruleRef) (map[ruleRef]Counter, error) {
	out := map[ruleRef]Counter{}
	if len(refs) == 0 {
		return out, nil
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(h)})
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	defer conn.Close()
	for _, ref := range refs {
		handle := make([]byte, 8)
		binary.BigEndian.PutUint64(handle, ref.Handle)
		attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
			{Type: unix.NFTA_RULE_TABLE, Data: []byte(TableName + "\x00")},
			{Type: unix.NFTA_RULE_CHAIN, Data: []byte(ref.Chain + "\x00")},
			{Type: unix.NFTA_RULE_HANDLE, Data: handle},
		})
		if err != nil {
			return nil, err
		}
		msgs, err := conn.Execute(netlink.Message{
			Header: netlink.Header{Type: nftSubsys | unix.NFT_MSG_GETRULE, Flags: netlink.Request},
			Data:   append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
		})
		if err != nil {
			return nil, fmt.Errorf("read counter of rule %d in chain %s: %w", ref.Handle, ref.Chain, err)
		}
		for _, m := range msgs {
			if m.Header.Type != nftSubsys|unix.NFT_MSG_NEWRULE || len(m.Data) < 4 {
				continue
			}
			_, r, err := decodeRule(m.Data[4:])
			if err != nil {
				return nil, fmt.Errorf("read counter of rule %d in chain %s: %w", ref.Handle, ref.Chain, err)
			}
			if r.Counter != nil {
				out[ref] = *r.Counter
			}
		}
	}
	return out, nil
}

func decodeRule(b []byte) (string, ObservedRule, error) {
	var chain string
	var r ObservedRule
	err := walkAttrs(b, func(typ uint16, data []byte) error {
		switch typ &^ unix.NLA_F_NESTED {
		case unix.NFTA_RULE_CHAIN:
			chain = cstring(data)
		case unix.NFTA_RULE_HANDLE:
			if len(data) == 8 {
				r.Handle = binary.BigEndian.Uint64(data)
			}
		case unix.NFTA_RULE_USERDATA:
			r.Comment, _ = userdata.GetString(data, userdata.TypeComment)
			r.Hash, _ = userdata.GetString(data, udataHash)
			r.Members, _ = userdata.GetString(data, udataMembers)
		case unix.NFTA_RULE_EXPRESSIONS:
			return walkAttrs(data, func(_ uint16, e []byte) error {
				c, err := decodeCounter(e)
				if c != nil {
					r.Counter = c
				}
				return err
			})
		}
		return nil
	})
	return chain, r, err
}

// decodeCounter returns the counter of a counter expression, nil for any
// other expression.
func decodeCounter(e []byte) (*Counter, error) {
	var name string
	var data []byte
	if err := walkAttrs(e, func(typ uint16, d []byte) error {
		switch typ &^ unix.NLA_F_NESTED {
		case unix.NFTA_EXPR_NAME:
			name = cstring(d)
		case unix.NFTA_EXPR_DATA:
			data = d
		}
		return nil
	}); err != nil || name != "counter" {
		return nil, err
	}
	c := &Counter{}
	err := walkAttrs(data, func(typ uint16, d []byte) error {
		if len(d) != 8 {
			return nil
		}
		switch typ {
		case unix.NFTA_COUNTER_BYTES:
			c.Bytes = binary.BigEndian.Uint64(d)
		case unix.NFTA_COUNTER_PACKETS:
			c.Packets = binary.BigEndian.Uint64(d)
		}
		return nil
	})
	return c, err
}
