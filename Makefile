# fwd — build, test, lab and benchmarks. Every target that touches the
# kernel runs inside a private network+mount namespace (internal/sandbox):
# nothing is ever created in the machine's own network namespace.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/fwd
# golangci-lint runs through `go run` at a pinned version: CI installs
# nothing by hand, and every machine lints with the same linters.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

# Debian packages the tests, lab and benchmarks use (never assumed present).
DEB_DEPS := nftables iproute2 iputils-ping iperf3 socat conntrack conntrackd keepalived tcpdump bird2 frr procps dnsmasq chromium

.PHONY: all build deps test test-unit test-faults vet tidy-check lint lab fuzz bench-policy bench-routes bench-bgp bench-bgp-failover bench-scrape clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fwd

deps:
	@missing=""; for p in $(DEB_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		if [ -d /run/systemd/system ]; then \
			for u in bird dnsmasq keepalived conntrackd frr; do systemctl disable --now $$u >/dev/null 2>&1 || true; done; \
		fi; \
	fi
	$(GO) mod download

# Kernel tests are files *_kernel_test.go behind the build tag "kernel";
# vet and lint look at them too.
vet:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet -tags kernel ./...

# Fails when go.mod or go.sum are not what `go mod tidy` makes them.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }

# Configuration in .golangci.yaml (build tag kernel included).
lint:
	@start=$$(date +%s); $(GOLANGCI_LINT) run ./...; rc=$$?; \
	echo "lint: $$(( $$(date +%s) - start ))s"; exit $$rc

# The README's test command: pure tests, kernel tests (sandboxed), end-to-end.
test: deps vet tidy-check lint
	$(GO) test -count=1 -timeout 25m -tags kernel ./...
	$(MAKE) fuzz

# Pure tests only: without the kernel tag no test needs root.
test-unit:
	$(GO) test -count=1 ./...

# The fault suite alone (it runs in `make test` too): full disks, a
# read-only store, SIGTERM mid-reload, stale pid files, bad reloads, the
# lab's processes. FAULT_FLAGS="-count=5 -v" for a full-size run.
FAULT_FLAGS ?=
test-faults: deps
	$(GO) test -count=1 -timeout 10m -tags kernel -run 'Fault' $(FAULT_FLAGS) ./daemon ./cmd/fwd ./lab ./mgmt ./zones

# Short fuzzing of the decoder, the validators and the policy compiler
# (FUZZTIME each; make test runs it). A crasher lands in the package's
# testdata/fuzz and is kept there as a regression case.
FUZZTIME ?= 20s
FUZZ_TARGETS := config:FuzzDecode config:FuzzScanPositions config:FuzzValidators config:FuzzParse policy:FuzzCompile
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$pkg $$fn $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg/ || exit 1; \
	done

lab: deps build
	$(BIN) lab

# The HA failover narrated (docs/ha.md): two boxes in a private sandbox,
# box A's keepalived stopped, the VIP moves to B and back, with the ping
# loss and the TCP stream's fate. Ctrl-C stops it and cleans up.
.PHONY: ha-demo
ha-demo: deps
	$(GO) run ./ha/demo

bench-policy: deps
	$(GO) run ./bench/policy

bench-routes: deps
	$(GO) run ./bench/routes -n $${N:-1000000}

# FAMILY=4: IPv4 (at most N=262143, all of 198.18.0.0/15).
bench-bgp: deps
	$(GO) run ./bench/bgp -family $${FAMILY:-6} -n $${N:-1000000}

bench-bgp-failover: deps
	$(GO) run ./bench/bgp-failover -family $${FAMILY:-6} -n $${N:-1000000}

# A /metrics scrape with N BGP-protocol routes installed (≤ 50 ms).
bench-scrape: deps
	FWD_SCRAPE_ROUTES=$${N:-1000000} $(GO) test -count=1 -tags kernel -run TestScrapeCostDoesNotGrowWithRoutes -v ./daemon

clean:
	rm -rf bin dist *.deb

-include packaging/deb.mk
