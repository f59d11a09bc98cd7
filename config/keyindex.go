package config

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// keyIndex maps dotted key paths to the line that defines them. The TOML
// decoder keeps positions private, so we index the file ourselves: table
// headers, array-of-table headers and key assignments. Semantic errors then
// carry a line as well as the key path.
type keyIndex map[string]int

var (
	reHeader = regexp.MustCompile(`^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$`)
	reAssign = regexp.MustCompile(`^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=`)
)

func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		case c == ' ' || c == '\t':
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

func buildKeyIndex(data []byte) keyIndex {
	idx := keyIndex{}
	table := ""
	arrays := map[string]int{}
	inMultiline := false
	for n, line := range strings.Split(string(data), "\n") {
		lineNo := n + 1
		if c := strings.Count(line, `"""`) + strings.Count(line, `'''`); c%2 == 1 {
			inMultiline = !inMultiline
			if !inMultiline {
				continue
			}
		}
		if inMultiline {
			continue
		}
		if m := reHeader.FindStringSubmatch(line); m != nil {
			path := strings.Join(splitKey(m[2]), ".")
			if m[1] == "[[" {
				i := arrays[path]
				arrays[path] = i + 1
				path = path + "[" + strconv.Itoa(i) + "]"
			}
			table = path
			if _, ok := idx[table]; !ok {
				idx[table] = lineNo
			}
			continue
		}
		if m := reAssign.FindStringSubmatch(line); m != nil {
			key := strings.Join(splitKey(m[1]), ".")
			if table != "" {
				key = table + "." + key
			}
			if _, ok := idx[key]; !ok {
				idx[key] = lineNo
			}
		}
	}
	return idx
}

// line returns the line of key, of its first descendant (a table defined
// only through sub-tables), or of its nearest ancestor that has one.
func (idx keyIndex) line(key string) int {
	if l, ok := idx[key]; ok {
		return l
	}
	first := 0
	for k, l := range idx {
		if strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
			if first == 0 || l < first {
				first = l
			}
		}
	}
	if first > 0 {
		return first
	}
	for k := key; k != ""; {
		if l, ok := idx[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

var reIndex = regexp.MustCompile(`\[\d+\]`)

// expand finds the indexed paths of a key the decoder names without array
// indexes (MetaData.Undecoded says "tenant.a.rule.dports" for the key in
// "[[tenant.a.rule]]" number 3): each occurrence, in file order.
func (idx keyIndex) expand(key string) []string {
	if _, ok := idx[key]; ok {
		return []string{key}
	}
	var found []string
	for k := range idx {
		if strings.Contains(k, "[") && reIndex.ReplaceAllString(k, "") == key {
			found = append(found, k)
		}
	}
	sort.Slice(found, func(i, j int) bool { return idx[found[i]] < idx[found[j]] })
	if len(found) == 0 {
		return []string{key}
	}
	return found
}
