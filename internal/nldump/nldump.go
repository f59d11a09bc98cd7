// Package nldump retries netlink dumps that the kernel interrupted because
// the dumped table changed underneath (NLM_F_DUMP_INTR, surfaced by
// vishvananda/netlink as ErrDumpInterrupted). Every dump in fwd goes
// through Retry so a busy box never yields a half-read state.
package nldump

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

const attempts = 10

// Retry calls dump until it returns without ErrDumpInterrupted.
func Retry[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range attempts {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, fmt.Errorf("netlink dump interrupted %d times: %w", attempts, err)
}
