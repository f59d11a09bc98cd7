//go:build kernel

package zones

// SetFailpoint makes the executor call f between the messages of a
// multi-step operation ("move-marked", "return-moved",
// "veth-half-named"); an error stops the apply there, with no clean-up,
// as a kill -9 would. The returned func removes it.
func SetFailpoint(f func(point string) error) (remove func()) {
	failpoint = f
	return func() { failpoint = nil }
}
