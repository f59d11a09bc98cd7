package config

// Settings of the management plane, which always lives in the default
// namespace.

// Defaults of the [mgmt] table.
const (
	DefaultSocket        = "/run/fwd/fwd.sock"
	DefaultMetricsListen = "127.0.0.1:9641"
	DefaultRevisionDir   = "/var/lib/fwd/revisions"
	DefaultRevisions     = 50
	// MinTokenBytes is the shortest API token accepted (e.g. the output
	// of `openssl rand -hex 32` is 64).
	MinTokenBytes = 32
)

// Mgmt holds settings of the management plane (default namespace).
type Mgmt struct {
	// Protect lists NICs fwd must never move, whatever the tenants say.
	Protect []string
	// Socket is the API's Unix socket (root only).
	Socket string
	// MetricsListen is the Prometheus listener ("" = off).
	MetricsListen string
	// APIListen is an optional TCP listener for the API ("" = off); it
	// requires APITokenFile, a file of mode 0600 holding a token of at
	// least MinTokenBytes.
	APIListen    string
	APITokenFile string
	// APIHosts are the host names accepted in the Host header of the TCP
	// listeners besides IP literals and "localhost" (DNS rebinding guard).
	APIHosts []string
	// RevisionDir holds the applied configurations; Revisions bounds
	// how many are kept.
	RevisionDir string
	Revisions   int
	// LogFormat is "text" or "json".
	LogFormat string
	// Rehearse applies every reload to throwaway namespaces first.
	Rehearse bool
}
