package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
)

// TestFingerprintCoversConfig fails when a config type that Compile reads
// gains or loses a field: tenantFingerprint must then write it (or this
// list must say why not), or an edit of that field would be compiled
// from a stale cache.
func TestFingerprintCoversConfig(t *testing.T) {
	written := map[reflect.Type][]string{
		// Tenant: Interfaces, Policy, Services, HA and ConntrackLimit are
		// written; Name, Forwarding, Routing and BGP are not compiled.
		reflect.TypeOf(config.Tenant{}): {"Name", "Forwarding", "Interfaces", "Policy", "Routing", "BGP", "Services", "HA", "ConntrackLimit"},
		// Interface: Name, Addresses and VIPs are written; the rest only
		// says how zones finds the NIC.
		reflect.TypeOf(config.Interface{}): {"Tenant", "Name", "Kind", "Device", "MAC", "PeerTenant", "PeerName", "Parent",
			"MacvlanMode", "VLANID", "Addresses", "MTU", "VIPs"},
		reflect.TypeOf(config.Policy{}):     {"Enabled", "Zones", "Defaults", "Rules", "Sets", "NAT"},
		reflect.TypeOf(config.Zone{}):       {"Name", "Interfaces"},
		reflect.TypeOf(config.ZonePolicy{}): {"From", "To", "Action", "Key", "Line"},
		reflect.TypeOf(config.Rule{}): {"Index", "Line", "ID", "Name", "Comment", "From", "To", "Saddr", "Daddr",
			"Protos", "Sport", "Dport", "ICMP", "CtState", "Action", "Log", "LogPfx", "LogLimit", "Limit", "V4", "V6"},
		reflect.TypeOf(config.AddrMatch{}): {"Set", "Ranges"},
		reflect.TypeOf(config.Rate{}):      {"Count", "Unit", "Burst"},
		// V4 and V6 are written as the file's sum when FileSum has one.
		reflect.TypeOf(config.AddrSet{}): {"Name", "File", "V4", "V6", "Dynamic", "Timeout"},
		reflect.TypeOf(config.NAT{}): {"Index", "Line", "ID", "Type", "In", "Out", "Saddr", "Daddr", "Protos", "Dport",
			"ToAddr", "ToEnd", "ToPort", "Prefix", "ToPrefix", "Hairpin", "Family", "TargetZone", "Public"},
	}
	for typ, want := range written {
		var got []string
		for i := 0; i < typ.NumField(); i++ {
			if f := typ.Field(i); f.IsExported() {
				got = append(got, f.Name)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("config.%s has fields %v; tenantFingerprint writes %v: update policy/fingerprint.go", typ.Name(), got, want)
		}
	}
}

const fpConf = `
[tenant.fw.interface.lan0]
device = "x1"
addresses = ["192.0.2.1/24"]
[tenant.fw.interface.wan0]
device = "x2"
addresses = ["203.0.113.1/24"]
[tenant.fw.zone.lan]
interfaces = ["lan0"]
[tenant.fw.zone.wan]
interfaces = ["wan0"]
[tenant.fw.set.block]
file = "block.txt"
[tenant.fw.set.mixed]
file = "block.txt"
elements = ["198.51.100.0/24"]
[[tenant.fw.rule]]
from = "any"
to = "any"
saddr = "@block"
action = "drop"
[[tenant.fw.rule]]
from = "lan"
to = "wan"
daddr = "@mixed"
action = "accept"
`

// TestCompileFrom: an unchanged tenant compiles nothing (the previous
// ruleset comes back), a changed rule compiles again but keeps the
// unchanged sets, a changed set file gives a new set, and every result
// equals a fresh Compile.
func TestCompileFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) { testkit.WriteFile(t, dir, name, text) }
	write("block.txt", "203.0.113.9\n198.18.0.0/24\n2001:db8::/48\n")
	cache := &config.SetCache{}
	load := func(extra string) *config.Tenant {
		p := filepath.Join(dir, "fwd.toml")
		if err := os.WriteFile(p, []byte(fpConf+extra), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.LoadWith(p, cache)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Tenants[0]
	}
	same := func(a, b *Ruleset) {
		t.Helper()
		if a.Hash != b.Hash || a.String() != b.String() {
			t.Fatalf("CompileFrom differs from Compile:\n%s\n---\n%s", a, b)
		}
	}
	first := CompileFrom(load(""), nil)
	same(first, Compile(load("")))
	if again := CompileFrom(load(""), first); again != first {
		t.Fatal("an unchanged tenant was compiled again")
	}
	rule := "[[tenant.fw.rule]]\nname = \"x\"\nfrom = \"wan\"\nto = \"lan\"\nproto = \"tcp\"\ndport = 22\naction = \"drop\"\n"
	tn := load(rule)
	changed := CompileFrom(tn, first)
	if changed == first {
		t.Fatal("a changed rule was not compiled")
	}
	same(changed, Compile(tn))
	for i, s := range changed.Sets {
		if s != first.Sets[i] {
			t.Errorf("set %s was rebuilt although its content did not change", s.Name)
		}
	}
	write("block.txt", "203.0.113.9\n198.18.0.0/24\n2001:db8::/48\n203.0.113.77\n")
	tn = load(rule)
	fileChanged := CompileFrom(tn, changed)
	same(fileChanged, Compile(tn))
	for i, s := range fileChanged.Sets {
		// Both families of a set come from one file: both are rebuilt.
		if rebuilt := s != changed.Sets[i]; !rebuilt {
			t.Errorf("set %s: rebuilt = %v", s.Name, rebuilt)
		}
	}
	// An interface address (NAT hairpin reads them) is part of the
	// fingerprint too.
	tn2 := load(rule)
	tn2.Interfaces[0].Addresses = nil
	if CompileFrom(tn2, fileChanged) == fileChanged {
		t.Error("a changed interface address was not compiled")
	}
	// So are the quota and the HA admission rules (both compiled): a
	// conntrack_limit or an HA peer changed alone must recompile.
	tn3 := load(rule)
	tn3.ConntrackLimit = 100
	quota := CompileFrom(tn3, fileChanged)
	if quota == fileChanged {
		t.Fatal("a changed conntrack_limit was not compiled")
	}
	same(quota, Compile(tn3))
	tn4 := load(rule)
	tn4.HA = &config.HA{Peer: netip.MustParseAddr("198.18.9.2"), SyncInterface: "lan0"}
	if CompileFrom(tn4, fileChanged) == fileChanged {
		t.Error("a changed HA peer was not compiled")
	}
}

// TestElemsHashUnchanged pins the element hash recorded in the kernel
// (changing it would make every set look changed after an upgrade).
func TestElemsHashUnchanged(t *testing.T) {
	rs := MergeRanges(mustRanges(t, "192.0.2.0/25", "203.0.113.9", "2001:db8::1"))
	var want []byte
	for _, r := range rs {
		want = append(append(want, r.From.AsSlice()...), r.To.AsSlice()...)
	}
	if got, w := elemsHash(rs), elemsHashSlow(want); got != w {
		t.Fatalf("elemsHash = %s, want %s", got, w)
	}
}

func mustRanges(t *testing.T, ss ...string) []config.AddrRange {
	t.Helper()
	var out []config.AddrRange
	for _, s := range ss {
		r, err := config.ParseAddrRange(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// elemsHashSlow is the definition elemsHash implements.
func elemsHashSlow(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:32]
}
