# The two commands of README.md, and a few conveniences.
#   make demo   install dependencies, build, run a traced 3-step pipeline, print its DAG
#   make test   install dependencies, build with ASan+UBSan (clang), run every test
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)

.PHONY: all demo test deps build build-test clean format

all: build

deps:
	@./scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@./scripts/demo $(BUILD)/weft

build-test: deps
	@CC=clang cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug \
		-DWEFT_SANITIZE=ON -DWEFT_FUZZ=ON -DWEFT_WERROR=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)

test: build-test
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
