# VSwitch — the two commands: `make demo` and `make test`. Everything else is a step of those.
SWIFT ?= swift
PYTHON ?= /usr/bin/python3

.PHONY: deps build demo demo-vm test unit tsan integration bench-core bench-build bench bench-quick bench-smoke clean fuzz fuzz-ci soak

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release --product vswitchd
	$(SWIFT) build -c release --product vswitch-bench
	$(SWIFT) build -c release --product vswitchctl

## Brings up topologies/default.xml, pings within and across VLANs, prints the MAC table and counters, tears down.
demo: build
	bash scripts/demo.sh topologies/default.xml

## A real VM (issue 8): a QEMU guest (Debian cloud kernel, busybox initramfs; scripts/vm/build-guest.sh,
## cached in .cache/vm) on a TAP QEMU owns, attached as a netdev port; pings a namespace both ways.
demo-vm: build
	$(PYTHON) scripts/vm/demo-vm.py

## Every test: unit and privileged XCTest suites, the ThreadSanitizer stress test, the TAP/netns integration suite.
test: deps unit tsan fuzz-ci integration bench-smoke
	@echo "make test: all suites passed"

unit: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

tsan: deps
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan --filter "ConcurrencyStressTests|CaptureRingTests"

## libFuzzer (issue 6): the XML loaders and the forwarding pipeline, FUZZ_SECONDS per target (RELIABILITY.md).
## Built in .build-fuzz by fuzz/build.sh. `make test` runs the bounded CI form (45 s per target).
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

fuzz-ci: deps
	FUZZ_SECONDS=45 bash fuzz/run.sh

## The 10-minute soak (issue 6; not in `make test`): mixed traffic, profile reloads, port churn (RELIABILITY.md).
SOAK_SECONDS ?= 600
soak: build
	SOAK_SECONDS=$(SOAK_SECONDS) $(PYTHON) Tests/Integration/soak.py

integration: build
	$(PYTHON) -m pytest Tests/Integration -v

## The forwarding core alone (no I/O), the matrix in bench/README.md.
bench-core:
	$(SWIFT) build -c release --product vswitch-bench
	bash bench/core-matrix.sh

## The comparison (issue 5): VSwitch vs the Linux bridge and Open vSwitch userspace, same run (bench/README.md).
## Built in its own folder so a benchmark build never races another build.
BENCH_BUILD ?= .build-bench
BENCH_OUT ?=
SMOKE_DIR ?= results/bench-smoke

bench-build: deps
	$(SWIFT) build -c release --scratch-path $(BENCH_BUILD) --product vswitchd
	$(SWIFT) build -c release --scratch-path $(BENCH_BUILD) --product vswitch-bench

## The full run (about 10 minutes on 2 cores); results in results/bench-<timestamp>/ unless BENCH_OUT is set.
bench: bench-build
	$(BENCH_BUILD)/release/vswitch-bench compare $(if $(BENCH_OUT),--output $(BENCH_OUT))

## The 2-minute smoke run.
bench-quick: bench-build
	$(BENCH_BUILD)/release/vswitch-bench compare --quick $(if $(BENCH_OUT),--output $(BENCH_OUT))

## What `make test` runs: the smoke run, then a check that every output exists and the JSON parses (no thresholds).
## It reuses the release build of `make build` (.build): `make test` builds one thing at a time.
bench-smoke: build
	rm -rf $(SMOKE_DIR)
	.build/release/vswitch-bench compare --quick --output $(SMOKE_DIR)
	.build/release/vswitch-bench capture-replay --sizes 64 --rounds 1 --seconds 0.5 --format json > $(SMOKE_DIR)/capture-replay.json
	.build/release/vswitch-bench store-probe --mib 64 --rounds 1 --format json > $(SMOKE_DIR)/store-probe.json
	$(PYTHON) bench/daemon-reload.py --ports 20 --reloads 3 --json $(SMOKE_DIR)/daemon-reload.json
	bash bench/check-output.sh $(SMOKE_DIR)

clean:
	rm -rf .build .build-*
