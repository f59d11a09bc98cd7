package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const cacheCfg = "[tenant.a.interface.x]\ndevice = \"eth1\"\n[tenant.a.set.s]\nfile = \"s.txt\"\n"

func TestSetCache(t *testing.T) {
	dir := t.TempDir()
	cfgPath, setPath := filepath.Join(dir, "fwd.toml"), filepath.Join(dir, "s.txt")
	_ = os.WriteFile(cfgPath, []byte(cacheCfg), 0o644)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	write := func(content string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(setPath, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(setPath, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	c := &SetCache{}
	load := func(wantParses int, wantV4 string) {
		t.Helper()
		cfg, err := LoadWith(cfgPath, c)
		if err != nil {
			t.Fatal(err)
		}
		if c.parses != wantParses {
			t.Fatalf("%d parses, want %d", c.parses, wantParses)
		}
		if got := fmt.Sprint(cfg.Tenants[0].Policy.Set("s").V4); got != wantV4 {
			t.Fatalf("set %s, want %s", got, wantV4)
		}
	}
	write("198.51.100.1\n", old)
	load(1, "[{198.51.100.1 198.51.100.1}]")
	load(1, "[{198.51.100.1 198.51.100.1}]") // unchanged: from the cache
	write("198.51.100.2\n", old.Add(time.Minute))
	load(2, "[{198.51.100.2 198.51.100.2}]") // same size, new mtime, new bytes: parsed
	write("198.51.100.3\n", old.Add(time.Minute))
	load(3, "[{198.51.100.3 198.51.100.3}]") // same size and mtime, new bytes: parsed (mtime is not trusted)
	write("198.51.100.3\n", old.Add(2*time.Minute))
	load(3, "[{198.51.100.3 198.51.100.3}]") // touched, same bytes: from the cache
	// A bad file is reported and not cached; restoring the previous
	// bytes finds their parse still cached.
	write("nope\n", old)
	if _, err := LoadWith(cfgPath, c); err == nil || !strings.Contains(err.Error(), `s.txt:1: invalid address "nope"`) {
		t.Fatalf("bad set file: %v", err)
	}
	write("198.51.100.3\n", old)
	load(3, "[{198.51.100.3 198.51.100.3}]")
	write("198.51.100.4\n", old)
	load(4, "[{198.51.100.4 198.51.100.4}]")
	// A file the config no longer names leaves the cache.
	_ = os.WriteFile(cfgPath, []byte("[tenant.a.interface.x]\ndevice = \"eth1\"\n"), 0o644)
	if _, err := LoadWith(cfgPath, c); err != nil {
		t.Fatal(err)
	}
	if len(c.files) != 0 {
		t.Fatalf("cache keeps %d files", len(c.files))
	}
	// Load and a nil cache still work.
	if _, err := Load(cfgPath); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWith(cfgPath, nil); err != nil {
		t.Fatal(err)
	}
}

// writeBenchSet writes the set file of `make bench-policy`: 65536 IPv4
// hosts (every other address, so nothing merges), then IPv6 /64s.
func writeBenchSet(tb testing.TB, dir string, n int) {
	var b strings.Builder
	a := netip.MustParseAddr("198.18.0.0")
	for i := 0; i < n && i < 65536; i++ {
		b.WriteString(a.String())
		b.WriteByte('\n')
		a = a.Next().Next()
	}
	for i := 65536; i < n; i++ {
		fmt.Fprintf(&b, "2001:db8:%x:%x::/64\n", (2*i)>>16, (2*i)&0xffff)
	}
	if err := os.WriteFile(filepath.Join(dir, "s.txt"), []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fwd.toml"), []byte(cacheCfg), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkSetFile100k loads a config whose set file has 100k lines:
// read, parse, sort and merge, hash (issue 14's target: 20 ms).
func BenchmarkSetFile100k(b *testing.B) {
	dir := b.TempDir()
	writeBenchSet(b, dir, 100000)
	b.ResetTimer()
	for b.Loop() {
		cfg, err := Load(filepath.Join(dir, "fwd.toml"))
		if err != nil {
			b.Fatal(err)
		}
		if s := cfg.Tenants[0].Policy.Set("s"); len(s.V4)+len(s.V6) != 100000 {
			b.Fatalf("%d ranges", len(s.V4)+len(s.V6))
		}
	}
}

// BenchmarkSetFile100kCached reloads the same config through a SetCache:
// the set file is read and hashed, not parsed.
func BenchmarkSetFile100kCached(b *testing.B) {
	dir := b.TempDir()
	writeBenchSet(b, dir, 100000)
	c := &SetCache{}
	if _, err := LoadWith(filepath.Join(dir, "fwd.toml"), c); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := LoadWith(filepath.Join(dir, "fwd.toml"), c); err != nil {
			b.Fatal(err)
		}
	}
	if c.parses != 1 {
		b.Fatalf("%d parses", c.parses)
	}
}
