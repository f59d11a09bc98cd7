package trace

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/fwdproject/fwd/policy"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestMatchString(t *testing.T) {
	m := Match{In: "wan0", Src: netip.MustParsePrefix("203.0.113.0/24"), Dst: netip.MustParsePrefix("192.0.2.10/32"), Proto: 6, DPort: 80}
	if got := m.String(); got != `iifname "wan0" ip saddr 203.0.113.0/24 ip daddr 192.0.2.10 meta l4proto 6 th dport 80` {
		t.Fatal(got)
	}
	if (Match{DPort: 80}).check() == nil {
		t.Fatal("ports without proto accepted")
	}
	if (Match{Src: netip.MustParsePrefix("192.0.2.1/32"), Dst: netip.MustParsePrefix("2001:db8::1/128")}).check() == nil {
		t.Fatal("mixed families accepted")
	}
	// The rule ends by setting nftrace; with an interface the output
	// chain's rule does not test it.
	if n, o := len(m.exprs(false)), len(m.exprs(true)); n != o+2 {
		t.Fatalf("prerouting %d exprs, output %d", n, o)
	}
}

func TestOwnerPID(t *testing.T) {
	for name, want := range map[string]int{"trace_123_4": 123, "trace_123_4_pre": 123, "hook_input": 0, "trace_x": 0} {
		if got := ownerPID(name); got != want {
			t.Errorf("%s: %d, want %d", name, got, want)
		}
	}
}

// The kernel sends: nfgenmsg, then attributes in network byte order.
func TestDecode(t *testing.T) {
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.String(unix.NFTA_TRACE_TABLE, "fwd_policy")
	ae.String(unix.NFTA_TRACE_CHAIN, "fw_wan_lan")
	ae.Uint64(unix.NFTA_TRACE_RULE_HANDLE, 42)
	ae.Uint32(unix.NFTA_TRACE_TYPE, unix.NFT_TRACETYPE_RULE)
	ae.Uint32(unix.NFTA_TRACE_ID, 0xdeadbeef)
	ae.Uint32(unix.NFTA_TRACE_NFPROTO, unix.NFPROTO_IPV4)
	ae.Nested(unix.NFTA_TRACE_VERDICT, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(unix.NFTA_VERDICT_CODE, uint32(0xfffffffc)) // goto
		nae.String(unix.NFTA_VERDICT_CHAIN, "do_reject")
		return nil
	})
	ip := make([]byte, 20)
	ip[0], ip[9] = 0x45, 6
	copy(ip[12:], []byte{203, 0, 113, 2})
	copy(ip[16:], []byte{192, 0, 2, 10})
	ae.Bytes(unix.NFTA_TRACE_NETWORK_HEADER, ip)
	ae.Bytes(unix.NFTA_TRACE_TRANSPORT_HEADER, []byte{0x9c, 0x40, 0, 80, 0, 0, 0, 0})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := decode(netlink.Message{Data: append([]byte{unix.NFPROTO_INET, 0, 0, 0}, b...)})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Table != "fwd_policy" || ev.Chain != "fw_wan_lan" || ev.Handle != 42 || ev.Type != "rule" || ev.ID != 0xdeadbeef ||
		ev.Verdict != "goto do_reject" || ev.Family != "ip" || ev.Proto != 6 || ev.Src.String() != "203.0.113.2" ||
		ev.Dst.String() != "192.0.2.10" || ev.SPort != 40000 || ev.DPort != 80 {
		t.Fatalf("%+v", ev.Event)
	}
}

// A trace chain left by a killed trace is removed by the next policy
// apply: Plan deletes every chain the compiled ruleset does not have.
func TestPolicyPlanRemovesTraceChains(t *testing.T) {
	rs := &policy.Ruleset{Hash: "h", Chains: []*policy.Chain{{Name: "hook_input", Type: "filter", Hook: "input", Policy: "drop"}}}
	st := &policy.State{Exists: true, Hash: "h", Chains: []policy.ObservedChain{{Name: "hook_input"}, {Name: "trace_999_1_pre", Rules: []policy.ObservedRule{{Handle: 9, Comment: "fwd trace: every packet"}}}}}
	tx := policy.Plan("fw", rs, st)
	found := false
	for _, c := range tx.DeleteChains {
		found = found || c == "trace_999_1_pre"
	}
	if !found {
		t.Fatalf("plan keeps the trace chain: delete %v", tx.DeleteChains)
	}
}
