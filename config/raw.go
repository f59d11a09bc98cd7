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
}

type rawInterface struct {
	Device    string      `toml:"device"`
	MAC       string      `toml:"mac"`
	Peer      *rawPeer    `toml:"peer"`
	Macvlan   *rawMacvlan `toml:"macvlan"`
	VLAN      *rawVLAN    `toml:"vlan"`
	Addresses []string    `toml:"addresses"`
	MTU       int         `toml:"mtu"`
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
