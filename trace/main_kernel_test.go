//go:build kernel

package trace

import (
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

// TestMain runs the kernel-tagged test binary in a private sandbox.
func TestMain(m *testing.M) { testkit.Main(m) }
