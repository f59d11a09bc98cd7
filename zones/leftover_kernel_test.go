//go:build kernel

package zones_test

import (
	"os"
	"testing"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
)

// A kill -9 inside namespace creation used to leave an empty pin file
// that blocked every later apply ("not created by fwd"). The next apply
// now plans the tenant as new and replaces the file with a marked,
// adoptable namespace.
func TestApplyRecoversFromLeftoverPin(t *testing.T) {
	testkit.Require(t)
	m := newManager(t)
	cfg := mustConfig(t, "[tenant.crashy]\n")
	teardown(t, m)
	if _, err := ns.Create("warm"); err != nil { // RunDir exists
		t.Fatal(err)
	}
	if err := ns.Delete("warm"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ns.Path("crashy"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	res := reconcile(t, m, cfg)
	if len(res.Changes) == 0 {
		t.Fatal("no changes: the leftover was taken for a namespace")
	}
	if !ns.Exists("crashy") {
		t.Fatal("namespace not created over the leftover")
	}
	assertNoChanges(t, m, cfg)
}
