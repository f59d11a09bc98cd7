package dnsmasq

import (
	"bytes"
	"slices"
	"strings"

	"github.com/fwdproject/fwd/change"
)

// Observed is an instance as found: the files in its directory and
// whether its supervised process is alive.
type Observed struct {
	Files   Files
	Running bool
}

// Action is what Apply does to an instance.
type Action int

const (
	None    Action = iota
	Start          // no process yet: write every file, start
	Reload         // only re-read files changed: write them, SIGHUP
	Restart        // the main configuration changed: write, restart
	Stop           // no longer configured: stop, remove the files
)

var actionNames = [...]string{"none", "start", "reload", "restart", "stop"}

func (a Action) String() string { return actionNames[a] }

// Step is the plan for one instance: the action and the files it writes
// (sorted), which are the files that differ.
type Step struct {
	Action  Action
	Changed []string
	files   Files
}

// Plan compares desired files (nil: the tenant has no LAN services) with
// what is observed. It is pure.
func Plan(desired Files, obs Observed) Step {
	if desired == nil {
		if obs.Running || len(obs.Files) > 0 {
			return Step{Action: Stop}
		}
		return Step{}
	}
	var changed []string
	for name, b := range desired {
		if have, ok := obs.Files[name]; !ok || !bytes.Equal(have, b) {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	s := Step{Changed: changed, files: desired}
	switch {
	case !obs.Running:
		s.Action = Start
	case slices.Contains(changed, MainFile):
		s.Action = Restart
	case len(changed) > 0:
		s.Action = Reload
	}
	return s
}

// Changes renders the step for `fwd plan` and the change log.
func (s Step) Changes(tenant string) []change.Change {
	if s.Action == None {
		return nil
	}
	c := change.Change{Tenant: tenant, Subsystem: "services", Action: s.Action.String() + "-dnsmasq", Object: "dnsmasq"}
	if len(s.Changed) > 0 {
		c.Detail = strings.Join(s.Changed, ", ")
	}
	return []change.Change{c}
}
