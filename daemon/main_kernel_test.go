//go:build kernel

package daemon

import (
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
