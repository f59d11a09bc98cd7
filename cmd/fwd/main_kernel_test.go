//go:build kernel

package main

import (
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
