package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/daemon"
	"github.com/fwdproject/fwd/internal/engine"
)

func init() {
	r := &command{name: "run", args: "[-c FILE] [--log-format text|json] [--debug]", summary: "run the daemon: apply the configuration, reload on SIGHUP, exit on SIGTERM without tearing down"}
	r.run = func(args []string) int {
		var path string
		fs := flags(r, &path)
		logFormat := fs.String("log-format", "text", "log format: text or json")
		debug := fs.Bool("debug", false, "debug logging")
		pidFile := fs.String("pid-file", daemon.DefaultPidFile, "pid `file` used by 'fwd reload'")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		level := slog.LevelInfo
		if *debug {
			level = slog.LevelDebug
		}
		log := newLogger(*logFormat, level)
		err := daemon.Run(context.Background(), daemon.Options{ConfigPath: path, PidFile: *pidFile, Log: log})
		if err != nil {
			if !errors.Is(err, daemon.ErrInvalidConfig) {
				log.Error("fwd stopped", "error", err)
			}
			return exitFailure
		}
		return exitOK
	}
	register(r)

	rl := &command{name: "reload", args: "[-c FILE]", summary: "validate the configuration, then ask the running daemon to apply it (SIGHUP)"}
	rl.run = func(args []string) int {
		var path string
		fs := flags(rl, &path)
		pidFile := fs.String("pid-file", daemon.DefaultPidFile, "daemon pid `file`")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		// Validate first so the operator sees errors here, not in the log.
		if loadConfig(path) == nil {
			return exitFailure
		}
		pid, err := daemon.ReadPid(*pidFile)
		if err != nil {
			return fail("no running daemon (%v)", err)
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return fail("signal daemon pid %d: %v", pid, err)
		}
		fmt.Printf("reload requested from fwd daemon (pid %d); see its log for the result\n", pid)
		return exitOK
	}
	register(rl)

	td := &command{name: "teardown", args: "[-y]", summary: "hand every NIC back to the default namespace and remove fwd's namespaces"}
	td.run = func(args []string) int {
		fs := flags(td, nil)
		yes := fs.Bool("y", false, "do not ask for confirmation")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		if !*yes {
			fmt.Fprint(os.Stderr, "This removes every fwd tenant namespace and hands its NICs back. Continue? [y/N] ")
			var ans string
			fmt.Scanln(&ans)
			if ans != "y" && ans != "Y" && ans != "yes" {
				return exitFailure
			}
		}
		eng, err := engine.New(newLogger("text", slog.LevelInfo))
		if err != nil {
			return fail("%v", err)
		}
		defer eng.Close()
		rep, err := eng.Apply(context.Background(), &config.Config{}, false)
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
