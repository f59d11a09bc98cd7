package config

// Raw TOML shapes. They mirror the file exactly and are never used past
// validation: the rest of fwd sees only the validated model (model.go).

type rawFile struct {
	Mgmt   rawMgmt              `toml:"mgmt"`
	Tenant map[string]rawTenant `toml:"tenant"`
}

type rawTenant struct {
	Forwarding *bool                   `toml:"forwarding"`
	Interface  map[string]rawInterface `toml:"interface"`
	rawPolicy
	rawRouting
	rawBGPHook
	rawServices
	rawHAHook

	ConntrackLimit *int `toml:"conntrack_limit"` // validate_quota.go
}

type rawInterface struct {
	Device    string      `toml:"device"`
	MAC       string      `toml:"mac"`
	Peer      *rawPeer    `toml:"peer"`
	Macvlan   *rawMacvlan `toml:"macvlan"`
	VLAN      *rawVLAN    `toml:"vlan"`
	Addresses []string    `toml:"addresses"`
	MTU       *int        `toml:"mtu"` // nil: leave as is; 0 is refused
	rawLearned
}

type rawPeer struct {
	Tenant string `toml:"tenant"`
	Name   string `toml:"name"`
}

type rawMacvlan struct {
	Parent string `toml:"parent"`
	Mode   string `toml:"mode"`
}

type rawVLAN struct {
	Parent string `toml:"parent"`
	ID     int    `toml:"id"`
}

// [mgmt]

type rawMgmt struct {
	Protect       []string `toml:"protect"`
	Socket        *string  `toml:"socket"`
	MetricsListen *string  `toml:"metrics_listen"`
	APIListen     *string  `toml:"api_listen"`
	APITokenFile  *string  `toml:"api_token_file"`
	APIHosts      []string `toml:"api_hosts"`
	RevisionDir   *string  `toml:"revision_dir"`
	Revisions     *int     `toml:"revisions"`
	LogFormat     *string  `toml:"log_format"`
	Rehearse      *bool    `toml:"rehearse"`
}

// Policy: zones, default policies, rules, sets, NAT (docs/policy.md).

type rawPolicy struct {
	Zone   map[string]rawZone    `toml:"zone"`
	Policy []rawZonePolicy       `toml:"policy"`
	Rule   []rawRule             `toml:"rule"`
	Set    map[string]rawAddrSet `toml:"set"`
	NAT    []rawNAT              `toml:"nat"`
}

type rawZone struct {
	Interfaces []string `toml:"interfaces"`
}

type rawZonePolicy struct {
	From   any    `toml:"from"`
	To     any    `toml:"to"`
	Action string `toml:"action"`
}

type rawRule struct {
	Name       string `toml:"name"`
	Comment    string `toml:"comment"`
	From       any    `toml:"from"`
	To         any    `toml:"to"`
	Saddr      any    `toml:"saddr"`
	Daddr      any    `toml:"daddr"`
	Proto      any    `toml:"proto"`
	Sport      any    `toml:"sport"`
	Dport      any    `toml:"dport"`
	ICMPType   any    `toml:"icmp_type"`
	CtState    any    `toml:"ct_state"`
	Action     string `toml:"action"`
	Log        any    `toml:"log"`
	LogLimit   string `toml:"log_limit"`
	Limit      string `toml:"limit"`
	LimitBurst int    `toml:"limit_burst"`
}

type rawAddrSet struct {
	Elements []string `toml:"elements"`
	File     string   `toml:"file"`
	Dynamic  bool     `toml:"dynamic"`
	Timeout  string   `toml:"timeout"`
}

type rawNAT struct {
	Name    string `toml:"name"`
	Type    string `toml:"type"`
	In      string `toml:"in"`
	Out     string `toml:"out"`
	Saddr   any    `toml:"saddr"`
	Daddr   any    `toml:"daddr"`
	Proto   any    `toml:"proto"`
	Dport   any    `toml:"dport"`
	To      string `toml:"to"`
	Prefix  string `toml:"prefix"`
	Hairpin bool   `toml:"hairpin"`
	Family  string `toml:"family"`
}

// Routing: tables, routes, route rules (docs/routing.md).

type rawRouting struct {
	Table     map[string]rawTable `toml:"table"`
	Route     []rawRoute          `toml:"route"`
	RouteRule []rawRouteRule      `toml:"route_rule"`
}

type rawTable struct {
	ID *int64 `toml:"id"`
}

type rawRoute struct {
	To       string       `toml:"to"`
	Via      string       `toml:"via"`
	Dev      string       `toml:"dev"`
	OnLink   bool         `toml:"onlink"`
	Nexthops []rawNexthop `toml:"nexthops"`
	Metric   *int64       `toml:"metric"`
	Table    string       `toml:"table"`
	Type     string       `toml:"type"`
	Src      string       `toml:"src"`
}

type rawNexthop struct {
	Via    string `toml:"via"`
	Dev    string `toml:"dev"`
	Weight *int64 `toml:"weight"`
	OnLink bool   `toml:"onlink"`
}

type rawRouteRule struct {
	Priority *int64 `toml:"priority"`
	From     string `toml:"from"`
	FromIf   string `toml:"from_interface"`
	To       string `toml:"to"`
	IIF      string `toml:"iif"`
	OIF      string `toml:"oif"`
	FwMark   *int64 `toml:"fwmark"`
	FwMask   *int64 `toml:"fwmask"`
	Family   string `toml:"family"`
	Table    string `toml:"table"`
}

// Edge services (docs/services.md): what an interface learns from the
// network, and what the tenant serves on its LAN.

// rawLearned are the interface keys of the DHCPv4 client and SLAAC.
type rawLearned struct {
	DHCP         bool   `toml:"dhcp"`
	DHCP6        bool   `toml:"dhcp6"`
	DHCPTable    string `toml:"dhcp_table"`
	DHCPMetric   *int64 `toml:"dhcp_metric"`
	DHCPHostname string `toml:"dhcp_hostname"`
	SLAAC        bool   `toml:"slaac"`
	DHCP6PD      *int64 `toml:"dhcp6_pd"`
	PrefixFrom   string `toml:"prefix_from"`
	PrefixSubnet *int64 `toml:"prefix_subnet"`
}

type rawServices struct {
	DHCP map[string]rawDHCPServer `toml:"dhcp"`
	DNS  *rawDNS                  `toml:"dns"`
	RA   map[string]rawRA         `toml:"ra"`
}

type rawDHCPServer struct {
	Range     []string         `toml:"range"`
	LeaseTime string           `toml:"lease_time"`
	Router    []string         `toml:"router"`
	DNS       []string         `toml:"dns"`
	Domain    string           `toml:"domain"`
	Static    []rawStaticLease `toml:"static"`
}

type rawStaticLease struct {
	MAC     string `toml:"mac"`
	Address string `toml:"address"`
	Name    string `toml:"name"`
}

type rawDNS struct {
	Interfaces []string            `toml:"interfaces"`
	Forwarders []string            `toml:"forwarders"`
	FwdFrom    []string            `toml:"forwarders_from"`
	Domain     string              `toml:"domain"`
	CacheSize  *int64              `toml:"cache_size"`
	Names      map[string][]string `toml:"names"`
}

type rawRA struct {
	Prefixes   []string `toml:"prefixes"`
	RDNSS      []string `toml:"rdnss"`
	Managed    bool     `toml:"managed"`
	Other      bool     `toml:"other"`
	DHCP6Range []string `toml:"dhcp6_range"`
	Interval   string   `toml:"interval"`
	Lifetime   string   `toml:"lifetime"`
}

// HA pair (docs/ha.md).

type rawHAHook struct {
	HA *rawHA `toml:"ha"`
}

type rawHA struct {
	Peer           string   `toml:"peer"`
	SyncInterface  string   `toml:"sync_interface"`
	Priority       *int64   `toml:"priority"`
	VRID           *int64   `toml:"vrid"`
	AdvertInterval string   `toml:"advert_interval"`
	PreemptDelay   string   `toml:"preempt_delay"`
	SyncPort       *int64   `toml:"sync_port"`
	Track          []string `toml:"track"`
	VIP            []rawVIP `toml:"vip"`
}

type rawVIP struct {
	Interface string `toml:"interface"`
	Address   string `toml:"address"`
}
