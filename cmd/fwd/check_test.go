package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

// The end-to-end tests run the fwd binary as a user would; those that
// need the kernel are in *_kernel_test.go (go test -tags kernel).

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	writeFile(t, good, testkit.Fixture(t, "edge.toml"))
	if out, _, code := testkit.Fwd(t, "check", good); code != 0 || !strings.Contains(out, "valid (1 tenants)") {
		t.Fatalf("check good: %d %s", code, out)
	}
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, "[tenant.edge.interface.wan]\ndevice = \"eth1\"\nmtu = 1\n[tenant.x.interface.y]\ndevice = \"eth1\"\nfoo = 1\n")
	_, errOut, code := testkit.Fwd(t, "check", "-c", bad)
	if code != exitFailure {
		t.Fatalf("check bad: exit %d", code)
	}
	// Every problem in one pass: the unknown key hides none of the others.
	want := bad + ":3: tenant.edge.interface.wan.mtu: MTU 1 out of range 68-65535 (leave mtu out to keep the device's)\n" +
		bad + ":5: tenant.x.interface.y.device: device \"eth1\" is already claimed by tenant.edge.interface.wan\n" +
		bad + ":6: tenant.x.interface.y.foo: unknown key"
	if strings.TrimSpace(errOut) != want {
		t.Fatalf("check bad output:\n%s\nwant:\n%s", errOut, want)
	}
	if _, _, code := testkit.Fwd(t, "check", "-c", filepath.Join(dir, "missing.toml")); code != exitFailure {
		t.Fatalf("missing file: exit %d", code)
	}
	if _, _, code := testkit.Fwd(t, "bogus"); code != exitUsage {
		t.Fatalf("unknown command: exit %d", code)
	}
}
