# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of those.
JOBS      ?= $(shell nproc)
BUILD     ?= build
ASAN      ?= build-asan
FUZZ      ?= build-fuzz
# How long `make fuzz` runs each target, in seconds (`make test` runs each for 10 s).
FUZZ_SECONDS ?= 60
GENERATOR := -G Ninja
LAUNCHER   = $(shell command -v ccache >/dev/null 2>&1 && echo "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")

.PHONY: run test configure build build-asan build-fuzz lint fuzz deps deps-test deps-fuzz unit-test sanitize bench format clean

run: deps build
	$(BUILD)/ballast serve

# Lint first, so that ctest's summary stays the last line.
test: deps-test build build-asan build-fuzz lint
	ctest --test-dir $(BUILD) --output-on-failure -j1
	@echo "== the fuzz targets, 10 s each on their corpora =="
	ctest --test-dir $(FUZZ) --output-on-failure -j1
	@echo "== the same suite under AddressSanitizer + UndefinedBehaviorSanitizer =="
	ctest --test-dir $(ASAN) --output-on-failure -j1

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh test

deps-fuzz:
	@scripts/install-deps.sh fuzz

configure:
	cmake -S . -B $(BUILD) $(GENERATOR) $(LAUNCHER) -DCMAKE_BUILD_TYPE=Release >/dev/null

build: configure
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	cmake -S . -B $(ASAN) $(GENERATOR) $(LAUNCHER) -DCMAKE_BUILD_TYPE=Debug -DBALLAST_SANITIZE=ON >/dev/null
	cmake --build $(ASAN) -j $(JOBS)

# The parsers under libFuzzer (clang, ASan, UBSan): the pure libraries and fuzz/ only.
build-fuzz:
	cmake -S . -B $(FUZZ) $(GENERATOR) $(LAUNCHER) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DBALLAST_FUZZ=ON >/dev/null
	cmake --build $(FUZZ) -j $(JOBS)

# Each target for FUZZ_SECONDS on its corpus; new inputs and findings go to $(FUZZ)/fuzz-out.
fuzz: deps-fuzz build-fuzz
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ)/fuzz-out $(FUZZ)/fuzz/fuzz_*

# clang-tidy (.clang-tidy) over src/, with the Release build's compile commands; any finding fails.
lint: configure
	@echo "== clang-tidy =="
	@scripts/lint.sh $(BUILD) $(JOBS)

unit-test: build
	ctest --test-dir $(BUILD) --output-on-failure -L unit

bench:
	@scripts/install-deps.sh bench
	$(MAKE) build
	bench/peers.sh
	node bench/overload.mjs
	bench/patterns.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
