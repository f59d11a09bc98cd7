package config

// Secrets: files that hold one (the API token, BGP passwords) and the
// redaction of the ones written inline in a config file.

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
)

// maxSecretFileBytes bounds a secret file: a token or a TCP MD5 key.
const maxSecretFileBytes = 4096

// ReadSecretFile reads a file holding a secret and returns its content
// without the trailing line break. The file must be a regular file owned
// by root or by the caller, with no permission for group or others: a
// secret another user can read is no longer one, and one another user can
// write is theirs.
func ReadSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o: group and others must have no access (chmod 600)", path, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("%s is owned by uid %d: it must belong to root", path, st.Uid)
	}
	if fi.Size() > maxSecretFileBytes {
		return "", fmt.Errorf("%s is %d bytes, more than a secret file holds (%d)", path, fi.Size(), maxSecretFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// readPasswordFiles reads the password_file of every BGP neighbour.
func readPasswordFiles(cfg *Config, rep *report) {
	for _, t := range cfg.Tenants {
		if t.BGP == nil {
			continue
		}
		for _, n := range t.BGP.Neighbors {
			if n.PasswordFile == "" {
				continue
			}
			pw, err := ReadSecretFile(n.PasswordFile)
			switch {
			case err != nil:
			case pw == "":
				err = fmt.Errorf("%s is empty", n.PasswordFile)
			case len(pw) > maxMD5KeyBytes:
				err = fmt.Errorf("%s: TCP MD5 keys are at most %d bytes (got %d)", n.PasswordFile, maxMD5KeyBytes, len(pw))
			}
			if err != nil {
				rep.add(&Error{File: rep.file, Line: n.passwordLine, Key: n.Key + ".password_file", Msg: err.Error()})
				continue
			}
			n.Password = pw
		}
	}
}

// reQuotedOrValue matches what an error message may quote of a value: a
// quoted string or the value after its type ("got an integer (123)").
var reQuotedOrValue = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'|\b(an? [a-z-]+) \([^)]*\)`)

// scrubSecret removes from a problem at a secret key whatever the message
// quotes of the value: errors are logged and printed.
func scrubSecret(e *Error) {
	k := e.Key
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		k = k[i+1:]
	}
	if j := strings.IndexByte(k, '['); j >= 0 {
		k = k[:j]
	}
	if secretKeys[k] {
		e.Msg = reQuotedOrValue.ReplaceAllStringFunc(e.Msg, func(m string) string {
			if sub := reQuotedOrValue.FindStringSubmatch(m); sub[1] != "" {
				return sub[1] // "an integer"
			}
			return Redacted
		})
	}
}

// Redacted replaces every secret Redact removes.
const Redacted = "<redacted>"

// secretKeys are the keys whose values Redact removes.
var secretKeys = map[string]bool{"password": true}

// Redact returns a config file with the value of every secret key
// (password) replaced by "<redacted>", keeping everything else as
// written, so that a stored revision can be shown or diffed. A value the
// scanner misses (a key spelt in a way it does not follow) is still
// caught: every secret the TOML decoder finds is then replaced wherever
// it appears, comments included.
func Redact(data []byte) []byte {
	out := redactValues(data)
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		return out
	}
	for _, s := range secretValues(tree, nil) {
		// Short values would match ordinary text: the scanner replaced
		// them where they are the value of a secret key.
		if len(s) >= 4 {
			out = bytes.ReplaceAll(out, []byte(s), []byte(Redacted))
		}
	}
	return out
}

// secretValues returns the string values of secret keys anywhere in v.
func secretValues(v any, acc []string) []string {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && secretKeys[k] && s != Redacted {
				acc = append(acc, s)
				continue
			}
			acc = secretValues(x, acc)
		}
	case []map[string]any:
		for _, x := range v {
			acc = secretValues(x, acc)
		}
	case []any:
		for _, x := range v {
			acc = secretValues(x, acc)
		}
	}
	return acc
}

// redactValues scans TOML text and replaces the value after each
// `KEY =` whose last key part is a secret key with "<redacted>".
func redactValues(data []byte) []byte {
	var out bytes.Buffer
	var lastKey string // the last key part seen since the last value
	secret := false    // the next value is a secret's
	i := 0
	for i < len(data) {
		c := data[i]
		switch {
		case c == '#':
			j := bytes.IndexByte(data[i:], '\n')
			if j < 0 {
				j = len(data) - i
			}
			out.Write(data[i : i+j])
			i += j
		case c == '=':
			secret = secretKeys[lastKey]
			lastKey = ""
			out.WriteByte(c)
			i++
		case c == '"' || c == '\'':
			j := stringEnd(data, i)
			tok := data[i:j]
			if secret {
				out.WriteString(`"` + Redacted + `"`)
				secret = false
			} else {
				out.Write(tok)
				lastKey = strings.Trim(string(tok), `"'`)
			}
			i = j
		case isBareKeyByte(c) || c == '+' || c == '.' || c == ':':
			j := i
			for j < len(data) && (isBareKeyByte(data[j]) || data[j] == '+' || data[j] == ':') {
				j++
			}
			if j == i { // a lone '.' between key parts
				out.WriteByte(c)
				i++
				continue
			}
			if secret {
				out.WriteString(`"` + Redacted + `"`)
				secret = false
			} else {
				out.Write(data[i:j])
				lastKey = string(data[i:j])
			}
			i = j
		default:
			if c == '\n' || c == ',' || c == '{' || c == '[' || c == ']' || c == '}' {
				lastKey = ""
			}
			out.WriteByte(c)
			i++
		}
	}
	return out.Bytes()
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// stringEnd returns the index after the TOML string starting at i: basic
// or literal, single- or multi-line. An unterminated string ends with the
// line (single-line) or the data (multi-line).
func stringEnd(data []byte, i int) int {
	q := data[i]
	escapes := q == '"'
	if bytes.HasPrefix(data[i:], []byte{q, q, q}) {
		j := i + 3
		for j < len(data) {
			if escapes && data[j] == '\\' {
				j += 2
				continue
			}
			if bytes.HasPrefix(data[j:], []byte{q, q, q}) {
				j += 3
				for k := 0; k < 2 && j < len(data) && data[j] == q; k++ {
					j++ // up to two quotes may end the content
				}
				return j
			}
			j++
		}
		return len(data)
	}
	j := i + 1
	for j < len(data) && data[j] != '\n' {
		if escapes && data[j] == '\\' {
			j += 2
			continue
		}
		if data[j] == q {
			return j + 1
		}
		j++
	}
	return min(j, len(data))
}
