//go:build kernel

package ha

import (
	"testing"

	"github.com/fwdproject/fwd/internal/testkit/twobox"
)

// The two-box tests re-execute this binary as boxes; twobox.Main serves
// them and is testkit.Main otherwise.
func TestMain(m *testing.M) { twobox.Main(m) }
