package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/daemon"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/mgmt"
)

func init() {
	r := &command{name: "run", args: "[-c FILE] [--log-format text|json] [--debug] [--socket PATH] [--revision-dir DIR] [--metrics-listen ADDR]", summary: "run the daemon: apply the configuration, serve the API and metrics, reload on SIGHUP, exit on SIGTERM without tearing down"}
	r.run = func(args []string) int {
		var path string
		fs := flags(r, &path)
		logger := logFlags(fs)
		pidFile := fs.String("pid-file", daemon.DefaultPidFile, "pid `file`")
		socket := fs.String("socket", "", "API Unix `socket` (default: mgmt.socket, else "+config.DefaultSocket+")")
		revDir := fs.String("revision-dir", "", "revision `directory` (default: mgmt.revision_dir, else "+config.DefaultRevisionDir+")")
		metrics := fs.String("metrics-listen", "", "metrics `address` host:port or off (default: mgmt.metrics_listen, else "+config.DefaultMetricsListen+")")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		format := ""
		if cfg, err := config.Load(path); err == nil {
			format = cfg.Mgmt.LogFormat
		}
		log := logger(format)
		err := daemon.Run(context.Background(), daemon.Options{
			ConfigPath: path, PidFile: *pidFile, Log: log,
			Socket: *socket, RevisionDir: *revDir, MetricsListen: *metrics,
		})
		if err != nil {
			if !errors.Is(err, daemon.ErrInvalidConfig) {
				log.Error("fwd stopped", "error", err)
			}
			return exitFailure
		}
		return exitOK
	}
	register(r)

	rl := &command{name: "reload", args: "[-c FILE] [--confirm DURATION] [--allow-empty] [--rehearse] [--kill-denied] [-j] [--socket PATH]", summary: "ask the running daemon to re-read and apply its configuration, and print what changed or why not"}
	rl.run = func(args []string) int {
		var path string
		fs := flags(rl, &path)
		pidFile := fs.String("pid-file", daemon.DefaultPidFile, "daemon pid `file` (used only when the API socket does not answer)")
		socket := socketFlag(fs)
		confirm := fs.Duration("confirm", 0, "roll back automatically unless 'fwd confirm' arrives within this `duration` (e.g. 2m)")
		allowEmpty := fs.Bool("allow-empty", false, "apply a configuration without tenants even though it removes every tenant and hands back every NIC")
		asJSON := fs.Bool("j", false, "JSON output")
		extra := reloadFlags(fs) // flows_cmd.go
		if code := parse(fs, args); code >= 0 {
			return code
		}
		if *confirm < 0 || (*confirm > 0 && *confirm < time.Second) {
			return fail("--confirm must be at least 1s")
		}
		c := mgmt.Dial(*socket)
		ctx := context.Background()
		st, err := c.Status(ctx)
		if err != nil {
			if extra.KillDenied || extra.Rehearse {
				return fail("the daemon's API does not answer (%v); --kill-denied and --rehearse need it", err)
			}
			return reloadBySignal(path, *pidFile, *confirm, *allowEmpty, err)
		}
		if flagSet(fs, "c") && !samePath(path, st.ConfigFile) {
			return fail("the daemon runs with %s, not %s", st.ConfigFile, path)
		}
		res, err := c.Reload(ctx, mgmt.ReloadRequest{ConfirmSeconds: int((*confirm + time.Second - 1) / time.Second), AllowEmpty: *allowEmpty,
			KillDenied: extra.KillDenied, Rehearse: extra.Rehearse})
		if err != nil {
			return fail("reload: %v", err)
		}
		return printResult(res, *asJSON)
	}
	register(rl)

	td := &command{name: "teardown", args: "[-c FILE] [-y] [--force] [--log-format text|json] [--debug]", summary: "hand every NIC back to the default namespace and remove fwd's namespaces (and what an interrupted namespace creation left)"}
	td.run = func(args []string) int {
		var path string
		fs := flags(td, &path)
		yes := fs.Bool("y", false, "do not ask for confirmation")
		force := fs.Bool("force", false, "tear down even while a daemon answers on its socket")
		socket := fs.String("socket", config.DefaultSocket, "daemon API `socket`")
		logger := logFlags(fs)
		if code := parse(fs, args); code >= 0 {
			return code
		}
		// A running daemon would re-create what teardown removes (and its
		// BGP supervisor would restart the speakers teardown stops).
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, apiErr := mgmt.Dial(*socket).Status(ctx)
		cancel()
		if apiErr == nil && !*force {
			return fail("the fwd daemon is running (it answers on %s): stop it first (systemctl stop fwd), or use --force", *socket)
		}
		if !*yes {
			fmt.Fprint(os.Stderr, "This removes every fwd tenant namespace and hands its NICs back. Continue? [y/N] ")
			var ans string
			_, _ = fmt.Scanln(&ans) // no answer is no
			if ans != "y" && ans != "Y" && ans != "yes" {
				return exitFailure
			}
		}
		eng, err := engine.New(logger(""))
		if err != nil {
			return fail("%v", err)
		}
		defer eng.Close()
		// The configuration, when readable, names the tenants whose
		// leftover pins (an interrupted creation) teardown removes too.
		var names []string
		if cfg, err := config.Load(path); err == nil {
			for _, t := range cfg.Tenants {
				names = append(names, t.Name)
			}
		}
		rep, err := eng.Teardown(context.Background(), names)
		for _, c := range rep.Changes {
			fmt.Println(c.String())
		}
		if err != nil {
			return fail("teardown: %v", err)
		}
		fmt.Printf("%d changes; fwd's namespaces are gone.\n", len(rep.Changes))
		return exitOK
	}
	register(td)
}

// reloadBySignal is the fallback when the API does not answer (a daemon
// from before the API): validate here, then SIGHUP, only a process the
// pid file proves to be the fwd daemon (PID and start time, program).
func reloadBySignal(path, pidFile string, confirm time.Duration, allowEmpty bool, apiErr error) int {
	pid, err := daemon.DaemonPID(pidFile)
	if err != nil {
		return fail("no running daemon: API: %v; %v", apiErr, err)
	}
	if confirm > 0 || allowEmpty {
		return fail("the daemon's API does not answer (%v); --confirm and --allow-empty need it", apiErr)
	}
	if loadConfig(path) == nil {
		return exitFailure
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fail("signal daemon pid %d: %v", pid, err)
	}
	fmt.Printf("API unreachable (%v); reload requested from fwd daemon (pid %d) by SIGHUP; see its log for the result\n", apiErr, pid)
	return exitOK
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && filepath.Clean(aa) == filepath.Clean(bb)
}
