package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
)

// FailpointEnv names an environment variable for end-to-end tests: when
// set to a file path and that file exists when an apply starts, the apply
// runs normally and then fails, once (the file is removed), for the
// tenant named in the file (if the configuration has it), as if the
// kernel had refused that tenant's changes. It exercises the restore path
// with a real kernel. A file holding "delay DURATION" instead makes the
// next apply take that much longer (a long reload), once.
const FailpointEnv = "FWD_FAILPOINT_FILE"

type failpointApplier struct {
	Applier
	path string
}

func withFailpoint(a Applier) Applier {
	if p := os.Getenv(FailpointEnv); p != "" {
		return &failpointApplier{Applier: a, path: p}
	}
	return a
}

func (f *failpointApplier) Apply(ctx context.Context, cfg *config.Config, dryRun bool) (*engine.Report, error) {
	if b, err := os.ReadFile(f.path); err == nil {
		if v, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "delay "); ok {
			if dl, err := time.ParseDuration(v); err == nil {
				os.Remove(f.path)
				time.Sleep(dl)
			}
		}
	}
	rep, err := f.Applier.Apply(ctx, cfg, dryRun)
	b, ferr := os.ReadFile(f.path)
	if err != nil || ferr != nil {
		return rep, err
	}
	name := strings.TrimSpace(string(b))
	if cfg.Tenant(name) == nil {
		return rep, err
	}
	os.Remove(f.path) // one shot: the restore that follows must work
	return rep, fmt.Errorf("tenant %q: failpoint: injected failure", name)
}
