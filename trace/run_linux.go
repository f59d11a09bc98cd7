package trace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/policy"
	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ChainPrefix starts the name of every chain a trace adds to fwd's table.
const ChainPrefix = "trace_"

// priority runs the trace rule before conntrack (-200) and DNAT (-100),
// so a packet is traced through every later hook.
const priority = -350

// grace is how long Run keeps listening after the last packet it was
// asked for appeared, for the rest of that packet's walk.
const grace = 200 * time.Millisecond

var table = &nftables.Table{Name: policy.TableName, Family: nftables.TableFamilyINet}

var seq atomic.Int32

// chainName is unique per process and call: trace_PID_N.
func chainName() string {
	return fmt.Sprintf("%s%d_%d", ChainPrefix, os.Getpid(), seq.Add(1))
}

// ownerPID returns the process that created a trace chain, or 0.
func ownerPID(chain string) int {
	rest, ok := strings.CutPrefix(chain, ChainPrefix)
	if !ok {
		return 0
	}
	pid, _, _ := strings.Cut(rest, "_")
	n, err := strconv.Atoi(pid)
	if err != nil {
		return 0
	}
	return n
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RemoveStale deletes the trace chains in fwd's table of namespace h
// whose process is gone (a trace killed before it could clean up). It
// returns their names.
func RemoveStale(h netns.NsHandle) ([]string, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var gone []string
	for _, ch := range chains {
		if ch.Table.Name != policy.TableName {
			continue
		}
		if pid := ownerPID(ch.Name); pid != 0 && !alive(pid) {
			c.DelChain(ch)
			gone = append(gone, ch.Name)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("remove stale trace chains: %w", err)
	}
	return gone, nil
}

// Run traces packets matching m in namespace h: it adds its chains,
// calls emit for every trace event in the order the kernel sends them
// (packets numbered from 1), and removes its chains when it returns:
// after count packets (0: no limit), after timeout (0: none), or when
// ctx is done. Events of Run's own chains are not emitted.
func Run(ctx context.Context, h netns.NsHandle, m Match, count int, timeout time.Duration, emit func(Event)) (err error) {
	if err := m.check(); err != nil {
		return err
	}
	if _, err := RemoveStale(h); err != nil {
		return err
	}
	// Listen before the rule exists, so the first packet is not missed.
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(h)})
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer nl.Close()
	if err := nl.JoinGroup(unix.NFNLGRP_NFTRACE); err != nil {
		return fmt.Errorf("join trace group: %w", err)
	}
	if err := nl.SetReadBuffer(4 << 20); err != nil {
		return fmt.Errorf("netlink read buffer: %w", err)
	}
	names := newNamer(h)
	defer names.close()
	name := chainName()
	created, err := install(h, name, m)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := uninstall(h, name, created); rerr != nil && err == nil {
			err = rerr
		}
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	go func() { <-ctx.Done(); _ = nl.SetReadDeadline(time.Unix(1, 0)) }()

	packets := map[uint32]int{}
	last := map[uint32]Event{}
	var done time.Time // when the last wanted packet appeared
	for {
		if !done.IsZero() {
			_ = nl.SetReadDeadline(done.Add(grace))
		}
		msgs, err := nl.Receive()
		if err != nil {
			if ctx.Err() != nil || !done.IsZero() || errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return fmt.Errorf("receive trace events: %w", err)
		}
		for _, msg := range msgs {
			if msg.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_TRACE) {
				continue
			}
			ev, err := decode(msg)
			if err != nil {
				return fmt.Errorf("decode trace event: %w", err)
			}
			if ev.Table == policy.TableName && (ev.Chain == name+"_pre" || ev.Chain == name+"_out") {
				continue
			}
			n, ok := packets[ev.ID]
			if !ok {
				if count > 0 && len(packets) == count {
					continue // a packet beyond the count
				}
				n = len(packets) + 1
				packets[ev.ID] = n
				if n == count {
					done = time.Now()
				}
			}
			ev.Packet = n
			// The kernel sends the packet (headers, interfaces) with the
			// first event of each hook only: later events inherit it.
			if ev.Proto == 0 && ev.iif == 0 && ev.oif == 0 {
				if prev, ok := last[ev.ID]; ok {
					ev.Proto, ev.Src, ev.Dst, ev.SPort, ev.DPort, ev.iif, ev.oif = prev.Proto, prev.Src, prev.Dst, prev.SPort, prev.DPort, prev.iif, prev.oif
				}
			} else {
				last[ev.ID] = ev.Event
			}
			names.resolve(&ev.Event)
			emit(ev.Event)
		}
	}
}

// install adds the two base chains (prerouting and output) with the
// trace rule, creating fwd's table if the tenant has none (then it is
// removed again afterwards). One batch.
func install(h netns.NsHandle, name string, m Match) (createdTable bool, err error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	if _, err := c.ListTableOfFamily(policy.TableName, nftables.TableFamilyINet); err != nil {
		if !errors.Is(err, syscall.ENOENT) {
			return false, fmt.Errorf("list table: %w", err)
		}
		createdTable = true
		c.AddTable(table)
	}
	accept := nftables.ChainPolicyAccept
	hooks := []struct {
		suffix string
		hook   *nftables.ChainHook
		out    bool
	}{{"_pre", nftables.ChainHookPrerouting, false}, {"_out", nftables.ChainHookOutput, true}}
	for _, hk := range hooks {
		if hk.out && m.In != "" {
			continue // locally sent packets have no input interface
		}
		ch := c.AddChain(&nftables.Chain{Name: name + hk.suffix, Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: hk.hook, Priority: nftables.ChainPriorityRef(priority), Policy: &accept})
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: m.exprs(hk.out),
			UserData: userdata.AppendString(nil, userdata.TypeComment, "fwd trace: "+m.String())})
	}
	if err := c.Flush(); err != nil {
		return false, fmt.Errorf("add trace chain: %w", err)
	}
	return createdTable, nil
}

// uninstall removes Run's chains (a policy apply may have removed them
// already) and the table if Run created it and nothing else was added.
func uninstall(h netns.NsHandle, name string, createdTable bool) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list chains: %w", err)
	}
	others := 0
	for _, ch := range chains {
		if ch.Table.Name != policy.TableName {
			continue
		}
		if ch.Name == name+"_pre" || ch.Name == name+"_out" {
			c.DelChain(ch)
		} else {
			others++
		}
	}
	if createdTable && others == 0 {
		c.DelTable(table)
	}
	if err := c.Flush(); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("remove trace chain: %w", err)
	}
	return nil
}
