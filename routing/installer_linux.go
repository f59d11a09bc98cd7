package routing

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netns"
)

// Installer is the static-routing owner on top of rtnl: it writes routes
// under one protocol number (Protocol for fwd's static routes) into one
// namespace, in batches, with kernel nexthop objects so that every route
// through one gateway can be withdrawn with one message, and reads and
// deletes only routes carrying its number. The BGP speaker does not use
// it: it is a second owner on rtnl with its own number (see package bgp).
type Installer struct {
	mu    sync.Mutex
	c     *rtnl.Conn
	proto uint8
}

// NewInstaller opens an installer on namespace h (an unopened handle
// means the caller's namespace). proto marks the routes it installs and
// bounds what it reads and deletes.
func NewInstaller(h netns.NsHandle, proto uint8) (*Installer, error) {
	if proto == 0 {
		return nil, errors.New("installer: protocol 0 would claim every route")
	}
	c, err := rtnl.Open(h)
	if err != nil {
		return nil, err
	}
	return &Installer{c: c, proto: proto}, nil
}

// Close releases the socket.
func (in *Installer) Close() error { return in.c.Close() }

// OpError is one route the kernel refused. errors.Is(e, rtnl.ErrUnreachable)
// and the other rtnl sentinels classify it.
type OpError struct {
	Op  Op
	Err error
}

func (e OpError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op.Kind, e.Op.Route.String(), e.Err)
}

func (e OpError) Unwrap() error { return e.Err }

// Routes reads the installer's own routes (both families) in table (0:
// every table), one dump per family.
func (in *Installer) Routes(table uint32) ([]Route, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.c.Routes(rtnl.Filter{Table: table, Protocol: in.proto})
}

// Apply performs ops in order, in batches (errors-only acks). It returns
// the ops the kernel refused; err is only for failures of the socket
// itself. A delete of a route that is already gone is not a failure.
func (in *Installer) Apply(ctx context.Context, ops []Op) ([]OpError, error) {
	failed, err := in.write(ctx, ops)
	var out []OpError
	for _, f := range failed {
		out = append(out, OpError{Op: ops[f.Index], Err: f.Err})
	}
	return out, err
}

// write is Apply with the failures by index.
func (in *Installer) write(ctx context.Context, ops []Op) ([]rtnl.Failure, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	res, err := in.c.WriteRoutes(in.proto, rtnl.AckErrors, len(ops), func(i int) (rtnl.Kind, *rtnl.Route) {
		return ops[i].Kind.rtnl(), &ops[i].Route
	})
	out := res.Failed[:0]
	for _, f := range res.Failed {
		if ops[f.Index].Kind == OpDelete && errors.Is(f.Err, rtnl.ErrNotFound) {
			continue
		}
		out = append(out, f)
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

// AddNexthop creates or replaces a nexthop object. Replacing it moves
// every route using it to the new gateway at once.
func (in *Installer) AddNexthop(ctx context.Context, nh Nexthop) error {
	if err := in.nexthop(ctx, rtnl.Replace, &nh); err != nil {
		return fmt.Errorf("nexthop %d via %s: %w", nh.ID, nh.Gw, err)
	}
	return nil
}

// DeleteNexthop deletes a nexthop object and, with it, every route that
// uses it. A missing nexthop is not an error.
func (in *Installer) DeleteNexthop(ctx context.Context, id uint32) error {
	err := in.nexthop(ctx, rtnl.Delete, &Nexthop{ID: id})
	if err != nil && !errors.Is(err, rtnl.ErrNotFound) {
		return fmt.Errorf("delete nexthop %d: %w", id, err)
	}
	return nil
}

func (in *Installer) nexthop(ctx context.Context, k rtnl.Kind, nh *Nexthop) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	res, err := in.c.WriteNexthops(in.proto, rtnl.AckEach, 1, func(int) (rtnl.Kind, *rtnl.Nexthop) { return k, nh })
	if err == nil && len(res.Failed) > 0 {
		err = res.Failed[0].Err
	}
	return err
}
