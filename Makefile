# Build, test and try pgquorum. `make test` installs what is missing, builds
# dist/ and runs every compiled test serially (integration tests start real
# PostgreSQL clusters). See docs/cli.md.

.PHONY: all deps build test dev bench clean
.NOTPARALLEL:

all: build

deps:
	scripts/ensure-deps.sh --no-build

build:
	scripts/build.sh

test: deps build
	@files="$$(find dist/test -name '*.test.js' | sort)"; \
	if [ -z "$$files" ]; then echo "no tests found in dist/test" >&2; exit 1; fi; \
	echo "node --test --test-concurrency=1 <$$(echo "$$files" | wc -l) files>"; \
	node --test --test-concurrency=1 $$files

dev: deps build
	bin/pgquorum dev

# Benchmark: plain PostgreSQL vs pgquorum vs pgpool-II (about 40 min; see
# bench/run.sh for BENCH_SECONDS, BENCH_ROUNDS, BENCH_WARMUP). Not part of `make test`.
bench: deps build
	bench/run.sh

clean:
	rm -rf dist
