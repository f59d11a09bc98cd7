package bgp

import (
	"fmt"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
)

// The start/restart decision for one tenant's speaker. Pure: the
// supervisor hands it what it knows of the process as a value.

// speakerState is what the supervisor knows of a tenant's speaker.
type speakerState struct {
	Running bool
	Table   uint32   // kernel table of the running process
	Applied *applied // nil: gobgp not configured yet
}

// speakerPlan is what bringing one speaker to its [bgp] section takes.
type speakerPlan struct {
	// Start: no process runs (or Restart stops it); start one.
	Start bool
	// Restart, when set, says why the running process must be replaced.
	Restart string
	// FlushTable: after the restart, remove the speaker's routes from
	// OldTable, which the new speaker (on another table) would never sweep.
	FlushTable bool
	OldTable   uint32
	// Steps configure gobgp, from Applied or, after a start, from scratch.
	Steps []step
}

// planSpeaker decides how to bring the speaker in st to b, originating
// announce (see desiredAnnounce).
func planSpeaker(st speakerState, b *config.BGP, announce []string) speakerPlan {
	var p speakerPlan
	switch {
	case !st.Running:
		p.Start = true
	case st.Applied != nil && st.Applied.Global == unknownGlobal:
		// Adopted without a record: its table is unknown too, so there
		// is no old table to flush (routes in b's table are swept as
		// stale by the new speaker).
		p.Restart = "configuration unknown"
	case st.Table != b.TableID:
		p.Restart = fmt.Sprintf("table %d -> %d", st.Table, b.TableID)
		p.FlushTable, p.OldTable = true, st.Table
	case st.Applied != nil && st.Applied.Global != globalFingerprint(b):
		p.Restart = "AS, router ID or listen port changed"
	}
	rec := st.Applied
	if p.Restart != "" {
		p.Start, rec = true, nil
	}
	if p.Start {
		rec = nil
	}
	p.Steps = planConfig(rec, b, announce)
	return p
}

// changes describes p as `fwd plan` prints it.
func (p speakerPlan) changes(tenant string, b *config.BGP) []change.Change {
	var cs []change.Change
	if c, ok := p.processChange(tenant, b); ok {
		cs = append(cs, c)
	}
	return append(cs, stepChanges(tenant, p.Steps)...)
}

// processChange describes starting or restarting the process, if p does.
func (p speakerPlan) processChange(tenant string, b *config.BGP) (change.Change, bool) {
	switch {
	case p.Restart != "":
		return speakerChange(tenant, "restart-speaker", "speaker", p.Restart), true
	case p.Start:
		return speakerChange(tenant, "start-speaker", "speaker", fmt.Sprintf("AS %d, router ID %s, table %d", b.ASN, b.RouterID, b.TableID)), true
	}
	return change.Change{}, false
}

// stepChanges describes the reported steps.
func stepChanges(tenant string, steps []step) []change.Change {
	var cs []change.Change
	for _, st := range steps {
		if st.action != "" {
			cs = append(cs, speakerChange(tenant, st.action, st.object, st.detail))
		}
	}
	return cs
}

func speakerChange(tenant, action, object, detail string) change.Change {
	return change.Change{Tenant: tenant, Subsystem: "bgp", Action: action, Object: object, Detail: detail}
}

// stopChange is the change of stopping a tenant's speaker.
func stopChange(tenant string) change.Change {
	return speakerChange(tenant, "stop-speaker", "speaker", "tenant has no [bgp] section; its BGP routes are removed")
}
