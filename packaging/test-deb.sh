#!/usr/bin/env bash
# Tests a built fwd package (`make deb-test`). Runs as root (CI does).
#   1. dpkg-deb --info/--contents: fields, conffiles, scripts, every path,
#      owners, modes, timestamps.
#   2. reproducibility: a second build is byte-identical.
#   3. lintian: no errors (installed with apt-get when missing).
#   4. a throwaway root: an overlay of / on a tmpfs, in private mount, net
#      and pid namespaces. dpkg installs the package there for real, runs
#      its maintainer scripts, and we run the installed `fwd version` and
#      `fwd check /etc/fwd/fwd.toml`, `systemd-analyze verify` the unit,
#      then walk upgrade, remove and purge, with and without a (simulated)
#      running systemd. Nothing reaches the real system: every write lands
#      on the tmpfs, the network namespace is empty, and no service starts.
# Usage: packaging/test-deb.sh DEB UPSTREAM_VERSION
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$1
upstream=$2
failures=0
ok() { printf 'ok    %s\n' "$*"; }
bad() {
	printf 'FAIL  %s\n' "$*"
	failures=$((failures + 1))
}
skip() { printf 'SKIP  %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND…
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

[ -f "$deb" ] || {
	echo "no package $deb" >&2
	exit 1
}

# Tools the checks need, installed when missing (CI machines start bare):
# lintian (which brings man-db) and systemd for systemd-analyze. Installing
# the systemd package starts nothing on a machine that does not boot it.
need=""
command -v lintian >/dev/null || need="$need lintian"
command -v systemd-analyze >/dev/null || need="$need systemd"
if [ -n "$need" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "installing:$need"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
	else
		echo "not root: cannot install$need; the checks that need them will say SKIP"
	fi
fi
echo "== $deb ($(stat -c %s "$deb") bytes)"

# --- 1. metadata and contents ---------------------------------------------
field() { dpkg-deb --field "$deb" "$1"; }
version=$(field Version)
check "Package is fwd" test "$(field Package)" = fwd
check "Architecture is amd64" test "$(field Architecture)" = amd64
check "Version $version is a valid Debian version" dpkg --validate-version "$version"
check "file name carries the version" test "$(basename "$deb")" = "fwd_${version}_amd64.deb"
check "Recommends nftables and iproute2" bash -c '[[ "$1" == *nftables* && "$1" == *iproute2* ]]' _ "$(field Recommends)"
check "nftables/iproute2 are not hard dependencies" bash -c '[[ "$1" != *nftables* && "$1" != *iproute2* ]]' _ "$(field Depends)"
check "Maintainer, Section, Priority, Description set" test -n "$(field Maintainer)" -a "$(field Section)" = net -a "$(field Priority)" = optional -a -n "$(field Description)"

ctl=$(mktemp -d)
trap 'rm -rf "$ctl"' EXIT
dpkg-deb --control "$deb" "$ctl/DEBIAN"
check "conffiles are exactly /etc/fwd/fwd.toml and /etc/iproute2/rt_protos.d/fwd.conf" \
	test "$(sort "$ctl/DEBIAN/conffiles" | tr '\n' ' ')" = "/etc/fwd/fwd.toml /etc/iproute2/rt_protos.d/fwd.conf "
for s in postinst prerm postrm; do
	check "$s is an executable POSIX shell script" bash -c '[ -x "$1" ] && head -1 "$1" | grep -q "^#!/bin/sh" && sh -n "$1"' _ "$ctl/DEBIAN/$s"
done

listing=$(dpkg-deb --contents "$deb")
has() { # has MODE PATH
	grep -Eq "^$1 root/root +[0-9]+ [0-9-]+ [0-9:]+ \./${2#/}\$" <<<"$listing"
}
check "/usr/sbin/fwd, 0755" has -rwxr-xr-x /usr/sbin/fwd
for p in /lib/systemd/system/fwd.service /etc/fwd/fwd.toml /usr/lib/tmpfiles.d/fwd.conf /etc/iproute2/rt_protos.d/fwd.conf \
	/usr/share/man/man8/fwd.8.gz /usr/share/bash-completion/completions/fwd \
	/usr/share/doc/fwd/README.md /usr/share/doc/fwd/copyright /usr/share/doc/fwd/changelog.gz \
	/usr/share/lintian/overrides/fwd; do
	check "$p, 0644" has -rw-r--r-- "$p"
done
for f in docs/*.md; do
	check "doc $f shipped" has -rw-r--r-- "/usr/share/doc/fwd/$(basename "$f")"
done
for f in configs/*.toml; do
	check "example $f shipped" has -rw-r--r-- "/usr/share/doc/fwd/examples/$(basename "$f")"
done
check "every entry is owned by root/root" bash -c '! grep -v " root/root " <<<"$1"' _ "$listing"
check "nothing in /usr/share/doc is a build leftover" bash -c '! grep -E "\./(dist|bin)/" <<<"$1"' _ "$listing"
sde=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
want_time=$(TZ=UTC date -d "@$sde" '+%Y-%m-%d %H:%M')
check "every timestamp is SOURCE_DATE_EPOCH ($want_time UTC)" bash -c \
	'[ "$(TZ=UTC dpkg-deb --fsys-tarfile "$1" | TZ=UTC tar -tv --utc | awk "{print \$4, \$5}" | sort -u)" = "$2" ]' _ "$deb" "$want_time"

# --- 2. reproducibility ----------------------------------------------------
if [ "${FWD_DEB_SKIP_REBUILD:-}" = 1 ]; then
	skip "reproducibility (FWD_DEB_SKIP_REBUILD=1)"
else
	cp "$deb" "$ctl/first.deb"
	again=$(packaging/build-deb.sh 2>/dev/null | tail -1)
	check "a second build ($again) is byte-identical" cmp -s "$again" "$ctl/first.deb"
fi

# --- 3. lintian -----------------------------------------------------------
if command -v lintian >/dev/null; then
	lint=$(lintian --pedantic -I --fail-on error "$deb" 2>&1 | grep -v 'running with root privileges' || true)
	[ -z "$lint" ] || echo "$lint" | sed 's/^/      lintian: /'
	check "lintian: no errors" bash -c '! grep -q "^E:" <<<"$1" && lintian --fail-on error "$2" >/dev/null 2>&1' _ "$lint" "$deb"
else
	skip "lintian: not installed"
fi

# --- 4. throwaway root ----------------------------------------------------
# Runs inside `unshare`: private mounts, an empty network namespace, its own
# pids. $M is an overlay of / whose writes go to a tmpfs.
inside() {
	set -uo pipefail
	local t=$FWD_DEB_ROOT M
	failures=0 # returned as the exit status: only this part's
	mount -t tmpfs fwd-deb-test "$t"
	mkdir "$t/upper" "$t/work" "$t/root"
	if ! mount -t overlay overlay -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/root"; then
		bad "overlay mount for the throwaway root"
		return 1
	fi
	M=$t/root
	mount -t tmpfs tmpfs "$M/run"
	mount -t tmpfs tmpfs "$M/tmp"
	mount -t proc proc "$M/proc"
	mount -t sysfs sysfs "$M/sys"
	mount --rbind /dev "$M/dev"
	cp "$deb" "$M/tmp/fwd.deb"
	inroot() { chroot "$M" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }
	dpkgi() { inroot dpkg --force-confold -i /tmp/fwd.deb; }
	# logged DESCRIPTION COMMAND…: run with output in $M/tmp/out, shown on failure
	logged() {
		local what=$1
		shift
		if "$@" >"$M/tmp/out" 2>&1; then ok "$what"; else
			bad "$what"
			sed 's/^/      | /' "$M/tmp/out"
		fi
	}
	wants=/etc/systemd/system/multi-user.target.wants/fwd.service

	echo "-- without systemd (container, chroot)"
	# Record every systemctl and deb-systemd-invoke call. Offline verbs
	# (preset, enable, is-enabled …, which deb-systemd-helper uses) go on
	# to the real systemctl; nothing is ever started, stopped or reloaded.
	mkdir -p "$M/usr/local/sbin"
	cat >"$M/usr/local/sbin/systemctl" <<-'EOS'
		#!/bin/sh
		echo "systemctl $*" >>/tmp/systemd-calls
		for a in "$@"; do case $a in start | stop | restart | try-restart | reload* | daemon-reload | is-active | kill) exit 0 ;; esac; done
		for r in /usr/bin/systemctl /bin/systemctl; do [ -x $r ] && exec $r "$@"; done
		exit 0
	EOS
	printf '#!/bin/sh\necho "deb-systemd-invoke $*" >>/tmp/systemd-calls\n' >"$M/usr/local/sbin/deb-systemd-invoke"
	chmod 755 "$M/usr/local/sbin/systemctl" "$M/usr/local/sbin/deb-systemd-invoke"
	started() { grep -Eq "(^deb-systemd-invoke|systemctl.* (start|restart|try-restart|reload-or-restart))( |$)" "$M/tmp/systemd-calls" 2>/dev/null; }
	logged "dpkg -i installs" dpkgi
	check "dpkg reports fwd installed" bash -c '[ "$(chroot "$1" dpkg-query -W -f "\${Status}" fwd)" = "install ok installed" ]' _ "$M"
	out=$(inroot /usr/sbin/fwd version 2>&1)
	check "installed fwd version: '$out'" test "$out" = "fwd $upstream"
	out=$(inroot /usr/sbin/fwd check /etc/fwd/fwd.toml 2>&1)
	rc=$?
	check "installed fwd check /etc/fwd/fwd.toml: '$out'" test $rc -eq 0
	check "the shipped config is the safe example" cmp -s "$M/etc/fwd/fwd.toml" configs/example.toml
	check "fwd.service enabled ($wants)" test -L "$M$wants"
	check "fwd.service not started: no start or restart call, no pid file" \
		eval '! started && [ ! -e "$M/run/fwd/fwd.pid" ]'
	check "tmpfiles.d made /run/fwd" test -d "$M/run/fwd"
	if ! inroot sh -c 'command -v man' >/dev/null; then skip "man page: man-db is not installed"; else
	check "man fwd finds the page" bash -c '[ "$(chroot "$1" man -w fwd)" = /usr/share/man/man8/fwd.8.gz ]' _ "$M"
	check "man page renders without warnings" bash -c '[ -z "$(chroot "$1" env LC_ALL=C.UTF-8 man --warnings -l /usr/share/man/man8/fwd.8.gz 2>&1 >/dev/null)" ]' _ "$M"
	fi
	check "bash completion registers _fwd" bash -c 'chroot "$1" bash -c ". /usr/share/bash-completion/completions/fwd && complete -p fwd" | grep -q "_fwd fwd"' _ "$M"
	if inroot systemd-analyze --version >/dev/null 2>&1; then
		out=$(inroot systemd-analyze verify /lib/systemd/system/fwd.service 2>&1)
		rc=$?
		[ -z "$out" ] || echo "$out" | sed 's/^/      systemd-analyze: /'
		check "systemd-analyze verify fwd.service" test $rc -eq 0 -a -z "$out"
		inroot systemd-analyze security --offline=true /lib/systemd/system/fwd.service 2>/dev/null | tail -1 | sed 's/^/      systemd-analyze security (info): /'
	else
		skip "systemd-analyze verify: systemd-analyze is not installed"
	fi

	echo "-- with systemd running (simulated: /run/systemd/system and recording systemctl)"
	mkdir -p "$M/run/systemd/system"
	echo "# edited by the operator" >>"$M/etc/fwd/fwd.toml"
	rm -f "$M/tmp/systemd-calls"
	logged "upgrade (dpkg -i over the installed version)" dpkgi
	check "upgrade keeps the operator's edited conffile" grep -q "edited by the operator" "$M/etc/fwd/fwd.toml"
	check "upgrade: daemon-reload, then try-restart (restarts only a running fwd), never start" \
		bash -c 'grep -qx "systemctl --system daemon-reload" "$1" && grep -qx "deb-systemd-invoke try-restart fwd.service" "$1" && ! grep -Eq "(^| )(start|restart) " "$1"' _ "$M/tmp/systemd-calls"
	echo '[tenant.bad' >>"$M/etc/fwd/fwd.toml"
	rm -f "$M/tmp/systemd-calls"
	logged "upgrade with an invalid config succeeds" dpkgi
	check "... and does not restart fwd" bash -c '! grep -q restart "$1"' _ "$M/tmp/systemd-calls"
	check "... and says why" grep -q "does not pass 'fwd check'" "$M/tmp/out"
	sed -i '$d' "$M/etc/fwd/fwd.toml"
	rm -f "$M/tmp/systemd-calls"
	logged "dpkg -r removes" inroot dpkg -r fwd
	check "remove stops fwd (SIGTERM: the data plane stays)" grep -qx "deb-systemd-invoke stop fwd.service" "$M/tmp/systemd-calls"
	check "remove keeps the conffile" test -f "$M/etc/fwd/fwd.toml"
	check "remove deletes /usr/sbin/fwd, keeps a copy for purge" test ! -e "$M/usr/sbin/fwd" -a -x "$M/var/lib/fwd/fwd-for-purge"
	logged "dpkg -P purges" inroot dpkg -P fwd
	check "purge ran fwd teardown -y" grep -q "fwd's namespaces are gone" "$M/tmp/out"
	check "purge removed /var/lib/fwd, /etc/fwd and the enablement" \
		test ! -e "$M/var/lib/fwd" -a ! -e "$M/etc/fwd" -a ! -L "$M$wants"
	check "dpkg no longer knows fwd" bash -c '! chroot "$1" dpkg-query -W fwd >/dev/null 2>&1' _ "$M"
	echo "-- fresh install with systemd running"
	rm -f "$M/tmp/systemd-calls"
	logged "dpkg -i installs" dpkgi
	check "fresh install: daemon-reload, fwd not started" \
		eval 'grep -qx "systemctl --system daemon-reload" "$M/tmp/systemd-calls" && ! started'
	check "fresh install: fwd.service enabled" test -L "$M$wants"
	return "$failures"
}

can_overlay() {
	local t rc
	t=$(mktemp -d)
	unshare --mount --propagation private sh -c '
		mount -t tmpfs x "$1" && mkdir "$1/u" "$1/w" "$1/m" &&
		mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$1/m"' _ "$t" 2>/dev/null
	rc=$?
	rmdir "$t"
	return $rc
}

echo "== throwaway root"
if [ "$(id -u)" = 0 ] && [ -z "${FWD_DEB_NO_OVERLAY:-}" ] && command -v unshare >/dev/null && can_overlay; then
	export -f inside check ok bad skip
	FWD_DEB_ROOT=$(mktemp -d /tmp/fwd-deb-root.XXXXXX)
	export deb upstream failures FWD_DEB_ROOT
	set +e
	unshare --mount --net --pid --fork --propagation private bash -c 'inside'
	rc=$?
	set -e
	rmdir "$FWD_DEB_ROOT"
	failures=$((failures + rc))
else
	skip "install and maintainer scripts in a throwaway root: needs root, unshare and overlayfs (FWD_DEB_NO_OVERLAY unset)"
	# Still run the installed binary from an extracted tree.
	x=$(mktemp -d)
	dpkg-deb -x "$deb" "$x"
	check "extracted fwd version" test "$("$x/usr/sbin/fwd" version)" = "fwd $upstream"
	check "extracted fwd check etc/fwd/fwd.toml" "$x/usr/sbin/fwd" check "$x/etc/fwd/fwd.toml"
	if command -v systemd-analyze >/dev/null; then
		# The unit as installed, with its binary pointing into the tree.
		mkdir "$x/units"
		sed "s#/usr/sbin/fwd#$x/usr/sbin/fwd#g" "$x/lib/systemd/system/fwd.service" >"$x/units/fwd.service"
		out=$(systemd-analyze verify --man=no "$x/units/fwd.service" 2>&1) && rc=0 || rc=$?
		[ -z "$out" ] || echo "$out" | sed 's/^/      systemd-analyze: /'
		check "systemd-analyze verify fwd.service (man page not checked)" test $rc -eq 0 -a -z "$out"
	else
		skip "systemd-analyze verify: systemd-analyze is not installed"
	fi
	rm -rf "$x"
fi

echo
if [ "$failures" -gt 0 ]; then
	echo "deb-test: $failures check(s) failed"
	exit 1
fi
echo "deb-test: all checks passed"
