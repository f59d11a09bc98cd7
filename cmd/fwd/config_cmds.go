package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/mgmt"
)

// loadConfig loads and validates; on failure it prints one line per
// problem (FILE:LINE:COL: key: message) and returns nil.
func loadConfig(path string) *config.Config {
	cfg, err := config.Load(path)
	if err != nil {
		if es, ok := err.(config.Errors); ok {
			for _, e := range es {
				fmt.Fprintln(os.Stderr, e.Error())
			}
		} else {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		}
		return nil
	}
	return cfg
}

func init() {
	c := &command{name: "check", args: "[-c FILE | FILE]", summary: "validate the configuration without touching the kernel"}
	c.run = func(args []string) int {
		var path string
		fs := flags(c, &path)
		quiet := fs.Bool("q", false, "print nothing when valid")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		if fs.NArg() == 1 {
			path = fs.Arg(0)
		} else if fs.NArg() > 1 {
			fs.Usage()
			return exitUsage
		}
		cfg := loadConfig(path)
		if cfg == nil {
			return exitFailure
		}
		if !*quiet {
			fmt.Printf("%s: valid (%d tenants)\n", path, len(cfg.Tenants))
		}
		return exitOK
	}
	register(c)

	p := &command{name: "plan", args: "[-c FILE] [-j] [--exit-code]", summary: "print what applying the configuration would change, and change nothing"}
	p.run = func(args []string) int {
		var path string
		fs := flags(p, &path)
		asJSON := fs.Bool("j", false, "JSON output")
		exitCode := fs.Bool("exit-code", false, "exit 3 when there are changes")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		cfg := loadConfig(path)
		if cfg == nil {
			return exitFailure
		}
		// plan prints its changes itself: the engine's log would repeat them.
		eng, err := engine.New(slog.New(slog.DiscardHandler))
		if err != nil {
			return fail("%v", err)
		}
		defer eng.Close()
		rep, err := eng.Apply(context.Background(), cfg, true)
		if err != nil {
			return fail("plan: %v", err)
		}
		removals := mgmt.RemovalsOf(rep.Changes)
		if *asJSON {
			printJSON(struct {
				*engine.Report
				Removals *mgmt.Removals `json:"removals"`
			}{rep, removals})
		} else {
			printRemovals(os.Stdout, removals, true)
			for _, w := range rep.Warnings {
				fmt.Println("warning:", w)
			}
			if len(rep.Changes) == 0 {
				fmt.Println("No changes: the kernel matches the configuration.")
			}
			for _, c := range rep.Changes {
				fmt.Println(c.String())
			}
			if len(rep.Changes) > 0 {
				fmt.Printf("%d changes.\n", len(rep.Changes))
			}
		}
		if *exitCode && len(rep.Changes) > 0 {
			return exitChanges
		}
		return exitOK
	}
	register(p)
}
