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
		if e.Type().IsRegular() {
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

// Create makes a new network namespace pinned as RunDir/name and returns
// a handle to it. The calling goroutine's namespace is not changed.
func Create(name string) (netns.NsHandle, error) {
	if err := ensureRunDir(); err != nil {
		return netns.None(), err
	}
	pin := Path(name)
	f, err := os.OpenFile(pin, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return netns.None(), fmt.Errorf("create namespace %q: %w", name, err)
	}
	f.Close()
	err = onFreshThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, pin, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		return nil
	})
	if err != nil {
		os.Remove(pin)
		return netns.None(), fmt.Errorf("create namespace %q: %w", name, err)
	}
	return Open(name)
}

// Delete unpins the named namespace. The kernel frees it once no process
// or open handle holds it; its physical NICs then return to the initial
// namespace, which is why callers hand NICs back explicitly first.
func Delete(name string) error {
	pin := Path(name)
	if err := unix.Unmount(pin, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete namespace %q: %w", name, err)
	}
	if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
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
				unix.Mount(name, "/sys", "sysfs", 0, "")
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
