package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
)

const planBase = `
[tenant.e.interface.w]
device = "eth1"
addresses = ["203.0.113.2/24"]
[tenant.e.bgp]
asn = 64512
announce = ["192.0.2.0/24"]
announce_if_route = ["198.51.100.0/24"]
[[tenant.e.bgp.neighbor]]
address = "203.0.113.1"
asn = 64513
[[tenant.e.bgp.neighbor]]
address = "203.0.113.3"
asn = 64514
`

func planBGP(t *testing.T, text string) *config.BGP {
	t.Helper()
	return testkit.Config(t, text).Tenant("e").BGP
}

// names renders steps as "action object", unreported steps as "(kind)".
func names(steps []step) string {
	var out []string
	for _, st := range steps {
		if st.action == "" {
			out = append(out, "("+st.what()+")")
			continue
		}
		out = append(out, st.action+" "+st.object)
	}
	return strings.Join(out, ",")
}

// recordAll is what runSteps leaves in rec when every step succeeds.
func recordAll(rec *applied, steps []step) *applied {
	if rec == nil {
		rec = newApplied(1, 254)
	}
	for _, st := range steps {
		rec.record(st)
	}
	return rec
}

func TestPlanConfig(t *testing.T) {
	b := planBGP(t, planBase)
	steps := planConfig(nil, b, desiredAnnounce(b, nil))
	if got, want := names(steps), "(start bgp),set-filters import/export policies,add-neighbor neighbor 203.0.113.1,add-neighbor neighbor 203.0.113.3,announce 192.0.2.0/24"; got != want {
		t.Fatalf("from scratch:\n%s\nwant\n%s", got, want)
	}
	rec := recordAll(nil, steps)
	if rec.Global != globalFingerprint(b) || len(rec.Neighbors) != 2 || len(rec.Filters) != 2 || rec.Policies == "" {
		t.Errorf("record: %+v", rec)
	}
	if got := planConfig(rec, b, desiredAnnounce(b, nil)); len(got) != 0 {
		t.Errorf("applied config re-planned: %s", names(got))
	}
	// planConfig does not touch the record it plans from.
	before := *rec
	planConfig(rec, planBGP(t, strings.Replace(planBase, "asn = 64514", "asn = 64515", 1)), nil)
	if rec.Policies != before.Policies || len(rec.Announced) != 1 || rec.Neighbors["203.0.113.3"] != before.Neighbors["203.0.113.3"] {
		t.Errorf("planConfig changed its input: %+v", rec)
	}

	present := map[netip.Prefix]bool{netip.MustParsePrefix("198.51.100.0/24"): true}
	for _, tc := range []struct {
		name    string
		text    string
		present map[netip.Prefix]bool
		want    string
	}{
		{"route appears", planBase, present, "announce 198.51.100.0/24"},
		{"neighbour removed", strings.Replace(planBase, "[[tenant.e.bgp.neighbor]]\naddress = \"203.0.113.3\"\nasn = 64514\n", "", 1), nil,
			"set-filters import/export policies,delete-neighbor neighbor 203.0.113.3"},
		{"neighbour settings", strings.Replace(planBase, "asn = 64514", "asn = 64514\nhold_time = 30", 1), nil,
			"reset-neighbor neighbor 203.0.113.3"},
		{"neighbour filters", strings.Replace(planBase, "asn = 64514", "asn = 64514\nimport = { deny = [\"198.18.0.0/15\"] }", 1), nil,
			"set-filters import/export policies,refresh-neighbor neighbor 203.0.113.3"},
		{"announcement removed", strings.Replace(planBase, `announce = ["192.0.2.0/24"]`, "", 1), nil, "withdraw 192.0.2.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := planBGP(t, tc.text)
			steps := planConfig(rec, b, desiredAnnounce(b, tc.present))
			if got := names(steps); got != tc.want {
				t.Errorf("steps:\n%s\nwant\n%s", got, tc.want)
			}
			after := recordAll(clone(rec), steps)
			if again := planConfig(after, b, desiredAnnounce(b, tc.present)); len(again) != 0 {
				t.Errorf("not converged after the steps: %s", names(again))
			}
		})
	}

	// A record without filters (older fwd) notes them without a reset.
	old := clone(rec)
	old.Filters = nil
	steps = planConfig(old, b, desiredAnnounce(b, nil))
	if got, want := names(steps), "(record),(record)"; got != want {
		t.Errorf("record without filters: %s, want %s", got, want)
	}
	if again := planConfig(recordAll(old, steps), b, desiredAnnounce(b, nil)); len(again) != 0 {
		t.Errorf("not converged: %s", names(again))
	}
}

func clone(a *applied) *applied {
	c := *a
	c.Neighbors, c.Filters = map[string]string{}, map[string]string{}
	for k, v := range a.Neighbors {
		c.Neighbors[k] = v
	}
	for k, v := range a.Filters {
		c.Filters[k] = v
	}
	c.Announced = append([]string(nil), a.Announced...)
	return &c
}

func TestPlanSpeaker(t *testing.T) {
	b := planBGP(t, planBase)
	ann := desiredAnnounce(b, nil)
	configured := recordAll(nil, planConfig(nil, b, ann))
	for _, tc := range []struct {
		name string
		st   speakerState
		b    string
		want string // process change, then the number of steps
	}{
		{"not running", speakerState{}, planBase, "start-speaker 5"},
		{"running, configured", speakerState{Running: true, Table: 254, Applied: configured}, planBase, " 0"},
		{"running, gobgp not started", speakerState{Running: true, Table: 254}, planBase, " 5"},
		{"table changed", speakerState{Running: true, Table: 100, Applied: configured}, planBase, "restart-speaker 5"},
		{"AS changed", speakerState{Running: true, Table: 254, Applied: configured}, strings.Replace(planBase, "64512", "64520", 1), "restart-speaker 5"},
		{"adopted without a record", speakerState{Running: true, Applied: &applied{Global: unknownGlobal}}, planBase, "restart-speaker 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := planBGP(t, tc.b)
			p := planSpeaker(tc.st, b, ann)
			c, _ := p.processChange("e", b)
			if got := fmt.Sprintf("%s %d", c.Action, len(p.Steps)); got != tc.want {
				t.Errorf("got %q, want %q (%s)", got, tc.want, names(p.Steps))
			}
			if p.FlushTable != (tc.name == "table changed") || (p.FlushTable && p.OldTable != 100) {
				t.Errorf("flush %v table %d", p.FlushTable, p.OldTable)
			}
			if cs := p.changes("e", b); len(cs) > 0 && (cs[0].Tenant != "e" || cs[0].Subsystem != "bgp") {
				t.Errorf("changes: %+v", cs)
			}
		})
	}
}
