# pcbench — top-level build.  `make deps`, `make`, `make test`, `make bench`.
# V=1 for verbose commands; SANITIZE=1 builds everything with ASan+UBSan into build-san/.
.DELETE_ON_ERROR:
.SUFFIXES:

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
ARCH    := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-7s %s\n' "$(1)" "$(2)";
endif

ifeq ($(SANITIZE),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   := build
SANFLAGS :=
endif

GITREV  := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
VERSION := 0.1.0

CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-format-truncation -pthread -D_GNU_SOURCE \
	-I. -I$(BUILD) -I/usr/include/$(MULTIARCH) $(SANFLAGS) \
	-DPCB_VERSION='"$(VERSION)"' -DPCB_GITREV='"$(GITREV)"'
LDLIBS  := -lbpf -lelf -lz -lxxhash -lcrypto -lsqlite3 -ljansson -linih -lm -pthread
override LDFLAGS += $(SANFLAGS)

# Every .c under these rooms goes into the library; the mains are listed apart.
# The rooms (docs/design.md has the map).
ROOMS      := common cli run bench floor trace wire source pager install policies workloads guest sim
MAINS      := cli/main.c tools/pctrace/pctrace.c
LIB_SRCS   := $(filter-out $(MAINS),$(wildcard $(addsuffix /*.c,$(ROOMS))))
LIB_SRCS   += guest/kvm/kvm.c
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/guest/kvm/blob.o
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
# Programs in parts: bpf/NAME/*.bpf.c, linked into one object (see "BPF" below).
BPF_LINKED := $(patsubst bpf/%/,%,$(sort $(dir $(wildcard bpf/*/*.bpf.c))))
BPF_SKELS  := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/bpf/%.skel.h) $(BPF_LINKED:%=$(BUILD)/bpf/%.skel.h)
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TESTLIB_SRCS := $(wildcard tests/lib/*.c)
TESTLIB_OBJS := $(TESTLIB_SRCS:%.c=$(BUILD)/%.o)
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/helpers/%)

PROGS := pcbench pctrace

.PHONY: all deps test unit integ bench clean plots fuzz bench-floor bench-scale bench-channels examples man
# Debian's interpreter: python3-scipy/numpy are installed for it (a pyenv python3 first in PATH lacks them)
PYTHON ?= /usr/bin/python3
all: $(PROGS)

# ---- dependencies (Debian 12) ---------------------------------------------
DEPS_PKGS := gcc make clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
	libcmocka-dev systemtap-sdt-dev libxxhash-dev libjansson-dev libinih-dev gnuplot-nox pkg-config \
	iproute2 procps util-linux python3 libssl-dev libsqlite3-dev \
	python3-numpy python3-scipy
deps:
	$(Q)missing=""; for p in $(DEPS_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get install -y -q --no-install-recommends $$missing >/dev/null || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends $$missing >/dev/null; } || \
		{ echo "deps: apt-get failed to install:$$missing" >&2; exit 1; }; \
	fi

# ---- BPF ---------------------------------------------------------------------
# vmlinux.h is generated at build time from the running kernel's BTF.
$(BUILD)/vmlinux.h:
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)if [ ! -r /sys/kernel/btf/vmlinux ]; then \
		echo "error: /sys/kernel/btf/vmlinux is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF)," \
		     "so CO-RE BPF programs cannot be built here; build with a kernel that has BTF" >&2; exit 1; fi
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(wildcard bpf/*.h bpf/*/*.h) common/hist.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -D__BPF__ \
		-I$(BUILD) -I. -I/usr/include/$(MULTIARCH) -Wall -Werror -c $< -o $@
	$(Q)llvm-strip -g $@ 2>/dev/null || true

# A program in parts (bpf/NAME/*.bpf.c, each compiled as above) is linked into
# $(BUILD)/bpf/NAME.bpf.o by libbpf's static linker: one object, one skeleton;
# an extern in one part resolves to the definition in another.  The part that
# defines the shared state, state.bpf.c, comes first: libbpf 1.1's linker
# fails to relocate a map declared extern before its definition was linked
# ("map relo failed to find map for section '.maps'").
define BPF_LINK
$(BUILD)/bpf/$(1).bpf.o: $(BUILD)/bpf/$(1)/state.bpf.o \
		$(filter-out %/state.bpf.o,$(patsubst %.bpf.c,$(BUILD)/%.bpf.o,$(wildcard bpf/$(1)/*.bpf.c)))
	$$(call msg,BPFLINK,$$@)
	$(Q)$(BPFTOOL) gen object $$@ $$^
endef
$(foreach p,$(BPF_LINKED),$(eval $(call BPF_LINK,$(p))))

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# ---- C -------------------------------------------------------------------------
HDRS := $(wildcard $(addsuffix /*.h,$(ROOMS)) guest/kvm/*.h bpf/*.h tests/lib/*.h)
# The objects that embed the git revision rebuild when it changes (a commit,
# or a tree becoming dirty or clean): results must name the code that ran.
GITREV_STAMP := $(BUILD)/gitrev.stamp
GITREV_USERS := $(patsubst %.c,$(BUILD)/%.o,$(shell grep -l PCB_GITREV $(LIB_SRCS) $(MAINS) 2>/dev/null))
$(GITREV_STAMP): FORCE
	@mkdir -p $(@D); echo '$(GITREV)' | cmp -s - $@ || echo '$(GITREV)' > $@
.PHONY: FORCE
FORCE:
$(GITREV_USERS): $(GITREV_STAMP)

$(BUILD)/%.o: %.c $(HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Only the tracer (trace/) includes BPF skeletons.  They are named here as explicit
# prerequisites too: a pattern rule whose prerequisite neither exists nor is
# mentioned explicitly loses to the generic rule above, so on a clean tree
# trace/*.c were compiled before its skeletons were generated.
TRACE_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard trace/*.c))
$(TRACE_OBJS): $(BPF_SKELS)
$(BUILD)/trace/%.o: trace/%.c $(HDRS) $(BPF_SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# ---- the KVM guest (--guest=kvm): freestanding 64-bit image built from source ----
# The same generator files as the process guest, compiled with PCB_GUEST (only
# their next hook), plus the guest's vCPU loop; linked at 0x10000 and
# flattened to a binary that blob.S embeds into pcbench.
KVM_GUEST_WL   := seq random stride phase scanhot chase idle
KVM_GUEST_OBJS := $(BUILD)/kvm-guest/guest_entry.o $(BUILD)/kvm-guest/guest/kvm/guest_main.o \
	$(KVM_GUEST_WL:%=$(BUILD)/kvm-guest/workloads/%.o)
KVM_GUEST_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -fno-builtin -fno-pic -fno-pie \
	-fno-stack-protector -mno-red-zone -mgeneral-regs-only -fno-asynchronous-unwind-tables -fcf-protection=none \
	-mcmodel=small -DPCB_GUEST -D_GNU_SOURCE -I. -I/usr/include/$(MULTIARCH)
$(BUILD)/kvm-guest/%.o: %.c $(HDRS) Makefile
	$(call msg,GUESTCC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(KVM_GUEST_CFLAGS) -c $< -o $@
$(BUILD)/kvm-guest/guest_entry.o: guest/kvm/guest_entry.S
	$(call msg,GUESTAS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -c $< -o $@
$(BUILD)/kvm-guest/guest.elf: $(KVM_GUEST_OBJS) guest/kvm/guest.lds
	$(call msg,GUESTLD,$@)
	$(Q)$(LD) -nostdlib -static -no-pie -z noexecstack -T guest/kvm/guest.lds -o $@ $(KVM_GUEST_OBJS)
$(BUILD)/kvm-guest/guest.bin: $(BUILD)/kvm-guest/guest.elf
	$(Q)objcopy -O binary $< $@
$(BUILD)/guest/kvm/blob.o: guest/kvm/blob.S $(BUILD)/kvm-guest/guest.bin
	$(call msg,AS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -c -DPCB_KVM_GUEST_BIN='"$(BUILD)/kvm-guest/guest.bin"' $< -o $@

$(BUILD)/libpcb.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# -rdynamic: a policy loaded with --policy=./x.so calls pcbench's helpers (pcb_batch_add, ...)
$(BUILD)/pcbench: $(BUILD)/cli/main.o $(BUILD)/libpcb.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $^ $(LDLIBS)

$(BUILD)/pctrace: $(BUILD)/tools/pctrace/pctrace.o $(BUILD)/libpcb.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Always refreshed (phony): ./pcbench is the binary of the last build variant asked for, so
# `make test SANITIZE=1` tests the sanitized one and a later `make` restores the plain one.
.PHONY: pcbench pctrace
pcbench: $(BUILD)/pcbench
	$(Q)cp $< $@.tmp && mv -f $@.tmp $@
pctrace: $(BUILD)/pctrace
	$(Q)cp $< $@.tmp && mv -f $@.tmp $@

# ---- tests -----------------------------------------------------------------------
$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libpcb.a $(TESTLIB_OBJS)
	$(call msg,CCLD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -rdynamic -o $@ $< $(TESTLIB_OBJS) $(BUILD)/libpcb.a -lcmocka $(LDLIBS)

$(BUILD)/tests/helpers/%: tests/helpers/%.c $(TESTLIB_OBJS)
	$(call msg,CCLD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TESTLIB_OBJS) $(LDLIBS)

# ---- example policies (docs/writing-a-policy.md): one shared object each ------
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_SOS  := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%.so)
examples: $(EXAMPLE_SOS)
$(BUILD)/examples/%.so: examples/%.c policies/policy.h
	$(call msg,SO,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -fPIC -shared -o $@ $<

# tests: a policy object built against another ABI (refused)
$(BUILD)/tests/bad_abi_policy.so: tests/unit/bad_abi_policy.c policies/policy.h
	$(call msg,SO,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -fPIC -shared -o $@ $<

unit: $(UNIT_BINS) $(EXAMPLE_SOS) $(BUILD)/tests/bad_abi_policy.so
	$(Q)BUILD=$(BUILD) tests/run-tests.sh unit $(UNIT_BINS)

integ: $(PROGS) $(HELPER_BINS) $(EXAMPLE_SOS) $(BUILD)/tests/bad_abi_policy.so
	$(Q)BUILD=$(BUILD) tests/run-tests.sh integ $(sort $(wildcard tests/integ/*.sh))

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory integ

# ---- benchmarks and figures ----------------------------------------------------
# `make bench`: run the experiments JOB (default: configs/default.conf, the synthetic matrix, then
# configs/sqlite.conf, the same question on real application code) with `pcbench bench` (resumes
# an interrupted one), then the `pcbench simulate` sweep of a job's [sweep] section
# (analysis/sweep.py), its statistics and figures; each results directory is printed.
# `make plots RESULTS=dir` redraws the figures of a results directory without running anything.
JOB ?= configs/default.conf configs/sqlite.conf
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)rc=0; for job in $(JOB); do \
		jrc=0; dir=$$(./pcbench bench $$job $(BENCH_ARGS)) || jrc=$$?; \
		if [ -n "$$dir" ] && [ $$jrc = 0 ]; then $(PYTHON) analysis/sweep.py "$$dir" || exit $$?; fi; \
		if [ -n "$$dir" ]; then PYTHON=$(PYTHON) analysis/plots.sh "$$dir" || exit $$?; echo "bench: $$job -> $$dir"; fi; \
		[ $$jrc = 0 ] || rc=$$jrc; \
	done; exit $$rc

# `make bench-channels`: demand fault latency under a saturating background pull, 1 vs 2
# channels (configs/channels.conf), and the 1-vs-2 table from the same invocation.
bench-channels: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)dir=$$(./pcbench bench configs/channels.conf $(BENCH_ARGS)) && python3 analysis/channels.py "$$dir"

plots: pcbench
	$(Q)if [ -z "$(RESULTS)" ]; then echo "usage: make plots RESULTS=results/DIR" >&2; exit 64; fi
	$(Q)analysis/plots.sh "$(RESULTS)"

# The pager floor: bare userfaultfd / bare TCP / pcbench, ratios; JSON in results/.
bench-floor: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)mkdir -p results && out=results/floor-$$(date -u +%Y%m%dT%H%M%SZ)-$(GITREV).json && \
		./pcbench floor --json $$out $(FLOOR_ARGS) && echo "floor: $$out"

# Scale: pull throughput, migration time and pager memory for SCALE_SIZES (idle and running
# guest), SCALE_REPS sweeps (default 3; medians), table + figure in results/scale-TIME-REV/
# (bench/scale.sh; 16 GiB needs ~17 GiB free).
SCALE_SIZES ?= 256M 1G 4G 16G
bench-scale: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)mkdir -p results && SCALE_SIZES="$(SCALE_SIZES)" PYTHON=$(PYTHON) bench/scale.sh results/scale-$$(date -u +%Y%m%dT%H%M%SZ)-$(GITREV) ./pcbench

# ---- fuzzing (libFuzzer, clang) ----------------------------------------------------
# `make fuzz` runs each fuzzer for FUZZ_TIME seconds on its seed corpus (new inputs
# go to build-fuzz/corpus*): fuzz_proto (tests/fuzz/fuzz_proto.c: frame parser,
# handshake, a whole source connection) and fuzz_pager (tests/fuzz/fuzz_pager.c:
# the destination's receive state machine, a real pager against a hostile source).
FUZZ_TIME  ?= 60
FUZZ_FLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -I. -I/usr/include/$(MULTIARCH) -pthread \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# the source pushes policies (source/push.c): both fuzzers link the rooms the pager needs
FUZZ_SRCS  := $(filter-out common/sysinfo.c,$(wildcard pager/*.c install/*.c policies/*.c wire/*.c common/*.c source/*.c)) \
	workloads/tracefile.c
FUZZ_PAGER_SRCS := $(FUZZ_SRCS)
FUZZ_LIBS  := $(filter-out -lbpf -lelf,$(LDLIBS))
build-fuzz/fuzz_proto: tests/fuzz/fuzz_proto.c $(FUZZ_SRCS) $(HDRS)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_proto.c $(FUZZ_SRCS) $(FUZZ_LIBS)

build-fuzz/fuzz_pager: tests/fuzz/fuzz_pager.c $(FUZZ_PAGER_SRCS) $(HDRS)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_pager.c $(FUZZ_PAGER_SRCS) $(FUZZ_LIBS)

fuzz: build-fuzz/fuzz_proto build-fuzz/fuzz_pager
	$(Q)mkdir -p build-fuzz/corpus build-fuzz/corpus-pager build-fuzz/crashes
	$(Q)build-fuzz/fuzz_proto -max_total_time=$(FUZZ_TIME) -max_len=65536 -timeout=10 -close_fd_mask=2 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/crashes/ build-fuzz/corpus tests/fuzz/corpus
	$(Q)build-fuzz/fuzz_pager -max_total_time=$(FUZZ_TIME) -max_len=300000 -timeout=20 -close_fd_mask=2 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/crashes/pager- build-fuzz/corpus-pager tests/fuzz/corpus-pager

clean:
	rm -rf build build-san build-fuzz pcbench pctrace

# docs/pcbench.1 is generated from the options table (cli/options.c); cli.sh checks it is current
man: $(BUILD)/pcbench
	$(BUILD)/pcbench --man > docs/pcbench.1
