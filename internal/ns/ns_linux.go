// Package ns owns network namespace handles: creating and pinning named
// namespaces under /run/netns (the iproute2 convention, so `ip netns exec`
// works), opening them, deleting them, and the one door into a namespace
// (Do). No other package calls netns.Set or unix.Setns.
package ns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are pinned. It is a variable only so a
// sandbox can point it elsewhere; production uses the iproute2 path.
var RunDir = "/run/netns"

// ErrNotFound is returned when a named namespace is not pinned.
var ErrNotFound = errors.New("namespace not found")

// Path returns the pin path of the named namespace.
func Path(name string) string { return filepath.Join(RunDir, name) }

// Open returns a handle to the named namespace. The caller closes it.
func Open(name string) (netns.NsHandle, error) {
	if ok, err := isNamespace(Path(name)); err == nil && !ok {
		return netns.None(), fmt.Errorf("namespace %q: %w", name, ErrLeftover)
	}
	h, err := netns.GetFromPath(Path(name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return netns.None(), fmt.Errorf("namespace %q: %w", name, ErrNotFound)
		}
		return netns.None(), fmt.Errorf("namespace %q: %w", name, err)
	}
	return h, nil
}

// Exists reports whether a namespace of that name is pinned.
func Exists(name string) bool {
	h, err := Open(name)
	if err != nil {
		return false
	}
	h.Close()
	return true
}

// List returns the names pinned under RunDir.
func List() ([]string, error) {
	ents, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// ensureRunDir makes RunDir a shared mount point, as iproute2 does, so
// that pins made here are seen by `ip netns exec` in other mount namespaces.
func ensureRunDir() error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	for {
		err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("make %s shared: %w", RunDir, err)
		}
		// Not a mount point yet: bind it onto itself, then retry.
		if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", RunDir, err)
		}
	}
}

// Create is CreateMarked without a mark (test hosts, benchmarks).
func Create(name string) (netns.NsHandle, error) { return CreateMarked(name, nil) }

// creatingPrefix names the temporary pin of a namespace being created.
// Names starting with a dot are never tenant names, so List skips them and
// Create/Sweep may remove any it finds: they are fwd's by construction.
const creatingPrefix = ".fwd-creating."

// nsfsMagic is the statfs type of a mounted namespace file.
const nsfsMagic = 0x6e736673

// ErrLeftover is returned by Open for a pin that is a plain file, not a
// mounted namespace: what an interrupted `ip netns add` or an old fwd
// killed between creating the file and mounting the namespace leaves.
var ErrLeftover = errors.New("pin is a leftover file, not a namespace")

// isNamespace reports whether path is a mounted namespace file.
func isNamespace(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == nsfsMagic, nil
}

// Create makes a new network namespace, lets mark claim it (fwd marks the
// namespace's lo and brings it up), and only then pins it as RunDir/name.
// So a namespace never appears under its name unmarked, whatever moment
// the process is killed at: the work happens on a temporary pin that the
// next Create or Sweep removes. A leftover plain file at RunDir/name (see
// ErrLeftover) is replaced. The calling goroutine's namespace is not
// changed. mark may be nil.
func CreateMarked(name string, mark func(netns.NsHandle) error) (netns.NsHandle, error) {
	fail := func(err error) (netns.NsHandle, error) {
		return netns.None(), fmt.Errorf("create namespace %q: %w", name, err)
	}
	if err := ensureRunDir(); err != nil {
		return fail(err)
	}
	pin := Path(name)
	switch ok, err := isNamespace(pin); {
	case err == nil && ok:
		return fail(os.ErrExist)
	case err == nil:
		if err := os.Remove(pin); err != nil {
			return fail(fmt.Errorf("remove leftover pin: %w", err))
		}
	case !errors.Is(err, os.ErrNotExist):
		return fail(err)
	}
	tmp := filepath.Join(RunDir, creatingPrefix+name)
	if err := removePin(tmp); err != nil {
		return fail(fmt.Errorf("remove leftover temporary pin: %w", err))
	}
	f, err := os.OpenFile(tmp, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fail(err)
	}
	f.Close()
	// Whether the namespace got pinned under its name or not, a temporary
	// pin that cannot be removed now is only clutter: the next Create or
	// Sweep removes it, so it does not change the outcome.
	defer func() { _ = removePin(tmp) }()
	err = onFreshThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, tmp, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if mark != nil {
		h, err := netns.GetFromPath(tmp)
		if err != nil {
			return fail(err)
		}
		err = mark(h)
		h.Close()
		if err != nil {
			return fail(err)
		}
	}
	f, err = os.OpenFile(pin, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fail(err)
	}
	f.Close()
	if err := unix.Mount(tmp, pin, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(pin)
		return fail(fmt.Errorf("pin: %w", err))
	}
	return Open(name)
}

// removePin unmounts (if mounted) and removes a pin file.
func removePin(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Sweep removes what interrupted Creates left: temporary pins, and for
// the given names (the tenants fwd manages) plain-file pins that hold no
// namespace. It returns what it removed.
func Sweep(names []string) ([]string, error) {
	ents, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		p := filepath.Join(RunDir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), creatingPrefix):
		case want[e.Name()]:
			if ok, err := isNamespace(p); err != nil || ok {
				continue
			}
		default:
			continue
		}
		if err := removePin(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// Delete unpins the named namespace. The kernel frees it once no process
// or open handle holds it; its physical NICs then return to the initial
// namespace, which is why callers hand NICs back explicitly first.
func Delete(name string) error {
	if err := removePin(Path(name)); err != nil {
		return fmt.Errorf("delete namespace %q: %w", name, err)
	}
	return nil
}

// Do runs fn with the calling OS thread inside the namespace h, on a fresh
// goroutine locked to its thread. Goroutines that fn starts do not inherit
// the namespace. If switching back fails, the thread stays locked so the
// Go runtime discards it instead of reusing a thread in the wrong namespace.
func Do(h netns.NsHandle, fn func() error) error {
	return onFreshThread(func() error {
		if err := netns.Set(h); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		return fn()
	})
}

// DoNamed is Do for a pinned namespace.
func DoNamed(name string, fn func() error) error {
	h, err := Open(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return Do(h, fn)
}

// onFreshThread runs fn on a new goroutine locked to its OS thread and
// restores the thread's original network namespace afterwards.
func onFreshThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime kills it on goroutine exit.
			errc <- errors.Join(ferr, fmt.Errorf("restore namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Exec replaces the current process with argv running inside the named
// namespace (`fwd exec`). It only returns on error.
func Exec(name string, argv []string, env []string) error {
	h, err := Open(name)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter namespace %q: %w", name, err)
	}
	// As `ip netns exec` does: a private mount namespace with a sysfs that
	// shows the tenant's interfaces. Best effort: the network namespace is
	// what matters.
	if err := unix.Unshare(unix.CLONE_NEWNS); err == nil {
		if unix.Mount("", "/", "none", unix.MS_SLAVE|unix.MS_REC, "") == nil {
			if unix.Unmount("/sys", unix.MNT_DETACH) == nil {
				_ = unix.Mount(name, "/sys", "sysfs", 0, "") // best effort, as above
			}
		}
	}
	return unix.Exec(argv[0], argv, env)
}

// Inode identifies a namespace handle (for "same namespace?" checks).
func Inode(h netns.NsHandle) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}
