# tegami — build, run and test.
#   make            build build/tegami
#   make run        build and start a development instance (data in ./var/)
#   make test       unit + integration tests under ASan+UBSan
#   make SANITIZE=1 build with ASan+UBSan
#   make fuzz       build the libFuzzer targets (clang)

CC       ?= cc
SANITIZE ?= 0
PKGS      = libevent libevent_openssl libevent_pthreads openssl libunbound sqlite3 zlib

BUILD_DEPS = gcc make pkg-config libssl-dev libevent-dev libunbound-dev \
             libsqlite3-dev libcrypt-dev zlib1g-dev openssl ca-certificates \
             publicsuffix
TEST_DEPS  = clang libclang-rt-14-dev python3 python3-pytest swaks libnet-ssleay-perl libio-socket-ssl-perl curl \
             dovecot-core dovecot-pop3d isync nsd dnsutils iproute2 python3-dkim python3-spf \
             python3-yaml python3-dnspython clamav-daemon rspamd

VERSION  ?= 0.1.0
CFLAGS_BASE = -DTEGAMI_VERSION=\"$(VERSION)\" -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
              -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
              -fno-strict-aliasing -g -Isrc
ifeq ($(SANITIZE),1)
VARIANT = san
CFLAGS_OPT = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_SAN = -fsanitize=address,undefined
else
VARIANT = opt
CFLAGS_OPT = -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong
LDFLAGS_SAN =
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS_OPT) $(PKG_CFLAGS) $(CFLAGS)
LIBS       = $(PKG_LIBS) -lcrypt -lpthread -lm

OBJDIR   = build/obj-$(VARIANT)
ALL_C    = $(shell find src -name '*.c' | sort)
TEST_C   = $(shell find src -name 'test_*.c' | sort)
LIB_C    = $(filter-out src/main.c $(TEST_C),$(ALL_C))
LIB_O    = $(LIB_C:src/%.c=$(OBJDIR)/%.o)
TEST_O   = $(TEST_C:src/%.c=$(OBJDIR)/%.o)
MAIN_O   = $(OBJDIR)/main.o

ifeq ($(SANITIZE),1)
TEGAMI = build/tegami-san
RUNNER = build/unit-tests-san
else
TEGAMI = build/tegami
RUNNER = build/unit-tests
endif

.SECONDARY:

.PHONY: all deps test-deps run test unit integration e2e fuzz fuzz-run clean bench

all: deps $(TEGAMI)

$(TEGAMI): $(LIB_O) $(MAIN_O)
	$(CC) $(LDFLAGS_SAN) -o $@ $^ $(LIBS) $(LDFLAGS)
	ln -sf $(notdir $@) build/setup$(if $(filter 1,$(SANITIZE)),-san,)

$(RUNNER): $(LIB_O) $(TEST_O)
	$(CC) $(LDFLAGS_SAN) -o $@ $^ $(LIBS) $(LDFLAGS)

$(OBJDIR)/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(OBJDIR) -name '*.d' 2>/dev/null)

# Dependencies: installed with apt-get when running as root, otherwise the
# exact command is printed and make stops.
deps:
	@sh tests/deps.sh $(BUILD_DEPS)
test-deps:
	@sh tests/deps.sh $(BUILD_DEPS) $(TEST_DEPS)

run: deps build/tegami
	./build/tegami serve

test: test-deps
	$(MAKE) --no-print-directory SANITIZE=1 build/tegami-san build/unit-tests-san
	$(MAKE) --no-print-directory fuzz
	/usr/bin/python3 tests/run-all.py

unit: test-deps
	$(MAKE) --no-print-directory SANITIZE=1 build/unit-tests-san
	./build/unit-tests-san

# libFuzzer targets: fuzz/fuzz_<name>.c, linked against the library objects
# built with clang and the fuzzer sanitizer.
FUZZ_C   = $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_C:fuzz/%.c=build/fuzz/%)
FUZZ_OBJ = build/obj-fuzz
FUZZ_LIB_O = $(LIB_C:src/%.c=$(FUZZ_OBJ)/%.o)
FUZZ_CFLAGS = $(CFLAGS_BASE) -O1 -fsanitize=fuzzer-no-link,address,undefined $(PKG_CFLAGS) -Wno-unused-command-line-argument

fuzz: $(FUZZ_BIN)

$(FUZZ_OBJ)/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "CC (fuzz) $<"
	@clang $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

build/fuzz/%: fuzz/%.c $(FUZZ_LIB_O)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIB_O) $(LIBS)

-include $(shell find $(FUZZ_OBJ) -name '*.d' 2>/dev/null)

fuzz-run: fuzz
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	  echo "fuzz $$n"; $$f -max_total_time=$${FUZZ_SECONDS:-10} -rss_limit_mb=1024 \
	  build/fuzz/corpus-$$n fuzz/seeds/$${n#fuzz_} 2>&1 | tail -n 2 || exit 1; done

clean:
	rm -rf build
