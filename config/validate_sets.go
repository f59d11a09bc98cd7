package config

import "path/filepath"

// validateSets validates the [tenant.T.set.NAME] tables. Elements are
// parsed here; a set file is only named (resolved against the config
// file's directory) and read by the loader step, readSetFiles.
func validateSets(r reporter, raw map[string]rawAddrSet, p *Policy) {
	for _, sn := range sortedKeys(raw) {
		sr := r.in(sn)
		if !reZoneName.MatchString(sn) {
			sr.errorf("invalid set name %q: use 1-16 characters a-z, 0-9 or '_', starting with a letter", sn)
			continue
		}
		rs := raw[sn]
		s := &AddrSet{Name: sn}
		if len(rs.Elements) == 0 && rs.File == "" {
			sr.errorf("needs elements or file")
		}
		er := sr.in("elements")
		for i, e := range rs.Elements {
			ar, err := ParseAddrRange(e)
			if err != nil {
				er.at(i).errorf("%v", err)
				continue
			}
			s.add(ar)
		}
		if rs.File != "" {
			s.File = rs.File
			if !filepath.IsAbs(s.File) {
				s.File = filepath.Join(filepath.Dir(r.rep.file), s.File)
			}
			fr := sr.in("file")
			s.fileKey, s.fileLine = fr.key, fr.line()
		}
		p.Sets = append(p.Sets, s)
	}
}
