// Package testkit holds what fwd's tests share and the shipped binary never
// links: the sandbox TestMain, kernel-test guards, config builders and the
// daemon launcher.
package testkit

import (
	"fmt"
	"os"
	"testing"

	"github.com/fwdproject/fwd/internal/sandbox"
)

// Main is TestMain for packages with kernel tests: the test binary
// re-executes itself in a fresh network+mount namespace and runs there.
// Without privileges the kernel tests cannot run: it says so and fails,
// because a kernel test that silently passes proves nothing. Set
// FWD_SKIP_KERNEL=1 to run only the pure tests on an unprivileged machine.
func Main(m *testing.M) {
	if os.Getenv("FWD_SKIP_KERNEL") == "1" {
		os.Exit(m.Run())
	}
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v (kernel tests need root and namespaces; FWD_SKIP_KERNEL=1 runs only pure tests)\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Require skips a kernel test when the pure-only mode was requested, and
// fails it if we are somehow not inside a sandbox.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("FWD_SKIP_KERNEL") == "1" {
		t.Skip("kernel test skipped: FWD_SKIP_KERNEL=1")
	}
	if !sandbox.Ready() {
		t.Fatal("kernel test outside the sandbox: refusing to touch the host network namespace")
	}
}
