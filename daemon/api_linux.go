package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	st.Tenants = []mgmt.TenantStatus{}
	for _, s := range d.snapshot(cfg) {
		ts := mgmt.TenantStatus{Name: s.Name, Interfaces: len(s.Links), Rules: -1, Routes: -1, BGPUp: -1, BGPTotal: -1}
		for _, l := range s.Links {
			if l.Oper == "up" || (l.Up && l.Oper == "unknown") {
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
// start: changing them needs a restart.
func (d *Daemon) serve() (func(), error) {
	d.mu.Lock()
	m := d.cfg.Mgmt
	d.mu.Unlock()
	var servers []*http.Server
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			if err := s.Shutdown(ctx); err != nil {
				d.log.Warn("listener shutdown", "error", err)
			}
		}
	}
	start := func(l net.Listener, h http.Handler, what string) {
		s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, s)
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
	start(l, mgmt.Handler(d, ""), "api")

	if m.APIListen != "" {
		token := ""
		if m.APITokenFile != "" {
			b, err := os.ReadFile(m.APITokenFile)
			if err != nil {
				stop()
				return nil, fmt.Errorf("mgmt.api_token_file: %w", err)
			}
			token = strings.TrimSpace(string(b))
			if token == "" {
				stop()
				return nil, fmt.Errorf("mgmt.api_token_file %s is empty", m.APITokenFile)
			}
		}
		if ap, err := netip.ParseAddrPort(m.APIListen); err != nil || (token == "" && !ap.Addr().IsLoopback()) {
			stop()
			return nil, fmt.Errorf("mgmt.api_listen %s: a non-loopback API listener needs a token", m.APIListen)
		}
		tl, err := net.Listen("tcp", m.APIListen)
		if err != nil {
			stop()
			return nil, fmt.Errorf("api tcp listener: %w", err)
		}
		start(tl, mgmt.Handler(d, token), "api-tcp")
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
		mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{ErrorLog: nil}))
		start(tl, mux, "metrics")
	}
	return stop, nil
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
