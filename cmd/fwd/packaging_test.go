package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// withCommand registers a throwaway command for one test, so the tests
// prove the man page and completion follow the registry.
func withCommand(t *testing.T, c *command) {
	t.Helper()
	saved := commands
	t.Cleanup(func() { commands = saved })
	commands = append(append([]*command(nil), commands...), c)
}

func fakeCommand() *command {
	c := &command{name: "frobnicate", args: "[-c FILE] [--mode fast|slow] [-n] TENANT", summary: "frobnicate a tenant"}
	c.run = func(args []string) int {
		var path string
		fs := flags(c, &path)
		fs.String("mode", "fast", "how to frobnicate: fast or slow")
		fs.Bool("n", false, "dry run\nsecond line")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		panic("describe must only ever run commands with -h")
	}
	return c
}

func manPage(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	writeMan(&b, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	return b.String()
}

func TestManPageFollowsRegistry(t *testing.T) {
	withCommand(t, fakeCommand())
	page := manPage(t)
	for _, want := range []string{
		`.TH FWD 8 "2026-01-02"`,
		`.SS "fwd frobnicate [\-c FILE] [\-\-mode fast|slow] [\-n] TENANT"`,
		"frobnicate a tenant.\n",
		`.BI "\-\-mode" " string"` + "\nhow to frobnicate: fast or slow (default \\(dqfast\\(dq).\n",
		".B \"\\-n\"\ndry run.\n.br\nsecond line.\n",
		`.BI "\-c" " file"`,
		".SH EXIT STATUS\n0 success",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	for _, c := range commands {
		head := `.SS "fwd ` + c.name
		if c.hidden && strings.Contains(page, head) {
			t.Errorf("hidden command %q is in the man page", c.name)
		}
		if !c.hidden && !strings.Contains(page, head) {
			t.Errorf("command %q is missing from the man page", c.name)
		}
	}
}

func TestManPageIsCleanRoff(t *testing.T) {
	page := manPage(t)
	for i, line := range strings.Split(page, "\n") {
		for _, r := range line {
			if r > 127 {
				t.Errorf("line %d: raw non-ASCII %q (escape it as \\[uXXXX]): %s", i+1, r, line)
			}
		}
		if strings.HasPrefix(line, "'") {
			t.Errorf("line %d starts with a control character: %s", i+1, line)
		}
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("groff not installed: roff not checked by groff")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff warns: %v\n%s", err, out)
	}
}

func TestCompletionSpec(t *testing.T) {
	s := completionSpec(describe(fakeCommand()))
	if got, want := strings.Join(s.flags, " "), "-c --mode -n"; got != want {
		t.Errorf("flags = %q, want %q", got, want)
	}
	if s.argFlags["-c"] != "file" || s.argFlags["--mode"] != "fast|slow" || len(s.argFlags) != 2 {
		t.Errorf("argFlags = %v", s.argFlags)
	}
	if fmt.Sprint(s.forms) != "[[TENANT]]" {
		t.Errorf("forms = %v, want [[TENANT]]", s.forms)
	}
	for _, tc := range []struct{ args, flags, forms string }{
		{"[-c FILE | FILE]", "-c", "[[FILE]]"},
		{"TENANT -- COMMAND [ARG…]", "-c", "[[TENANT -- COMMAND ARG…]]"},
		{"show [-j] [TENANT] | routes [-j] TENANT [PREFIX|ADDRESS]", "-c -j", "[[show TENANT] [routes TENANT PREFIX|ADDRESS]]"},
	} {
		s := completionSpec(cmdDoc{name: "x", args: tc.args, flags: []flagDoc{{name: "c", arg: "file"}}})
		if got := strings.Join(s.flags, " "); got != tc.flags {
			t.Errorf("%q: flags = %q, want %q", tc.args, got, tc.flags)
		}
		if got := fmt.Sprint(s.forms); got != tc.forms {
			t.Errorf("%q: forms = %s, want %s", tc.args, got, tc.forms)
		}
	}
}

// TestBashCompletion sources the script in bash and asks it to complete.
func TestBashCompletion(t *testing.T) {
	withCommand(t, fakeCommand())
	sub := &command{name: "sub", args: "show [-j] [TENANT] | routes [-j] TENANT [text|json]", summary: "subcommands"}
	sub.run = func(args []string) int { return exitOK }
	withCommand(t, sub)
	var script bytes.Buffer
	writeBashCompletion(&script)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	if out, err := exec.Command(bash, "-n", "-c", script.String()).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	complete := func(line string) string {
		t.Helper()
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		prog := script.String() + "\nCOMP_WORDS=("
		for _, w := range words {
			prog += "'" + w + "' "
		}
		prog += ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_fwd\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", line, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct{ line, want string }{
		{"fwd ch", "check"},
		{"fwd fr", "frobnicate"},
		{"fwd check -", "-c -q"},
		{"fwd frobnicate --mode ", "fast slow"},
		{"fwd frobnicate --mode s", "slow"},
		{"fwd frobnicate -c /no/such/dir/x -", "-c --mode -n"},
		{"fwd help pl", "plan"},
		{"fwd run --log-format j", "json"},
		{"fwd exec t1 -", "--"},
		{"fwd nosuch -", ""},
		{"fwd sub ", "show routes"},
		{"fwd sub r", "routes"},
		{"fwd sub -", "-j"},
		{"fwd sub routes -j t1 ", "text json"},
		{"fwd sub show -j t1 ", ""},
	} {
		if got := complete(tc.line); got != tc.want {
			t.Errorf("complete %q = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestCompletionCommandUsage(t *testing.T) {
	c := lookup("completion")
	if c == nil || !c.hidden {
		t.Fatal("completion must be a registered hidden command")
	}
	var code int
	out := captureOutput(func() { code = c.run([]string{"zsh"}) })
	if code != exitUsage || !strings.Contains(out, "Usage: fwd completion bash") {
		t.Errorf("fwd completion zsh: code %d, output %q", code, out)
	}
	out = captureOutput(func() { code = c.run([]string{"bash"}) })
	if code != exitOK || !strings.Contains(out, "complete -F _fwd fwd") {
		t.Errorf("fwd completion bash: code %d", code)
	}
	if m := lookup("man"); m == nil || !m.hidden {
		t.Fatal("man must be a registered hidden command")
	}
}
