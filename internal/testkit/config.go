package testkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fwdproject/fwd/config"
)

// Config parses text as the file fwd.toml in a fresh temporary directory
// (so relative set files written with WriteFile next to it resolve) and
// fails the test if it does not validate.
func Config(t testing.TB, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fwd.toml")
	return ConfigAt(t, path, text)
}

// ConfigAt writes text to path and parses it.
func ConfigAt(t testing.TB, path, text string) *config.Config {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config:\n%s\n%v", text, err)
	}
	return cfg
}

// WriteFile writes content to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
