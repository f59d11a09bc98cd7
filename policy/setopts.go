package policy

import (
	"time"

	"github.com/fwdproject/fwd/config"
)

// setOptions returns the live-set options of a config set: whether it is
// a dynamic set (elements managed at run time through SetAdd/SetDel, kept
// across reloads) and its default element timeout.
func setOptions(s *config.AddrSet) (dynamic bool, timeout time.Duration) {
	return s.Dynamic, s.Timeout
}
