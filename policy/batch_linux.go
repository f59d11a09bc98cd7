package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Sending a batch. google/nftables queues messages and sends them in one
// sendmsg, but asks the kernel for no acknowledgement (only errors come
// back) and asks for an echo of every rule added (10k echoed rules for a
// 10k-rule apply). fwd builds the batch with google/nftables on an
// offline connection, checks the encoded messages, then sends them itself
// with NLM_F_ACK on every message and no echo, and waits for one
// acknowledgement per message. That proves, without reading the kernel
// back, that no element was dropped:
//
//   - the encoded batch holds exactly the elements the plan sends, per set
//     (a library that truncated an element list fails here, before
//     anything is sent);
//   - nf_tables processes a batch all or nothing, and acknowledges every
//     message once the whole batch is committed; a missing
//     acknowledgement or an error fails Apply.
//
// Two more things ride on the batch, for the reload that follows (see
// remember.go):
//
//   - the generation the plan was made from (NFNL_BATCH_GENID in the
//     batch-begin message): the kernel checks it under the commit mutex
//     and refuses the whole batch with ERESTART if any commit happened in
//     the namespace since (ErrGenerationChanged), so a plan made from a
//     stale state is never applied, and a committed batch produced
//     exactly generation gen+1;
//   - the handles of the rules added: the first and the last NEWRULE ask
//     for an echo (two messages back, not 10k); nf_tables numbers every
//     chain, set and rule of a table from one counter, in batch order, so
//     the handles in between follow, and the last echo checks the count.

// batchStats times one sendBatch.
type batchStats struct {
	commit, verify time.Duration
	messages       int
	// added are the handles of the rules added, in batch order; nil when
	// they are not known.
	added []uint64
}

// batchHook, when set (tests only), may alter the encoded batch before it
// is checked, to prove that a truncated batch is caught.
var batchHook func([]netlink.Message) []netlink.Message

// sendBatch builds a batch with build, checks that it holds want[set]
// elements for every set in want, and sends it to namespace h, on
// condition that the ruleset generation is still gen (0: no condition).
func sendBatch(h netns.NsHandle, build func(*nftables.Conn) error, want map[string]int, gen uint32) (batchStats, error) {
	var st batchStats
	t0 := time.Now()
	msgs, err := encodeBatch(build)
	if err != nil {
		return st, err
	}
	if batchHook != nil {
		msgs = batchHook(msgs)
	}
	t1 := time.Now()
	if err := checkBatch(msgs, want); err != nil {
		return st, err
	}
	st.verify = time.Since(t1)
	st.messages = len(msgs) - 2
	st.added, err = send(h, msgs, gen)
	st.commit = time.Since(t0) - st.verify
	return st, err
}

// encodeBatch builds a batch with build on an offline connection and
// returns its messages (batch begin, messages, batch end) unsent.
func encodeBatch(build func(*nftables.Conn) error) ([]netlink.Message, error) {
	var msgs []netlink.Message
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if req == nil {
			return nil, io.EOF // no reply
		}
		msgs = append(msgs, req...)
		return nil, nil
	}))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	if err := build(c); err != nil {
		return nil, err
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return msgs, nil
}

// checkBatch verifies that the element messages of an encoded batch hold
// want[set] elements for every set in want.
func checkBatch(msgs []netlink.Message, want map[string]int) error {
	got, err := countElements(msgs)
	if err != nil {
		return fmt.Errorf("encoded batch: %w; nothing sent", err)
	}
	for set, n := range want {
		if got[set] != n {
			return fmt.Errorf("set %s: the encoded batch holds %d elements, want %d; nothing sent", set, got[set], n)
		}
	}
	return nil
}

const (
	nftSubsys            = unix.NFNL_SUBSYS_NFTABLES << 8
	nftMsgDestroySetElem = 30 // NFT_MSG_DESTROYSETELEM (linux 6.3)
)

// countElements sums, per set name, the elements of the element messages
// (add, delete, destroy) of an encoded batch.
func countElements(msgs []netlink.Message) (map[string]int, error) {
	out := map[string]int{}
	for _, m := range msgs {
		switch m.Header.Type {
		case nftSubsys | unix.NFT_MSG_NEWSETELEM, nftSubsys | unix.NFT_MSG_DELSETELEM, nftSubsys | nftMsgDestroySetElem:
		default:
			continue
		}
		if len(m.Data) < 4 {
			return nil, errors.New("short element message")
		}
		var name string
		n := 0
		err := walkAttrs(m.Data[4:], func(typ uint16, data []byte) error {
			switch typ &^ unix.NLA_F_NESTED {
			case unix.NFTA_SET_ELEM_LIST_SET:
				name = cstring(data)
			case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
				return walkAttrs(data, func(uint16, []byte) error { n++; return nil })
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("element message: %w", err)
		}
		out[name] += n
	}
	return out, nil
}

// walkAttrs calls fn for each netlink attribute in b; a length that runs
// past the end is an error (a truncated message).
func walkAttrs(b []byte, fn func(typ uint16, data []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return errors.New("truncated attribute header")
		}
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return fmt.Errorf("attribute length %d exceeds the %d bytes left", l, len(b))
		}
		if err := fn(binary.NativeEndian.Uint16(b[2:]), b[4:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			l = len(b)
		}
		b = b[l:]
	}
	return nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// ackTimeout bounds the wait for the kernel's acknowledgements (they are
// queued before sendmsg returns; this only guards against a lost one).
const ackTimeout = 30 * time.Second

// send sends an encoded batch (begin, messages, end) in one sendmsg with
// an acknowledgement requested for every message, and waits for them.
// With gen != 0 the kernel commits it only if the ruleset generation is
// still gen. It returns the handles of the rules added, in batch order
// (nil when the echoes did not confirm them).
func send(h netns.NsHandle, msgs []netlink.Message, gen uint32) ([]uint64, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(h)})
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	defer conn.Close()
	// Acknowledgements carry only the header of the message they answer.
	if err := conn.SetOption(netlink.CapAcknowledge, true); err != nil {
		return nil, fmt.Errorf("netlink cap_ack: %w", err)
	}
	size := 0
	for _, m := range msgs {
		size += unix.NLMSG_HDRLEN + len(m.Data)
	}
	if err := conn.SetWriteBuffer(max(2*size, 1<<20)); err != nil {
		return nil, fmt.Errorf("netlink write buffer: %w", err)
	}
	if err := conn.SetReadBuffer(readBuffer); err != nil {
		return nil, fmt.Errorf("netlink read buffer: %w", err)
	}
	if gen != 0 && len(msgs) > 0 && msgs[0].Header.Type == unix.NFNL_MSG_BATCH_BEGIN {
		a := make([]byte, 8)
		binary.NativeEndian.PutUint16(a, 8)
		binary.NativeEndian.PutUint16(a[2:], unix.NFNL_BATCH_GENID)
		binary.BigEndian.PutUint32(a[4:], gen)
		msgs[0].Data = append(msgs[0].Data[:len(msgs[0].Data):len(msgs[0].Data)], a...)
		msgs[0].Header.Length = 0 // recomputed on send; the encoded length would cut the attribute off
	}
	firstRule, lastRule := -1, -1
	for i := range msgs {
		msgs[i].Header.Sequence, msgs[i].Header.PID = 0, 0
		if i > 0 && i < len(msgs)-1 {
			msgs[i].Header.Flags = msgs[i].Header.Flags&^netlink.Echo | netlink.Acknowledge
			if msgs[i].Header.Type == nftSubsys|unix.NFT_MSG_NEWRULE {
				if firstRule < 0 {
					firstRule = i
				}
				lastRule = i
			}
		}
	}
	for _, i := range []int{firstRule, lastRule} {
		if i >= 0 {
			msgs[i].Header.Flags |= netlink.Echo
		}
	}
	sent, err := conn.SendMessages(msgs)
	if err != nil {
		return nil, fmt.Errorf("send batch: %w", err)
	}
	kinds := map[uint32]netlink.HeaderType{}
	for _, m := range sent {
		kinds[m.Header.Sequence] = m.Header.Type
	}
	echoed := map[uint32]uint64{} // sequence → handle
	if err := conn.SetReadDeadline(time.Now().Add(ackTimeout)); err != nil {
		return nil, err
	}
	want, acked := len(sent)-2, 0
	for acked < want {
		replies, err := conn.Receive()
		if err != nil {
			var oe *netlink.OpError
			if errors.As(err, &oe) {
				if errors.Is(err, unix.ERESTART) && kinds[oe.Sequence] == unix.NFNL_MSG_BATCH_BEGIN {
					return nil, ErrGenerationChanged
				}
				return nil, fmt.Errorf("commit: %s: %w", msgName(kinds[oe.Sequence]), err)
			}
			return nil, fmt.Errorf("commit: %d of %d messages acknowledged: %w", acked, want, err)
		}
		for _, r := range replies {
			switch {
			case r.Header.Type == netlink.Error:
				acked++
			case r.Header.Type == nftSubsys|unix.NFT_MSG_NEWRULE && len(r.Data) >= 4:
				if _, o, err := decodeRule(r.Data[4:]); err == nil {
					echoed[r.Header.Sequence] = o.Handle
				}
			}
		}
	}
	if firstRule < 0 {
		return []uint64{}, nil
	}
	return ruleHandles(sent, echoed[sent[firstRule].Header.Sequence], echoed[sent[lastRule].Header.Sequence], firstRule, lastRule), nil
}

// ruleHandles numbers the NEWRULE messages of a committed batch.
// nf_tables gives every chain, set (anonymous ones too) and rule created
// in a table the next value of one per-table counter, in batch order;
// first and last are the echoed handles of the first and last NEWRULE.
// It returns nil when the count between them does not match (a kernel
// that numbers otherwise): the caller then does not trust the handles.
func ruleHandles(msgs []netlink.Message, first, last uint64, iFirst, iLast int) []uint64 {
	if first == 0 || last == 0 {
		return nil
	}
	var out []uint64
	next := first
	for i := iFirst; i <= iLast; i++ {
		switch msgs[i].Header.Type {
		case nftSubsys | unix.NFT_MSG_NEWRULE:
			out = append(out, next)
			next++
		case nftSubsys | unix.NFT_MSG_NEWCHAIN, nftSubsys | unix.NFT_MSG_NEWSET,
			nftSubsys | unix.NFT_MSG_NEWOBJ, nftSubsys | unix.NFT_MSG_NEWFLOWTABLE:
			next++
		}
	}
	if out[len(out)-1] != last {
		return nil
	}
	return out
}

// msgName names an nf_tables message type for errors.
func msgName(t netlink.HeaderType) string {
	names := map[int]string{
		unix.NFT_MSG_NEWTABLE: "add table", unix.NFT_MSG_DELTABLE: "delete table",
		unix.NFT_MSG_NEWCHAIN: "add chain", unix.NFT_MSG_DELCHAIN: "delete chain",
		unix.NFT_MSG_NEWRULE: "add rule", unix.NFT_MSG_DELRULE: "delete rule",
		unix.NFT_MSG_NEWSET: "add set", unix.NFT_MSG_DELSET: "delete set",
		unix.NFT_MSG_NEWSETELEM: "add set elements", unix.NFT_MSG_DELSETELEM: "delete set elements",
	}
	if t&^0xff == nftSubsys {
		if n, ok := names[int(t&0xff)]; ok {
			return n
		}
	}
	if t == unix.NFNL_MSG_BATCH_BEGIN {
		return "batch"
	}
	return fmt.Sprintf("message type %#x", uint16(t))
}
