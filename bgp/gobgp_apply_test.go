package bgp

import (
	"context"
	"errors"
	"strings"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// fakeGobgp records the API calls runSteps makes; fail makes one method
// fail. Methods runSteps never calls panic (nil embedded interface).
type fakeGobgp struct {
	api.GobgpApiClient
	calls []string
	fail  map[string]error
}

func (f *fakeGobgp) call(name, arg string) error {
	f.calls = append(f.calls, name+"("+arg+")")
	return f.fail[name]
}

func (f *fakeGobgp) StartBgp(ctx context.Context, r *api.StartBgpRequest, _ ...grpc.CallOption) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, f.call("StartBgp", r.Global.RouterId)
}
func (f *fakeGobgp) SetPolicies(ctx context.Context, r *api.SetPoliciesRequest, _ ...grpc.CallOption) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, f.call("SetPolicies", "")
}
func (f *fakeGobgp) SetPolicyAssignment(ctx context.Context, r *api.SetPolicyAssignmentRequest, _ ...grpc.CallOption) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, f.call("SetPolicyAssignment", r.Assignment.Direction.String())
}
func (f *fakeGobgp) AddPeer(ctx context.Context, r *api.AddPeerRequest, _ ...grpc.CallOption) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, f.call("AddPeer", r.Peer.Conf.NeighborAddress)
}
func (f *fakeGobgp) DeletePeer(ctx context.Context, r *api.DeletePeerRequest, _ ...grpc.CallOption) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, f.call("DeletePeer", r.Address)
}
func (f *fakeGobgp) ResetPeer(ctx context.Context, r *api.ResetPeerRequest, _ ...grpc.CallOption) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, f.call("ResetPeer", r.Address)
}
func (f *fakeGobgp) AddPath(ctx context.Context, r *api.AddPathRequest, _ ...grpc.CallOption) (*api.AddPathResponse, error) {
	return &api.AddPathResponse{}, f.call("AddPath", r.Path.Family.Afi.String())
}
func (f *fakeGobgp) DeletePath(ctx context.Context, r *api.DeletePathRequest, _ ...grpc.CallOption) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, f.call("DeletePath", r.Path.Family.Afi.String())
}

func TestRunSteps(t *testing.T) {
	b := planBGP(t, planBase)
	ctx := context.Background()
	f := &fakeGobgp{}
	rec := newApplied(42, 254)
	steps := planConfig(nil, b, desiredAnnounce(b, nil))
	if n, err := runSteps(ctx, f, rec, steps); err != nil || n != len(steps) {
		t.Fatalf("runSteps: %d %v", n, err)
	}
	want := "StartBgp(203.0.113.2) SetPolicies() SetPolicyAssignment(IMPORT) SetPolicyAssignment(EXPORT) AddPeer(203.0.113.1) AddPeer(203.0.113.3) AddPath(AFI_IP)"
	if got := strings.Join(f.calls, " "); got != want {
		t.Errorf("calls:\n%s\nwant\n%s", got, want)
	}
	if again := planConfig(rec, b, desiredAnnounce(b, nil)); len(again) != 0 {
		t.Errorf("record after the run is not the config: %s", names(again))
	}

	// A reset deletes then adds; a neighbour already gone is not an error.
	b2 := planBGP(t, strings.Replace(planBase, "asn = 64514", "asn = 64514\npassive = true", 1))
	f = &fakeGobgp{fail: map[string]error{"DeletePeer": errors.New("peer not found")}}
	if _, err := runSteps(ctx, f, clone(rec), planConfig(rec, b2, desiredAnnounce(b2, nil))); err != nil {
		t.Errorf("reset of a vanished peer: %v", err)
	}
	if got, want := strings.Join(f.calls, " "), "DeletePeer(203.0.113.3) AddPeer(203.0.113.3)"; got != want {
		t.Errorf("reset calls: %s, want %s", got, want)
	}

	// The first failure stops the run; the record keeps only what succeeded.
	f = &fakeGobgp{fail: map[string]error{"AddPeer": errors.New("refused")}}
	rec = newApplied(42, 254)
	n, err := runSteps(ctx, f, rec, steps)
	if err == nil || err.Error() != "add-neighbor neighbor 203.0.113.1: refused" || n != 2 {
		t.Fatalf("failing run: %d %v", n, err)
	}
	if rec.Global == "" || rec.Policies == "" || len(rec.Neighbors) != 0 || len(rec.Announced) != 0 {
		t.Errorf("record after failure: %+v", rec)
	}
	if got := names(planConfig(rec, b, desiredAnnounce(b, nil))); got != "add-neighbor neighbor 203.0.113.1,add-neighbor neighbor 203.0.113.3,announce 192.0.2.0/24" {
		t.Errorf("re-plan after failure: %s", got)
	}
}
