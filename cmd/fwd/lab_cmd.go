package main

import (
	"errors"

	"github.com/fwdproject/fwd/lab"
)

func init() {
	l := &command{name: "lab", args: "[-c FILE] [--check] [--shell] [--log-format text|json] [--debug]", summary: "build a self-contained lab in a private sandbox and run the daemon in it"}
	l.run = func(args []string) int {
		fs := flags(l, nil)
		cfgPath := fs.String("c", "", "lab configuration `file` (default: the embedded configs/lab.toml)")
		check := fs.Bool("check", false, "run the connectivity checks and exit (0 if all pass)")
		shell := fs.Bool("shell", false, "open a shell inside the sandbox once the lab is up")
		logger := logFlags(fs)
		if code := parse(fs, args); code >= 0 {
			return code
		}
		err := lab.Run(lab.Options{ConfigPath: *cfgPath, Check: *check, Shell: *shell, Log: logger("")})
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, lab.ErrChecksFailed):
			return exitFailure // the lab printed which
		}
		return fail("lab: %v", err)
	}
	register(l)
}
