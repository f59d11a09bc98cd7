package sandbox

import (
	"strconv"
	"testing"
)

func selfInode(t *testing.T) uint64 {
	t.Helper()
	ino, err := netnsInode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

// The guards decide from the environment and the namespace the process
// is in; no namespace is created here.
func TestInsideAndReady(t *testing.T) {
	self := strconv.FormatUint(selfInode(t), 10)
	for _, tc := range []struct {
		name, parent, ready string
		inside, isReady     bool
	}{
		{"no marker", "", "", false, false},
		{"marker is our own namespace: not a sandbox", self, self, false, false},
		{"re-executed, not set up yet", "1", "", true, false},
		{"set up, and still in that namespace", "1", self, true, true},
		{"inherited the environment, moved elsewhere", "1", "2", true, false},
		{"garbage", "x", "y", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envMarker, tc.parent)
			t.Setenv(envReady, tc.ready)
			if got := Inside(); got != tc.inside {
				t.Errorf("Inside() = %v, want %v", got, tc.inside)
			}
			if got := Ready(); got != tc.isReady {
				t.Errorf("Ready() = %v, want %v", got, tc.isReady)
			}
		})
	}
}

func TestSetupRefusesOutside(t *testing.T) {
	t.Setenv(envMarker, "")
	if err := Setup(); err == nil {
		t.Fatal("Setup ran outside a sandbox")
	}
}
