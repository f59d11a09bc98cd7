// Package servicekit is what the edge-services tests share: a dnsmasq
// served the way the engine serves one, a DHCP client in a host
// namespace, and DNS queries from inside a namespace. Test-only: the
// shipped binary never links it.
package servicekit

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/services/dhcpclient"
	"github.com/fwdproject/fwd/services/dnsmasq"
)

// RunDir is a temporary directory that dnsmasq's unprivileged user can
// pass through (its parents are made traversable, best effort).
func RunDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755) // a parent we may not own: best effort
	}
	return d
}

// Serve brings tenant's dnsmasq to c as the engine's services stage does
// (prepare, render, observe, plan, apply) and returns the step taken.
// Each of extraOpts is appended as a line of the rendered DHCP options
// file (dnsmasq's dhcp-option syntax): what a test's server needs and
// fwd's configuration does not offer, such as a short renewal time
// ("option:T1,4") that makes a client renew within seconds.
func Serve(t testing.TB, sup *dnsmasq.Supervisor, tenant string, c *dnsmasq.Config, extraOpts ...string) dnsmasq.Step {
	t.Helper()
	sup.Prepare(tenant, c)
	files, err := dnsmasq.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range extraOpts {
		files[dnsmasq.DHCPOptsFile] = append(files[dnsmasq.DHCPOptsFile], o+"\n"...)
	}
	obs, err := sup.Observe(tenant)
	if err != nil {
		t.Fatal(err)
	}
	step := dnsmasq.Plan(files, obs)
	if err := sup.Apply(tenant, step); err != nil {
		t.Fatal(err)
	}
	return step
}

// Lease runs fwd's DHCP client on eth0 of namespace host until it is
// bound and returns the lease; the client is stopped (released) at
// cleanup.
func Lease(t testing.TB, host string, log *slog.Logger) *dhcpclient.Lease {
	t.Helper()
	h, err := ns.Open(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ev := make(chan dhcpclient.Event, 4)
	c, err := dhcpclient.Start(dhcpclient.Config{Namespace: host, Interface: "eth0", Kernel: dhcpclient.NewApplier(h, 0, 0),
		OnEvent: func(e dhcpclient.Event) { ev <- e }, Timeout: 500 * time.Millisecond, MaxBackoff: 2 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(true) })
	select {
	case e := <-ev:
		if e.Kind != dhcpclient.Bound || e.Err != nil {
			t.Fatalf("%s: first event %s %v", host, e.Kind, e.Err)
		}
		return e.Lease
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no lease", host)
	}
	return nil
}

// Resolve asks server (port 53) for name from inside namespace nsName:
// the resolver's socket is created there through the ns door.
func Resolve(t testing.TB, nsName string, server netip.Addr, name string) ([]string, error) {
	t.Helper()
	h, err := ns.Open(nsName)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(h, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, netip.AddrPortFrom(server, 53).String())
			return err
		})
		return c, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.LookupHost(ctx, name)
}
