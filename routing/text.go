package routing

import (
	"fmt"
	"strings"

	"github.com/fwdproject/fwd/config"
)

func ruleText(r Rule, t *config.Tenant) string {
	s := r.String()
	if t != nil {
		s = s[:len(s)-len(fmt.Sprint(r.Table))] + t.Routing.TableName(r.Table)
	}
	return s
}

// routeText renders a route with interface and table names.
func routeText(r *Route, t *config.Tenant, byIndex map[int]string) string {
	c := *r
	c.NextHops = append([]NextHop(nil), r.NextHops...)
	for i := range c.NextHops {
		if c.NextHops[i].Dev == "" {
			c.NextHops[i].Dev = byIndex[c.NextHops[i].Ifindex]
		}
	}
	s := c.String()
	if t != nil && c.Table != 254 {
		s = replaceTable(s, c.Table, t.Routing.TableName(c.Table))
	}
	return s
}

func replaceTable(s string, id uint32, name string) string {
	old := fmt.Sprintf(" table %d", id)
	if i := strings.Index(s+" ", old+" "); i >= 0 {
		return s[:i] + " table " + name + s[i+len(old):]
	}
	return s
}
