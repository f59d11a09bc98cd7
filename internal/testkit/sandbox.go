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
// because a kernel test that silently passes proves nothing. Main is
// called only from files behind the build tag "kernel": without the tag
// (`go test ./...`) the kernel tests are not built and the pure tests run
// without root.
func Main(m *testing.M) {
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v (kernel tests need root and namespaces; without -tags kernel only the pure tests are built)\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Require fails a kernel test if we are somehow not inside a sandbox.
func Require(t testing.TB) {
	t.Helper()
	if !sandbox.Ready() {
		t.Fatal("kernel test outside the sandbox: refusing to touch the host network namespace")
	}
}
