package policy

import (
	"time"

	"github.com/fwdproject/fwd/config"
)

// setOptions returns the live-set options of a config set: whether it is
// a dynamic set (elements managed at run time through SetAdd/SetDel, kept
// across reloads) and its default element timeout.
//
// TODO(config): `[tenant.T.set.S] dynamic = true` and `timeout = "1h"`
// are decoded by the config package, which is owned by another helper.
// Once config.AddrSet has `Dynamic bool` and `Timeout time.Duration`,
// replace the body with:
//
//	return s.Dynamic, s.Timeout
func setOptions(s *config.AddrSet) (dynamic bool, timeout time.Duration) {
	_ = s
	return false, 0
}
