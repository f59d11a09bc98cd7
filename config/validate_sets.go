package config

import "path/filepath"

// validateSets validates the [tenant.T.set.NAME] tables. Elements are
// parsed here; a set file is only named (resolved against the config
// file's directory) and read by the loader step, readSetFiles.
//
// A dynamic set takes neither elements nor a file: the policy package
// creates it once and never touches its elements again (a reload keeps
// what automation added), so elements written in the file would apply
// only at its creation and then be silently ignored when edited.
func validateSets(r reporter, raw map[string]rawAddrSet, p *Policy) {
	for _, sn := range sortedKeys(raw) {
		sr := r.in(sn)
		if !reZoneName.MatchString(sn) {
			sr.errorf("invalid set name %q: use 1-16 characters a-z, 0-9 or '_', starting with a letter", sn)
			continue
		}
		rs := raw[sn]
		s := &AddrSet{Name: sn, Dynamic: rs.Dynamic}
		switch {
		case rs.Dynamic:
			if rs.Elements != nil {
				sr.in("elements").errorf("a dynamic set takes no elements: they are added at run time (fwd set add)")
			}
			if rs.File != "" {
				sr.in("file").errorf("a dynamic set takes no file: its elements are added at run time (fwd set add)")
			}
		case len(rs.Elements) == 0 && rs.File == "":
			sr.errorf("needs elements, file or dynamic = true")
		}
		if rs.Timeout != "" {
			tr := sr.in("timeout")
			if !rs.Dynamic {
				tr.errorf("only a dynamic set has a timeout (add dynamic = true)")
			} else if d, err := ParseSetTimeout(rs.Timeout); err != nil {
				tr.errorf("%v", err)
			} else {
				s.Timeout = d
			}
		}
		if rs.Dynamic {
			p.Sets = append(p.Sets, s)
			continue
		}
		er := sr.in("elements")
		var inline []AddrRange
		for i, e := range rs.Elements {
			ar, err := ParseAddrRange(e)
			if err != nil {
				er.at(i).errorf("%v", err)
				continue
			}
			inline = append(inline, ar)
		}
		s.V4, s.V6 = mergeFamilies(inline)
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
