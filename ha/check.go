package ha

import "strings"

// ConfigProblems picks the complaints out of `keepalived -t` output (it
// exits 0 on warnings, so the lines are what matters). With
// missingInterfaces, lines about interfaces that do not exist are not
// problems: outside the tenant's namespace they never do.
func ConfigProblems(out []byte, missingInterfaces bool) []string {
	var problems []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if missingInterfaces && (strings.Contains(l, "doesn't exist") || l == "Non-existent interface specified in configuration") {
			continue
		}
		problems = append(problems, l)
	}
	return problems
}
