package configs

import (
	"io/fs"
	"testing"

	"github.com/fwdproject/fwd/config"
)

// Every example is a configuration `fwd check` accepts.
func TestExamplesValid(t *testing.T) {
	files, err := fs.Glob(FS, "*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		if _, err := config.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
