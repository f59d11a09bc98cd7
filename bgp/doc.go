// Package bgp owns fwd's BGP: one gobgp speaker process per tenant with a
// [tenant.X.bgp] section, started inside the tenant's network namespace
// (fwd re-executes itself as `fwd bgp-speaker`), configured over gobgp's
// gRPC API on a Unix socket (RUNDIR/TENANT/gobgp.sock, mode 0600), and
// supervised by the daemon (Supervisor). The speaker mirrors its best paths
// into the tenant's kernel table with its own rtm_protocol (Protocol, 244
// "fwd-bgp"), distinct from the routing package's (243) and from the 186
// ("bgp") other routing daemons use, so no reconciler ever deletes
// another's routes.
//
// The daemon side plans before it acts: Supervisor.Plan returns a
// FleetPlan (Changes, Apply); the start/restart decision (speaker_plan.go)
// and the gobgp configuration (gobgp_plan.go: what a speaker was
// configured with + the [bgp] section → steps) are pure values, executed
// by a small step runner (gobgp_apply.go). Supervisor.Status is the read
// model status and metrics use; the monitors keep it current.
//
// Lifetimes are chosen so the data plane survives fwd restarting:
//   - the daemon exiting (Supervisor.Close) leaves speakers running; a new
//     daemon adopts them and, if the config is unchanged, changes nothing;
//   - a speaker exiting leaves its routes in the kernel; the next speaker
//     takes them over as stale, keeps those re-learned, and removes the
//     rest once every neighbour is established and has sent End-of-RIB,
//     or after a timeout;
//   - only a tenant losing its BGP section (or Supervisor.Shutdown) stops
//     the speaker and removes its routes.
package bgp
