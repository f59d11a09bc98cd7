package pktlog

import (
	"encoding/hex"
	"testing"
)

func TestPrefixRoundTrip(t *testing.T) {
	for _, c := range []struct{ id, user string }{{"lan->wan/web", ""}, {"lan->wan/web", "WEB "}, {"_default/lan->wan", "x"}} {
		id, user, ok := SplitPrefix(Prefix(c.id, c.user))
		if !ok || id != c.id || user != c.user {
			t.Errorf("%q %q: got %q %q %v", c.id, c.user, id, user, ok)
		}
	}
	if _, _, ok := SplitPrefix("ulogd: x"); ok {
		t.Error("foreign prefix accepted")
	}
	if p := Prefix(string(make([]byte, 200)), ""); len(p) != 127 {
		t.Errorf("long prefix not cut: %d", len(p))
	}
}

func TestDecode(t *testing.T) {
	// IPv4/TCP 192.0.2.1:40000 -> 203.0.113.5:443, 40 bytes.
	v4, _ := hex.DecodeString("4500002800004000400600" + "00" + "c0000201" + "cb007105" + "9c4001bb")
	var e Entry
	if !Decode(&e, v4) || e.Family != "ip" || e.Proto != "tcp" || e.Src.String() != "192.0.2.1" ||
		e.Dst.String() != "203.0.113.5" || e.SPort != 40000 || e.DPort != 443 || e.Length != 40 {
		t.Errorf("v4: %+v", e)
	}
	// IPv4 non-first fragment: no ports.
	frag, _ := hex.DecodeString("4500002800002001400600" + "00" + "c0000201" + "cb007105" + "9c4001bb")
	e = Entry{}
	if !Decode(&e, frag) || e.SPort != 0 || e.DPort != 0 {
		t.Errorf("fragment: %+v", e)
	}
	// IPv6 hop-by-hop header, then ICMPv6 echo request 2001:db8::1 -> 2001:db8::2.
	v6, _ := hex.DecodeString("60000000" + "0010" + "00" + "40" +
		"20010db8000000000000000000000001" + "20010db8000000000000000000000002" +
		"3a00010400000000" + "8000" + "0000" + "00000000")
	e = Entry{}
	if !Decode(&e, v6) || e.Family != "ip6" || e.Proto != "icmpv6" || e.ICMPType == nil || *e.ICMPType != 128 ||
		e.Src.String() != "2001:db8::1" || e.Length != 56 {
		t.Errorf("v6: %+v", e)
	}
	for _, bad := range []string{"", "45", "4f000028", "70"} {
		b, _ := hex.DecodeString(bad)
		e = Entry{}
		if Decode(&e, b) {
			t.Errorf("%q decoded: %+v", bad, e)
		}
	}
}

func TestRingBoundedAndFollow(t *testing.T) {
	r := NewRing(3)
	for i := range 5 {
		r.Add(Entry{Tenant: []string{"a", "b"}[i%2], Length: i})
	}
	all, next, missed, _ := r.Since(0, "")
	if len(all) != 3 || all[0].Length != 2 || all[2].Length != 4 || next != 5 || missed != 2 {
		t.Fatalf("since 0: %+v next %d missed %d", all, next, missed)
	}
	a, _, _, wake := r.Since(0, "a")
	if len(a) != 2 || a[0].Length != 2 || a[1].Length != 4 {
		t.Fatalf("tenant a: %+v", a)
	}
	none, _, _, _ := r.Since(next, "")
	if len(none) != 0 {
		t.Fatalf("nothing new expected: %+v", none)
	}
	select {
	case <-wake:
		t.Fatal("woken without a new entry")
	default:
	}
	r.Add(Entry{Tenant: "a", Length: 9})
	select {
	case <-wake:
	default:
		t.Fatal("follower not woken")
	}
	n, _, _, _ := r.Since(next, "")
	if len(n) != 1 || n[0].Length != 9 {
		t.Fatalf("new: %+v", n)
	}
}
