package rtnl

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// dumpAttempts bounds how often an interrupted dump is restarted.
const dumpAttempts = 10

// ErrDumpInterrupted is returned when a dump was interrupted (the table
// changed while it was read) dumpAttempts times in a row.
var ErrDumpInterrupted = errors.New("netlink dump interrupted")

// Retry calls dump, a vishvananda/netlink list call, until it returns
// without netlink.ErrDumpInterrupted (at most 10 times). Conn's own dumps
// retry by themselves; Retry is for links, addresses and rules.
func Retry[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpAttempts {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, fmt.Errorf("%w %d times: %w", ErrDumpInterrupted, dumpAttempts, err)
}
