# Chronik developer targets. Every tool is pinned here and installed into
# ./bin/tools by the target that needs it; nothing but Go must be preinstalled.

GO              ?= go
BIN             := bin
TOOLS           := $(CURDIR)/bin/tools
FAILPOINT_VER   := v0.0.0-20240528011301-b51a646c7c86
STATICCHECK_VER := v0.8.2
FAILPOINT_CTL   := $(TOOLS)/failpoint-ctl
STATICCHECK     := $(TOOLS)/staticcheck
# Directories whose sources carry failpoint markers (failpoint-ctl rewrites
# them in place; failpoint-disable restores them).
FAILPOINT_DIRS  := core diskio netio server sim

# Simulator knobs: one schedule (SEED=N) or many (SEEDS=N from SEED_BASE),
# the latter spread over SIM_PROCS processes (one per core by default);
# SIM_FLAGS adds test flags (e.g. -sim-replay -sim-duration=10s).
SEED      ?=
SEEDS     ?= 20
SEED_BASE ?= 1
SIM_PROCS ?= $(shell nproc 2>/dev/null || echo 2)
SIM_FLAGS ?=
FUZZTIME  ?= 30s
# Deterministic replay of the simulator needs one P and no async preemption;
# GOGC=400 trades memory for speed outside schedules (in a schedule the
# collector runs only where the heartbeat calls it: sim/collector_test.go).
SIM_ENV   := GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 GOGC=400
SIM_TAGS  := -tags synctests
# The simulator's builds use a seeded runtime (sim/overlay/gen.sh: one
# random stream per synctest bubble, no wall-clock preemption), applied
# as a go build -overlay generated from the installed GOROOT; never used
# by build, run or any production target.
SIM_OVERLAY := $(CURDIR)/$(BIN)/sim-overlay/overlay.json
SIM_BUILD := $(SIM_TAGS) -overlay $(SIM_OVERLAY)

.PHONY: all build run test race sim sim-overlay sim-diverge sim-long fuzz failpoint-enable \
	failpoint-disable failpoint-test bench lint check tools clean
.PHONY: chaos

all: build

build:
	$(GO) build -o $(BIN)/chronik ./server/cmd/chronik

run: build
	./$(BIN)/chronik serve --data-dir ./chronik-data

# The whole suite: unit, conformance, property, crash and fuzz-corpus tests,
# then a bounded number of simulator seeds.
test: sim-overlay
	$(GO) test -count=1 -timeout 20m ./...
	$(SIM_ENV) $(GO) test -count=1 -timeout 20m $(SIM_BUILD) ./netio/... ./sim/...

race:
	$(GO) test -count=1 -race -timeout 30m ./...

# Many seeds: the test binary is built once and SIM_PROCS processes run
# disjoint shards of the seed range (GOMAXPROCS=1 each: replay needs one P,
# so the cores are used by processes); see sim/run-shards.sh.
SIM_SHARDS = start=$$(date +%s%N); \
	$(GO) test -c $(SIM_BUILD) -o $(BIN)/sim.test ./sim && \
	$(SIM_ENV) sh sim/run-shards.sh $(SIM_PROCS) $$start $(CURDIR)/$(BIN)/sim.test

# Regenerated on every use (a copy and a patch): a Go upgrade must fail
# here, not build the simulator on stale runtime files.
sim-overlay:
	@sh sim/overlay/gen.sh $(BIN)/sim-overlay

sim: sim-overlay
ifneq ($(SEED),)
	$(SIM_ENV) $(GO) test -count=1 $(SIM_BUILD) ./sim -run '^TestSim$$' -v -seed=$(SEED) $(SIM_FLAGS)
else
	@$(SIM_SHARDS) -test.timeout 1h -test.run '^TestSim$$' -test.v -seeds=$(SEEDS) -seed-base=$(SEED_BASE) $(SIM_FLAGS)
endif

# The divergence finder: runs SEED twice with every network operation
# traced, prints where the traces first part and every goroutine's stack
# just before that instant in two more runs (sim/diverge_test.go).
sim-diverge: sim-overlay
	@test -n "$(SEED)" || { echo "usage: make sim-diverge SEED=N"; exit 2; }
	$(SIM_ENV) $(GO) test -count=1 $(SIM_BUILD) ./sim -run '^TestSimDiverge$$' -v -seed=$(SEED) $(SIM_FLAGS)

sim-long: sim-overlay
	@$(SIM_SHARDS) -test.timeout 6h -test.run '^TestSim$$' -seeds=5000 -seed-base=$(SEED_BASE) $(SIM_FLAGS)

# Every fuzz target for FUZZTIME each (go test runs one -fuzz target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test $(SIM_TAGS) -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test $(SIM_TAGS) $$pkg -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

$(FAILPOINT_CTL):
	GOBIN=$(TOOLS) $(GO) install github.com/pingcap/failpoint/failpoint-ctl@$(FAILPOINT_VER)

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VER)

tools: $(FAILPOINT_CTL) $(STATICCHECK)

failpoint-enable: $(FAILPOINT_CTL)
	$(FAILPOINT_CTL) enable $(FAILPOINT_DIRS)

failpoint-disable: $(FAILPOINT_CTL)
	$(FAILPOINT_CTL) disable $(FAILPOINT_DIRS)

# Runs the tests with failpoints compiled in (the simulator then also draws
# seed-driven failpoint faults), and restores the sources even when the
# tests fail.
failpoint-test: $(FAILPOINT_CTL)
	@$(FAILPOINT_CTL) enable $(FAILPOINT_DIRS); \
	$(GO) test -count=1 -timeout 20m -tags failpoint ./... && \
	sh sim/overlay/gen.sh $(BIN)/sim-overlay && \
	$(SIM_ENV) $(GO) test -count=1 -timeout 20m -tags failpoint,synctests -overlay $(SIM_OVERLAY) ./sim/...; rc=$$?; \
	$(FAILPOINT_CTL) disable $(FAILPOINT_DIRS); exit $$rc

# The real-process chaos suite: every scenario (single node, cluster forms,
# leader and follower SIGKILL, rolling SIGTERM) with a longer load, and the
# kcat compatibility tests. `go test` runs a short form by default.
CHAOS_RECORDS ?= 5000
CHAOS_RATE    ?= 2000
chaos:
	CHAOS_FULL=1 CHAOS_RECORDS=$(CHAOS_RECORDS) CHAOS_RATE=$(CHAOS_RATE) $(GO) test -count=1 -timeout 20m -v -run 'TestChaos|TestKcat' ./server/cmd/chronik

# The Kafka benchmark sizes itself from CHRONIK_BENCH_* (server/cmd/chronik/
# bench_test.go: MB per throughput run, latency seconds, restart MiB, many
# partitions) and runs once; every other benchmark runs for 2 s.
bench:
	$(GO) test -run '^$$' -bench . -skip 'BenchmarkKafka' -benchtime 2s ./...
	$(GO) test -run '^$$' -bench 'BenchmarkKafka' -benchtime 1x -timeout 60m ./server/cmd/chronik

# One vet and staticcheck pass over the superset build too: the sim's kgo
# tests and the failpoint tests are behind tags, and helpers only they use
# would otherwise look unused.
lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags synctests,failpoint ./...
	$(STATICCHECK) -tags synctests,failpoint ./...

check: lint test

clean:
	rm -rf $(BIN)
