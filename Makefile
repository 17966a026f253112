# inferlab - one plain Makefile.
#   make            build build/inferlab and build/libinferlab.a
#   make test       install missing packages, build, run every test (conformance + CUnit)
#   make demo       the whole pipeline on Fashion-MNIST, ending in a report
#   make deps       install missing Debian/npm packages
#   make fuzz       libFuzzer targets (tests/fuzz/), FUZZ_SECONDS each
#   make help       this list
# Switches: SANITIZE=1 (ASan+UBSan, objects in build/san), DEBUG=1 (-O0 -g), CUDA=0 (skip nvcc),
#           DNNL=0 (build without oneDNN even where it is installed)

CC      ?= gcc
BUILD   ?= build
NVCC    ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
PROTO   ?= /usr/include/onnx/onnx.proto

ifeq ($(SANITIZE),1)
override BUILD := $(BUILD)/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
ifeq ($(DEBUG),1)
OPT     := -O0 -g
else
OPT     := -O3 -g
endif
ifeq ($(CUDA),0)
NVCC    :=
endif

comma    := ,
GEN      := $(BUILD)/gen
CPPFLAGS += -D_GNU_SOURCE -I. -I$(GEN) -MMD -MP
# -Wno-missing-field-initializers: passes are written {"name", "summary", run}, leaving the
# trailing il_pass flags (lossy) zero on purpose, as C defines.
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -fopenmp -march=x86-64-v2 $(SANFLAGS)
# OpenBLAS's OpenMP build shares our OpenMP threads instead of spinning its own pthreads
# against them (measured 1.5-2.7x faster on ResNet-18/MobileNet v2 at 2 threads); use it when
# installed (make deps installs it), else whatever libopenblas.so the system selects. Expanded
# when linking, so a first `make test` links it after deps installed it.
OPENBLAS_DIR = $(wildcard /usr/lib/x86_64-linux-gnu/openblas-openmp)
LDLIBS   += $(if $(OPENBLAS_DIR),-L$(OPENBLAS_DIR) -Wl$(comma)-rpath$(comma)$(OPENBLAS_DIR))
LDLIBS   += -lprotobuf-c -lopenblas -lsqlite3 -lyaml -lz -lm -lpthread -ldl
LDFLAGS  += -fopenmp $(SANFLAGS)
# oneDNN (Debian libdnnl-dev, make deps installs it): a second set of CPU kernels
# (engine/cpu/dnnl*.c) registered only when its header is found; the build works without it.
# Its OpenMP runtime is the same libgomp as ours, so it shares our threads.
DNNL_H := $(firstword $(wildcard /usr/include/oneapi/dnnl/dnnl.h /usr/include/dnnl.h))
ifneq ($(DNNL_H),)
ifneq ($(DNNL),0)
CPPFLAGS += -DIL_HAVE_DNNL
LDLIBS   += -ldnnl
endif
endif

ENGINE_SRC := $(wildcard engine/*.c engine/ops/*.c engine/cpu/*.c engine/cuda/*.c)
PASSES_SRC := $(wildcard passes/*.c)
QUANT_SRC  := $(wildcard quantize/*.c)
PRUNE_SRC  := $(wildcard prune/*.c)
DISTILL_SRC:= $(wildcard distill/*.c)
BENCH_SRC  := $(wildcard bench/*.c)
REPORT_SRC := $(wildcard reports/*.c)
LIB_SRC    := $(ENGINE_SRC) $(PASSES_SRC) $(QUANT_SRC) $(PRUNE_SRC) $(DISTILL_SRC) $(BENCH_SRC) $(REPORT_SRC)
CLI_SRC    := $(wildcard cli/*.c)
TEST_SRC   := $(wildcard tests/test_*.c)

LIB_OBJ  := $(GEN)/onnx.pb-c.o $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

# CUDA parts are built when nvcc is found (CI has it at /usr/local/cuda, without a GPU).
CUDA_SRC := $(wildcard engine/cuda/*.cu)
ifneq ($(NVCC),)
ifneq ($(CUDA_SRC),)
CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
LIB_OBJ  += $(CUDA_SRC:%.cu=$(BUILD)/%.cu.o)
CPPFLAGS += -DIL_HAVE_CUDA
# cudart linked statically; cuBLAS opened with dlopen on first GPU use (engine/cuda/runtime.cu)
LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -lstdc++ -lrt
endif
endif

LIB := $(BUILD)/libinferlab.a
BIN := $(BUILD)/inferlab
TESTBIN := $(BUILD)/test_inferlab

.PHONY: all test demo deps help clean check-conformance
all: $(BIN) $(LIB)

help:
	@sed -n '2,9p' Makefile | sed 's/^# //'

$(GEN)/onnx.pb-c.c $(GEN)/onnx.pb-c.h: $(PROTO)
	@mkdir -p $(GEN)
	protoc-c -I$(dir $(PROTO)) --c_out=$(GEN) $(PROTO)

$(GEN)/onnx.pb-c.o: $(GEN)/onnx.pb-c.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -w -c $< -o $@

# Every object may include the generated header.
$(BUILD)/%.o: %.c | $(GEN)/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 -I. -DIL_HAVE_CUDA -arch=sm_90 -Xcompiler -fPIC -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Pass plugins (passes/passes.h) resolve il_* functions from the program that loads them: the
# binaries export every symbol (-rdynamic) of the whole library (--whole-archive), not only the
# objects the program itself happens to use.
EXPORT_LIB = -rdynamic -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive
PLUGINS := $(patsubst %.c,$(BUILD)/%.so,$(wildcard passes/examples/*.c))

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(EXPORT_LIB) $(LDLIBS) -o $@

$(TESTBIN): $(TEST_OBJ) $(BUILD)/tests/main.o $(BUILD)/tests/util.o $(BUILD)/tests/op_harness.o $(LIB) | $(PLUGINS)
	$(CC) $(LDFLAGS) $(TEST_OBJ) $(BUILD)/tests/main.o $(BUILD)/tests/util.o $(BUILD)/tests/op_harness.o $(EXPORT_LIB) $(LDLIBS) -lcunit -o $@

# Example pass plugins (passes/examples/*.c -> $(BUILD)/passes/examples/*.so), built with the
# one command docs/passes.md gives researchers; tests/test_passes.c loads them from there.
$(BUILD)/passes/examples/%.so: passes/examples/%.c passes/passes.h engine/engine.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -fPIC -shared -I. $< -o $@

# make test: conformance runs first (each ends with "N passed, N failed, N skipped"), then the
# CUnit suites, whose summary closes the output.
test: deps $(BIN) $(TESTBIN)
	@$(MAKE) --no-print-directory fuzz-check
	./tests/conformance.sh $(BIN)
	IL_BIN=$(BIN) $(TESTBIN)

check-conformance: $(BIN)
	./tests/conformance.sh $(BIN)

# ---- make demo (bench/ and reports/, issue 4): installs deps, builds, then tools/demo.sh runs the
# whole pipeline on the Fashion-MNIST default and writes demo/results.db and
# demo/report/{index.html,report.pdf}.
demo: deps $(BIN)
	./tools/demo.sh $(BIN)

# Provenance recorded with every benchmark run: the commit (with -dirty for local changes) and the
# flags this binary was built with, baked into bench/provenance.o only; that object is rebuilt
# when the git index or HEAD moves, so the figure cannot go stale.
IL_GIT_DESC := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
$(BUILD)/bench/provenance.o: CPPFLAGS += -DIL_GIT_COMMIT='"$(IL_GIT_DESC)"' -DIL_BUILD_FLAGS='"$(CC) $(CFLAGS)"'
$(BUILD)/bench/provenance.o: $(wildcard .git/HEAD .git/index)

deps:
	@./tools/deps.sh

clean:
	rm -rf build

# ---- fuzzing (issue 13): libFuzzer targets in tests/fuzz/ (see tests/fuzz/README.md).
#   make fuzz [FUZZ_SECONDS=N] [FUZZ_TARGETS=...] [FUZZ_JOBS=J]   build with clang (ASan+UBSan), run
#   make fuzz-check   (part of make test) replay tests/fuzz/regress/ through the ordinary build
#                     (sanitized under SANITIZE=1), then fuzz each target FUZZ_SMOKE seconds with
#                     an -O0 build in build/fuzz-smoke (4x quicker to compile than -O1: CI's budget)
FUZZ_TARGETS ?= onnx tensor yaml store plan
FUZZ_SECONDS ?= 60
FUZZ_SMOKE   ?= 4
FUZZ_JOBS    ?= 1
FUZZ_CC      ?= clang
FUZZ_DIR     ?= build/fuzz
FUZZ_OPT     ?= -O1
FUZZ_CFLAGS  := -std=c11 $(FUZZ_OPT) -gline-tables-only -w -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -fopenmp=libgomp -march=x86-64-v2 -D_GNU_SOURCE -I. -I$(GEN) -MMD -MP
FUZZ_LDLIBS  := $(if $(OPENBLAS_DIR),-L$(OPENBLAS_DIR) -Wl$(comma)-rpath$(comma)$(OPENBLAS_DIR)) \
                -lprotobuf-c -lopenblas -lsqlite3 -lyaml -lz -lm -lpthread -ldl
FUZZ_LIB_OBJ := $(FUZZ_DIR)/obj/onnx.pb-c.o $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
REPLAY_BINS  := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)
.PHONY: fuzz fuzz-check

$(FUZZ_DIR)/obj/onnx.pb-c.o: $(GEN)/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_DIR)/obj/%.o: %.c | $(GEN)/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_DIR)/libinferlab.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.c tests/fuzz/fuzz.h $(FUZZ_DIR)/libinferlab.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(filter %.c,$^) $(FUZZ_DIR)/libinferlab.a $(FUZZ_LDLIBS) -o $@
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g -D_GNU_SOURCE -I. $(SANFLAGS) $(filter %.c,$^) $(LDFLAGS) $(LIB) $(LDLIBS) -o $@

fuzz: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%) $(BIN)
	FUZZ_DIR=$(FUZZ_DIR) FUZZ_JOBS=$(FUZZ_JOBS) BIN=$(BIN) tests/fuzz/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-check: $(REPLAY_BINS)
	@for t in $(FUZZ_TARGETS); do printf 'fuzz regress %-7s ' $$t; \
	    $(BUILD)/fuzz/replay_$$t $$(ls -d tests/fuzz/regress/$$t tests/fuzz/seeds/$$t 2>/dev/null) || exit 1; done
	@if $(FUZZ_CC) -fsanitize=fuzzer -x c /dev/null -o /dev/null 2>&1 | grep -q LLVMFuzzerTestOneInput; then \
	    FUZZ_SEED=1 $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE) FUZZ_OPT=-O0 FUZZ_DIR=build/fuzz-smoke; \
	else echo "fuzz smoke: skipped ($(FUZZ_CC) with libFuzzer not found; make deps installs it)"; fi

# the fuzz builds' dependencies too: with SANITIZE=1 they are not under $(BUILD), and a stale
# object built against an older header overflowed a struct copy in the smoke fuzz
-include $(shell find $(sort $(BUILD) build/fuzz build/fuzz-smoke) -name '*.d' 2>/dev/null)
