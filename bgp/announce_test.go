package bgp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/fwdproject/fwd/config"
)

// The backup of an HA pair originates nothing; the master, and a tenant
// without a pair, originate their prefixes.
func TestAnnounceGate(t *testing.T) {
	b := &config.BGP{Announce: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
	want := []string{"203.0.113.0/24"}
	s := &Supervisor{}
	if got := s.announce("edge", b); !slices.Equal(got, want) {
		t.Fatalf("no gate: %v", got)
	}
	master := map[string]bool{"edge": true}
	s.AnnounceGate = func(tenant string) bool { return master[tenant] }
	if got := s.announce("edge", b); !slices.Equal(got, want) {
		t.Fatalf("master: %v", got)
	}
	master["edge"] = false
	if got := s.announce("edge", b); len(got) != 0 {
		t.Fatalf("backup announces %v", got)
	}
}
