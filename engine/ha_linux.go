package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/ha"
	"github.com/fwdproject/fwd/supervise"
)

// The ha stage runs the tenants' HA pairs (keepalived + conntrackd, one
// pair per tenant with [ha]) through the engine's ha.Manager. It runs
// after zones and the tenants' policy (interfaces, addresses and the
// _ha/* admission rules exist before conntrackd binds) and before bgp.
// The Manager applies the whole set at once, so this is a stage over all
// tenants, like bgp. A dry run compares the rendered files with those on
// disk and the pid files with the running processes.

// HASpec is the ha.Spec of a tenant's [ha] (Dir left to the Manager).
func HASpec(t *config.Tenant) ha.Spec {
	h := t.HA
	s := ha.Spec{
		Tenant: t.Name, SyncInterface: h.SyncInterface, LocalAddress: h.LocalAddress, Peer: h.Peer,
		Priority: h.Priority, VRID: h.VRID, AdvertInterval: h.AdvertInterval, PreemptDelay: h.PreemptDelay,
		SyncPort: h.SyncPort, TrackInterfaces: h.Track, IgnoreAddresses: t.OwnAddresses(),
	}
	for _, v := range h.VIPs {
		s.VIPs = append(s.VIPs, ha.VIP{Interface: v.Interface, Prefix: v.Prefix})
	}
	return s
}

// haPlan is the pairs' plan: what Reconcile will do, per tenant.
type haPlan struct {
	specs   []ha.Spec
	changes []change.Change
}

// planHA compares each tenant's rendered configuration with its files
// and running daemons, and lists the pairs left by removed tenants.
func (e *Engine) planHA(cfg *config.Config) *haPlan {
	p := &haPlan{}
	want := map[string]bool{}
	add := func(tenant, action, object, detail string) {
		p.changes = append(p.changes, change.Change{Tenant: tenant, Subsystem: "ha", Action: action, Object: object, Detail: detail})
	}
	for _, t := range cfg.Tenants {
		if t.HA == nil {
			continue
		}
		want[t.Name] = true
		s := HASpec(t).WithDefaults()
		s.Dir = e.HA.Dir(t.Name)
		p.specs = append(p.specs, s)
		ka, ct := ha.Render(s)
		for _, d := range []struct {
			prog, file string
			body       []byte
			onChange   string
		}{
			{"conntrackd", s.ConntrackdConf(), ct, "restart-conntrackd"},
			{"keepalived", s.KeepalivedConf(), ka, "reload-keepalived"},
		} {
			_, running := supervise.Identity(supervise.PidFile(s.Dir, d.prog))
			same := fileIs(d.file, d.body)
			switch {
			case !running:
				add(t.Name, "start-"+d.prog, d.prog, "vrrp "+haDetail(s))
			case !same:
				add(t.Name, d.onChange, d.prog, filepath.Base(d.file)+" changed")
			}
		}
	}
	dirs, _ := filepath.Glob(e.HA.Dir("*"))
	slices.Sort(dirs)
	for _, d := range dirs {
		if tn := filepath.Base(filepath.Dir(d)); !want[tn] {
			add(tn, "stop-pair", "keepalived, conntrackd", "no [ha] for this tenant")
		}
	}
	return p
}

func haDetail(s ha.Spec) string {
	vips := make([]string, len(s.VIPs))
	for i, v := range s.VIPs {
		vips[i] = v.Prefix.String() + " dev " + v.Interface
	}
	return "peer " + s.Peer.String() + ", priority " + strconv.Itoa(s.Priority) + ", vips " + strings.Join(vips, ", ")
}

// ha plans and, unless dryRun, reconciles the HA pairs. Reconcile runs
// on every apply, changes or not: after a daemon restart it adopts the
// running daemons, so that status and failover work again.
func (e *Engine) ha(ctx context.Context, cfg *config.Config, dryRun bool) ([]change.Change, error) {
	p := e.planHA(cfg)
	if dryRun {
		return p.changes, nil
	}
	err := e.HA.Reconcile(ctx, p.specs)
	e.logChanges(p.changes)
	return p.changes, err
}

func fileIs(path string, want []byte) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Equal(b, want)
}
