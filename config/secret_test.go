package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	if s, err := ReadSecretFile(write("ok", "tok\n", 0o600)); err != nil || s != "tok" {
		t.Fatalf("0600: %q %v", s, err)
	}
	if s, err := ReadSecretFile(write("ro", "tok\r\n", 0o400)); err != nil || s != "tok" {
		t.Fatalf("0400: %q %v", s, err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{{0o644, "has mode 0644: group and others must have no access (chmod 600)"},
		{0o640, "has mode 0640"}, {0o604, "has mode 0604"}, {0o620, "has mode 0620"}} {
		if _, err := ReadSecretFile(write("bad", "tok", tc.mode)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mode %04o: %v, want %q", tc.mode, err, tc.want)
		}
	}
	if _, err := ReadSecretFile(dir); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func TestBGPPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	neighbor := func(extra string) string {
		return bgpBase + "[tenant.edge.bgp]\nasn = 64512\n[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\n" + extra
	}
	cfg, err := Parse("t.toml", []byte(neighbor(`password_file = "`+pw+`"`+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.Tenant("edge").BGP.Neighbors[0]; n.Password != "from-a-file" || n.PasswordFile != pw {
		t.Fatalf("neighbour: %q %q", n.Password, n.PasswordFile)
	}
	// Decode alone reads nothing.
	if cfg, err := Decode("t.toml", []byte(neighbor(`password_file = "`+pw+`"`+"\n"))); err != nil || cfg.Tenant("edge").BGP.Neighbors[0].Password != "" {
		t.Fatalf("decode read the file: %v", err)
	}

	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, "long")
	if err := os.WriteFile(long, []byte(strings.Repeat("k", 81)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ extra, want string }{
		{`password_file = "` + open + `"`, "t.toml:17: tenant.edge.bgp.neighbor[0].password_file: " + open + " has mode 0644: group and others must have no access (chmod 600)"},
		{`password_file = "` + empty + `"`, "t.toml:17: tenant.edge.bgp.neighbor[0].password_file: " + empty + " is empty"},
		{`password_file = "` + long + `"`, "tenant.edge.bgp.neighbor[0].password_file: " + long + ": TCP MD5 keys are at most 80 bytes (got 81)"},
		{`password_file = "` + filepath.Join(dir, "missing") + `"`, "no such file or directory"},
		{`password_file = "pw"`, `t.toml:17: tenant.edge.bgp.neighbor[0].password_file: "pw" is not an absolute path`},
		{"password = \"x\"\npassword_file = \"" + pw + "\"", "t.toml:18: tenant.edge.bgp.neighbor[0].password_file: set password or password_file, not both"},
	} {
		_, err := Parse("t.toml", []byte(neighbor(tc.extra+"\n")))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.extra, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	const secret = "Very-Secret-Key"
	for _, tc := range []struct{ name, in, want string }{
		{"basic", "password = \"" + secret + "\"\n", "password = \"<redacted>\"\n"},
		{"literal", "password='" + secret + "' # key\n", "password=\"<redacted>\" # key\n"},
		{"quoted key", "\"password\" = \"" + secret + "\"\n", "\"password\" = \"<redacted>\"\n"},
		{"multiline", "password = \"\"\"" + secret + "\"\"\"\nasn = 1\n", "password = \"<redacted>\"\nasn = 1\n"},
		{"literal multiline", "password = '''" + secret + "'''\n", "password = \"<redacted>\"\n"},
		{"escaped", "password = \"Very\\u002dSecret\\\"-Key\"\n", "password = \"<redacted>\"\n"},
		{"inline table", "neighbor = [{ address = \"203.0.113.1\", password = \"" + secret + "\", asn = 1 }]\n",
			"neighbor = [{ address = \"203.0.113.1\", password = \"<redacted>\", asn = 1 }]\n"},
		{"not toml", "password = " + secret + "\n", "password = \"<redacted>\"\n"},
		{"other keys kept", "description = \"password\"\npassword_file = \"/etc/fwd/pw\"\n", "description = \"password\"\npassword_file = \"/etc/fwd/pw\"\n"},
		{"comment", "# was " + secret + "\npassword = \"" + secret + "\"\n", "# was <redacted>\npassword = \"<redacted>\"\n"},
	} {
		if got := string(Redact([]byte(tc.in))); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// A real file: valid after redaction, nothing else changed.
	in := bgpBase + "[tenant.edge.bgp]\nasn = 64512\n[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\npassword = \"" + secret + "\"\n"
	out := string(Redact([]byte(in)))
	if strings.Contains(out, secret) || out != strings.Replace(in, secret, Redacted, 1) {
		t.Fatalf("redacted:\n%s", out)
	}
	if _, err := Parse("t.toml", []byte(out)); err != nil {
		t.Fatalf("redacted file does not parse: %v", err)
	}
}

// TestSecretNotInErrors: a malformed password is reported without being
// quoted (errors are logged and printed).
func TestSecretNotInErrors(t *testing.T) {
	for _, v := range []string{"Sekr1tValue", "4242424242", `"Sekr1t\qValue"`} {
		_, err := Parse("t.toml", []byte("[[tenant.e.bgp.neighbor]]\npassword = "+v+"\n"))
		if err == nil || !strings.Contains(err.Error(), "password") {
			t.Fatalf("%s: %v", v, err)
		}
		for _, part := range []string{"Sekr1t", "Value", "4242424242"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: the error quotes the value: %v", v, err)
			}
		}
	}
}
