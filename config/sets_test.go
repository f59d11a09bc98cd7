package config

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDynamicSet(t *testing.T) {
	cfg, err := Parse("fwd.toml", []byte(policyBase+`
[tenant.edge.set.ban]
dynamic = true
timeout = "1d12h"
[tenant.edge.set.watch]
dynamic = true
[[tenant.edge.rule]]
from = "wan"
to = "lan"
saddr = "@ban"
action = "drop"
`))
	if err != nil {
		t.Fatal(err)
	}
	p := &cfg.Tenants[0].Policy
	if s := p.Set("ban"); s == nil || !s.Dynamic || s.Timeout != 36*time.Hour || len(s.V4)+len(s.V6) != 0 || s.File != "" {
		t.Fatalf("ban: %+v", s)
	}
	if s := p.Set("watch"); s == nil || !s.Dynamic || s.Timeout != 0 {
		t.Fatalf("watch: %+v", s)
	}
}

// Every problem of the live-set keys, all at once, with its exact text.
func TestDynamicSetErrors(t *testing.T) {
	_, err := Parse("fwd.toml", []byte(`[tenant.edge.interface.wan]
device = "eth1"
[tenant.edge.set.a]
dynamic = true
elements = ["198.51.100.7"]
file = "a.txt"
timeout = "2 days"
[tenant.edge.set.b]
elements = ["198.51.100.7"]
timeout = "1h"
[tenant.edge.set.c]
dynamic = false
`))
	want := `fwd.toml:5: tenant.edge.set.a.elements: a dynamic set takes no elements: they are added at run time (fwd set add)
fwd.toml:6: tenant.edge.set.a.file: a dynamic set takes no file: its elements are added at run time (fwd set add)
fwd.toml:7: tenant.edge.set.a.timeout: invalid timeout "2 days": want a duration such as "1h30m" or "2d"
fwd.toml:10: tenant.edge.set.b.timeout: only a dynamic set has a timeout (add dynamic = true)
fwd.toml:11: tenant.edge.set.c: needs elements, file or dynamic = true`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

func TestParseSetTimeout(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"1h", time.Hour, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"90s", 90 * time.Second, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"1d", 24 * time.Hour, ""},
		{"2d3h4m5s", 51*time.Hour + 4*time.Minute + 5*time.Second, ""},
		{"365d", MaxSetTimeout, ""},
		{"", 0, `invalid timeout "": must be positive`},
		{"0", 0, `invalid timeout "0": must be positive`},
		{"10", 0, `invalid timeout "10": want a duration such as "1h30m" or "2d"`},
		{"d", 0, `invalid timeout "d": want a duration such as "1h30m" or "2d"`},
		{"1d-1h", 0, `invalid timeout "1d-1h": want a duration such as "1h30m" or "2d"`},
		{"8761h", 0, `invalid timeout "8761h": at most 365d (leave timeout out for elements that never expire)`},
		{"1ns", 0, `invalid timeout "1ns": the kernel counts whole milliseconds`},
	} {
		got, err := ParseSetTimeout(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: got %v, %v; want error %s", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestPrefixLast(t *testing.T) {
	ref := func(p netip.Prefix) netip.Addr {
		b := p.Masked().Addr().AsSlice()
		n := new(big.Int).SetBytes(b)
		host := len(b)*8 - p.Bits()
		n.Or(n, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(host)), big.NewInt(1)))
		a, _ := netip.AddrFromSlice(n.FillBytes(make([]byte, len(b))))
		return a
	}
	for _, base := range []string{"198.51.100.77", "2001:db8:1234:5678:9abc:def0:1234:5678"} {
		a := netip.MustParseAddr(base)
		for bits := 0; bits <= a.BitLen(); bits++ {
			p := netip.PrefixFrom(a, bits)
			if got, want := PrefixLast(p), ref(p); got != want {
				t.Errorf("%s: got %s, want %s", p, got, want)
			}
		}
	}
}

// mergeNaive is the reference merge: sort by start with netip, join
// overlapping or adjacent ranges.
func mergeNaive(in []AddrRange) []AddrRange {
	var out []AddrRange
	rs := append([]AddrRange(nil), in...)
	for i := range rs { // insertion sort: small inputs only
		for j := i; j > 0 && rs[j].From.Less(rs[j-1].From); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
	for _, r := range rs {
		if n := len(out); n > 0 && (!out[n-1].To.Less(r.From) || out[n-1].To.Next() == r.From) {
			if out[n-1].To.Less(r.To) {
				out[n-1].To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// The set-file parser agrees with ParseAddrRange line by line and with
// the reference merge, on random files of both families.
func TestParseSetFileMerges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var lines []string
		var want []AddrRange
		for i := rng.IntN(40); i > 0; i-- {
			var s string
			switch rng.IntN(5) {
			case 0:
				s = fmt.Sprintf("198.51.100.%d", rng.IntN(256))
			case 1:
				bits := 24 + rng.IntN(9)
				s = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(256))}), bits).Masked().String()
			case 2:
				a, b := rng.IntN(256), rng.IntN(256)
				s = fmt.Sprintf("198.51.100.%d - 198.51.100.%d", min(a, b), max(a, b))
			case 3:
				s = fmt.Sprintf("2001:db8::%x", rng.IntN(64))
			case 4:
				s = fmt.Sprintf("2001:db8::%x-2001:db8::%x", rng.IntN(32), 32+rng.IntN(32))
			}
			ar, err := ParseAddrRange(s)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ar)
			if rng.IntN(4) == 0 {
				s = "  " + s + "\t# comment"
			}
			lines = append(lines, s)
		}
		if rng.IntN(3) == 0 {
			lines = append(lines, "", "# only a comment")
		}
		text := strings.Join(lines, "\n")
		if rng.IntN(2) == 0 {
			text += "\r\n"
		}
		v4, v6, err := parseSetFile("s.txt", text)
		if err != nil {
			t.Fatal(err)
		}
		w4, w6 := splitFamilies(mergeNaive(want))
		if fmt.Sprint(v4) != fmt.Sprint(w4) || fmt.Sprint(v6) != fmt.Sprint(w6) {
			t.Fatalf("file:\n%s\ngot  %v %v\nwant %v %v", text, v4, v6, w4, w6)
		}
	}
}

func splitFamilies(rs []AddrRange) (v4, v6 []AddrRange) {
	for _, r := range rs {
		if r.From.Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	return
}

// The ends of the address space: merging must not wrap.
func TestMergeEnds(t *testing.T) {
	v4, v6, err := parseSetFile("s.txt", "255.255.255.255\n0.0.0.0/0\n::/0\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n::\n")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(v4) != "[{0.0.0.0 255.255.255.255}]" || fmt.Sprint(v6) != "[{:: ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff}]" {
		t.Fatalf("got %v %v", v4, v6)
	}
}

func TestSetFileErrors(t *testing.T) {
	long := strings.Repeat("x", 500)
	text := "198.51.100.1\nfoo\n" + long + "\n1\n2\n3\n4\n5\n198.51.100.0/23\n"
	_, _, err := parseSetFile("s.txt", text)
	want := `s.txt:2: invalid address "foo"; s.txt:3: invalid address (a line of 500 bytes); s.txt:4: invalid address "1"; s.txt:5: invalid address "2"; s.txt:6: invalid address "3"; 2 more bad lines`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

// A FIFO as a set file is refused without waiting for a writer.
func TestSetFileFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse(filepath.Join(dir, "fwd.toml"), []byte("[tenant.a.interface.x]\ndevice = \"eth1\"\n[tenant.a.set.s]\nfile = \"fifo\"\n"))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "tenant.a.set.s.file: "+filepath.Join(dir, "fifo")+" is not a regular file") {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO set file hangs")
	}
}

// Inline elements and a file's lines are one set, merged.
func TestSetElementsAndFile(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "s.txt"), []byte("198.51.100.0/25\n"), 0o644)
	c := &SetCache{}
	for range 2 { // the second load is served from the cache: not aliased
		cfg, err := ParseWith(filepath.Join(dir, "fwd.toml"), []byte("[tenant.a.interface.x]\ndevice = \"eth1\"\n[tenant.a.set.s]\nfile = \"s.txt\"\nelements = [\"198.51.100.128/25\", \"2001:db8::1\"]\n"), c)
		if err != nil {
			t.Fatal(err)
		}
		s := cfg.Tenants[0].Policy.Set("s")
		if fmt.Sprint(s.V4, s.V6) != "[{198.51.100.0 198.51.100.255}] [{2001:db8::1 2001:db8::1}]" {
			t.Fatalf("set: %v %v", s.V4, s.V6)
		}
	}
	if f := c.files[filepath.Join(dir, "s.txt")]; fmt.Sprint(f.v4) != "[{198.51.100.0 198.51.100.127}]" {
		t.Fatalf("cached ranges changed: %v", f.v4)
	}
}

// A set file over MaxSetFileBytes is refused before being read.
func TestSetFileTooBig(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.txt")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Truncate(MaxSetFileBytes + 1) // sparse
	f.Close()
	_, err = Parse(filepath.Join(dir, "fwd.toml"), []byte("[tenant.a.interface.x]\ndevice = \"eth1\"\n[tenant.a.set.s]\nfile = \"big.txt\"\n"))
	want := fmt.Sprintf("fwd.toml:4: tenant.a.set.s.file: %s is %d bytes, more than the 256 MiB limit for set files", big, MaxSetFileBytes+1)
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("got %v\nwant …%s", err, want)
	}
}
