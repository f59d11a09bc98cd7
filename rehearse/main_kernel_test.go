//go:build kernel

package rehearse

import (
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
