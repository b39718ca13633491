# The two commands of README.md, and a few conveniences.
#   make demo     install dependencies, build, run a traced 3-step pipeline, print its DAG
#   make test     install dependencies, build with ASan+UBSan (clang), run every test;
#                 then a Release build (gcc, as Debian builds packages) installed
#                 into a scratch prefix and packaged as a .deb, and its tests
#   make package  the Debian package (build-pkg/weft_VERSION_ARCH.deb)
BUILD      ?= build
TEST_BUILD ?= build-test
PKG_BUILD  ?= build-pkg
JOBS       ?= $(shell nproc)

.PHONY: all demo test deps build build-test build-pkg package package-test \
	clean format

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
	@$(MAKE) --no-print-directory package-test

# What a package is built from: Release, installed under /usr.
build-pkg: deps
	@CC=gcc cmake -S . -B $(PKG_BUILD) -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_INSTALL_PREFIX=/usr -DWEFT_WERROR=ON >/dev/null
	@cmake --build $(PKG_BUILD) -j $(JOBS)

package: build-pkg
	@cd $(PKG_BUILD) && cpack -G DEB

# The install and package tests (label package) of the Release build.
package-test: build-pkg
	@cd $(PKG_BUILD) && ctest --output-on-failure -L package --timeout 600

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(PKG_BUILD)
