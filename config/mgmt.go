package config

import "fmt"

// The [mgmt] table: settings of the management plane, which always lives
// in the default namespace.

type rawMgmt struct {
	Protect []string `toml:"protect"`
}

// Mgmt holds settings of the management plane (default namespace).
type Mgmt struct {
	// Protect lists NICs fwd must never move, whatever the tenants say.
	Protect []string
}

func validateMgmt(r *reporter, raw *rawMgmt, m *Mgmt) {
	for i, p := range raw.Protect {
		if why := ValidIfName(p); why != "" {
			r.add(fmt.Sprintf("mgmt.protect[%d]", i), "%s", why)
		}
	}
	m.Protect = append([]string(nil), raw.Protect...)
}
