package config

import (
	"strings"
	"testing"
)

func TestBGPPolicyValid(t *testing.T) {
	cfg, err := Parse("t.toml", []byte(bgpBase+`
[tenant.edge.bgp]
asn = 64512

[tenant.edge.bgp.prefix_list.customers]
prefixes = ["198.18.0.0/24 le 28", "2001:db8:200::/48 le 56"]

[tenant.edge.bgp.as_path_list.bad]
as_paths = ["_64666_", "^64600 64601$"]

[[tenant.edge.bgp.neighbor]]
address = "203.0.113.1"
asn = 64513
import = { allow_prefix_list = ["customers"], allow_community = ["64513:*", "64513:1:*"], deny_as_path_list = ["bad"], deny_community = ["blackhole"], local_pref = 120, remove_community = ["64512:*"], rule = [{ community = ["64513:80"], local_pref = 80 }, { prefix = ["198.18.0.0/26 le 28"], prefix_list = ["customers"], as_path = ["^64513_"], med = 5, add_community = ["64512:1:2"] }] }
export = { allow = ["198.51.100.0/24"], prepend = 2, med = 10, add_community = ["64512:100", "no-export"] }

[[tenant.edge.bgp.neighbor]]
address = "203.0.113.5"
asn = 64512
export = { local_pref = 50, allow_prefix_list = ["customers"] }

[tenant.edge.bgp.neighbor.import]
deny_prefix_list = ["customers"]
deny_as_path = ["_64666$"]

[[tenant.edge.bgp.neighbor.import.rule]]
community = ["64512:7:8"]
remove_community = ["64512:7:8"]
add_community = ["64512:9"]
`))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Tenant("edge").BGP
	if len(b.PrefixLists) != 1 || b.PrefixLists[0].Name != "customers" || len(b.PrefixLists[0].Prefixes) != 2 ||
		len(b.ASPathLists) != 1 || len(b.ASPathLists[0].ASPaths) != 2 {
		t.Fatalf("lists: %+v %+v", b.PrefixLists, b.ASPathLists)
	}
	imp := b.Neighbors[0].Import
	if len(imp.Allow.Prefixes) != 2 || imp.Allow.PrefixLists[0] != "customers" || len(imp.Allow.Communities) != 2 ||
		imp.Allow.Communities[0].String() != "64513:*" || !imp.Allow.Communities[1].Large || !imp.Allow.Communities[1].Any[2] {
		t.Errorf("import allow: %+v", imp.Allow)
	}
	if len(imp.Deny.ASPaths) != 2 || imp.Deny.Communities[0].String() != "65535:666" {
		t.Errorf("import deny: %+v", imp.Deny)
	}
	if !imp.Set.HasLocalPref || imp.Set.LocalPref != 120 || imp.Set.RemoveCommunities[0].String() != "64512:*" {
		t.Errorf("import set: %+v", imp.Set)
	}
	if len(imp.Rules) != 2 || imp.Rules[0].Set.LocalPref != 80 || len(imp.Rules[1].Match.Prefixes) != 3 ||
		imp.Rules[1].Set.MED != 5 || imp.Rules[1].Set.AddCommunities[0].String() != "64512:1:2" ||
		imp.Rules[1].Key != "tenant.edge.bgp.neighbor[0].import.rule[1]" {
		t.Errorf("import rules: %+v", imp.Rules)
	}
	exp := b.Neighbors[0].Export
	if exp.Set.Prepend != 2 || exp.Set.MED != 10 || len(exp.Set.AddCommunities) != 2 || exp.Set.AddCommunities[1].String() != "65535:65281" {
		t.Errorf("export: %+v", exp)
	}
	n1 := b.Neighbors[1]
	if n1.Export.Set.LocalPref != 50 || len(n1.Import.Deny.Prefixes) != 2 || len(n1.Import.Rules) != 1 {
		t.Errorf("neighbour 1: %+v", n1)
	}
}

func TestCommunity(t *testing.T) {
	for in, want := range map[string]string{
		"64512:100": "64512:100", "0:0": "0:0", "65535:65535": "65535:65535", "no-export": "65535:65281",
		"4200000000:1:2": "4200000000:1:2", "*:100": "*:100", "1:*:*": "1:*:*",
	} {
		c, err := ParseCommunity(in)
		if err != nil || c.String() != want {
			t.Errorf("%s: %v %v, want %s", in, c, err, want)
		}
	}
	for _, in := range []string{"", "65536:1", "1", "1:2:3:4", "a:b", "+1:2", "4294967296:1:1", "-1:2"} {
		if _, err := ParseCommunity(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	pat, _ := ParseCommunity("64512:*")
	for in, want := range map[string]bool{"64512:1": true, "64512:0": true, "64513:1": false, "64512:1:1": false} {
		c, _ := ParseCommunity(in)
		if pat.Matches(c) != want {
			t.Errorf("64512:* matches %s: %v", in, !want)
		}
	}
}

func TestBGPPolicyErrors(t *testing.T) {
	const head = "[tenant.edge.bgp]\nasn = 64512\n"
	const nb = head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\n"
	for _, tc := range []struct {
		name, text, want string
	}{
		{"community syntax", nb + "import = { deny_community = [\"64512\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.deny_community[0]: invalid community \"64512\": want ASN:VALUE, A:B:C (large) or a well-known name (blackhole, graceful-shutdown, no-advertise, no-export, no-export-subconfed)"},
		{"community range", nb + "import = { allow_community = [\"64512:70000\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.allow_community[0]: invalid community \"64512:70000\": \"70000\" is not a number 0-65535 or *"},
		{"large community range", nb + "import = { allow_community = [\"1:2:4294967296\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.allow_community[0]: invalid community \"1:2:4294967296\": \"4294967296\" is not a number 0-4294967295 or *"},
		{"add wildcard", nb + "import = { add_community = [\"64512:*\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.add_community[0]: \"64512:*\": a wildcard only matches; communities to add must be exact"},
		{"community twice", nb + "import = { deny_community = [\"65535:666\", \"blackhole\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.deny_community[1]: community 65535:666 listed twice"},
		{"remove what is added", nb + "import = { add_community = [\"64512:5\"], remove_community = [\"64512:*\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.remove_community[0]: 64512:* removes 64512:5, which add_community adds"},
		{"local pref range", nb + "import = { local_pref = -1 }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.local_pref: local_pref -1 out of range 0-4294967295"},
		{"local pref ebgp export", nb + "export = { local_pref = 200 }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].export.local_pref: local_pref is not sent to an eBGP neighbour (AS 64513): set it in import filters, or use med"},
		{"med range", nb + "export = { med = 4294967296 }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].export.med: med 4294967296 out of range 0-4294967295"},
		{"prepend import", nb + "import = { prepend = 2 }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.prepend: prepend applies to export filters only (it lengthens the AS path neighbours see)"},
		{"prepend range", nb + "export = { prepend = 0 }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].export.prepend: prepend 0 out of range 1-16"},
		{"as path chars", nb + "import = { deny_as_path = [\"AS64666\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.deny_as_path[0]: AS-path pattern \"AS64666\": use AS numbers, spaces, _ and regular expression syntax, e.g. \"^64600_\" or \"_64666_\""},
		{"as path regexp", nb + "import = { deny_as_path = [\"(64666\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.deny_as_path[0]: AS-path pattern \"(64666\": error parsing regexp: missing closing ): `(64666`"},
		{"as path empty", nb + "import = { allow_as_path = [\" \"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.allow_as_path[0]: empty AS-path pattern"},
		{"prefix list undeclared", nb + "import = { allow_prefix_list = [\"custs\"] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.allow_prefix_list[0]: prefix list \"custs\" is not declared: add [tenant.edge.bgp.prefix_list.custs]"},
		{"as path list undeclared", nb + "import = { rule = [{ as_path_list = [\"x\"], med = 1 }] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.rule[0].as_path_list[0]: AS-path list \"x\" is not declared: add [tenant.edge.bgp.as_path_list.x]"},
		{"prefix list entry", head + "[tenant.edge.bgp.prefix_list.c]\nprefixes = [\"198.18.0.1/24\"]\n",
			"t.toml:15: tenant.edge.bgp.prefix_list.c.prefixes[0]: 198.18.0.1/24 has host bits set (did you mean 198.18.0.0/24?)"},
		{"prefix list empty", head + "[tenant.edge.bgp.prefix_list.c]\n",
			"t.toml:14: tenant.edge.bgp.prefix_list.c: prefix list \"c\" is empty: give it prefixes = [...]"},
		{"prefix list key", head + "[tenant.edge.bgp.prefix_list.c]\nprefixes = [\"198.18.0.0/24\"]\nprefix = [\"198.18.0.0/24\"]\n",
			"t.toml:16: tenant.edge.bgp.prefix_list.c.prefix: unknown key"},
		{"as path list empty", head + "[tenant.edge.bgp.as_path_list.c]\nas_paths = []\n",
			"t.toml:14: tenant.edge.bgp.as_path_list.c: AS-path list \"c\" is empty: give it as_paths = [...]"},
		{"rule no condition", nb + "import = { rule = [{ local_pref = 80 }] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.rule[0]: rule has no condition: give it prefix, prefix_list, community, as_path or as_path_list (changes for every route go in the filter itself)"},
		{"rule no change", nb + "import = { rule = [{ community = [\"64513:1\"] }] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.rule[0]: rule changes nothing: give it local_pref, med, add_community, remove_community or prepend"},
		{"rule adds what it matches", nb + "import = { rule = [{ community = [\"64512:*\"], add_community = [\"64512:1\"] }] }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.rule[0].add_community[0]: the rule adds 64512:1, which its community condition 64512:* matches"},
		{"rule unknown key", nb + "[[tenant.edge.bgp.neighbor.import.rule]]\ncommunity = [\"64513:1\"]\nmed = 1\nlocalpref = 80\n",
			"t.toml:20: tenant.edge.bgp.neighbor[0].import.rule[0].localpref: unknown key"},
		{"rule prefix", nb + "[[tenant.edge.bgp.neighbor.export.rule]]\nprefix = [\"198.18.0.0/15 ge 8\"]\nmed = 1\n",
			"t.toml:18: tenant.edge.bgp.neighbor[0].export.rule[0].prefix[0]: \"198.18.0.0/15 ge 8\": need 15 <= ge <= le"},
		{"filter type", nb + "import = { med = \"low\" }\n",
			"t.toml:17: tenant.edge.bgp.neighbor[0].import.med: incompatible types: want an integer, got a string (\"low\")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(bgpBase+tc.text))
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if first, _, _ := strings.Cut(err.Error(), "\n"); first != tc.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

func TestBGPPolicyExampleConfig(t *testing.T) {
	cfg, err := Load("../configs/bgp-policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Tenant("edge").BGP
	if b == nil || len(b.Neighbors) != 4 || len(b.PrefixLists) != 3 || len(b.ASPathLists) != 1 {
		t.Fatalf("bgp: %+v", b)
	}
	isp1, isp2, cust := b.Neighbors[0], b.Neighbors[1], b.Neighbors[3]
	if isp1.Import.Set.LocalPref != 200 || len(isp1.Import.Rules) != 1 || isp1.Import.Rules[0].Set.LocalPref != 150 ||
		len(isp1.Export.Allow.Prefixes) != 4 || isp1.Export.Set.AddCommunities[0].String() != "64600:100" {
		t.Errorf("ISP 1: %+v", isp1)
	}
	if isp2.Export.Set.Prepend != 3 || isp2.Export.Set.MED != 100 || len(isp2.Import.Deny.Prefixes) != 12 {
		t.Errorf("ISP 2: %+v", isp2)
	}
	if len(cust.Import.Rules) != 2 || !cust.Import.Set.AddCommunities[0].Large {
		t.Errorf("customer: %+v", cust)
	}
}
