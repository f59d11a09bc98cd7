#!/bin/sh
# Turns `git describe --tags --always --dirty` into a Debian version for a
# native package: digits first, only [A-Za-z0-9.+~], no hyphen.
#   v1.2.3                -> 1.2.3
#   v1.2.3-rc1            -> 1.2.3~rc1          (sorts before 1.2.3)
#   v1.2.3-4-gabc1234     -> 1.2.3+git4.gabc1234 (sorts after 1.2.3)
#   abc1234 (no tag)      -> 0.0.0~git15.abc1234 (15 commits: upgrades sort
#                            by history; 0.0.0~gitabc1234 given DESCRIBE)
#   …-dirty               -> …+dirty / ….dirty
# Usage: version.sh [DESCRIBE]   (default: ask git)
set -eu
d=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo unknown)}
dirty=
case $d in *-dirty) dirty=1; d=${d%-dirty} ;; esac

if printf '%s\n' "$d" | grep -Eq '^[0-9a-f]{4,40}$'; then
	n=
	[ $# -eq 0 ] && n=$(git rev-list --count HEAD 2>/dev/null) && n="$n."
	v="0.0.0~git$n$d"
else
	v=${d#v}
	# trailing -N-gHASH from describe: commits since the tag
	if printf '%s\n' "$v" | grep -Eq -- '-[0-9]+-g[0-9a-f]+$'; then
		since=$(printf '%s\n' "$v" | sed -E 's/^.*-([0-9]+)-(g[0-9a-f]+)$/git\1.\2/')
		v=$(printf '%s\n' "$v" | sed -E 's/-[0-9]+-g[0-9a-f]+$//')
		v=$(printf '%s\n' "$v" | tr '-' '~')+$since
	else
		v=$(printf '%s\n' "$v" | tr '-' '~')
	fi
fi
if [ -n "$dirty" ]; then
	case $v in *+*) v="$v.dirty" ;; *) v="$v+dirty" ;; esac
fi
# Anything else a tag may hold (slashes, underscores …) is not allowed.
v=$(printf '%s\n' "$v" | tr -c 'A-Za-z0-9.+~\n' '.')
case $v in [0-9]*) ;; *) v="0.0.0~$v" ;; esac
printf '%s\n' "$v"
