package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected first error of every testdata/bad file")

// TestBadCorpus loads every testdata/bad/*.toml: each must be refused,
// and the first error line must be exactly its sibling .err file.
// -update rewrites the .err files (review the diff: it is the spec).
func TestBadCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 80 {
		t.Fatalf("only %d bad configurations", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		t.Run(name, func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatalf("%s accepted", f)
			}
			got, _, _ := strings.Cut(err.Error(), "\n")
			errFile := strings.TrimSuffix(f, ".toml") + ".err"
			if *update {
				if err := os.WriteFile(errFile, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(errFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != strings.TrimSuffix(string(want), "\n") {
				t.Errorf("first error\n got %s\nwant %s", got, want)
			}
		})
	}
}
