package rtnl

import (
	"errors"
	"strings"
	"syscall"
)

// Sentinels for errors.Is on the errors a write reports per message.
var (
	// ErrNotFound: the route (ESRCH) or nexthop (ENOENT) to delete or
	// replace does not exist.
	ErrNotFound = errors.New("no such route or nexthop")
	// ErrExists: Create found the key taken (EEXIST).
	ErrExists = errors.New("route or nexthop exists")
	// ErrUnreachable: the gateway is not reachable (no connected route,
	// interface down or gone).
	ErrUnreachable = errors.New("gateway unreachable")
	// ErrBadSource: the preferred source address is refused (for IPv6,
	// an address still in duplicate address detection).
	ErrBadSource = errors.New("source address not usable")
)

// Error is a kernel refusal of one message: the errno and, when the
// kernel gives one, its extended-ack text. It unwraps to the errno, so
// errors.Is(err, unix.ESRCH) also works.
type Error struct {
	Errno syscall.Errno
	Msg   string // extended ack, may be empty
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Errno.Error()
	}
	return e.Errno.Error() + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Errno }

// Is maps the kernel's errnos (and, for EINVAL, its messages) onto the
// package's sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Errno == syscall.ESRCH || e.Errno == syscall.ENOENT
	case ErrExists:
		return e.Errno == syscall.EEXIST
	case ErrUnreachable:
		switch e.Errno {
		case syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENODEV, syscall.ENETDOWN:
			return true
		case syscall.EINVAL:
			return strings.Contains(e.Msg, "gateway") || strings.Contains(e.Msg, "Nexthop device is not up")
		}
	case ErrBadSource:
		return e.Errno == syscall.EINVAL && strings.Contains(e.Msg, "source address")
	}
	return false
}
