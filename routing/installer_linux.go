package routing

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Installer writes routes into one namespace fast: many route messages per
// sendmsg, acknowledgements only for failures and chunk ends, large socket
// buffers, and kernel nexthop objects so that every route through one
// gateway can be withdrawn with one message. Static routing and BGP share
// it; each passes its own protocol number, and the installer reads and
// changes only routes carrying that number.
type Installer struct {
	mu    sync.Mutex
	c     *conn
	proto uint8
}

// NewInstaller opens an installer on namespace h (an unopened handle
// means the caller's namespace). proto marks the routes it installs and
// bounds what it reads and deletes: Protocol for fwd's static routes.
func NewInstaller(h netns.NsHandle, proto uint8) (*Installer, error) {
	if proto == 0 {
		return nil, errors.New("installer: protocol 0 would claim every route")
	}
	c, err := openConn(h)
	if err != nil {
		return nil, err
	}
	return &Installer{c: c, proto: proto}, nil
}

// Close releases the socket.
func (in *Installer) Close() error { return in.c.close() }

// OpError is one route the kernel refused.
type OpError struct {
	Op  Op
	Err error
}

func (e OpError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op.Kind, e.Op.Route.String(), e.Err)
}

// Unreachable reports whether the kernel refused the route because its
// gateway is not reachable (no connected route, interface down or gone).
func (e OpError) Unreachable() bool {
	var ke *kernelError
	if errors.As(e.Err, &ke) && ke.errno == unix.EINVAL && (strings.Contains(ke.msg, "gateway") || strings.Contains(ke.msg, "Nexthop device is not up")) {
		return true
	}
	return errors.Is(e.Err, unix.ENETUNREACH) || errors.Is(e.Err, unix.EHOSTUNREACH) || errors.Is(e.Err, unix.ENODEV) || errors.Is(e.Err, unix.ENETDOWN)
}

// BadSource reports whether the kernel refused the route's preferred
// source (for IPv6, an address still tentative is refused).
func (e OpError) BadSource() bool {
	var ke *kernelError
	return errors.As(e.Err, &ke) && ke.errno == unix.EINVAL && strings.Contains(ke.msg, "source address")
}

// Routes reads the installer's own routes (both families) in table (0:
// every table), one dump per family.
func (in *Installer) Routes(table uint32) ([]Route, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []Route
	for _, af := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := in.c.dumpRoutes(af, table, in.proto, func(r Route) { out = append(out, r) }); err != nil {
			return nil, fmt.Errorf("dump routes: %w", err)
		}
	}
	return out, nil
}

// allRoutes reads every route of every protocol in table (0: all).
func (in *Installer) allRoutes(table uint32) ([]Route, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []Route
	for _, af := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := in.c.dumpRoutes(af, table, 0, func(r Route) { out = append(out, r) }); err != nil {
			return nil, fmt.Errorf("dump routes: %w", err)
		}
	}
	return out, nil
}

// Apply performs ops in order, in batches. It returns the ops the kernel
// refused; err is only for failures of the socket itself. A delete of a
// route that is already gone is not a failure.
func (in *Installer) Apply(ctx context.Context, ops []Op) ([]OpError, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	errs, err := in.c.batch(len(ops), func(b []byte, i int, flags uint16, seq uint32) []byte {
		op := &ops[i]
		switch op.Kind {
		case OpAdd:
			return appendRouteMsg(b, unix.RTM_NEWROUTE, flags|unix.NLM_F_CREATE|unix.NLM_F_EXCL, seq, in.proto, &op.Route, false)
		case OpReplace, OpUpsert:
			return appendRouteMsg(b, unix.RTM_NEWROUTE, flags|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq, in.proto, &op.Route, false)
		default:
			return appendRouteMsg(b, unix.RTM_DELROUTE, flags, seq, in.proto, &op.Route, true)
		}
	})
	var out []OpError
	for i, e := range errs {
		if ops[i].Kind == OpDelete && errors.Is(e, unix.ESRCH) {
			continue
		}
		out = append(out, OpError{Op: ops[i], Err: e})
	}
	return out, err
}

func (in *Installer) applyAll(ctx context.Context, kind OpKind, routes []Route) error {
	ops := make([]Op, len(routes))
	for i := range routes {
		ops[i] = Op{Kind: kind, Route: routes[i]}
	}
	failed, err := in.Apply(ctx, ops)
	if err != nil {
		return err
	}
	return joinFailures(failed)
}

func joinFailures(failed []OpError) error {
	if len(failed) == 0 {
		return nil
	}
	errs := []error{fmt.Errorf("%d routes failed", len(failed))}
	for i, f := range failed {
		if i == 5 {
			errs = append(errs, fmt.Errorf("… and %d more", len(failed)-5))
			break
		}
		errs = append(errs, f)
	}
	return errors.Join(errs...)
}

// Add installs routes, replacing any of the installer's routes with the
// same key (destination, table, metric).
func (in *Installer) Add(ctx context.Context, routes []Route) error {
	return in.applyAll(ctx, OpUpsert, routes)
}

// Delete withdraws routes (of the installer's protocol only: the kernel
// matches the protocol on delete).
func (in *Installer) Delete(ctx context.Context, routes []Route) error {
	return in.applyAll(ctx, OpDelete, routes)
}

// SyncResult counts what Sync did.
type SyncResult struct {
	Added, Replaced, Deleted int
	Failed                   []OpError
}

// Sync makes the installer's routes in table exactly desired: one dump,
// a diff, and only the differences sent. Routes of other protocols in the
// table are left alone. It sets the Table of every desired route to
// table (in place, so that a 1M-route slice is not copied).
func (in *Installer) Sync(ctx context.Context, table uint32, desired []Route) (SyncResult, error) {
	var res SyncResult
	owned, err := in.Routes(table)
	if err != nil {
		return res, err
	}
	for i := range desired {
		desired[i].Table = table
	}
	ops, _ := Diff(desired, owned, nil)
	for i := range ops {
		switch ops[i].Kind {
		case OpAdd:
			ops[i].Kind = OpUpsert
			res.Added++
		case OpReplace:
			res.Replaced++
		case OpDelete:
			res.Deleted++
		}
	}
	res.Failed, err = in.Apply(ctx, ops)
	return res, err
}

// Nexthop is a kernel nexthop object (RTM_NEWNEXTHOP): routes refer to it
// by ID (Route.NHID), and deleting it withdraws every route using it in
// one message.
type Nexthop struct {
	ID      uint32
	Gw      netip.Addr
	Ifindex int // required by the kernel
	OnLink  bool
}

// AddNexthop creates or replaces a nexthop object. Replacing it moves
// every route using it to the new gateway at once.
func (in *Installer) AddNexthop(ctx context.Context, nh Nexthop) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	errs, err := in.c.batch(1, func(b []byte, _ int, flags uint16, seq uint32) []byte {
		off := len(b)
		b = appendHdr(b, rtmNewNH, flags|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq)
		var fl uint32
		if nh.OnLink {
			fl = rtnhFOnlink
		}
		b = append(b, afOf(nh.Gw), 0, in.proto, 0)
		b = ne.AppendUint32(b, fl)
		b = appendU32Attr(b, nhaID, nh.ID)
		b = appendU32Attr(b, nhaOIF, uint32(nh.Ifindex))
		b = appendAttr(b, nhaGW, nh.Gw.AsSlice())
		return finish(b, off)
	})
	if err == nil {
		err = errs[0]
	}
	if err != nil {
		return fmt.Errorf("nexthop %d via %s: %w", nh.ID, nh.Gw, err)
	}
	return nil
}

// DeleteNexthop deletes a nexthop object and, with it, every route that
// uses it. A missing nexthop is not an error.
func (in *Installer) DeleteNexthop(ctx context.Context, id uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	errs, err := in.c.batch(1, func(b []byte, _ int, flags uint16, seq uint32) []byte {
		off := len(b)
		b = appendHdr(b, rtmDelNH, flags, seq)
		b = append(b, unix.AF_UNSPEC, 0, 0, 0)
		b = ne.AppendUint32(b, 0)
		b = appendU32Attr(b, nhaID, id)
		return finish(b, off)
	})
	if err == nil {
		err = errs[0]
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nexthop %d: %w", id, err)
	}
	return nil
}
