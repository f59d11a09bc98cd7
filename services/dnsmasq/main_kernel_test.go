//go:build kernel

package dnsmasq_test

import (
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
