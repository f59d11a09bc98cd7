package bgp

import (
	"context"
	"fmt"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
)

// runSteps executes steps (see planConfig) over a speaker's API in order,
// recording each success in rec, and stops at the first failure. It
// returns how many steps succeeded.
func runSteps(ctx context.Context, c api.GobgpApiClient, rec *applied, steps []step) (int, error) {
	for i, st := range steps {
		if err := runStep(ctx, c, st); err != nil {
			return i, fmt.Errorf("%s: %w", st.what(), err)
		}
		rec.record(st)
	}
	return len(steps), nil
}

func runStep(ctx context.Context, c api.GobgpApiClient, st step) error {
	switch st.kind {
	case stepStartBGP:
		_, err := c.StartBgp(ctx, &api.StartBgpRequest{Global: st.global})
		return err
	case stepSetPolicies:
		if _, err := c.SetPolicies(ctx, st.policies); err != nil {
			return err
		}
		// SetPolicies keeps the existing assignments: set ours
		// (idempotent; names never change).
		for _, as := range st.policies.Assignments {
			if _, err := c.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: as}); err != nil {
				return err
			}
		}
		return nil
	case stepDeleteNeighbor:
		return deletePeer(ctx, c, st.address)
	case stepResetNeighbor:
		if err := deletePeer(ctx, c, st.address); err != nil {
			return err
		}
		fallthrough
	case stepAddNeighbor:
		_, err := c.AddPeer(ctx, &api.AddPeerRequest{Peer: peerOf(st.neighbor)})
		return err
	case stepRefreshNeighbor:
		_, err := c.ResetPeer(ctx, &api.ResetPeerRequest{Address: st.address, Soft: true, Direction: api.ResetPeerRequest_BOTH})
		return err
	case stepRecordFilters:
		return nil
	case stepWithdraw:
		if !st.prefix.IsValid() {
			return nil
		}
		path, err := originPath(st.prefix)
		if err != nil {
			return err
		}
		_, err = c.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path})
		return err
	case stepAnnounce:
		path, err := originPath(st.prefix)
		if err != nil {
			return err
		}
		_, err = c.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		return err
	}
	return fmt.Errorf("unknown step kind %d", st.kind)
}

// deletePeer removes a neighbour; one already gone is not an error.
func deletePeer(ctx context.Context, c api.GobgpApiClient, addr string) error {
	if _, err := c.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil && !strings.Contains(err.Error(), "not found") {
		return err
	}
	return nil
}
