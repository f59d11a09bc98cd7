package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const explainFixture = "../../explain/testdata/fw.toml"

// Flags may follow the tenant; -j gives the verdict field.
func TestExplainCommand(t *testing.T) {
	c := newExplainCommand()
	var out bytes.Buffer
	code := runExplain(c, []string{"-c", explainFixture, "fw", "--in", "wan0", "--src", "203.0.113.2", "--dst", "203.0.113.1", "--proto", "tcp", "--dport", "8080", "-j"}, &out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	var v struct {
		Verdict string `json:"verdict"`
		Rule    struct {
			ID   string `json:"id"`
			Line int    `json:"line"`
		} `json:"rule"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Verdict != "accept" || v.Rule.ID != "web" || v.Rule.Line == 0 {
		t.Fatalf("%s", out.String())
	}
	out.Reset()
	code = runExplain(c, []string{"fw", "-c", explainFixture, "--in", "lan0", "--src", "192.0.2.10", "--dst", "198.51.100.10", "--proto", "udp", "--dport", "22"}, &out)
	if code != exitOK || !strings.Contains(out.String(), "REJECT (icmp port-unreachable)") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

func TestExplainCommandUsage(t *testing.T) {
	c := newExplainCommand()
	for _, args := range [][]string{
		{"-c", explainFixture, "fw", "--in", "lan0", "--src", "nope", "--dst", "192.0.2.1"},
		{"-c", explainFixture, "--in", "lan0", "--src", "192.0.2.10", "--dst", "192.0.2.1"},
		{"-c", explainFixture, "fw", "--in", "lan0", "--src", "192.0.2.10", "--dst", "192.0.2.1", "--dport", "70000"},
	} {
		if code := runExplain(c, args, &bytes.Buffer{}); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
