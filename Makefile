# fwd — build, test, lab and benchmarks. Every target that touches the
# kernel runs inside a private network+mount namespace (internal/sandbox):
# nothing is ever created in the machine's own network namespace.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/fwd

# Debian packages the tests, lab and benchmarks use (never assumed present).
DEB_DEPS := nftables iproute2 iputils-ping iperf3 socat conntrack tcpdump bird2 procps

.PHONY: all build deps test test-unit vet lab fuzz bench-policy bench-routes bench-bgp clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fwd

deps:
	@missing=""; for p in $(DEB_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		case "$$missing" in *bird2*) \
			if [ -d /run/systemd/system ]; then systemctl disable --now bird >/dev/null 2>&1 || true; fi;; \
		esac; \
	fi
	$(GO) mod download

vet:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

# The README's test command: pure tests, kernel tests (sandboxed), end-to-end.
test: deps vet
	$(GO) test -count=1 -timeout 25m ./...

# Pure tests only (no root needed).
test-unit:
	FWD_SKIP_KERNEL=1 $(GO) test -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./config/

lab: deps build
	$(BIN) lab

bench-policy: deps
	$(GO) run ./bench/policy

bench-routes: deps
	$(GO) run ./bench/routes -n $${N:-1000000}

bench-bgp: deps
	$(GO) run ./bench/bgp -n $${N:-1000000}

clean:
	rm -rf bin dist *.deb

-include packaging/deb.mk
