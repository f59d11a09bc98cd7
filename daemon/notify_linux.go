package daemon

import (
	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notify tells systemd (Type=notify-reload) the daemon's state; without
// NOTIFY_SOCKET it does nothing. A failure only costs systemd's view of
// us, so it is logged, not returned.
func (d *Daemon) notify(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		d.log.Debug("systemd notify", "state", state, "error", err)
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants.
func monotonicUsec() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for this clock
	return ts.Sec*1e6 + ts.Nsec/1e3
}
