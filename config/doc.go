// Package config owns fwd's configuration: decoding the TOML file, applying
// defaults, and validating it into the model the planners consume. It never
// touches the kernel.
//
// The pipeline, one file per step:
//
//	load.go      Load (read the file) → Decode (bytes → validated Config,
//	             pure) → ReadSetFiles (the loader step: set files)
//	setfile.go   reading and parsing set files (bounded, one pass)
//	setcache.go  SetCache: set files are not parsed again while their
//	             bytes are unchanged (LoadWith, ParseWith)
//	ranges.go    address ranges as 128-bit integers: sort and merge
//	raw.go       the raw TOML shapes, never used past validation
//	model*.go    the validated model the rest of fwd sees
//	validate*.go one validator per config type (tenant, interface, zones,
//	             sets, rules, NAT, tables and routes, route rules, BGP,
//	             mgmt), each reporting through a reporter scoped to the key
//	             path of the value it checks (report.go)
//	values.go    parsers for value syntaxes shared by several tables
package config
