package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Apply writes steps into namespace h, the only routing code that does:
// every route write in one batch through an Installer (protocol
// Protocol), then the rules, additions before deletions. It returns what
// was done, which may differ from steps.Changes(): a route the kernel
// refuses because its gateway is unreachable, its interface is down or its
// IPv6 source is still tentative becomes a "skip-route", one whose key
// somebody took since Observe a "conflict-route"; neither is fatal. Other
// refusals are returned, joined, after everything else was tried.
func Apply(ctx context.Context, log *slog.Logger, h netns.NsHandle, steps Steps) (Applied, error) {
	if !h.IsOpen() {
		return Applied{}, errors.New("no namespace handle")
	}
	owned := make(map[uint32]int, len(steps.owned))
	for tb, n := range steps.owned {
		owned[tb] = n
	}
	for _, n := range steps.Notes {
		log.Warn("route not installed", "route", n.Object, "reason", n.Action, "detail", n.Detail)
	}
	changes := append([]change.Change(nil), steps.Notes...)
	var errs []error
	if len(steps.Routes) > 0 {
		in, err := NewInstaller(h, Protocol)
		if err != nil {
			return Applied{Changes: changes}, err
		}
		failed, err := in.write(ctx, steps.Routes)
		in.Close()
		if err != nil {
			return Applied{Changes: changes}, fmt.Errorf("apply routes: %w", err)
		}
		refused := make(map[int]error, len(failed))
		for _, f := range failed {
			refused[f.Index] = f.Err
		}
		for i := range steps.Routes {
			op := &steps.Routes[i]
			e, bad := refused[i]
			switch {
			case !bad:
				changes = append(changes, steps.routeChange(op))
				switch op.Kind {
				case OpAdd:
					owned[op.Route.Table]++
				case OpDelete:
					owned[op.Route.Table]--
				}
			case op.Kind == OpAdd && errors.Is(e, rtnl.ErrExists):
				// Someone added a route with this key since Observe.
				changes = append(changes, steps.change("conflict-route", steps.routeText(&op.Route), "the key is held by a route fwd does not own"))
			case errors.Is(e, rtnl.ErrBadSource):
				changes = append(changes, steps.change("skip-route", steps.routeText(&op.Route), fmt.Sprintf("source address not usable yet: %v", e)))
				log.Warn("route not installed: source address not usable", "route", steps.routeText(&op.Route), "error", e)
			case errors.Is(e, rtnl.ErrUnreachable):
				changes = append(changes, steps.change("skip-route", steps.routeText(&op.Route), fmt.Sprintf("gateway unreachable: %v", e)))
				log.Warn("route not installed: gateway unreachable", "route", steps.routeText(&op.Route), "error", e)
			default:
				errs = append(errs, fmt.Errorf("%s %s: %w", op.Kind, steps.routeText(&op.Route), e))
			}
		}
	}
	if len(steps.Rules) > 0 {
		nh, err := rtnl.LinkHandle(h)
		if err != nil {
			return Applied{Changes: changes, Routes: owned}, fmt.Errorf("netlink handle: %w", err)
		}
		defer nh.Close()
		for _, op := range steps.Rules {
			nr := toNetlinkRule(op.Rule)
			if op.Add {
				err = nh.RuleAdd(nr)
			} else {
				err = nh.RuleDel(nr)
				if errors.Is(err, unix.ENOENT) {
					err = nil
				}
			}
			c := steps.ruleChange(op)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", c.Action, op.Rule, err))
				continue
			}
			changes = append(changes, c)
		}
	}
	for tb, n := range owned {
		if n == 0 {
			delete(owned, tb)
		}
	}
	return Applied{Changes: changes, Routes: owned}, errors.Join(errs...)
}
