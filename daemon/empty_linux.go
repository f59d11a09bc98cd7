package daemon

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/mgmt"
)

// An empty file, one with only comments or only [mgmt], is a valid
// configuration of zero tenants: `fwd check` says so. But reloading it
// into a daemon that runs tenants removes every one of them and hands
// every NIC back, which is far more often a truncated or wrong file than
// an intent. Such a reload needs an explicit --allow-empty.

// refuseEmpty returns an error when cfg has no tenants while the running
// configuration has some, with what applying it would remove.
func (d *Daemon) refuseEmpty(cfg *config.Config) (*mgmt.Removals, error) {
	if len(cfg.Tenants) > 0 {
		return nil, nil
	}
	d.mu.Lock()
	running := d.cfg
	d.mu.Unlock()
	if running == nil || len(running.Tenants) == 0 {
		return nil, nil
	}
	rm := &mgmt.Removals{Tenants: tenantNames(running)}
	for _, t := range running.Tenants {
		for _, i := range t.Interfaces {
			switch {
			case i.Kind != config.KindPhysical:
			case i.Device != "":
				rm.NICs = append(rm.NICs, i.Device)
			default:
				rm.NICs = append(rm.NICs, i.Selector())
			}
		}
	}
	slices.Sort(rm.NICs)
	return rm, fmt.Errorf("%s: the configuration has no tenants: applying it would remove every tenant (%s) and hand back every NIC (%s); reload with --allow-empty (API: \"allow_empty\": true) if that is what you want",
		d.opts.ConfigPath, strings.Join(rm.Tenants, ", "), strings.Join(rm.NICs, ", "))
}

func tenantNames(cfg *config.Config) []string {
	var out []string
	for _, t := range cfg.Tenants {
		out = append(out, t.Name)
	}
	return out
}
