package policy

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/config"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func loadTenant(t testing.TB, path, tenant string) *config.Tenant {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	tn := cfg.Tenant(tenant)
	if tn == nil {
		t.Fatalf("%s: no tenant %q", path, tenant)
	}
	return tn
}

// TestGolden renders every testdata/*.toml and compares with the .nft
// next to it (one file per tenant: NAME.TENANT.nft).
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.toml")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		cfg, err := config.Load(f)
		if err != nil {
			t.Fatalf("load %s: %v", f, err)
		}
		for _, tn := range cfg.Tenants {
			name := strings.TrimSuffix(f, ".toml") + "." + tn.Name + ".nft"
			t.Run(filepath.Base(name), func(t *testing.T) {
				got, err := RenderRuleset(tn)
				if err != nil {
					t.Fatal(err)
				}
				if *update {
					if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(name)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if got != string(want) {
					t.Errorf("rendered ruleset differs from %s (run go test -update to accept):\n%s", name, got)
				}
			})
		}
	}
}

func TestCompileDeterministic(t *testing.T) {
	tn := loadTenant(t, "testdata/edge.toml", "edge")
	a, b := Compile(tn), Compile(tn)
	if a.Hash != b.Hash || a.String() != b.String() {
		t.Fatal("compiling the same tenant twice gave different rulesets")
	}
}

func TestMergeRanges(t *testing.T) {
	mk := func(s ...string) []config.AddrRange {
		var out []config.AddrRange
		for _, x := range s {
			r, err := config.ParseAddrRange(x)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	got := MergeRanges(mk("192.0.2.0/25", "192.0.2.128/25", "198.51.100.7", "198.51.100.1-198.51.100.5", "198.51.100.6", "203.0.113.9"))
	var s []string
	for _, r := range got {
		s = append(s, rangeText(r))
	}
	if want := "192.0.2.0/24 198.51.100.1-198.51.100.7 203.0.113.9"; strings.Join(s, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(s, " "), want)
	}
}

// TestExampleConfigs compiles the shipped policy examples.
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../configs/policy-*.toml")
	if len(files) < 2 {
		t.Fatalf("policy examples missing: %v", files)
	}
	for _, f := range files {
		cfg, err := config.Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tn := range cfg.Tenants {
			if rs := Compile(tn); rs == nil || len(rs.Chains) == 0 {
				t.Errorf("%s: tenant %s compiled to nothing", f, tn.Name)
			}
		}
	}
}

func TestDescribeNAT(t *testing.T) {
	got := strings.Join(DescribeNAT(loadTenant(t, "testdata/edge.toml", "edge")), "\n")
	want := `nat0: masquerade out wan
web: dnat in wan proto tcp th dport 8080 -> 192.0.2.10:80 (hairpin for zone lan)
nat2: snat out dmz saddr 192.0.2.0/24 -> 198.51.100.1
nat3: netmap out wan 192.0.2.128/26 <-> 203.0.113.64/26`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzCompile compiles and renders whatever the decoder accepts: the
// compiler must not panic on a valid config.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := config.Parse("f.toml", []byte(s))
		if err != nil {
			return
		}
		for _, tn := range cfg.Tenants {
			if rs := Compile(tn); rs != nil {
				_ = rs.String()
			}
			DescribeNAT(tn)
		}
	})
}
