//go:build kernel

package twobox

import "testing"

func TestMain(m *testing.M) { Main(m) }
