// Package configs holds the example configurations, embedded so that
// `fwd lab` works from an installed binary as well as from the source tree.
package configs

import "embed"

// FS holds every *.toml file of this directory.
//
//go:embed *.toml
var FS embed.FS
