package daemon

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status implements mgmt.Controller.
func (d *Daemon) Status(ctx context.Context) mgmt.Status {
	d.mu.Lock()
	st := mgmt.Status{ConfigFile: d.opts.ConfigPath, Revision: d.rev, PID: os.Getpid(), Started: d.started, LastReload: d.last}
	if d.pending != nil {
		p := d.pending.Pending
		st.PendingConfirm = &p
	}
	cfg := d.cfg
	d.mu.Unlock()
	st.Store = d.StoreHealth()
	st.Tenants = []mgmt.TenantStatus{}
	for _, s := range d.snapshot(cfg) {
		ts := mgmt.TenantStatus{Name: s.Name, Interfaces: len(s.Links), Rules: -1, Routes: -1, BGPUp: -1, BGPTotal: -1}
		for _, l := range s.Links {
			if linkUp(l) {
				ts.InterfacesUp++
			}
		}
		if s.RulesOK {
			ts.Rules = 0
			for _, r := range s.Rules {
				ts.Rules += r.ConfigRules
			}
		}
		if s.Static != nil {
			ts.Routes = 0
			for _, n := range s.Static {
				ts.Routes += n
			}
			if s.BGPWanted {
				if n := s.bgpRoutes(); n >= 0 {
					ts.Routes += n
				} else {
					ts.Routes = -1 // part of the figure is unknown
				}
			}
		}
		switch {
		case !s.BGPWanted:
			ts.BGPUp, ts.BGPTotal = 0, 0
		case s.BGP != nil && !s.BGP.Updated.IsZero():
			ts.BGPUp, ts.BGPTotal = 0, len(s.BGP.Neighbors)
			for _, n := range s.BGP.Neighbors {
				if n.State == "established" {
					ts.BGPUp++
				}
			}
		}
		d.edge.tenantStatus(ctx, cfg.Tenant(s.Name), &ts) // edge_linux.go: HA and services
		st.Tenants = append(st.Tenants, ts)
	}
	return st
}

// Show implements mgmt.Controller.
func (d *Daemon) Show(ctx context.Context) ([]mgmt.Namespace, error) {
	if d.observe == nil {
		return nil, nil
	}
	st, err := d.observe()
	if err != nil {
		return nil, err
	}
	return showNamespaces(st), nil
}

// Revisions implements mgmt.Controller.
func (d *Daemon) Revisions() ([]mgmt.Revision, error) { return d.store.List() }

// Revision implements mgmt.Controller.
func (d *Daemon) Revision(n int) (mgmt.Revision, []byte, error) { return d.store.Get(n) }

// serve starts the API (Unix socket, optional TCP) and metrics listeners;
// the returned function stops them. Listener settings are read once, at
// start: changing them needs a restart. Every listener is bounded and
// times out (limits_linux.go); every TCP listener checks Host and Origin
// (mgmt.Guard), and the API's needs the token.
func (d *Daemon) serve() (func(), error) {
	d.mu.Lock()
	m := d.cfg.Mgmt
	d.mu.Unlock()
	var servers []*http.Server
	var listeners []net.Listener
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			if err := s.Shutdown(ctx); err != nil {
				d.log.Warn("listener shutdown", "error", err)
			}
		}
		// A server stopped before its Serve began does not close its
		// listener.
		for _, l := range listeners {
			_ = l.Close() // closed already by Shutdown, most often
		}
	}
	start := func(l net.Listener, conns int, h http.Handler, what string) {
		s := &http.Server{Handler: h, ErrorLog: httpErrorLog(d.log, what)}
		serverTimeouts(s)
		l = limitConns(l, conns)
		servers, listeners = append(servers, s), append(listeners, l)
		go func() {
			if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("listener stopped", "listener", what, "error", err)
			}
		}()
		d.log.Info("listening", "listener", what, "address", l.Addr().String())
	}

	sock := d.opts.Socket
	if sock == "" {
		sock = m.Socket
	}
	l, err := listenUnix(sock)
	if err != nil {
		return nil, fmt.Errorf("api socket: %w", err)
	}
	// Root only by its mode (listenUnix): no token, and no browser
	// reaches a Unix socket, so any Host.
	start(l, apiConns, d.apiHandler(mgmt.Access{AnyHost: true}), "api")

	if m.APIListen != "" {
		token, err := readToken(m.APITokenFile)
		if err != nil {
			stop()
			return nil, err
		}
		tl, err := net.Listen("tcp", m.APIListen)
		if err != nil {
			stop()
			return nil, fmt.Errorf("api tcp listener: %w", err)
		}
		start(tl, apiConns, d.apiHandler(mgmt.Access{Token: token, Hosts: m.APIHosts}), "api-tcp")
	}

	ml := m.MetricsListen
	if d.opts.MetricsListen != "" {
		ml = d.opts.MetricsListen
	}
	if ml != "" && ml != "off" {
		tl, err := net.Listen("tcp", ml)
		if err != nil {
			stop()
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{MaxRequestsInFlight: metricsInFlight}))
		d.mountDashboard(mux, false)
		start(tl, metricsConns, mgmt.Guard(mux, metricsAccess(tl.Addr(), m.APIHosts)), "metrics")
	}
	return stop, nil
}

// metricsAccess guards the metrics listener (no token: it is read-only).
// On loopback, the Host check keeps a web page from reading it through
// DNS rebinding; on another address Prometheus may scrape it by any name
// the operator gave it, so any Host passes.
func metricsAccess(a net.Addr, hosts []string) mgmt.Access {
	ap, err := netip.ParseAddrPort(a.String())
	return mgmt.Access{Hosts: hosts, AnyHost: err != nil || !ap.Addr().Unmap().IsLoopback()}
}

// readToken reads the TCP API's token: a file only root can read, of at
// least config.MinTokenBytes.
func readToken(path string) (string, error) {
	if path == "" {
		return "", errors.New("mgmt.api_listen needs mgmt.api_token_file")
	}
	token, err := config.ReadSecretFile(path)
	if err != nil {
		return "", fmt.Errorf("mgmt.api_token_file: %w", err)
	}
	token = strings.TrimSpace(token)
	if len(token) < config.MinTokenBytes {
		return "", fmt.Errorf("mgmt.api_token_file %s: the token is %d bytes, fewer than %d (e.g. openssl rand -hex 32)", path, len(token), config.MinTokenBytes)
	}
	return token, nil
}

// httpErrorLog sends net/http's own messages (accept errors it retries,
// TLS or header errors of a client) to the daemon's log.
func httpErrorLog(log *slog.Logger, listener string) *stdlog.Logger {
	return slog.NewLogLogger(log.With("listener", listener).Handler(), slog.LevelWarn)
}

// listenUnix binds the API socket, root-only (0600). A stale socket from
// a crashed daemon is replaced; a live one is an error.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another daemon is listening", path)
		}
		os.Remove(path)
	}
	// Bind with a restrictive umask so the socket is never briefly open.
	old := syscallUmask(0o177)
	l, err := net.Listen("unix", path)
	syscallUmask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
