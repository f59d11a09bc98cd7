// Package lab is `fwd lab`: a self-contained demonstration network built
// inside a private network+mount namespace (internal/sandbox). It creates
// simulated hosts and NICs (internal/testnet), optionally BIRD playing an
// ISP, runs the fwd daemon on them, proves connectivity with a fixed list
// of checks and tears everything down again. Nothing it does reaches the
// machine's own network namespace or its /var/lib: the daemon's revision
// directory is the sandbox's private /run.
package lab
