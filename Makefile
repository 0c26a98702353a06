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
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	terraform fmt -check -recursive infra

build:
	cargo build --workspace --bins

clean:
	-scripts/emulator.sh stop
	rm -rf .local

# Release artefacts for Lambda: target/lambda/<bin>/bootstrap.zip (x86_64; see --arm64).
.PHONY: package bench
package:
	@scripts/package.sh

# Every figure in bench/README.md: criterion, sizes, cold init, HTTP latency -> bench/results/
bench:
	@scripts/bench.sh
