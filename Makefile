# The front door. `make demo` and `make test` do all the set-up themselves on a fresh Debian 12.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CHAOSLAB_WERROR),1)
CMAKE_FLAGS += -DCHAOSLAB_WERROR=ON
endif
CHAOSLAB := $(BUILD_DIR)/bin/chaoslab
SCENARIO ?= playbooks/scenarios/channel-291.yaml

.PHONY: all setup configure build image demo test test-long test-unit test-vm bench soak fuzz gc format clean

all: build

setup:
	@.ci/setup-debian

configure: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The guest image (and its kernel), cached by content hash: ~0 s when nothing changed.
image: build
	@$(CHAOSLAB) image build winsim

DEMO_COMPARE ?= playbooks/scenarios/bitlocker-escrow.yaml
DEMO_RUNBOOKS ?= safe-mode-delete,safe-mode-delete-no-priority,winpe-usb,snapshot-revert,reimage

# The outage on six guests, then the recovery runbooks compared on a BitLocker fleet.
demo: image
	$(CHAOSLAB) run $(SCENARIO)
	$(CHAOSLAB) compare $(DEMO_COMPARE) --runbooks $(DEMO_RUNBOOKS) --repeat 2 --quiet \
	  --html $(BUILD_DIR)/demo-report.html

# `make test` installs every prerequisite, so a skipped test here means a path did not run: fail.
test: image
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2 --timeout 900 -LE 'long|soak' \
	  --output-junit $(abspath $(BUILD_DIR))/ctest-results.xml
	@tests/no_skips.sh $(BUILD_DIR)/ctest-results.xml

# Slow VM tests kept out of CI (the runbooks on libvirt).
test-long: image
	cd $(BUILD_DIR) && ctest --output-on-failure -L long

test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2 -LE 'vm|soak'

test-vm: image
	cd $(BUILD_DIR) && ctest --output-on-failure -L vm

# BENCH_BASELINE=REV: also global-2024 by REV's chaoslab and this one, side by side (run.sh).
bench: image
	@mkdir -p $(BUILD_DIR)/bench
	@BENCH_BASELINE="$(BENCH_BASELINE)" CMAKE_FLAGS="$(CMAKE_FLAGS)" tests/bench/run.sh $(BUILD_DIR)

# The fault soak (issue 15; not in CI, needs root): a boot-looping fleet on the QEMU backend, then
# on two private libvirtd instances, while a seeded schedule kills QEMUs, stops a libvirtd, fills
# the run folder's tmpfs, locks the journal and sends malformed dashboard requests; then the checks
# (tests/soak/soak_test.cc). SOAK_MINUTES of faults in all, half per backend (~30 min with the
# start and the checks); prints the schedule as it happens, then the summaries, also kept in
# $(BUILD_DIR)/soak/ with each run's output.
SOAK_MINUTES ?= 26
SOAK_SEED ?= 15
soak: image
	@rm -f $(BUILD_DIR)/soak/summary-*.txt
	@status=0; cd $(BUILD_DIR) && SOAK_MINUTES=$(SOAK_MINUTES) SOAK_SEED=$(SOAK_SEED) \
	  ctest -L soak --verbose --timeout $$(( $(SOAK_MINUTES) * 60 + 1800 )) || status=1; \
	  echo; cat soak/summary-*.txt 2>/dev/null; exit $$status

# The libFuzzer targets (clang, ASan + UBSan), each run for FUZZ_SECONDS on one core, one after
# the other, from its seed corpus, by cmake/run_fuzzers.sh; prints executions, exec/s, coverage
# and what the harness saw. Runs, logs and any crash files: FUZZ_BUILD_DIR/runs/<target>/.
#   sensor (agents/sensor/fuzz, in FUZZ_BUILD_DIR): sensor_fuzz_711_fixed, sensor_fuzz_711 (the
#     channel-file decoder, validators and interpreters inside the guest);
#   lab (lab/fuzz, in FUZZ_BUILD_DIR/lab): lab_fuzz_qmp (QMP lines), lab_fuzz_content_server
#     (request bytes), lab_fuzz_yaml (scenario, setup, runbook, inventory, mix, calibration),
#     lab_fuzz_channel (chaoslab-channel inspect), lab_fuzz_dashboard (the dashboard's request bytes
#     and console WebSocket messages), lab_fuzz_guest_signal (a guest's serial console lines).
FUZZ_SECONDS ?= 600
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_CXX ?= clang++
SENSOR_FUZZERS := sensor_fuzz_711_fixed sensor_fuzz_711
LAB_FUZZERS := lab_fuzz_qmp lab_fuzz_content_server lab_fuzz_yaml lab_fuzz_channel \
  lab_fuzz_dashboard lab_fuzz_guest_signal
fuzz: setup
	@cmake -S agents/sensor/fuzz/libfuzzer -B $(FUZZ_BUILD_DIR) -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS)
	@cmake -S lab/fuzz/libfuzzer -B $(FUZZ_BUILD_DIR)/lab -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(FUZZ_BUILD_DIR)/lab -j $(JOBS)
	@cmake/run_fuzzers.sh --seconds $(FUZZ_SECONDS) --work $(FUZZ_BUILD_DIR)/runs \
	  $(addprefix $(FUZZ_BUILD_DIR)/,$(SENSOR_FUZZERS)) \
	  $(addprefix $(FUZZ_BUILD_DIR)/lab/,$(LAB_FUZZERS))

gc: build
	$(CHAOSLAB) gc

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
