package config

import (
	"fmt"
	"strings"
	"testing"
)

// Interface names are checked as the kernel's dev_valid_name does, plus
// fwd's documented stricter rules (no control bytes, no non-ASCII).
func TestValidIfName(t *testing.T) {
	for name, want := range map[string]string{
		"eth0":             "",
		"wan-1.100":        "",
		"a_b@c":            "",
		"123456789012345":  "",
		"":                 "is empty",
		"1234567890123456": `"1234567890123456" is longer than 15 bytes (IFNAMSIZ)`,
		".":                `"." is not a valid interface name`,
		"..":               `".." is not a valid interface name`,
		"a/b":              `"a/b" contains a character not allowed in interface names ('/')`,
		"a:b":              `"a:b" contains a character not allowed in interface names (':')`,
		"a%d":              `"a%d" contains a character not allowed in interface names ('%')`,
		"a b":              `"a b" contains a character not allowed in interface names (whitespace)`,
		"wan\r":            `"wan\r" contains a character not allowed in interface names (whitespace)`,
		"wan\f":            `"wan\f" contains a character not allowed in interface names (whitespace)`,
		"wan\v":            `"wan\v" contains a character not allowed in interface names (whitespace)`,
		"wan\t":            `"wan\t" contains a character not allowed in interface names (whitespace)`,
		"wan\n":            `"wan\n" contains a character not allowed in interface names (whitespace)`,
		"wan\x00":          `"wan\x00" contains a character not allowed in interface names (control byte 0x00)`,
		"wan\x7f":          `"wan\x7f" contains a character not allowed in interface names (control byte 0x7f)`,
		"w\u00e0n":         `"wàn" contains a character not allowed in interface names (non-ASCII byte 0xc3)`,
		"w\xa0n":           `"w\xa0n" contains a character not allowed in interface names (non-ASCII byte 0xa0)`,
	} {
		if got := ValidIfName(name); got != want {
			t.Errorf("ValidIfName(%q) = %q, want %q", name, got, want)
		}
	}
}

// Each name position refuses what the kernel would, at its key.
func TestInterfaceNameKeys(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[tenant.a.interface.\"w\\u00e0n\"]\ndevice = \"eth1\"\n", `f.toml:1: tenant.a.interface.wàn: interface name "wàn" contains a character not allowed in interface names (non-ASCII byte 0xc3)`},
		{"[tenant.a.interface.\"wan\\r\"]\ndevice = \"eth1\"\n", `f.toml:1: "tenant.a.interface.wan\r": interface name "wan\r" contains a character not allowed in interface names (whitespace)`},
		{"[tenant.a.interface.x]\ndevice = \"eth\\f1\"\n", `f.toml:2: tenant.a.interface.x.device: "eth\f1" contains a character not allowed in interface names (whitespace)`},
		{"[tenant.a.interface.x]\ndevice = \"eth\\u00001\"\n", `f.toml:2: tenant.a.interface.x.device: "eth\x001" contains a character not allowed in interface names (control byte 0x00)`},
		{"[tenant.a.interface.x]\nmacvlan = { parent = \"eth\\u000b\" }\n", `f.toml:2: tenant.a.interface.x.macvlan.parent: "eth\v" contains a character not allowed in interface names (whitespace)`},
		{"[mgmt]\nprotect = [\"eth0\", \"e\\u00a0\"]\n", `f.toml:2: mgmt.protect[1]: "e\u00a0" contains a character not allowed in interface names (non-ASCII byte 0xc2)`},
	} {
		if got := firstError(t, tc.in); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// The loopback is never a NIC to move nor a parent.
func TestLoopbackRefused(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[tenant.a.interface.x]\ndevice = \"lo\"\n", `f.toml:2: tenant.a.interface.x.device: "lo" is the default namespace's loopback, not a NIC fwd may move`},
		{"[tenant.a.interface.x]\nmacvlan = { parent = \"lo\" }\n", `f.toml:2: tenant.a.interface.x.macvlan.parent: "lo" is the loopback: macvlan and VLAN parents must be Ethernet NICs`},
		{"[tenant.a.interface.x]\nvlan = { parent = \"lo\", id = 5 }\n", `f.toml:2: tenant.a.interface.x.vlan.parent: "lo" is the loopback: macvlan and VLAN parents must be Ethernet NICs`},
	} {
		if got := firstError(t, tc.in); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// Values the kernel or the daemon would refuse later are refused where
// they are written.
func TestValuesCheckedWhereWritten(t *testing.T) {
	long := "/run/" + strings.Repeat("s", 103) // 108 bytes
	for _, tc := range []struct{ in, want string }{
		{"[tenant.a.interface.x]\ndevice = \"eth1\"\nmtu = 0\n", `f.toml:3: tenant.a.interface.x.mtu: MTU 0 out of range 68-65535 (leave mtu out to keep the device's)`},
		{"[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"255.255.255.255/32\"]\n", `f.toml:3: tenant.a.interface.x.addresses[0]: 255.255.255.255/32 is not a unicast host address`},
		{"[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"255.255.255.255/31\"]\n", `f.toml:3: tenant.a.interface.x.addresses[0]: 255.255.255.255/31 is not a unicast host address`},
		{"[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"0.1.2.3/8\"]\n", `f.toml:3: tenant.a.interface.x.addresses[0]: 0.1.2.3/8 is not a unicast host address`},
		{"[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"ff02::1/64\"]\n", `f.toml:3: tenant.a.interface.x.addresses[0]: ff02::1/64 is not a unicast host address`},
		{"[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"::1/128\"]\n", `f.toml:3: tenant.a.interface.x.addresses[0]: ::1/128 is not a unicast host address`},
		{"[mgmt]\nsocket = \"" + long + "\"\n", `f.toml:2: mgmt.socket: path is 108 bytes, more than the 107 a Unix socket address holds (sun_path)`},
	} {
		if got := firstError(t, tc.in); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	// The longest socket path that fits, and /31 and /32 host addresses.
	if _, err := Parse("f.toml", []byte("[mgmt]\nsocket = \""+long[:107]+"\"\n[tenant.a.interface.x]\ndevice = \"eth1\"\nmtu = 68\naddresses = [\"198.51.100.0/31\", \"203.0.113.255/32\"]\n")); err != nil {
		t.Error(err)
	}
}

// A tenant's addresses are bounded, so the checks comparing them stay
// linear in the file size.
func TestTenantAddressesBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\n")
	for i := 0; i <= maxTenantAddresses; i++ {
		fmt.Fprintf(&b, "\"2001:db8::%x/128\",\n", i+1)
	}
	b.WriteString("]\n")
	want := fmt.Sprintf("f.toml:%d: tenant.a.interface.x.addresses[%d]: more than %d addresses in one tenant", maxTenantAddresses+4, maxTenantAddresses, maxTenantAddresses)
	if got := firstError(t, b.String()); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
