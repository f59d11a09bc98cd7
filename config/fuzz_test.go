package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder: it must report, never
// panic; errors are Errors, bounded, and placed inside the file.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/bad/*.toml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, p := range []string{"../configs/bgp-edge.toml", "../configs/bgp-policy.toml", "../configs/dual-uplink.toml", "../configs/policy-two-tenants.toml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode("f.toml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		es, ok := err.(Errors)
		if !ok {
			t.Fatalf("error of type %T", err)
		}
		if len(es) == 0 || len(es) > maxErrors+1 {
			t.Fatalf("%d errors", len(es))
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range es {
			if e.Line < 0 || e.Line > lines || e.Msg == "" {
				t.Fatalf("misplaced error (file has %d lines): %v", lines, e)
			}
		}
	})
}

// FuzzScanPositions: the position scan terminates on any input and
// places keys on lines of the file.
func FuzzScanPositions(f *testing.F) {
	f.Add([]byte("a = [1,\n{b = 'x'},\n\"\"\"m\n\"\"\"]\n[[t.u]]\nk.l = { m = [ [], {} ] }\n"))
	f.Add([]byte("[a\n'''\n[b]\n'''\nx = \"\\\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pos, _ := scanPositions(data)
		lines := int32(bytes.Count(data, []byte("\n")) + 1)
		for k, l := range pos.keys {
			if l < 1 || l > lines {
				t.Fatalf("key %q at line %d of %d", k, l, lines)
			}
		}
	})
}

// FuzzValidators puts fuzzed strings and numbers into the value slots of
// a complete configuration, so that every validator sees arbitrary
// values of the right type: it must report, never panic, and what it
// accepts must be consistent.
func FuzzValidators(f *testing.F) {
	f.Add("eth1", "203.0.113.2/24", "tcp", "22", "198.51.100.0/24", "0.0.0.0/0 le 24", "203.0.113.1", int64(1500), int64(64513))
	f.Add("lo", "255.255.255.255/32", "icmp", "8000-8080", "@s", "10.0.0.0/8 ge 24 le 16", "default", int64(0), int64(23456))
	f.Add("w\u00e0n", "fe80::1/64", "udp", "0", "2001:db8::/32", "", "2001:db8::1", int64(-1), int64(4294967295))
	f.Fuzz(func(t *testing.T, dev, addr, proto, port, saddr, filter, via string, mtu, asn int64) {
		q := strconv.Quote
		text := fmt.Sprintf(`
[mgmt]
socket = %s
[tenant.edge.interface.wan]
device = %s
addresses = [%s, "203.0.113.2/24"]
mtu = %d
[tenant.edge.interface.lan]
vlan = { parent = %s, id = %d }
addresses = ["192.0.2.1/24"]
[tenant.edge.zone.wan]
interfaces = ["wan"]
[tenant.edge.zone.lan]
interfaces = ["lan", %s]
[tenant.edge.set.s]
elements = [%s]
[[tenant.edge.rule]]
from = "wan"
to = ["self", "lan"]
proto = %s
dport = %s
saddr = %s
action = "accept"
[[tenant.edge.nat]]
type = "dnat"
in = "wan"
proto = "tcp"
dport = %s
to = %s
[[tenant.edge.route]]
to = %s
via = %s
[tenant.edge.bgp]
asn = %d
[[tenant.edge.bgp.neighbor]]
address = %s
asn = %d
import = { allow = [%s] }
`, q("/run/"+dev), q(dev), q(addr), mtu, q(dev), mtu, q(dev), q(saddr), q(proto), q(port), q(saddr), q(port), q(via), q(addr), q(via), asn, q(via), asn, q(filter))
		cfg, err := Decode("f.toml", []byte(text))
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		for _, tn := range cfg.Tenants {
			for _, i := range tn.Interfaces {
				if why := ValidIfName(i.Name); why != "" {
					t.Fatalf("accepted interface name %s", why)
				}
				if i.Kind == KindPhysical && i.MAC == nil && ValidIfName(i.Device) != "" {
					t.Fatalf("accepted device %q", i.Device)
				}
			}
			for _, r := range tn.Policy.Rules {
				if !r.V4 && !r.V6 {
					t.Fatalf("accepted rule %s matches no family", r.ID)
				}
			}
		}
	})
}
