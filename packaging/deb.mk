# Debian package: `make deb` builds dist/fwd_VERSION_amd64.deb with nfpm,
# `make deb-test` builds it and tests it (packaging/test-deb.sh). Included
# by the top-level Makefile; CI runs deb-test after `make test`.

.PHONY: deb deb-test

deb:
	@packaging/build-deb.sh

# Build, then test the package that was just built. Root is needed for the
# throwaway-root install (CI runs as root); see packaging/test-deb.sh.
deb-test:
	@start=$$(date +%s); \
	deb=$$(packaging/build-deb.sh | tail -1) && \
	packaging/test-deb.sh "$$deb" "$$(git describe --tags --always --dirty 2>/dev/null || echo dev)"; \
	rc=$$?; echo "deb-test: $$(( $$(date +%s) - start ))s"; exit $$rc
