package bgp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/fwdproject/fwd/config"
	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
)

// The gobgp configuration of one speaker, planned as data. planConfig
// compares what a speaker was configured with (its applied record) with
// the desired [bgp] section and returns the steps from one to the other;
// runSteps (gobgp_apply.go) executes them over the speaker's API and
// records each in the applied record. Pure: no process, socket or kernel
// access.

// applied is what a running speaker was configured with. It is kept in
// memory and in RUNDIR/TENANT/applied.json, so a restarted daemon adopting
// a running speaker knows what it has and changes nothing when the config
// did not change. It is only trusted for the speaker PID it names.
type applied struct {
	PID       int               `json:"pid"`
	Table     uint32            `json:"table"`
	Global    string            `json:"global"`    // globalFingerprint; "" until StartBgp ran
	Neighbors map[string]string `json:"neighbors"` // address -> neighborFingerprint
	Filters   map[string]string `json:"filters"`   // address -> filterFingerprint
	Policies  string            `json:"policies"`  // policiesFingerprint
	Announced []string          `json:"announced"` // sorted
}

// unknownGlobal marks an adopted speaker whose configuration is unknown:
// it differs from every real fingerprint, so the speaker is restarted.
const unknownGlobal = "unknown"

func globalFingerprint(b *config.BGP) string {
	return fmt.Sprintf("asn=%d id=%s port=%d", b.ASN, b.RouterID, b.ListenPort)
}

// policiesFingerprint identifies a policy set by its deterministic wire
// encoding (a protobuf's String() is deliberately unstable).
func policiesFingerprint(req *api.SetPoliciesRequest) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type stepKind uint8

const (
	stepStartBGP        stepKind = iota // StartBgp with the global settings
	stepSetPolicies                     // SetPolicies, then our assignments
	stepDeleteNeighbor                  // DeletePeer (Cease)
	stepAddNeighbor                     // AddPeer
	stepResetNeighbor                   // DeletePeer + AddPeer: settings changed
	stepRefreshNeighbor                 // soft ResetPeer: filters changed
	stepRecordFilters                   // no call: notes the filters of an unchanged neighbour
	stepWithdraw                        // DeletePath of an originated prefix
	stepAnnounce                        // AddPath of an originated prefix
)

// step is one change to a speaker's gobgp configuration.
type step struct {
	kind stepKind
	// action, object and detail describe the step as `fwd plan` prints
	// it; steps without an action are not reported.
	action, object, detail string

	global   *api.Global             // stepStartBGP
	policies *api.SetPoliciesRequest // stepSetPolicies
	neighbor *config.Neighbor        // add, reset, refresh, record
	address  string                  // neighbour address
	prefix   netip.Prefix            // withdraw, announce
	fp       string                  // fingerprint recorded on success
}

// what names the step in errors.
func (st step) what() string {
	if st.action == "" {
		if st.kind == stepStartBGP {
			return "start bgp"
		}
		return "record"
	}
	return st.action + " " + st.object
}

// newApplied is the record of a freshly started speaker, before StartBgp.
func newApplied(pid int, table uint32) *applied {
	return &applied{PID: pid, Table: table, Neighbors: map[string]string{}, Filters: map[string]string{}}
}

// planConfig returns the steps that bring a speaker configured as rec
// (nil: a new process, gobgp not started) to b, originating announce.
// Unchanged neighbours keep their sessions; changed ones are reset;
// filters change without a reset (soft reset). Filters come first, so new
// neighbours are filtered from their first route.
func planConfig(rec *applied, b *config.BGP, announce []string) []step {
	var steps []step
	if rec == nil {
		rec = newApplied(0, b.TableID)
		steps = append(steps, step{kind: stepStartBGP, global: globalOf(b), fp: globalFingerprint(b)})
	}
	want := map[string]*config.Neighbor{}
	for _, n := range b.Neighbors {
		want[n.Address.String()] = n
	}
	pol := policiesOf(b)
	if fp := policiesFingerprint(pol); rec.Policies != fp {
		steps = append(steps, step{kind: stepSetPolicies, action: "set-filters", object: "import/export policies",
			detail: fmt.Sprintf("%d neighbour(s)", len(b.Neighbors)), policies: pol, fp: fp})
	}
	var gone []string
	for a := range rec.Neighbors {
		if want[a] == nil {
			gone = append(gone, a)
		}
	}
	sort.Strings(gone)
	for _, a := range gone {
		steps = append(steps, step{kind: stepDeleteNeighbor, action: "delete-neighbor", object: "neighbor " + a,
			detail: "session closed with a Cease notification", address: a})
	}
	var refresh []step
	for _, n := range b.Neighbors {
		a := n.Address.String()
		old, had := rec.Neighbors[a]
		switch {
		case !had:
			steps = append(steps, step{kind: stepAddNeighbor, action: "add-neighbor", object: "neighbor " + a,
				detail: fmt.Sprintf("AS %d", n.ASN), neighbor: n, address: a})
		case old != neighborFingerprint(n):
			steps = append(steps, step{kind: stepResetNeighbor, action: "reset-neighbor", object: "neighbor " + a,
				detail: "settings changed: session restarts", neighbor: n, address: a})
		default:
			fp, known := rec.Filters[a]
			switch {
			case !known:
				// A record without the neighbour's filters: the policies
				// step (if any) sets them; note them without a reset.
				steps = append(steps, step{kind: stepRecordFilters, neighbor: n, address: a})
			case fp != filterFingerprint(n):
				refresh = append(refresh, step{kind: stepRefreshNeighbor, action: "refresh-neighbor", object: "neighbor " + a,
					detail: "filters changed: soft reset, session stays up", neighbor: n, address: a})
			}
		}
	}
	steps = append(steps, refresh...)
	wantAnn := map[string]bool{}
	for _, p := range announce {
		wantAnn[p] = true
	}
	for _, p := range rec.Announced {
		if !wantAnn[p] {
			pfx, _ := netip.ParsePrefix(p) // invalid (a damaged record): only forgotten
			steps = append(steps, step{kind: stepWithdraw, action: "withdraw", object: p, prefix: pfx})
		}
	}
	for _, p := range announce {
		if !slices.Contains(rec.Announced, p) {
			steps = append(steps, step{kind: stepAnnounce, action: "announce", object: p, prefix: netip.MustParsePrefix(p)})
		}
	}
	return steps
}

// record notes in a that st succeeded.
func (a *applied) record(st step) {
	if a.Neighbors == nil {
		a.Neighbors = map[string]string{}
	}
	if a.Filters == nil {
		a.Filters = map[string]string{}
	}
	switch st.kind {
	case stepStartBGP:
		a.Global = st.fp
	case stepSetPolicies:
		a.Policies = st.fp
	case stepDeleteNeighbor:
		delete(a.Neighbors, st.address)
		delete(a.Filters, st.address)
	case stepAddNeighbor, stepResetNeighbor:
		a.Neighbors[st.address] = neighborFingerprint(st.neighbor)
		a.Filters[st.address] = filterFingerprint(st.neighbor)
	case stepRefreshNeighbor, stepRecordFilters:
		a.Filters[st.address] = filterFingerprint(st.neighbor)
	case stepWithdraw:
		a.Announced = slices.DeleteFunc(a.Announced, func(p string) bool { return p == st.object })
	case stepAnnounce:
		a.Announced = append(a.Announced, st.object)
		sort.Strings(a.Announced)
	}
}

// desiredAnnounce is the sorted set of prefixes to originate: announce,
// and each announce_if_route prefix present (a non-BGP route for it is in
// the tenant's table; see routesPresent).
func desiredAnnounce(b *config.BGP, present map[netip.Prefix]bool) []string {
	var out []string
	for _, p := range b.Announce {
		out = append(out, p.String())
	}
	for _, p := range b.AnnounceIfRoute {
		if present[p] {
			out = append(out, p.String())
		}
	}
	sort.Strings(out)
	return out
}
