package bgp

import "testing"

// The decision that lets stale routes go, in the sequences that matter.
// The second row is TestBIRDInterop's flake: after a speaker restart the
// session came back and died again before the peer re-sent its route, so
// no withdrawal could ever name it, and the sweep waited for "every
// neighbour established" until the stale timeout (120 s).
func TestPeerTrackerSettled(t *testing.T) {
	type ev struct {
		addr string
		kind string // "up", "down", "eor"
	}
	for _, tc := range []struct {
		name   string
		events []ev
		// settled state of each neighbour, given its current session
		addr        string
		established bool
		want        bool
	}{
		{"not back yet", nil, "192.0.2.2", false, false},
		{"back then lost before re-sending", []ev{{"192.0.2.2", "up"}, {"192.0.2.2", "down"}}, "192.0.2.2", false, true},
		{"back, table not complete", []ev{{"192.0.2.2", "up"}}, "192.0.2.2", true, false},
		{"back with End-of-RIB", []ev{{"192.0.2.2", "up"}, {"192.0.2.2", "eor"}}, "192.0.2.2", true, true},
		{"lost, then back again: waits for its End-of-RIB", []ev{{"192.0.2.2", "up"}, {"192.0.2.2", "eor"}, {"192.0.2.2", "down"}, {"192.0.2.2", "up"}}, "192.0.2.2", true, false},
		{"another neighbour's loss settles nothing here", []ev{{"192.0.2.3", "up"}, {"192.0.2.3", "down"}}, "192.0.2.2", false, false},
		{"never up: a down event is not a loss", []ev{{"192.0.2.2", "down"}}, "192.0.2.2", false, false},
	} {
		p := newPeerTracker()
		for _, e := range tc.events {
			switch e.kind {
			case "up":
				p.state(e.addr, true)
			case "down":
				p.state(e.addr, false)
			case "eor":
				p.endOfRIB(e.addr)
			}
		}
		if got := p.settled(tc.addr, tc.established); got != tc.want {
			t.Errorf("%s: settled = %v, want %v", tc.name, got, tc.want)
		}
	}
}
