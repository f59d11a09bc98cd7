package config

// Settings of the management plane, which always lives in the default
// namespace.

// Defaults of the [mgmt] table.
const (
	DefaultSocket        = "/run/fwd/fwd.sock"
	DefaultMetricsListen = "127.0.0.1:9641"
	DefaultRevisionDir   = "/var/lib/fwd/revisions"
	DefaultRevisions     = 50
)

// Mgmt holds settings of the management plane (default namespace).
type Mgmt struct {
	// Protect lists NICs fwd must never move, whatever the tenants say.
	Protect []string
	// Socket is the API's Unix socket (root only).
	Socket string
	// MetricsListen is the Prometheus listener ("" = off).
	MetricsListen string
	// APIListen is an optional TCP listener for the API ("" = off); a
	// non-loopback address requires APITokenFile.
	APIListen    string
	APITokenFile string
	// RevisionDir holds the applied configurations; Revisions bounds
	// how many are kept.
	RevisionDir string
	Revisions   int
	// LogFormat is "text" or "json".
	LogFormat string
	// Rehearse applies every reload to throwaway namespaces first.
	Rehearse bool
}
