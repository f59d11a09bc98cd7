package policy

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// encodeTx encodes the batch of tx without a kernel.
func encodeTx(t *testing.T, tx *Transaction) []netlink.Message {
	t.Helper()
	msgs, err := encodeBatch(func(c *nftables.Conn) error { return queue(c, tx) })
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func isElemMsg(m netlink.Message) bool {
	return m.Header.Type == nftSubsys|unix.NFT_MSG_NEWSETELEM
}

// elemsOf reports whether m adds elements to set.
func elemsOf(m netlink.Message, set string) bool {
	if !isElemMsg(m) {
		return false
	}
	n, _ := countElements([]netlink.Message{m})
	_, ok := n[set]
	return ok
}

// A batch that lost an element message, or whose element list was cut
// short, is caught before it is sent.
func TestTruncatedBatchIsCaught(t *testing.T) {
	tx := Plan("edge", edge(t), nil)
	want := wantElements(tx)
	if want["blocklist_v4"] != 4 || want["blocklist_v6"] != 2 {
		t.Fatalf("elements to send: %v", want)
	}
	if err := checkBatch(encodeTx(t, tx), want); err != nil {
		t.Fatalf("a whole batch fails the check: %v", err)
	}
	// A lost message.
	msgs := encodeTx(t, tx)
	for i := len(msgs) - 1; i >= 0; i-- {
		if elemsOf(msgs[i], "blocklist_v4") {
			msgs = append(msgs[:i], msgs[i+1:]...)
			break
		}
	}
	if err := checkBatch(msgs, want); err == nil || !strings.Contains(err.Error(), "blocklist_v4") {
		t.Fatalf("a lost element message: %v", err)
	}
	// An element list whose last element was dropped (lengths fixed up,
	// as a library bug would leave them): the count is short.
	msgs = encodeTx(t, tx)
	for i, m := range msgs {
		if elemsOf(m, "blocklist_v6") {
			msgs[i].Data = dropLastElement(t, m.Data)
		}
	}
	if err := checkBatch(msgs, want); err == nil || !strings.Contains(err.Error(), "blocklist_v6") {
		t.Fatalf("a short element list: %v", err)
	}
	// A message cut in the middle of an attribute.
	msgs = encodeTx(t, tx)
	for i, m := range msgs {
		if isElemMsg(m) {
			msgs[i].Data = m.Data[:len(m.Data)-6]
		}
	}
	if err := checkBatch(msgs, want); err == nil {
		t.Fatal("a truncated message passed the check")
	}
}

// dropLastElement removes the last element of an element message's list
// and fixes the enclosing attribute length.
func dropLastElement(t *testing.T, data []byte) []byte {
	t.Helper()
	out := append([]byte(nil), data[:4]...)
	body := data[4:]
	for len(body) > 0 {
		l := int(binary.NativeEndian.Uint16(body))
		typ := binary.NativeEndian.Uint16(body[2:])
		a := body[:(l+3)&^3]
		if typ&^unix.NLA_F_NESTED == unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			list := a[4:l]
			var lastOff, off int
			for off < len(list) {
				lastOff = off
				off += (int(binary.NativeEndian.Uint16(list[off:])) + 3) &^ 3
			}
			list = list[:lastOff]
			a = make([]byte, 4+len(list))
			binary.NativeEndian.PutUint16(a, uint16(4+len(list)))
			binary.NativeEndian.PutUint16(a[2:], typ)
			copy(a[4:], list)
		}
		out = append(out, a...)
		body = body[min(len(body), (l+3)&^3):]
	}
	return out
}
