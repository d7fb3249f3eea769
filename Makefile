# tracelake front door: CMake does the work underneath, in build/.
#   make            build everything
#   make run        the main job: tracelake serve + the demo workload over
#                   HTTP, then what was stored
#   make test       install what is missing, build, run all tests (ctest)
#   make install PREFIX=dir
PREFIX ?= /usr/local
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build deps run test install clean fuzz bench format

all: build

$(BUILD)/CMakeCache.txt: | third_party/duckdb/libduckdb.so
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

# The pinned DuckDB, from the npm registry (checked against its hash).
third_party/duckdb/libduckdb.so:
	scripts/duckdb.sh

build: $(BUILD)/CMakeCache.txt
	scripts/duckdb.sh
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory build
	scripts/run-demo.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

install: build
	cmake --install $(BUILD) --prefix $(abspath $(PREFIX))

bench: build
	@scripts/bench-deps.sh
	BUILD=$(BUILD) bench/run.sh
	BUILD=$(BUILD) bench/run-ingest.sh
	BUILD=$(BUILD) bench/run-lake.sh
	BUILD=$(BUILD) bench/run-flight.sh

fuzz:
	scripts/fuzz.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
