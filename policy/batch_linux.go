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

// batchStats times one sendBatch.
type batchStats struct {
	commit, verify time.Duration
	messages       int
}

// batchHook, when set (tests only), may alter the encoded batch before it
// is checked, to prove that a truncated batch is caught.
var batchHook func([]netlink.Message) []netlink.Message

// sendBatch builds a batch with build, checks that it holds want[set]
// elements for every set in want, and sends it to namespace h.
func sendBatch(h netns.NsHandle, build func(*nftables.Conn) error, want map[string]int) (batchStats, error) {
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
	err = send(h, msgs)
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
func send(h netns.NsHandle, msgs []netlink.Message) error {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(h)})
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer conn.Close()
	// Acknowledgements carry only the header of the message they answer.
	if err := conn.SetOption(netlink.CapAcknowledge, true); err != nil {
		return fmt.Errorf("netlink cap_ack: %w", err)
	}
	size := 0
	for _, m := range msgs {
		size += unix.NLMSG_HDRLEN + len(m.Data)
	}
	if err := conn.SetWriteBuffer(max(2*size, 1<<20)); err != nil {
		return fmt.Errorf("netlink write buffer: %w", err)
	}
	if err := conn.SetReadBuffer(readBuffer); err != nil {
		return fmt.Errorf("netlink read buffer: %w", err)
	}
	kinds := map[uint32]netlink.HeaderType{}
	for i := range msgs {
		msgs[i].Header.Sequence, msgs[i].Header.PID = 0, 0
		if i > 0 && i < len(msgs)-1 {
			msgs[i].Header.Flags = msgs[i].Header.Flags&^netlink.Echo | netlink.Acknowledge
		}
	}
	sent, err := conn.SendMessages(msgs)
	if err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	for _, m := range sent {
		kinds[m.Header.Sequence] = m.Header.Type
	}
	if err := conn.SetReadDeadline(time.Now().Add(ackTimeout)); err != nil {
		return err
	}
	want, acked := len(sent)-2, 0
	for acked < want {
		replies, err := conn.Receive()
		if err != nil {
			var oe *netlink.OpError
			if errors.As(err, &oe) {
				return fmt.Errorf("commit: %s: %w", msgName(kinds[oe.Sequence]), err)
			}
			return fmt.Errorf("commit: %d of %d messages acknowledged: %w", acked, want, err)
		}
		for _, r := range replies {
			if r.Header.Type == netlink.Error {
				acked++
			}
		}
	}
	return nil
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
