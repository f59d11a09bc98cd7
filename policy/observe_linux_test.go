package policy

import (
	"errors"
	"testing"

	"github.com/vishvananda/netns"
)

// TestPlanWithoutNamespace: `fwd plan` for a tenant whose namespace does
// not exist yet observes netns.None(), an empty state, without root.
func TestPlanWithoutNamespace(t *testing.T) {
	tn := loadTenant(t, "testdata/edge.toml", "edge")
	st, err := Observe(netns.None())
	if err != nil || st.Exists {
		t.Fatalf("observe without a namespace: %+v %v", st, err)
	}
	tx := Plan(tn.Name, Compile(tn), st)
	if chg := tx.Changes(); len(chg) != 1 || chg[0].Action != "create-table" {
		t.Fatalf("plan: %v", chg)
	}
	if _, err := Apply(netns.None(), tx); !errors.Is(err, errNoNamespace) {
		t.Fatalf("apply without a namespace: %v", err)
	}
	if _, err := ReadCounters(netns.None(), nil); !errors.Is(err, errNoNamespace) {
		t.Fatalf("read counters without a namespace: %v", err)
	}
}
