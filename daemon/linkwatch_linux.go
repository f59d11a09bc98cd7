package daemon

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The link watch: the daemon listens to link events in the default
// namespace so that a declared NIC that appears late is moved in without
// a reload.

// watchLinks subscribes to link events; stop ends the subscription.
func (d *Daemon) watchLinks() (updates <-chan netlink.LinkUpdate, stop func(), err error) {
	links := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case <-done: // shutting down: the socket was closed on purpose
			default:
				d.log.Warn("link watch", "error", err)
			}
		},
	}); err != nil {
		return nil, nil, fmt.Errorf("watch links: %w", err)
	}
	return links, func() { close(done) }, nil
}

// linkEvent reports whether u may let a waiting interface be applied.
func (d *Daemon) linkEvent(u netlink.LinkUpdate) bool {
	return u.Header.Type == unix.RTM_NEWLINK && d.waitingFor(u.Link)
}

func (d *Daemon) waitingFor(l netlink.Link) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.absent) == 0 {
		return false
	}
	a := l.Attrs()
	for _, sel := range d.absent {
		if sel == "device "+a.Name || (a.HardwareAddr != nil && sel == "mac "+a.HardwareAddr.String()) {
			return true
		}
	}
	return false
}
