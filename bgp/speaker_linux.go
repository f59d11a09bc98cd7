package bgp

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/osrg/gobgp/v3/pkg/server"
	"golang.org/x/sys/unix"
)

// SpeakerCommand is the hidden fwd subcommand that runs a speaker.
const SpeakerCommand = "bgp-speaker"

// SpeakerMain is the body of `fwd bgp-speaker`: one gobgp instance for one
// tenant. It must be started inside the tenant's network namespace (the
// Supervisor does that): every socket it opens, BGP or netlink, is then the
// tenant's. It serves gobgp's gRPC API on -socket and mirrors best paths
// into -table until SIGTERM/SIGINT; on exit it leaves its routes in the
// kernel for the next speaker to take over.
func SpeakerMain(args []string) int {
	fs := flag.NewFlagSet("fwd "+SpeakerCommand, flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant `name` (for logs)")
	sock := fs.String("socket", "", "gRPC API Unix socket `path`")
	table := fs.Int("table", 254, "kernel routing `table` for best paths")
	staleTimeout := fs.Duration("stale-timeout", 120*time.Second, "remove routes left by a previous speaker after this long even if not converged")
	watchPID := fs.Int("watch-pid", 0, "exit when this `pid` is gone (tests)")
	logFormat := fs.String("log-format", "text", "log `format`: text or json (the supervisor passes the daemon's)")
	logLevel := fs.String("log-level", "info", "lowest `level` logged: debug, info, warn or error")
	debug := fs.Bool("debug", false, "debug logging (same as -log-level debug)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *sock == "" {
		fmt.Fprintln(os.Stderr, "fwd bgp-speaker: -socket is required")
		return 2
	}
	if *debug {
		*logLevel = "debug"
	}
	root, err := newSpeakerLogger(os.Stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fwd bgp-speaker: %v\n", err)
		return 2
	}
	log := root.With("subsystem", "bgp", "tenant", *tenant, "pid", os.Getpid())

	// The API socket (and anything else we create) is for root only.
	unix.Umask(0o077)
	if err := os.MkdirAll(filepath.Dir(*sock), 0o700); err != nil {
		log.Error("run directory", "error", err)
		return 1
	}
	os.Remove(*sock)
	pidFile := filepath.Join(filepath.Dir(*sock), pidFileName)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		log.Error("pid file", "error", err)
		return 1
	}

	// Profiling for benchmarks: FWD_BGP_CPUPROFILE=FILE.
	if path := os.Getenv("FWD_BGP_CPUPROFILE"); path != "" {
		pf, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(pf)
		}
		if err != nil {
			log.Warn("cpu profile", "error", err)
		} else {
			defer pprof.StopCPUProfile()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := newFIB(log, *table)
	if err != nil {
		log.Error("netlink", "error", err)
		return 1
	}
	if err := f.loadStale(); err != nil {
		log.Error("read kernel routes", "error", err)
		return 1
	}
	go f.run(ctx)
	go f.publish(ctx, FIBStatusPath(filepath.Dir(*sock)))

	s := server.NewBgpServer(server.GrpcListenAddress("unix://"+*sock), server.LoggerOption(&fsmLogger{gobgpLogger: &gobgpLogger{log: log, level: gobgpLevel(log)}, peerDown: f.fsmPeerDown}))
	go s.Serve()
	if err := f.watch(ctx, s, *staleTimeout); err != nil {
		log.Error("watch best paths", "error", err)
		return 1
	}
	// gobgp creates the socket asynchronously with mode 0777&^umask;
	// make it exactly 0600 (connecting needs only write permission).
	go func() {
		for i := 0; i < 200; i++ {
			if os.Chmod(*sock, 0o600) == nil {
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	log.Info("speaker started", "socket", *sock, "table", *table)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// Heap profile for benchmarks: FWD_BGP_HEAPPROFILE=FILE, written on
	// SIGUSR1 (after a collection, so it shows what is live).
	if path := os.Getenv("FWD_BGP_HEAPPROFILE"); path != "" {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go func() {
			for range usr1 {
				if err := writeHeapProfile(path); err != nil {
					log.Warn("heap profile", "error", err)
				}
			}
		}()
	}
	var parentGone <-chan time.Time
	if *watchPID > 0 {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		parentGone = t.C
	}
	for {
		select {
		case v := <-sig:
			log.Info("stopping; routes stay in the kernel", "signal", v.String())
			s.Stop()
			os.Remove(*sock)
			os.Remove(pidFile)
			return 0
		case <-parentGone:
			if unix.Kill(*watchPID, 0) == unix.ESRCH {
				log.Info("watched process gone; stopping")
				s.Stop()
				return 0
			}
		}
	}
}

const pidFileName = "speaker.pid"

func writeHeapProfile(path string) error {
	runtime.GC()
	pf, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(pf); err != nil {
		pf.Close()
		return err
	}
	return pf.Close()
}
