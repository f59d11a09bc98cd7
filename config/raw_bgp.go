package config

// Raw TOML shapes of BGP (docs/bgp.md).

type rawBGPHook struct {
	BGP *rawBGP `toml:"bgp"`
}

type rawBGP struct {
	ASN             int64                    `toml:"asn"`
	RouterID        string                   `toml:"router_id"`
	Listen          any                      `toml:"listen"`
	Table           string                   `toml:"table"`
	Announce        []string                 `toml:"announce"`
	AnnounceIfRoute []string                 `toml:"announce_if_route"`
	Neighbor        []rawNeighbor            `toml:"neighbor"`
	PrefixList      map[string]rawPrefixList `toml:"prefix_list"`
	ASPathList      map[string]rawASPathList `toml:"as_path_list"`
}

type rawNeighbor struct {
	Address             string     `toml:"address"`
	ASN                 int64      `toml:"asn"`
	Description         string     `toml:"description"`
	Password            string     `toml:"password"`
	PasswordFile        string     `toml:"password_file"`
	Multihop            int        `toml:"multihop"`
	HoldTime            *int       `toml:"hold_time"`
	Keepalive           *int       `toml:"keepalive"`
	Passive             bool       `toml:"passive"`
	Families            []string   `toml:"families"`
	Import              *rawFilter `toml:"import"`
	Export              *rawFilter `toml:"export"`
	MaxPrefixes         int64      `toml:"max_prefixes"`
	MaxPrefixesAction   string     `toml:"max_prefixes_action"`
	NextHopSelf         bool       `toml:"next_hop_self"`
	GracefulRestart     bool       `toml:"graceful_restart"`
	GracefulRestartTime int        `toml:"graceful_restart_time"`
}

// rawFilter is a neighbour's import or export filter.
type rawFilter struct {
	Allow           []string `toml:"allow"`
	Deny            []string `toml:"deny"`
	AllowPrefixList []string `toml:"allow_prefix_list"`
	DenyPrefixList  []string `toml:"deny_prefix_list"`
	AllowCommunity  []string `toml:"allow_community"`
	DenyCommunity   []string `toml:"deny_community"`
	AllowASPath     []string `toml:"allow_as_path"`
	DenyASPath      []string `toml:"deny_as_path"`
	AllowASPathList []string `toml:"allow_as_path_list"`
	DenyASPathList  []string `toml:"deny_as_path_list"`
	rawRouteSet
	Rule []rawFilterRule `toml:"rule"`
}

// rawRouteSet is what a filter or a rule changes on the routes it passes.
type rawRouteSet struct {
	LocalPref       *int64   `toml:"local_pref"`
	MED             *int64   `toml:"med"`
	AddCommunity    []string `toml:"add_community"`
	RemoveCommunity []string `toml:"remove_community"`
	Prepend         *int64   `toml:"prepend"`
}

// rawFilterRule is one [[...import.rule]]: conditions and changes.
type rawFilterRule struct {
	Prefix     []string `toml:"prefix"`
	PrefixList []string `toml:"prefix_list"`
	Community  []string `toml:"community"`
	ASPath     []string `toml:"as_path"`
	ASPathList []string `toml:"as_path_list"`
	rawRouteSet
}

type rawPrefixList struct {
	Prefixes []string `toml:"prefixes"`
}

type rawASPathList struct {
	ASPaths []string `toml:"as_paths"`
}
