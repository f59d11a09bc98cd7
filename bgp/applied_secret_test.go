package bgp

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAppliedHoldsNoPassword: the record written to applied.json tells
// a changed TCP MD5 key apart without holding the key.
func TestAppliedHoldsNoPassword(t *testing.T) {
	const secret = "Upstream-MD5-Key"
	withPw := func(pw string) string {
		return strings.Replace(planBase, "asn = 64513\n", "asn = 64513\npassword = \""+pw+"\"\n", 1)
	}
	b := planBGP(t, withPw(secret))
	rec := recordAll(nil, planConfig(nil, b, desiredAnnounce(b, nil)))
	js, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), secret) {
		t.Fatalf("applied.json holds the password: %s", js)
	}
	if got := names(planConfig(rec, b, desiredAnnounce(b, nil))); got != "" {
		t.Fatalf("same key re-planned: %s", got)
	}
	b2 := planBGP(t, withPw(secret+"2"))
	if got := names(planConfig(rec, b2, desiredAnnounce(b2, nil))); got != "reset-neighbor neighbor 203.0.113.1" {
		t.Fatalf("changed key: %q", got)
	}
}
