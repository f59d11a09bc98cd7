package bgp

import (
	"context"
	"slices"
	"sort"
	"time"
)

// The read side: Status is the cheap read model (a copy of what the
// monitors last saw, no call to any speaker); Neighbors and Routes ask the
// speakers.

// SpeakerStatus describes one supervised speaker process and, in Status,
// its neighbours as the monitor last read them.
type SpeakerStatus struct {
	Tenant string `json:"tenant"`
	// State is "running" (configured), "starting" (process up, gobgp not
	// configured yet) or "down" (exited; the monitor restarts it).
	State    string    `json:"state"`
	PID      int       `json:"pid"`
	Running  bool      `json:"running"`
	Restarts int       `json:"restarts"`
	Socket   string    `json:"socket"`
	Table    uint32    `json:"table"`
	Started  time.Time `json:"started,omitzero"`
	// Neighbors (sorted by address) and RIBPrefixes (destinations in the
	// speaker's table, IPv4 and IPv6) are as of Updated; Uptime is
	// computed when Status is called. Speakers leaves them empty.
	Neighbors   []Neighbor `json:"neighbors,omitempty"`
	RIBPrefixes uint64     `json:"rib_prefixes"`
	// FIB is what the running speaker last reported about its kernel
	// table (nil: no report from this process yet).
	FIB     *FIBStatus `json:"fib,omitempty"`
	Updated time.Time  `json:"updated,omitzero"`
}

// processStatus is sp's process state. sp.mu is held.
func (sp *speaker) processStatus() SpeakerStatus {
	st := SpeakerStatus{Tenant: sp.tenant, PID: sp.pid, Running: sp.running(), Restarts: sp.restarts,
		Socket: sp.sock, Table: sp.table, State: "down"}
	if st.Running {
		st.Started = sp.started
		st.State = "starting"
		if sp.app != nil && sp.app.Global != "" && sp.app.Global != unknownGlobal {
			st.State = "running"
		}
	}
	return st
}

// publish copies sp's process state into the status view; neighbours are
// kept while the process runs. sp.mu is held.
func (sp *speaker) publish() {
	st := sp.processStatus()
	s := sp.sup
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if old := s.views[sp.tenant]; old != nil && st.Running && old.PID == st.PID {
		st.Neighbors, st.RIBPrefixes, st.FIB, st.Updated = old.Neighbors, old.RIBPrefixes, old.FIB, old.Updated
	}
	s.views[sp.tenant] = &st
}

// Status is the supervised speakers' state, sorted by tenant, from the
// view the monitors keep: it never waits for a speaker or a lock held
// during an apply, so status and metrics can call it on every scrape.
func (s *Supervisor) Status() []SpeakerStatus {
	s.viewMu.Lock()
	out := make([]SpeakerStatus, 0, len(s.views))
	for _, v := range s.views {
		st := *v
		st.Neighbors = slices.Clone(v.Neighbors)
		if v.FIB != nil {
			fib := *v.FIB
			st.FIB = &fib
		}
		out = append(out, st)
	}
	s.viewMu.Unlock()
	now := time.Now()
	for i := range out {
		for j := range out[i].Neighbors {
			if n := &out[i].Neighbors[j]; n.State == "established" && !n.Since.IsZero() {
				n.Uptime = now.Sub(n.Since).Round(time.Second).Seconds()
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out
}

// Speakers lists the supervised speakers' processes, sorted by tenant,
// as they are now.
func (s *Supervisor) Speakers() []SpeakerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SpeakerStatus
	for _, sp := range s.speakers {
		sp.mu.Lock()
		out = append(out, sp.processStatus())
		sp.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out
}

// Neighbors asks the speaker of one tenant, or of all ("" tenant), for
// its neighbours (`fwd bgp show`; Status has them without asking).
func (s *Supervisor) Neighbors(ctx context.Context, tenant string) ([]Neighbor, error) {
	var out []Neighbor
	for _, st := range s.Speakers() {
		if tenant != "" && st.Tenant != tenant {
			continue
		}
		ns, err := QueryNeighbors(ctx, s.runDir, st.Tenant)
		if err != nil {
			return out, err
		}
		out = append(out, ns...)
	}
	return out, nil
}

// Routes returns one tenant's BGP routes (see Client.Routes).
func (s *Supervisor) Routes(ctx context.Context, tenant, prefix string, limit int) ([]Route, error) {
	c, err := Dial(SocketPath(s.runDir, tenant))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Routes(ctx, prefix, limit)
}

// QueryNeighbors asks a tenant's speaker for its neighbours directly over
// its socket (the CLI uses it; it works without the daemon).
func QueryNeighbors(ctx context.Context, runDir, tenant string) ([]Neighbor, error) {
	c, err := Dial(SocketPath(runDir, tenant))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Neighbors(ctx, tenant)
}
