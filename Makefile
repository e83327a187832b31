# vMatrix top-level make targets. `make deps` installs every Debian package the project needs;
# `make` builds build/vmatrix and the guest image; `make test` runs unit and system tests in
# an ASan+UBSan build (with every fuzz corpus input replayed); `make fuzz` runs the libFuzzer
# harnesses for a bounded time; `make demo` starts a local cluster serving a real VM.
BUILD      ?= build
ASAN_BUILD ?= build-asan
GUEST_DIR  ?= $(BUILD)/guest/tiny-http
DISK_DIR   ?= $(BUILD)/guest/tiny-http-disk
DEMO_DIR   ?= $(CURDIR)/demo
FUZZ_BUILD ?= build-fuzz
# `make fuzz`: seconds per harness, which harnesses (all of tests/fuzz/fuzz-*.c), and
# FUZZ_MERGE=1 to merge what they find into the corpus in the tree (docs/fuzzing.md)
FUZZ_TIME  ?= 60
FUZZ_HARNESSES ?= $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_MERGE ?= 0

DEB_PACKAGES = build-essential meson ninja-build pkg-config libmicrohttpd-dev libcurl4-openssl-dev \
               libjansson-dev libsqlite3-dev libzstd-dev libssl-dev libgnutls28-dev libsodium-dev qemu-system-x86 qemu-utils \
               busybox-static cpio gzip kmod xz-utils dpkg iproute2 socat curl wrk hyperfine haproxy \
               procps psmisc jq nftables syslinux syslinux-common mtools dosfstools fdisk clang libclang-rt-dev \
               libwslay-dev chromium

.PHONY: all deps build ui guest guest-disk test unit system fuzz demo demo-down bench clean

all: build guest

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@# Node.js and npm from Debian unless the machine has them already (a nodesource nodejs
	@# carries its own npm, which Debian's npm package would conflict with)
	@if ! command -v npm >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; \
	fi
	@# the web interface's assets and browser-test driver, pinned by ui/package-lock.json
	@if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then \
		npm ci --prefix ui --no-audit --no-fund; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	$(MAKE) ui

# The web interface (issue 13): ui/pages and the npm assets into BUILD/ui, which the Oracle
# serves at /ui/ (its default --ui-dir is ui/ beside the binary); the ASan build's binary finds
# the same files.
ui:
	scripts/ui-build.sh $(CURDIR)/$(BUILD)/ui
	@if [ -d $(ASAN_BUILD) ]; then rm -rf $(ASAN_BUILD)/ui && ln -s $(CURDIR)/$(BUILD)/ui $(ASAN_BUILD)/ui; fi

guest:
	guest/tiny-http/build.sh $(GUEST_DIR)

# The tiny-http guest as a BIOS-bootable raw disk, for tests of `vmatrix image import`.
guest-disk: guest
	guest/tiny-http-disk/build.sh $(DISK_DIR) $(GUEST_DIR)

# The ASan build also builds vmatrix-test (fake VMM driver) for the daemon unit tests. A build
# directory set up before that option existed is switched on once: the stamp file records it.
$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dtest_drivers=true
	touch $(ASAN_BUILD)/.test-drivers

$(ASAN_BUILD)/.test-drivers: | $(ASAN_BUILD)/build.ninja
	meson setup --reconfigure $(ASAN_BUILD) -Dtest_drivers=true
	touch $@

unit: deps $(ASAN_BUILD)/build.ninja $(ASAN_BUILD)/.test-drivers
	ninja -C $(ASAN_BUILD)
	$(MAKE) ui
	meson test -C $(ASAN_BUILD) --print-errorlogs

system: deps $(ASAN_BUILD)/build.ninja $(ASAN_BUILD)/.test-drivers guest guest-disk
	ninja -C $(ASAN_BUILD)
	$(MAKE) ui
	VMATRIX=$(CURDIR)/$(ASAN_BUILD)/vmatrix GUEST_DIR=$(CURDIR)/$(GUEST_DIR) \
		DISK_IMAGE=$(CURDIR)/$(DISK_DIR)/tiny-http.raw tests/system/run-all.sh

# The optimized build too: -O2 warnings (maybe-uninitialized) are errors the -O0 ASan build misses.
test: deps
	$(MAKE) build
	$(MAKE) unit
	$(MAKE) system

# libFuzzer needs clang (clang and libclang-rt-dev, in DEB_PACKAGES); the harnesses alone are
# built, with every object instrumented, under ASan and UBSan.
$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) $(addprefix tests/fuzz/fuzz-,$(FUZZ_HARNESSES))
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_MERGE) $(FUZZ_HARNESSES)

demo: deps all
	scripts/demo.sh $(DEMO_DIR) $(CURDIR)/$(BUILD)/vmatrix

demo-down:
	$(BUILD)/vmatrix cluster down --dir $(DEMO_DIR)

bench: deps all
	bench/activation $(CURDIR)/$(BUILD)/vmatrix
	bench/migration $(CURDIR)/$(BUILD)/vmatrix
	bench/nest-vms $(CURDIR)/$(BUILD)/vmatrix
	bench/restore-modes 5
	bench/clones $(CURDIR)/$(BUILD)/vmatrix 10 3
	bench/live-migration $(CURDIR)/$(BUILD)/vmatrix 5
	bench/switching $(CURDIR)/$(BUILD)/vmatrix 3
	bench/policy $(CURDIR)/$(BUILD)/vmatrix
	bench/import-under-load $(CURDIR)/$(BUILD)/vmatrix 1
	$(BUILD)/src/nest/nest-dedup /tmp 64 20 5
	ninja -C $(BUILD) bench-billing bench-billing-oracle bench-scale
	bench/billing $(CURDIR)/$(BUILD)
	bench/scale $(CURDIR)/$(BUILD)
	bench/ui $(CURDIR)/$(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
