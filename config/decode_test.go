package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// firstError decodes text as f.toml and returns the first error line.
func firstError(t *testing.T, text string) string {
	t.Helper()
	_, err := Parse("f.toml", []byte(text))
	if err == nil {
		t.Fatalf("accepted:\n%s", text)
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	return first
}

// A value of the wrong shape where a table belongs is an error at its
// key and line, never silently dropped.
func TestWrongShape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tenant = \"edge\"\n", `f.toml:1: tenant: incompatible types: want a table, got a string ("edge")`},
		{"[tenant]\nedge = 5\n", `f.toml:2: tenant.edge: incompatible types: want a table, got an integer (5)`},
		{"[tenant.edge]\ninterface = \"eth1\"\n", `f.toml:2: tenant.edge.interface: incompatible types: want a table, got a string ("eth1")`},
		{"[tenant.edge]\nzone = 5\n", `f.toml:2: tenant.edge.zone: incompatible types: want a table, got an integer (5)`},
		{"[tenant.edge]\nset = \"x\"\n", `f.toml:2: tenant.edge.set: incompatible types: want a table, got a string ("x")`},
		{"[tenant.edge]\ntable = 1\n", `f.toml:2: tenant.edge.table: incompatible types: want a table, got an integer (1)`},
		{"[tenant.edge]\ninterface = [\"eth1\"]\n", `f.toml:2: tenant.edge.interface: incompatible types: want a table, got an array`},
		{"[tenant.edge.zone]\nwan = [\"x\"]\n", `f.toml:2: tenant.edge.zone.wan: incompatible types: want a table, got an array`},
		{"[tenant.edge.rule]\naction = \"accept\"\n", `f.toml:1: tenant.edge.rule: incompatible types: want an array of tables ([[tenant.edge.rule]]), got a table`},
		{"mgmt = []\n", `f.toml:1: mgmt: incompatible types: want a table, got an array`},
		{"[tenant.edge.interface.wan]\npeer = [\"a\", \"b\"]\n", `f.toml:2: tenant.edge.interface.wan.peer: incompatible types: want a table, got an array`},
		{"[tenant.edge.interface.wan]\ndevice = \"eth1\"\naddresses = \"192.0.2.1/24\"\n", `f.toml:3: tenant.edge.interface.wan.addresses: incompatible types: want an array, got a string ("192.0.2.1/24")`},
		{"[[tenant.edge.route]]\nto = \"default\"\nnexthops = [{ via = \"192.0.2.1\" }, \"x\"]\n", `f.toml:3: tenant.edge.route[0].nexthops[1]: incompatible types: want a table, got a string ("x")`},
	} {
		if got := firstError(t, tc.in); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// A wrong type hides the checks it would only confuse (no "found 0"
// after device = 5), and nothing else.
func TestWrongTypeHidesOnlyConsequences(t *testing.T) {
	_, err := Parse("f.toml", []byte("[tenant.a.interface.x]\ndevice = 5\n[tenant.a.interface.y]\nvlan = { parent = \"eth3\", id = 5000 }\n[tenant.b.interface.z]\npeer = { tenant = \"a\", name = \"x\" }\n"))
	want := "f.toml:2: tenant.a.interface.x.device: incompatible types: want a string, got an integer (5)\n" +
		"f.toml:4: tenant.a.interface.y.vlan.id: VLAN id 5000 out of range 1-4094"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// Unknown keys do not hide semantic errors: both come in one pass.
func TestUnknownKeysDoNotHideProblems(t *testing.T) {
	_, err := Parse("f.toml", []byte("[tenant.a.interface.x]\ndevcie = \"eth1\"\naddresses = [\"192.0.2.0/24\"]\n"))
	want := "f.toml:1: tenant.a.interface.x: exactly one of device, mac, peer, macvlan or vlan is required (found 0)\n" +
		"f.toml:2: tenant.a.interface.x.devcie: unknown key\n" +
		"f.toml:3: tenant.a.interface.x.addresses[0]: 192.0.2.0 is the network address of 192.0.2.0/24"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// Positions are exact: an unterminated header on its own line under its
// own key; an unknown key in an inline table in an array of tables with
// its index and line; elements of a multi-line array on their lines.
func TestExactPositions(t *testing.T) {
	var b strings.Builder
	for i := 1; i < 106; i++ {
		fmt.Fprintf(&b, "# line %d\n", i)
	}
	b.WriteString("[tenant.alpha.interface.wan\ndevice = \"eth1\"\n")
	if got, want := firstError(t, "[tenant.beta.interface.x]\ndevice = \"eth2\"\n"+b.String()), "f.toml:108:28: tenant.alpha.interface.wan: expected '.' or ']' to end table name, but got the end of the line"; got != want {
		t.Errorf("unterminated header:\n got %s\nwant %s", got, want)
	}
	bgp := "[tenant.edge.interface.wan]\ndevice = \"eth1\"\naddresses = [\"203.0.113.2/24\"]\n[tenant.edge.bgp]\nasn = 64512\n" +
		"[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\n" +
		"[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.3\"\nasn = 64513\n\nimport = { allow = [\"0.0.0.0/0 le 24\"], dney = [\"192.0.2.0/24\"] }\n"
	if got, want := firstError(t, bgp), "f.toml:13: tenant.edge.bgp.neighbor[1].import.dney: unknown key"; got != want {
		t.Errorf("inline table in array of tables:\n got %s\nwant %s", got, want)
	}
	multi := "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\n  \"192.0.2.1/24\",\n  # comment\n  \"nope\",\n]\n"
	if got, want := firstError(t, multi), `f.toml:6: tenant.a.interface.x.addresses[1]: invalid address "nope": want address/prefix-length, e.g. 192.0.2.1/24`; got != want {
		t.Errorf("array element:\n got %s\nwant %s", got, want)
	}
	nh := "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"192.0.2.1/24\"]\n[[tenant.a.route]]\nto = \"default\"\nnexthops = [\n { via = \"192.0.2.2\" },\n { via = \"192.0.2.3\", wieght = 2 },\n]\n"
	if got, want := firstError(t, nh), "f.toml:8: tenant.a.route[0].nexthops[1].wieght: unknown key"; got != want {
		t.Errorf("inline table in multi-line array:\n got %s\nwant %s", got, want)
	}
}

// Only the first maxErrors problems are kept, in file order, then a count.
func TestErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("[tenant.a.interface.x]\ndevice = \"eth1\"\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "typo%d = 1\n", i)
	}
	_, err := Parse("f.toml", []byte(b.String()))
	es, ok := err.(Errors)
	if !ok || len(es) != maxErrors+1 {
		t.Fatalf("want %d lines, got %d", maxErrors+1, len(es))
	}
	if es[0].Line != 3 || es[maxErrors-1].Line != 3+maxErrors-1 {
		t.Errorf("not the first errors in file order: %v ... %v", es[0], es[maxErrors-1])
	}
	if got, want := es[maxErrors].Error(), "f.toml: 900 more errors not shown"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Nesting is bounded before the TOML decoder (which recurses) sees it.
func TestNestingBounded(t *testing.T) {
	deep := "a = " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n"
	if got, want := firstError(t, deep), "f.toml:1:36: a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: value nested deeper than 32 levels"; got != want {
		t.Errorf("arrays:\n got %s\nwant %s", got, want)
	}
	inline := "a = " + strings.Repeat("{b = ", 5000) + "1" + strings.Repeat("}", 5000) + "\n"
	if got := firstError(t, inline); !strings.Contains(got, "nested deeper than 32 levels") {
		t.Errorf("inline tables: %s", got)
	}
	keys := "[" + strings.Repeat("a.", 5000) + "b]\n"
	if got := firstError(t, keys); !strings.HasPrefix(got, "f.toml:1:") || !strings.HasSuffix(got, "key nested deeper than 32 levels") {
		t.Errorf("dotted header: %s", got)
	}
}

// The config file must be a regular file of bounded size: a FIFO or a
// device is refused without hanging.
func TestReadFileBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.toml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Truncate(MaxFileBytes + 1) // sparse
	f.Close()
	for path, want := range map[string]string{
		fifo:          fifo + " is not a regular file",
		"/dev/zero":   "/dev/zero is not a regular file",
		big:           fmt.Sprintf("%s is %d bytes, more than the 64 MiB limit for config files", big, MaxFileBytes+1),
		dir + "/none": "open " + dir + "/none: no such file or directory",
	} {
		done := make(chan error, 1)
		go func() { _, err := Load(path); done <- err }()
		select {
		case err := <-done:
			if err == nil || err.Error() != want {
				t.Errorf("%s: got %v, want %s", path, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Load hangs", path)
		}
	}
	if _, err := Parse("f.toml", make([]byte, MaxFileBytes+1)); err == nil || !strings.Contains(err.Error(), "more than the 64 MiB limit") {
		t.Errorf("Parse of oversized data: %v", err)
	}
}
