package bgp

// memoryBudget is the speaker's Go soft memory limit for neighbours
// allowed limits[i] prefixes each (0: no limit, then no budget): gobgp
// holds about 900 B per path of the first table (path, attributes,
// destination, table key; measured, docs/bgp.md) and about half that for
// each further path of a prefix it already has, plus the FIB's ~60 B per
// route and a base. The limit makes the collector work harder near it
// instead of letting the heap double (GOGC=100); GOMEMLIMIT in the
// environment overrides it.
func memoryBudget(limits []uint64) int64 {
	if len(limits) == 0 {
		return 0
	}
	var sum, top uint64
	for _, l := range limits {
		if l == 0 {
			return 0
		}
		sum += l
		top = max(top, l)
	}
	return int64(192<<20 + top*1024 + (sum-top)*512)
}
