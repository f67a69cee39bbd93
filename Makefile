# Steward's build. The two set-up commands of the README are `make demo` and
# `make test`; each installs or starts what it needs.
GO      ?= go
BIN     := bin/steward
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/stewardhq/steward/internal/cli.Version=$(VERSION)
DATA    ?= .data/demo

.PHONY: all build demo test test-deps vet fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/steward

# Build and start Steward with its demo users on loopback. The demo password
# is printed once at first start; set DEMO_PASSWORD to choose it.
demo: build
	./$(BIN) serve --demo --data-dir $(DATA) --pg-addr 127.0.0.1:5433 $(if $(DEMO_PASSWORD),--demo-password "$(DEMO_PASSWORD)")

# Every test: unit, fuzz seeds, the PostgreSQL metastore suite against a
# real server the tests start, and end-to-end tests of the real binary.
test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

# What the tests need from Debian (PostgreSQL for the metastore suite).
test-deps:
	./scripts/test-deps.sh

# Run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Benchmarks recorded in docs/BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./internal/audit/
	$(GO) test -run '^$$' -bench . -benchtime 3s -cpu 1 ./internal/policy/...
	$(GO) test -run '^$$' -bench . ./internal/identity/

clean:
	rm -rf bin

# S3 compatibility: s3cmd and rclone flows, the core of ceph/s3-tests (needs
# a local checkout: S3TESTS_DIR=/path/to/s3-tests) and versitygw's
# full-flow suite against a demo Steward. See docs/COMPATIBILITY.md.
s3-compat:
	./compat/run.sh

# The S3 gateway against versitygw (and MinIO when built) on loopback, and
# Steward's RSS while a large object streams through. See docs/BENCHMARKS.md.
BENCH_S3_FLAGS ?=
bench-s3: build
	$(GO) run ./cmd/stewardbench -steward $(BIN) $(BENCH_S3_FLAGS)

# Governed SQL beside raw DuckDB on the same Parquet files: in process, over
# pgwire and raw, plain and masked+row-filtered. See docs/BENCHMARKS.md.
BENCH_SQL_FLAGS ?= -rows 10000000 -reps 3
bench-sql:
	$(GO) run ./cmd/sqlbench $(BENCH_SQL_FLAGS)
