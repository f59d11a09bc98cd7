// Command routes benchmarks fwd's route installer against `ip -batch`:
// inside a private sandbox it installs N IPv4 routes into a tenant table
// through routing.Installer and through iproute2, then withdraws them
// (batched deletes, and one nexthop-object delete). It ends with one line
// per figure: NAME VALUE UNIT.
//
// Only documentation space is used: 198.18.0.0/15 holds 131072 /32s, so
// beyond that the same prefixes are repeated at further metrics (each
// (prefix, metric) is a distinct kernel route).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime/pprof"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/sandbox"
	"github.com/fwdproject/fwd/routing"
	"github.com/vishvananda/netlink"
)

const (
	nsName = "bench"
	table  = 100
	gw     = "203.0.113.1"
)

func main() {
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
	n := flag.Int("n", 1000000, "number of routes")
	skipIP := flag.Bool("skip-ip", false, "skip the ip -batch comparison")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the installer phases to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *skipIP); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func routes(n int, nhid uint32, ifindex int) []routing.Route {
	out := make([]routing.Route, n)
	g := netip.MustParseAddr(gw)
	hops := []routing.NextHop{{Gw: g, Ifindex: ifindex, Weight: 1}}
	for i := range out {
		v := uint32(i % (1 << 17))
		a := netip.AddrFrom4([4]byte{198, 18 + byte(v>>16), byte(v >> 8), byte(v)})
		out[i] = routing.Route{Table: table, Dst: netip.PrefixFrom(a, 32), Metric: uint32(i >> 17)}
		if nhid != 0 {
			out[i].NHID = nhid
		} else {
			out[i].NextHops = hops
		}
	}
	return out
}

func count(in *routing.Installer) (int, error) {
	rs, err := in.Routes(table)
	return len(rs), err
}

func run(n int, skipIP bool) error {
	h, err := ns.Create(nsName)
	if err != nil {
		return err
	}
	defer func() {
		if err := ns.Delete(nsName); err != nil {
			fmt.Fprintln(os.Stderr, "bench: delete namespace:", err)
		}
	}()
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	// A veth pair stands for the uplink NIC (its peer stays down-stream
	// in the same namespace; nothing is sent).
	if err := nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up0p"}); err != nil {
		return fmt.Errorf("create up0: %w", err)
	}
	peer, err := nh.LinkByName("up0p")
	if err != nil {
		return err
	}
	if err := nh.LinkSetUp(peer); err != nil {
		return fmt.Errorf("up0p up: %w", err)
	}
	up, err := nh.LinkByName("up0")
	if err != nil {
		return err
	}
	if err := nh.AddrAdd(up, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("203.0.113.2").To4(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		return err
	}
	if err := nh.LinkSetUp(up); err != nil {
		return err
	}
	ifindex := up.Attrs().Index

	in, err := routing.NewInstaller(h, routing.Protocol)
	if err != nil {
		return err
	}
	defer in.Close()
	ctx := context.Background()
	var figures [][3]string
	fig := func(name string, v float64, unit string) {
		val := fmt.Sprintf("%.3f", v)
		if unit == "routes" || unit == "routes/s" {
			val = fmt.Sprintf("%.0f", v)
		}
		figures = append(figures, [3]string{name, val, unit})
	}
	check := func(want int) error {
		got, err := count(in)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("table %d holds %d routes, want %d", table, got, want)
		}
		return nil
	}

	rs := routes(n, 0, ifindex)
	fmt.Printf("installing %d routes (table %d, via %s) with routing.Installer…\n", n, table, gw)
	t0 := time.Now()
	if err := in.Add(ctx, rs); err != nil {
		return err
	}
	tInst := time.Since(t0)
	t0 = time.Now()
	if err := check(n); err != nil {
		return err
	}
	tDump := time.Since(t0)
	t0 = time.Now()
	res, err := in.Sync(ctx, table, rs)
	if err != nil || res.Added+res.Replaced+res.Deleted != 0 {
		return fmt.Errorf("sync of an unchanged table: %+v %v", res, err)
	}
	tSync := time.Since(t0)
	fmt.Println("withdrawing them with batched deletes…")
	t0 = time.Now()
	if err := in.Delete(ctx, rs); err != nil {
		return err
	}
	tDel := time.Since(t0)
	if err := check(0); err != nil {
		return err
	}
	fig("routes", float64(n), "routes")
	fig("installer_add", tInst.Seconds(), "s")
	fig("installer_add_rate", float64(n)/tInst.Seconds(), "routes/s")
	fig("installer_dump", tDump.Seconds(), "s")
	fig("installer_sync_unchanged", tSync.Seconds(), "s")
	fig("installer_delete", tDel.Seconds(), "s")

	if !skipIP {
		f, err := os.CreateTemp("", "routes-*.batch")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		w := bufio.NewWriterSize(f, 1<<20)
		for _, r := range rs {
			fmt.Fprintf(w, "route add %s via %s dev up0 table %d metric %d proto %d\n", r.Dst, gw, table, r.Metric, routing.Protocol)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		f.Close()
		fmt.Printf("installing the same %d routes with ip -batch…\n", n)
		t0 = time.Now()
		if out, err := exec.Command("ip", "-n", nsName, "-batch", f.Name()).CombinedOutput(); err != nil {
			return fmt.Errorf("ip -batch: %v: %s", err, out)
		}
		tIP := time.Since(t0)
		if err := check(n); err != nil {
			return err
		}
		fig("ip_batch_add", tIP.Seconds(), "s")
		fig("speedup_vs_ip_batch", tIP.Seconds()/tInst.Seconds(), "x")
		if err := in.Delete(ctx, rs); err != nil {
			return err
		}
	}

	fmt.Printf("installing %d routes through one nexthop object…\n", n)
	if err := in.AddNexthop(ctx, routing.Nexthop{ID: 1, Gw: netip.MustParseAddr(gw), Ifindex: ifindex}); err != nil {
		return err
	}
	rs = routes(n, 1, 0)
	t0 = time.Now()
	if err := in.Add(ctx, rs); err != nil {
		return err
	}
	tNH := time.Since(t0)
	if err := check(n); err != nil {
		return err
	}
	fmt.Println("withdrawing them by deleting the nexthop…")
	t0 = time.Now()
	if err := in.DeleteNexthop(ctx, 1); err != nil {
		return err
	}
	tWd := time.Since(t0)
	if err := check(0); err != nil {
		return err
	}
	fig("installer_add_nhid", tNH.Seconds(), "s")
	fig("nexthop_withdraw", tWd.Seconds(), "s")

	fmt.Println()
	for _, f := range figures {
		fmt.Println(f[0], f[1], f[2])
	}
	return nil
}
