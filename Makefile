# VSwitch — the two commands: `make demo` and `make test`. Everything else is a step of those.
SWIFT ?= swift
PYTHON ?= /usr/bin/python3

.PHONY: deps build demo test unit tsan integration bench-core clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release --product vswitchd
	$(SWIFT) build -c release --product vswitch-bench

## Brings up topologies/default.xml, pings within and across VLANs, prints the MAC table and counters, tears down.
demo: build
	bash scripts/demo.sh topologies/default.xml

## Every test: unit and privileged XCTest suites, the ThreadSanitizer stress test, the TAP/netns integration suite.
test: deps unit tsan integration
	@echo "make test: all suites passed"

unit: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

tsan: deps
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan --filter ConcurrencyStressTests

integration: build
	$(PYTHON) -m pytest Tests/Integration -v

## The forwarding core alone (no I/O), the matrix in bench/README.md.
bench-core:
	$(SWIFT) build -c release --product vswitch-bench
	bash bench/core-matrix.sh

clean:
	rm -rf .build .build-*
