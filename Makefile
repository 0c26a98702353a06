# Two commands for a fresh machine:
#   make run    the whole system locally on http://127.0.0.1:3000 (Ctrl-C stops it)
#   make test   everything needed, then every test (what CI runs)
SHELL := /usr/bin/env bash

.PHONY: run test lint check build clean

run:
	@scripts/local-stack.sh run

test: lint
	@scripts/local-stack.sh test

# Static checks that keep main tidy; part of `make test` so CI enforces them.
# infra-check: terraform fmt/validate and checkov (static), then the AWS root applied to a
# fresh emulator of its own and destroyed (apply, about 2 minutes).
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	scripts/infra-check.sh static
	scripts/infra-check.sh apply

build:
	cargo build --workspace --bins

clean:
	-scripts/emulator.sh stop
	rm -rf .local

# Release artefacts for Lambda: target/lambda/<bin>/bootstrap.zip (x86_64; see --arm64).
.PHONY: package bench
package:
	@scripts/package.sh

# Every figure of docs/performance.md -> bench/results/ (about 20 minutes; BENCH_QUICK=1 is shorter)
bench:
	@scripts/bench.sh

# Simulated traffic with faults injected on a stack of its own, then an exact reconcile
# (10 minutes of traffic; SOAK_MINUTES=3 make soak is shorter). Not part of `make test`.
.PHONY: soak
soak:
	@scripts/soak.sh
