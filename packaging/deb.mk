# Debian package: `make deb` builds dist/fwd_VERSION_amd64.deb with nfpm,
# `make deb-test` builds it and tests it (packaging/test-deb.sh). Included
# by the top-level Makefile; CI runs deb-test after `make test`.
#
# The version (git describe, and its Debian form) and SOURCE_DATE_EPOCH
# (the last commit's time) are computed once here, so the build, the
# reproducibility rebuild and the checks agree even if a commit lands
# meanwhile.

FWD_UPSTREAM      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DEB_VERSION       ?= $(shell if [ "$(FWD_UPSTREAM)" = dev ]; then echo 0.0.0~dev; else packaging/version.sh; fi)
export FWD_UPSTREAM SOURCE_DATE_EPOCH DEB_VERSION

.PHONY: deb deb-test

deb:
	@packaging/build-deb.sh

# Build, then test the package just built. Root is needed for lintian's
# installation and the throwaway-root install (CI runs as root); without
# it those parts say SKIP.
deb-test:
	@start=$$(date +%s); \
	deb=$$(packaging/build-deb.sh | tail -1) && \
	packaging/test-deb.sh "$$deb" "$(FWD_UPSTREAM)"; \
	rc=$$?; echo "deb-test: $$(( $$(date +%s) - start ))s"; exit $$rc
