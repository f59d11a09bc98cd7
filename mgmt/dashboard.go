package mgmt

import "time"

// Dashboard is what the status page shows (GET /v1/dashboard): a glance
// at every tenant with short histories for sparklines. The daemon keeps
// the histories in memory, bounded (DashboardSamples points per series).
type Dashboard struct {
	Time           time.Time       `json:"time"`
	ConfigFile     string          `json:"config_file"`
	Revision       int             `json:"revision"`
	Started        time.Time       `json:"started"`
	PendingConfirm *Pending        `json:"pending_confirm,omitempty"`
	Reloads        []ReloadSummary `json:"reloads"` // newest first
	// SampleSeconds is the spacing of the history points.
	SampleSeconds int          `json:"sample_seconds"`
	Tenants       []DashTenant `json:"tenants"`
	Store         *StoreHealth `json:"store,omitempty"`
}

// DashboardSamples bounds every history series.
const DashboardSamples = 120

// ReloadSummary is one apply attempt, without its change list.
type ReloadSummary struct {
	Time     time.Time     `json:"time"`
	Reason   string        `json:"reason"`
	Result   string        `json:"result"`
	Revision int           `json:"revision,omitempty"`
	Changes  int           `json:"changes"`
	Errors   []string      `json:"errors,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// StoreHealth reports whether the revision store can be written.
type StoreHealth struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// DashTenant is one tenant on the status page.
type DashTenant struct {
	Name       string          `json:"name"`
	Interfaces []DashInterface `json:"interfaces"`
	// TopRules are the rules with the most packets; Drops are the
	// default-drop counters (`_default/…`); NAT the NAT rules.
	TopRules []DashCounter `json:"top_rules"`
	Drops    []DashCounter `json:"drops"`
	NAT      []DashCounter `json:"nat"`
	// Routes counts the routes fwd owns by owner ("static", "bgp").
	Routes    map[string]int `json:"routes"`
	Neighbors []DashNeighbor `json:"bgp_neighbors,omitempty"`
	// Conntrack is the tenant's tracked-connection count and its limit
	// (-1: unknown).
	Conntrack      int64     `json:"conntrack"`
	ConntrackLimit int64     `json:"conntrack_limit"`
	NewConnsPerSec float64   `json:"new_conns_per_s"`
	NewConnsHist   []float64 `json:"new_conns_hist"`
}

// DashInterface is one interface of a tenant with its recent rates.
type DashInterface struct {
	Name      string    `json:"name"`
	Device    string    `json:"device,omitempty"` // the NIC's name outside
	State     string    `json:"state"`            // up, down, absent
	Addresses []string  `json:"addresses"`
	RxBps     float64   `json:"rx_bps"`
	TxBps     float64   `json:"tx_bps"`
	RxHist    []float64 `json:"rx_hist"`
	TxHist    []float64 `json:"tx_hist"`
}

// DashCounter is one rule counter.
type DashCounter struct {
	ID      string `json:"id"`
	Pos     string `json:"pos,omitempty"`     // where in the TOML: rule[3], nat[0]
	Comment string `json:"comment,omitempty"` // the rule's comment, as the kernel holds it
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// DashNeighbor is one BGP session.
type DashNeighbor struct {
	Address     string `json:"address"`
	ASN         uint32 `json:"asn"`
	Description string `json:"description,omitempty"`
	State       string `json:"state"`
	UptimeS     int64  `json:"uptime_s"`
	Received    int    `json:"received"`
	Accepted    int    `json:"accepted"`
}
