# airlock — plain GNU make + pkg-config.
#   make            build build/airlock and build/libairlock.a
#   make check      install missing Debian deps, build, run every test (TAP/prove)
#   make check-sessions  the three attack suites again, each probe a session's cell
#   make serve      install deps, build, make a key, run airlock serve on
#                   127.0.0.1:8080 and print how to call it
#   make demo       install deps, build, run a sandboxed demonstration
#   make bench      install the peers, build, run every benchmark (cold start,
#                   check, extract, audit, serve; see bench/README.md)
#   make bench-serve  the airlock serve benchmark alone
#   make bench-sessions  the sessions benchmark alone
#   make bench-warm  the warm-start benchmark alone
#   make bench-egress  the egress proxy benchmark alone
#   make asan       build + unit tests with -fsanitize=address,undefined
#   make install    install binary and man pages under $(PREFIX)

PREFIX  ?= /usr/local
BUILD   ?= build
CC      ?= gcc
# libidn2: allowlist host names to punycode (src/sandbox/egress-rules.c)
PKGS    := jansson sqlite3 libsodium tree-sitter libcmark libidn2
# Loaded with dlopen() on the paths that use them, so that they do not slow
# down every start (libmicrohttpd brings 9 more libraries, its TLS stack):
# only their headers are needed at build time. libmicrohttpd by airlock
# serve alone (src/serve/serve-http.c); libcurl when an alert webhook is
# configured or airlock agent talks to a model (src/base/httpc.c).
DL_PKGS := libmicrohttpd
# libseccomp compiles the filter at build time (src/gen/) and in the tests;
# the binary does not link it.
GEN_PKGS := libseccomp

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Werror=implicit-function-declaration \
           -Wformat=2 -Wno-format-nonliteral -Wundef -Wvla -Wpointer-arith \
           -Wno-format-truncation  # bounded snprintf into fixed buffers is intended
HARDEN  := -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIE \
           -fstack-clash-protection -fcf-protection
CFLAGS  ?= -O2 -g
# The source tree is a stack of rooms (src/*/README.md): each folder may
# include its own headers and those of the rooms below it, never above
# (scripts/layers.sh checks it). libairlock.a is the lower rooms; the
# binary adds the front-ends.
LIB_DIRS := base sandbox audit check service
APP_DIRS := serve agent cli
SRC_DIRS := $(LIB_DIRS) $(APP_DIRS)
ALL_CFLAGS := -std=gnu17 $(WARN) $(HARDEN) $(CFLAGS) -D_GNU_SOURCE \
              -Iinclude $(SRC_DIRS:%=-Isrc/%) $(shell pkg-config --cflags $(PKGS) $(DL_PKGS) 2>/dev/null)
LDFLAGS ?=
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now $(LDFLAGS)
# The small libraries are linked statically (Debian ships their .a, built
# as PIE): the loader then maps and relocates libc and libm only, instead
# of 5 more objects at every start. What the archives need besides is in
# libc (sqlite3: -lm -ldl -lpthread; libsodium: -pthread). A build that
# wants the libraries' security updates without a rebuild links them
# shared: make STATIC_DEPS=0.
STATIC_DEPS ?= 1
ifeq ($(STATIC_DEPS),1)
# libidn2.a needs libunistring.a (its Libs.private; Debian's
# libunistring-dev), whose iconv is libc's.
LIBS    := -Wl,-Bstatic $(shell pkg-config --libs $(PKGS) 2>/dev/null) \
           $(shell pkg-config --libs-only-l --static libidn2 2>/dev/null) \
           -Wl,-Bdynamic -ldl -lpthread -lm
else
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldl -lpthread -lm
endif
GEN_LIBS := $(shell pkg-config --libs $(GEN_PKGS) 2>/dev/null)
HEADERS := $(wildcard include/*.h $(SRC_DIRS:%=src/%/*.h))

# tree-sitter grammars (static validation): fetched from the npm registry
# and checksum-verified by scripts/grammars.sh (grammars/grammars.lock)
GRAMMARS := python javascript bash
GRAMMAR_OBJ := $(foreach g,$(GRAMMARS),$(BUILD)/grammars/$(g)-parser.o $(BUILD)/grammars/$(g)-scanner.o)
LIB_SRC := $(wildcard $(LIB_DIRS:%=src/%/*.c))
# data linked into the binary with .incbin: languages, the default policy
LIB_DATA := $(BUILD)/obj/sandbox/languages-data.o $(BUILD)/obj/sandbox/sessions-data.o \
            $(BUILD)/obj/check/policy-data.o
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o) $(LIB_DATA) \
           $(BUILD)/gen/seccomp-bpf.o $(GRAMMAR_OBJ)
# what the build-time filter compiler needs from the library
GEN_DEPS := $(BUILD)/obj/sandbox/seccomp-filter.o $(BUILD)/obj/base/error.o $(BUILD)/obj/base/util.o
APP_SRC := $(wildcard $(APP_DIRS:%=src/%/*.c))
APP_OBJ := $(APP_SRC:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/serve/openapi-data.o
UNIT_SRC := $(wildcard tests/unit/test-*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps check check-sessions check-warm unit e2e demo serve bench bench-serve bench-sessions bench-warm bench-egress bench-audit bench-check bench-extract asan install clean format checksrc

all: $(BUILD)/airlock $(BUILD)/libairlock.a

deps:
	@sh scripts/deps.sh

# V=1 shows the full commands
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/sandbox/languages-data.o: src/sandbox/languages-data.S languages/default.json
	@mkdir -p $(@D)
	$(CC) -c -o $@ $<

SESSION_DRIVERS := languages/sessions/python.py languages/sessions/node.js languages/sessions/bash.sh \
                   languages/net/node-proxy.js
$(BUILD)/obj/sandbox/sessions-data.o: src/sandbox/sessions-data.S $(SESSION_DRIVERS)
	@mkdir -p $(@D)
	$(CC) -c -o $@ $<

$(BUILD)/obj/check/policy-data.o: src/check/policy-data.S policies/default.json
	@mkdir -p $(@D)
	$(CC) -c -o $@ $<

$(BUILD)/obj/serve/openapi-data.o: src/serve/openapi-data.S docs/openapi.json
	@mkdir -p $(@D)
	$(CC) -c -o $@ $<

$(BUILD)/grammars/.stamp: grammars/grammars.lock scripts/grammars.sh
	$(Q)sh scripts/grammars.sh $(BUILD)/grammars && touch $@

# generated parser tables: not our code, compiled without our warnings
$(BUILD)/grammars/%-parser.o: $(BUILD)/grammars/.stamp
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=gnu11 -O2 -w $(HARDEN) -I$(BUILD)/grammars/$* -c -o $@ $(BUILD)/grammars/$*/parser.c

$(BUILD)/grammars/%-scanner.o: $(BUILD)/grammars/.stamp
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=gnu11 -O2 -w $(HARDEN) -I$(BUILD)/grammars/$* -c -o $@ $(BUILD)/grammars/$*/scanner.c

# The seccomp filter, compiled once at build time from the rule table.
$(BUILD)/gen/seccomp-build.o: src/gen/seccomp-build.c src/sandbox/seccomp-filter.h | $(BUILD)/gen
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/gen/gen-bpf: src/gen/gen-bpf.c $(BUILD)/gen/seccomp-build.o $(GEN_DEPS) | $(BUILD)/gen
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(GEN_LIBS)

$(BUILD)/gen/seccomp-bpf.c: $(BUILD)/gen/gen-bpf
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$< > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/seccomp-bpf.o: $(BUILD)/gen/seccomp-bpf.c src/sandbox/seccomp-filter.h
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libairlock.a: $(LIB_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/airlock: $(APP_OBJ) $(BUILD)/libairlock.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(APP_OBJ) $(BUILD)/libairlock.a $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/tap.h $(BUILD)/libairlock.a $(BUILD)/gen/seccomp-build.o | $(BUILD)/tests
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests $(ALL_LDFLAGS) -o $@ $< $(BUILD)/gen/seccomp-build.o $(BUILD)/libairlock.a $(LIBS) $(GEN_LIBS)

$(BUILD)/tests $(BUILD)/gen:
	mkdir -p $@

# Source check: banned calls (like curl's checksrc) and formatting drift.
checksrc:
	@sh scripts/checksrc.sh

unit: $(UNIT_BIN)
	prove -f $(UNIT_BIN)

e2e: all
	prove -f tests/e2e/

check: deps
	$(MAKE) all $(UNIT_BIN)
	@sh scripts/checksrc.sh
	@sh scripts/test-npm.sh
	prove -f $(UNIT_BIN) tests/e2e/

# The three attack suites again, each probe the one cell of a fresh session
# (tests/e2e/lib/airlock.py: AIRLOCK_E2E_VIA=session); make check runs the
# short slice of it (tests/e2e/attacks-session.t).
check-sessions: all
	AIRLOCK_E2E_VIA=session prove -v tests/e2e/attacks.t tests/e2e/attack-escape.t tests/e2e/attack-exhaust.t

# The attack suites again, each probe a POST /v1/execute to an airlock
# serve --warm python --warm node: what a warm sandbox can take runs warm.
check-warm: all
	AIRLOCK_E2E_VIA=warm prove -v tests/e2e/attacks.t tests/e2e/attack-escape.t tests/e2e/attack-exhaust.t

demo: deps
	$(MAKE) all
	@sh scripts/demo.sh $(BUILD)/airlock

# The main job: build, make a key, serve on 127.0.0.1:8080 with SQLite.
serve: deps
	$(MAKE) all
	@sh scripts/serve.sh $(BUILD)/airlock

bench: deps
	@sh scripts/deps.sh --bench
	$(MAKE) all $(BUILD)/bench/audit-append $(BUILD)/bench/check-time $(BUILD)/bench/extract-bench
	/usr/bin/python3 bench/bench.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(BENCH_ARGS)
	/usr/bin/python3 bench/check.py --airlock $(BUILD)/airlock --timer $(BUILD)/bench/check-time
	/usr/bin/python3 bench/extract.py --airlock $(BUILD)/airlock --timer $(BUILD)/bench/extract-bench
	/usr/bin/python3 bench/audit.py --airlock $(BUILD)/airlock --append $(BUILD)/bench/audit-append \
	        --out $(BUILD)/bench $(AUDIT_BENCH_ARGS)
	/usr/bin/python3 bench/serve.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(SERVE_BENCH_ARGS)
	/usr/bin/python3 bench/sessions.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(SESSIONS_BENCH_ARGS)
	/usr/bin/python3 bench/warm.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(WARM_BENCH_ARGS)
	/usr/bin/python3 bench/egress.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(EGRESS_BENCH_ARGS)

# The egress proxy alone (bench/egress.py): the cost of --allow-net on a run
# that connects nowhere, and a 100 MB loopback download through the proxy
# next to a direct one.
bench-egress: deps
	$(MAKE) all
	/usr/bin/python3 bench/egress.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(EGRESS_BENCH_ARGS)

# Warm starts alone (bench/warm.py): warm and cold runs over HTTP next to
# bare python3, and throughput with 32 clients beside the pool's refill rate.
bench-warm: deps
	@sh scripts/deps.sh --bench
	$(MAKE) all
	/usr/bin/python3 bench/warm.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(WARM_BENCH_ARGS)

# Sessions alone (bench/sessions.py): a cell's round trip over HTTP, a
# session's creation next to a cold one-shot run, an idle session's memory.
bench-sessions: deps
	$(MAKE) all
	/usr/bin/python3 bench/sessions.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(SESSIONS_BENCH_ARGS)

# airlock serve alone (bench/serve.py): HTTP latency next to the CLI and the
# bare runtime, 32-client throughput next to the CLI's, idle memory.
bench-serve: deps
	$(MAKE) all
	/usr/bin/python3 bench/serve.py --airlock $(BUILD)/airlock --out $(BUILD)/bench $(SERVE_BENCH_ARGS)

# The audit benchmark alone (bench/audit.py): overhead per run, append and
# verify rates.
bench-audit: deps
	$(MAKE) all $(BUILD)/bench/audit-append
	/usr/bin/python3 bench/audit.py --airlock $(BUILD)/airlock --append $(BUILD)/bench/audit-append \
	        --out $(BUILD)/bench $(AUDIT_BENCH_ARGS)

# Static validation alone (bench/check.py): in process and end to end.
bench-check: deps
	$(MAKE) all $(BUILD)/bench/check-time
	/usr/bin/python3 bench/check.py --airlock $(BUILD)/airlock --timer $(BUILD)/bench/check-time

# Markdown extraction alone (bench/extract.py): in process and end to end.
bench-extract: deps
	$(MAKE) all $(BUILD)/bench/extract-bench
	/usr/bin/python3 bench/extract.py --airlock $(BUILD)/airlock --timer $(BUILD)/bench/extract-bench

$(BUILD)/bench/extract-bench: bench/extract-bench.c $(BUILD)/libairlock.a
	@mkdir -p $(BUILD)/bench
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libairlock.a $(LIBS)

$(BUILD)/bench/check-time: bench/check-time.c $(BUILD)/libairlock.a
	@mkdir -p $(BUILD)/bench
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libairlock.a $(LIBS)

$(BUILD)/bench/audit-append: bench/audit-append.c $(BUILD)/libairlock.a
	@mkdir -p $(BUILD)/bench
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libairlock.a $(LIBS)

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	        LDFLAGS="-fsanitize=address,undefined" unit

format:
	clang-format -i $(SRC_DIRS:%=src/%/*.[ch]) src/gen/*.c include/*.h tests/unit/*.c tests/*.h

install: all
	install -D -m 0755 $(BUILD)/airlock $(DESTDIR)$(PREFIX)/bin/airlock
	install -D -m 0644 include/airlock.h $(DESTDIR)$(PREFIX)/include/airlock.h
	install -D -m 0644 $(BUILD)/libairlock.a $(DESTDIR)$(PREFIX)/lib/libairlock.a
	for m in docs/*.1; do install -D -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/$$(basename $$m); done

clean:
	rm -rf build build-asan
