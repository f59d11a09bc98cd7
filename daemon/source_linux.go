package daemon

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/mgmt"
)

// A configuration's source is the TOML file and every file it references
// (set files): a revision stores all of it, so that a change to a set
// file alone is a new revision and a rollback brings the old set back.

type source struct {
	data  []byte
	files map[string][]byte // by resolved path
}

// same reports whether two sources are the same configuration.
func (s source) same(o source) bool {
	return mgmt.Checksum(s.data) == mgmt.Checksum(o.data) && maps.Equal(mgmt.FileSums(s.files), mgmt.FileSums(o.files))
}

// sameAsRevision reports whether s is what revision r stored.
func (s source) sameAsRevision(r mgmt.Revision) bool {
	return mgmt.Checksum(s.data) == r.SHA256 && maps.Equal(mgmt.FileSums(s.files), r.Sums())
}

// loadSource reads the config file (a regular file of bounded size:
// a FIFO cannot hang the daemon, /dev/zero cannot exhaust it) and the
// set files it names, keeping their content.
func loadSource(path string) (*config.Config, source, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return nil, source{}, err
	}
	src := source{data: data, files: map[string][]byte{}}
	cfg, err := config.Decode(path, data)
	if err != nil {
		return nil, source{}, err
	}
	err = config.ReadSetFilesWith(cfg, func(p string) ([]byte, error) {
		b, err := config.ReadSetFile(p)
		if err == nil {
			src.files[p] = b
		}
		return b, err
	})
	if err != nil {
		return nil, source{}, err
	}
	return cfg, src, nil
}

// parseSource builds the configuration of a stored source: set files
// come from the stored copies. A revision stored before fwd kept them
// has none; its set files are read from disk.
func parseSource(path string, src source) (*config.Config, error) {
	cfg, err := config.Decode(path, src.data)
	if err != nil {
		return nil, err
	}
	kept := len(src.files) > 0
	err = config.ReadSetFilesWith(cfg, func(p string) ([]byte, error) {
		if b, ok := src.files[p]; ok {
			return b, nil
		}
		if kept {
			return nil, fmt.Errorf("%s: not stored with the revision", p)
		}
		b, err := config.ReadSetFile(p)
		if err == nil {
			src.files[p] = b
		}
		return b, err
	})
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// revision loads stored revision n as a configuration.
func (d *Daemon) revision(n int) (*config.Config, source, error) {
	_, data, err := d.store.Get(n)
	if err != nil {
		return nil, source{}, err
	}
	files, err := d.store.Files(n)
	if err != nil {
		return nil, source{}, err
	}
	src := source{data: data, files: files}
	cfg, err := parseSource(d.opts.ConfigPath, src)
	return cfg, src, err
}

// writeSource puts an applied revision back on disk, set files first,
// then the config file, so that the next reload or restart does not
// bring back what was undone. Each file is replaced atomically; a
// failure leaves it as it was and is logged.
func (d *Daemon) writeSource(src source) error {
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(src.files)) {
		if err := writeKeepingMode(p, src.files[p]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := writeKeepingMode(d.opts.ConfigPath, src.data); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Error("could not write the rolled-back configuration back to disk", "file", d.opts.ConfigPath, "error", err)
		return err
	}
	d.log.Info("config file restored", "file", d.opts.ConfigPath, "sha256", mgmt.Checksum(src.data), "set_files", len(src.files))
	return nil
}

func writeKeepingMode(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	return mgmt.WriteFileAtomic(path, data, mode)
}
