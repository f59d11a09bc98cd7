package mgmt

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// HA and edge services in the API: the optional per-tenant parts of
// Status, and the failover endpoints.
//
//	POST /v1/ha/{tenant}/failover   hand mastership to the peer, stay backup
//	POST /v1/ha/{tenant}/resume     undo failover: preempt again

// HAStatus is a tenant's HA pair as this box sees it (docs/ha.md).
type HAStatus struct {
	State          string    `json:"state"` // master, backup, fault, stopped, unknown
	Since          time.Time `json:"since,omitzero"`
	Priority       int       `json:"priority"`
	FailoverHeld   bool      `json:"failover_held"`
	SyncLinkUp     bool      `json:"sync_link_up"`
	SplitBrainRisk bool      `json:"split_brain_risk"`
	Sync           HASync    `json:"sync"`
	// Keepalived and Conntrackd: "running" or why not.
	Keepalived string `json:"keepalived"`
	Conntrackd string `json:"conntrackd"`
	Error      string `json:"error,omitempty"`
}

// HASync are conntrackd's counters.
type HASync struct {
	InternalFlows uint64 `json:"internal_flows"`
	ExternalFlows uint64 `json:"external_flows"`
	BytesSent     uint64 `json:"bytes_sent"`
	BytesRecv     uint64 `json:"bytes_recv"`
	MsgsSent      uint64 `json:"msgs_sent"`
	MsgsRecv      uint64 `json:"msgs_recv"`
	SendErrors    uint64 `json:"send_errors"`
	RecvErrors    uint64 `json:"recv_errors"`
	LostMsgs      uint64 `json:"lost_msgs"`
	Error         string `json:"error,omitempty"`
}

// ServicesStatus is a tenant's edge services: the WAN DHCP leases and
// its dnsmasq.
type ServicesStatus struct {
	DHCP    []DHCPLease `json:"dhcp,omitempty"`
	DNSMasq *Process    `json:"dnsmasq,omitempty"`
	// Leases counts the leases the tenant's dnsmasq handed out; LAN
	// lists them.
	Leases int        `json:"leases"`
	LAN    []LANLease `json:"lan_leases,omitempty"`
}

// LANLease is one lease the tenant's dnsmasq handed out: DHCPv4 (by
// MAC) or DHCPv6 (by DUID).
type LANLease struct {
	Address  netip.Addr `json:"address"`
	MAC      string     `json:"mac,omitempty"`
	DUID     string     `json:"duid,omitempty"`
	Hostname string     `json:"hostname,omitempty"`
	Expires  time.Time  `json:"expires,omitzero"` // zero: infinite (a static lease)
}

// DHCPLease is the lease (or its absence) of one interface's DHCPv4
// (dhcp = true) or DHCPv6 (dhcp6 = true) client.
type DHCPLease struct {
	Interface string        `json:"interface"`
	Family    string        `json:"family"` // ipv4, ipv6
	State     string        `json:"state"`  // bound, waiting (no lease yet), stopped
	Address   netip.Prefix  `json:"address,omitzero"`
	Router    netip.Addr    `json:"router,omitzero"`
	DNS       []netip.Addr  `json:"dns,omitempty"`
	Domain    string        `json:"domain,omitempty"`
	Server    netip.Addr    `json:"server,omitzero"`
	ServerID  string        `json:"server_id,omitempty"` // DHCPv6: the server's DUID, hex
	Delegated netip.Prefix  `json:"delegated,omitzero"`  // DHCPv6: the delegated prefix (dhcp6_pd)
	Obtained  time.Time     `json:"obtained,omitzero"`
	Renew     time.Time     `json:"renew,omitzero"` // T1
	Expires   time.Time     `json:"expires,omitzero"`
	LeaseTime time.Duration `json:"lease_time_ns,omitempty"`
}

// Process is a supervised helper daemon.
type Process struct {
	PID      int       `json:"pid,omitempty"`
	Running  bool      `json:"running"`
	Started  time.Time `json:"started,omitzero"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"`
}

// HAController is what the HA endpoints drive; a Controller without it
// answers them 404.
type HAController interface {
	// HAFailover hands the tenant's mastership to the peer and returns
	// once this box is backup.
	HAFailover(ctx context.Context, tenant string) error
	// HAResume undoes HAFailover.
	HAResume(ctx context.Context, tenant string) error
}

// HAResult answers the HA endpoints.
type HAResult struct {
	Tenant string   `json:"tenant"`
	HA     HAStatus `json:"ha"`
}

// registerHA adds the HA endpoints to the API mux.
func registerHA(mux *http.ServeMux, c Controller) {
	hc, ok := c.(HAController)
	for _, op := range []struct {
		name string
		do   func(HAController, context.Context, string) error
	}{
		{"failover", HAController.HAFailover},
		{"resume", HAController.HAResume},
	} {
		mux.HandleFunc("POST /v1/ha/{tenant}/"+op.name, func(w http.ResponseWriter, r *http.Request) {
			if !ok {
				writeError(w, http.StatusNotFound, "this daemon has no HA")
				return
			}
			tenant := r.PathValue("tenant")
			if err := op.do(hc, r.Context(), tenant); err != nil {
				writeErr(w, err)
				return
			}
			res := HAResult{Tenant: tenant}
			for _, t := range c.Status(r.Context()).Tenants {
				if t.Name == tenant && t.HA != nil {
					res.HA = *t.HA
				}
			}
			writeJSON(w, http.StatusOK, res)
		})
	}
}

// HAFailover asks the daemon to hand a tenant's mastership to the peer.
func (c *Client) HAFailover(ctx context.Context, tenant string) (*HAResult, error) {
	var r HAResult
	_, err := c.do(ctx, "POST", "/v1/ha/"+tenant+"/failover", nil, &r)
	return &r, err
}

// HAResume asks the daemon to let a tenant's box preempt again.
func (c *Client) HAResume(ctx context.Context, tenant string) (*HAResult, error) {
	var r HAResult
	_, err := c.do(ctx, "POST", "/v1/ha/"+tenant+"/resume", nil, &r)
	return &r, err
}
