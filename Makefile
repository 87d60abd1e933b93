# Switchyard — build, run and test. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

export GOFLAGS := -buildvcs=false
# Every module of the workspace (tools/ is kept out of go.work on purpose).
MODULES := $(shell go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')
TOOLS_BIN := bin/tools
TOOLS := buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2
TEST_TIMEOUT ?= 12m
DATA_DIR ?= .switchyard
RUN_FLAGS ?=
LOADGEN_FLAGS ?=

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-17s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/switchyard (the all-in-one binary).
	go build -o bin/switchyard ./services/switchyard/cmd/switchyard

.PHONY: run
run: build ## Build and start `switchyard dev` (embedded NATS and DuckDB under $(DATA_DIR)).
	bin/switchyard dev --data-dir $(DATA_DIR) $(RUN_FLAGS)

.PHONY: test-deps
test-deps: ## Install what the tests need: Go modules and the npm packages of the SDK tests.
	go mod download
	for m in $(MODULES); do (cd $$m && go mod download); done
	npm ci --prefix services/e2e/sdk --no-audit --no-fund --loglevel=error
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

.PHONY: test
test: test-deps ## Run every module's tests, the end-to-end ones included.
	failed=""; \
	for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && go test -count=1 -timeout $(TEST_TIMEOUT) ./...) || failed="$$failed $$m"; \
	done; \
	echo "== ./tools (load generator)"; \
	GOWORK=off go -C tools test -count=1 ./loadgen/... || failed="$$failed ./tools"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

.PHONY: tools
tools: $(addprefix $(TOOLS_BIN)/,$(TOOLS)) ## Build the pinned code generators into bin/tools.

$(TOOLS_BIN)/%: tools/go.mod tools/go.sum
	GOWORK=off go -C tools build -o ../$(TOOLS_BIN)/ $$(GOWORK=off go -C tools list -f '{{.ImportPath}}' tool | grep '/$*$$')

.PHONY: generate
generate: tools ## Regenerate gen/ from proto/.
	$(TOOLS_BIN)/buf lint
	rm -rf gen/go/switchyard gen/openapi
	$(TOOLS_BIN)/buf generate

.PHONY: check-generated
check-generated: tools ## Fail when gen/ differs from what proto/ generates.
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	mkdir -p "$$tmp/gen"; \
	$(TOOLS_BIN)/buf generate -o "$$tmp"; \
	diff -r "$$tmp/gen/go" gen/go --exclude=go.mod --exclude=go.sum >/dev/null \
	  && diff -r "$$tmp/gen/openapi" gen/openapi >/dev/null \
	  || { echo "gen/ is out of date with proto/: run 'make generate' and commit"; diff -r "$$tmp/gen" gen --exclude=go.mod --exclude=go.sum | head -40; exit 1; }
	@echo "gen/ matches proto/"

.PHONY: lint
lint: tools ## buf lint, buf breaking (against main when it has protos), gofmt and go vet.
	$(TOOLS_BIN)/buf lint
	if git rev-parse --verify -q origin/main >/dev/null && git cat-file -e origin/main:buf.yaml 2>/dev/null; then \
		$(TOOLS_BIN)/buf breaking --against '.git#branch=origin/main'; fi
	test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'); exit 1; }
	for m in $(MODULES); do (cd $$m && go vet ./...); done

.PHONY: bench
bench: ## Run the Go benchmarks.
	for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchmem ./...); done

.PHONY: tidy
tidy: ## go mod tidy in every module.
	for m in $(MODULES) tools; do (cd $$m && GOWORK=$$( [ $$m = tools ] && echo off || echo '' ) go mod tidy); done

.PHONY: bench-retl
bench-retl: ## Time and peak Go heap of a Reverse ETL diff: 1,000,000-row model, 1% changed, on DuckDB and Postgres.
	cd services/reverseetl && go test -count=1 -run '^$$' -bench BenchmarkDiffMillion -benchtime 1x -timeout 20m ./internal/diff/

.PHONY: bench-ingest
bench-ingest: build ## Load-test the Tracking API (tools/loadgen): Ingest as its own process (switchyard ingest) beside switchyard dev; events/s, p50/p99, errors, CPU and peak RSS of each. LOADGEN_FLAGS=… to tune (-shape all-in-one: everything in one dev process).
	GOWORK=off go -C tools run ./loadgen -bin $(CURDIR)/bin/switchyard -shape split $(LOADGEN_FLAGS)

.PHONY: bench-delivery
bench-delivery: ## Delivery to a local webhook: events/s batched (100/request) and unbatched, p50/p99 publish-to-webhook at 1,000 events/s.
	cd services/delivery && go test -count=1 -run '^$$' -bench 'BenchmarkDelivery' -benchtime 1x -timeout 10m ./internal/dispatch/

.PHONY: bench-warehouse
bench-warehouse: ## Warehouse load rows/s (DuckDB, PostgreSQL, ratio to plain COPY) and time-to-visible at 10k events/s.
	cd services/warehouse && go run ./cmd/benchwarehouse $${BENCH_WAREHOUSE_FLAGS:-}

.PHONY: bench-tracing
bench-tracing: ## Ingest with tracing on vs off (events/s, median of 3) and their ratio (goal ≥ 0.9).
	cd services/ingest && go test -run '^$$' -bench BenchmarkTracingOverhead -benchtime 3s -count 3 ./internal/httpapi/ \
	| tee /dev/stderr | awk '/events\/s/ { split($$1, a, "/"); m = a[2]; sub(/-[0-9]+$$/, "", m); v[m] = v[m] " " $$(NF-1) } \
	  END { for (m in v) { n = split(v[m], x, " "); asort(x); med[m] = x[int((n+1)/2)]; printf "%s: median %.0f events/s\n", m, med[m] } \
	        printf "tracing on/off ratio: %.3f (goal >= 0.9)\n", med["on"] / med["off"] }'
