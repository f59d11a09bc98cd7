#!/bin/sh
# Builds dist/fwd_VERSION_amd64.deb from the working tree with nfpm.
# Reproducible: every timestamp (files, man page, changelog, archive
# members) is SOURCE_DATE_EPOCH, by default the time of the last commit;
# the Go build is -trimpath with an empty build id; gzip runs with -n.
# Prints the path of the package on its last line.
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
NFPM=${NFPM:-github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2}
DEB_MAINTAINER=${DEB_MAINTAINER:-fwd developers <fwdproject@users.noreply.github.com>}
# deb.mk computes these once for a build and its test; alone, ask git.
UPSTREAM=${FWD_UPSTREAM:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
if [ -z "${DEB_VERSION:-}" ]; then
	if [ "$UPSTREAM" = dev ]; then DEB_VERSION=0.0.0~dev; else DEB_VERSION=$(packaging/version.sh); fi
fi
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export DEB_VERSION DEB_MAINTAINER SOURCE_DATE_EPOCH
out=dist/fwd_${DEB_VERSION}_amd64.deb
stage=dist/stage

rm -rf "$stage"
mkdir -p "$stage"

# A static binary: the package needs no libc version.
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 "$GO" build -trimpath -buildvcs=false \
	-ldflags "-s -w -buildid= -X main.version=$UPSTREAM" -o "$stage/fwd" ./cmd/fwd

# Generated from the binary's own command registry, so they match it.
# Generating them runs every command with -h; as root, do it in an empty
# network namespace so that a command that ever forgot to honour -h could
# not touch this machine's network.
gen() {
	if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
		unshare --net "$@"
	else
		"$@"
	fi
}
gen "$stage/fwd" man | gzip -9n >"$stage/fwd.8.gz"
gen "$stage/fwd" completion bash >"$stage/fwd.bash"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	printf 'fwd (%s) unstable; urgency=medium\n\n' "$DEB_VERSION"
	printf '  * Built from git commit %s (git describe: %s).\n' "$commit" "$UPSTREAM"
	printf '    See the project history for changes.\n\n'
	printf ' -- %s  %s\n' "$DEB_MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$stage/changelog.gz"

{
	cat packaging/copyright
	echo
	"$GO" version -m "$stage/fwd" | awk '$1 == "dep" { printf "  %s %s\n", $2, $3 } $1 == "=>" { printf "    replaced by %s %s\n", $2, $3 }'
} >"$stage/copyright"

mkdir -p dist
rm -f "$out"
"$GO" run "$NFPM" package --config packaging/nfpm.yaml --packager deb --target "$out" >&2
echo "$out"
