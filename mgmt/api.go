// Package mgmt is fwd's management plane seen from outside the daemon: the
// HTTP/JSON API (types, handler, client), the store of applied
// configuration revisions and the diff between them. It holds no kernel
// code; the daemon implements Controller and serves Handler on a Unix
// socket (and optionally TCP with a bearer token) in the default namespace.
package mgmt

import (
	"context"
	"errors"
	"time"

	"github.com/fwdproject/fwd/change"
)

// Outcomes of a reload, rollback or confirm-timeout.
const (
	ResultApplied  = "applied"  // the new configuration runs
	ResultRejected = "rejected" // it did not validate; nothing changed
	ResultFailed   = "failed"   // the kernel refused part of it; the previous revision was re-applied
)

// Result reports one apply attempt.
type Result struct {
	Time     time.Time       `json:"time"`
	Reason   string          `json:"reason"` // start, reload, rollback, confirm timeout, link appeared
	Result   string          `json:"result"`
	Revision int             `json:"revision,omitempty"` // revision running afterwards
	Errors   []string        `json:"errors,omitempty"`
	Changes  []change.Change `json:"changes"`
	// Restore is set when a failed apply re-applied the previous revision.
	Restore        *Restore      `json:"restore,omitempty"`
	Waiting        []string      `json:"waiting_for,omitempty"`
	Duration       time.Duration `json:"duration_ns"`
	PendingConfirm *Pending      `json:"pending_confirm,omitempty"`
	// Removals are the tenants this configuration removes and the NICs
	// it hands back to the default namespace, compared with what ran
	// before: what an operator must not miss.
	Removals *Removals `json:"removals,omitempty"`
	// StoreError is set when the configuration runs but could not be
	// stored as a revision (full disk, read-only directory): Revision is
	// then the last one stored, not this configuration.
	StoreError string     `json:"store_error,omitempty"`
	Rehearsal  *Rehearsal `json:"rehearsal,omitempty"` // reload with rehearse
	Flows      *FlowCheck `json:"flows,omitempty"`     // established flows checked against the new policy
}

// Removals lists what a configuration takes away.
type Removals struct {
	Tenants []string `json:"tenants,omitempty"`
	// NICs are the devices handed back to the default namespace.
	NICs []string `json:"nics,omitempty"`
}

// Empty says whether nothing is removed.
func (r *Removals) Empty() bool { return r == nil || len(r.Tenants)+len(r.NICs) == 0 }

// OK says whether the requested configuration runs.
func (r *Result) OK() bool { return r.Result == ResultApplied }

// Restore is what re-applying the previous revision did.
type Restore struct {
	Revision int             `json:"revision"`
	Changes  []change.Change `json:"changes"`
	Error    string          `json:"error,omitempty"`
}

// Pending is a change awaiting `fwd confirm`.
type Pending struct {
	Revision int       `json:"revision"` // the unconfirmed one
	Previous int       `json:"previous"` // restored at the deadline
	Deadline time.Time `json:"deadline"`
}

// Status is what `fwd status` shows.
type Status struct {
	ConfigFile     string         `json:"config_file"`
	Revision       int            `json:"revision"`
	PID            int            `json:"pid"`
	Started        time.Time      `json:"started"`
	LastReload     *Result        `json:"last_reload,omitempty"`
	PendingConfirm *Pending       `json:"pending_confirm,omitempty"`
	Tenants        []TenantStatus `json:"tenants"`
	// Store says whether the revision store can be written.
	Store *StoreHealth `json:"store,omitempty"`
}

// TenantStatus summarises one tenant. Counts are -1 when unknown.
type TenantStatus struct {
	Name         string `json:"name"`
	Interfaces   int    `json:"interfaces"`
	InterfacesUp int    `json:"interfaces_up"`
	// Rules counts the config's rules and NAT entries the kernel holds
	// (a merged group counts its members; fwd's built-in rules do not).
	Rules int `json:"rules"`
	// Routes counts the routes fwd holds: its static routes as the last
	// apply left them, plus those the BGP speaker installed.
	Routes   int `json:"routes"`
	BGPUp    int `json:"bgp_sessions_up"`
	BGPTotal int `json:"bgp_sessions"`
	// HA and Services are set for tenants that have them (ha.go).
	HA       *HAStatus       `json:"ha,omitempty"`
	Services *ServicesStatus `json:"services,omitempty"`
}

// ReloadRequest asks the daemon to re-read its configuration file.
type ReloadRequest struct {
	// ConfirmSeconds > 0 rolls back unless confirmed within that time.
	ConfirmSeconds int `json:"confirm_seconds,omitempty"`
	// AllowEmpty lets a configuration without tenants replace one with
	// tenants (removing every tenant, handing back every NIC); without
	// it such a reload is rejected.
	AllowEmpty bool `json:"allow_empty,omitempty"`
	// KillDenied deletes the established flows the new policy would not
	// admit (they are always counted and logged).
	KillDenied bool `json:"kill_denied,omitempty"`
	// Rehearse applies the new configuration to throwaway namespaces
	// first; a kernel refusal rejects it (mgmt.rehearse does this for
	// every reload).
	Rehearse bool `json:"rehearse,omitempty"`
}

// RollbackRequest asks the daemon to apply a stored revision.
type RollbackRequest struct {
	Revision       int `json:"revision"`
	ConfirmSeconds int `json:"confirm_seconds,omitempty"`
}

// Revision is one stored, successfully applied configuration.
type Revision struct {
	Number int       `json:"revision"`
	Time   time.Time `json:"time"`
	SHA256 string    `json:"sha256"`
	Size   int       `json:"size"`
	Reason string    `json:"reason"`
	// Files are the files the configuration references (set files),
	// stored with it and restored by a rollback.
	Files []RevisionFile `json:"files,omitempty"`
}

// RevisionFile is one referenced file stored with a revision.
type RevisionFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}

// Errors a Controller returns for the API to map to HTTP statuses.
var (
	ErrNotFound   = errors.New("not found")
	ErrNotPending = errors.New("no change awaits confirmation")
)

// Controller is what the API drives: the daemon.
type Controller interface {
	Status(ctx context.Context) Status
	Reload(ctx context.Context, req ReloadRequest) *Result
	Rollback(ctx context.Context, req RollbackRequest) (*Result, error)
	Confirm(ctx context.Context) (*Pending, error)
	Revisions() ([]Revision, error)
	Revision(n int) (Revision, []byte, error)
	// Show returns the tenants' namespaces as the kernel has them (what
	// `fwd show -j` prints), sorted by name.
	Show(ctx context.Context) ([]Namespace, error)
}
