//go:build kernel

package pktlog

import (
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
