/* SPDX-License-Identifier: MIT */
/*
 * Fenced code blocks out of Markdown, with cmark (include/airlock-extract.h).
 *
 * cmark parses the whole document — blocks, then the inlines of every
 * paragraph, which we never look at but cannot switch off — and that is
 * where untrusted input hurts: Debian's cmark 0.30.2 takes quadratic time
 * on some inline patterns and up to ~160 bytes of memory per input byte.
 * So cmark allocates from an arena of ours (cmark_mem) that counts bytes
 * and, every ARENA_CLOCK_EVERY allocations, looks at the clock; over
 * budget it longjmp()s out of cmark, and the whole arena is dropped.
 * Every loop cmark runs allocates as it goes (nodes, text, delimiters),
 * so the check comes round often enough. cmark keeps no global state
 * outside the memory it gets from the arena, which is what makes leaving
 * it half-way safe.
 */
#include "airlock-extract.h"

#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <cmark.h>

#include "error.h"
#include "extract-internal.h"
#include "macro.h"
#include "util.h"

/* --- languages ---------------------------------------------------------- */

/* Markdown tags for the languages airlock runs (languages/default.json
 * names them python, node, bash, c). Anything else is "not ours". */
/* clang-format off */
static const struct {
        const char *tag, *lang;
} lang_tags[] = {
        {"python", "python"}, {"python3", "python"}, {"py", "python"},
        {"node", "node"}, {"nodejs", "node"}, {"javascript", "node"},
        {"js", "node"}, {"mjs", "node"}, {"cjs", "node"},
        {"bash", "bash"}, {"sh", "bash"}, {"shell", "bash"}, {"zsh", "bash"},
        {"c", "c"},
};
/* clang-format on */

static char ascii_lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII-only, so that the locale cannot change what a tag means. */
static bool tag_eq(const char *tag, size_t n, const char *name) {
        size_t i = 0;
        for (; i < n && name[i]; i++)
                if (ascii_lower(tag[i]) != name[i])
                        return false;
        return i == n && !name[i];
}

static const char *lang_lookup(const char *tag, size_t n) {
        for (size_t i = 0; i < ARRAY_SIZE(lang_tags); i++)
                if (tag_eq(tag, n, lang_tags[i].tag))
                        return lang_tags[i].lang;
        return NULL;
}

const char *al_lang_normalise(const char *tag) {
        return tag ? lang_lookup(tag, strlen(tag)) : NULL;
}

/* The language word of an info string: *ret NULL when there is none. */
static int info_lang(const char *info, char **ret) {
        const char *p = info;
        /* "{python}", "{.python .numberLines}", "{ r, echo=FALSE }" */
        while (*p == ' ' || *p == '\t' || *p == '{')
                p++;
        while (*p == '.')
                p++;
        size_t n = strcspn(p, " \t{},:");
        *ret = NULL;
        if (n == 0)
                return 0;
        const char *known = lang_lookup(p, n);
        char *s = known ? strdup(known) : strndup(p, n);
        if (!s)
                return -ENOMEM;
        if (!known)
                for (char *c = s; *c; c++)
                        *c = ascii_lower(*c);
        *ret = s;
        return 0;
}

char *al_info_lang(const char *info) {
        char *s = NULL;
        if (info)
                (void)info_lang(info, &s);
        return s;
}

/* --- input normalisation ------------------------------------------------ */

/* al_utf8_valid() over the runs of non-ASCII bytes only: every byte of a
 * multi-byte sequence is >= 0x80, so the text is valid exactly when each
 * maximal such run is. Replies are mostly ASCII; this skips it 8 bytes at
 * a time. */
static bool utf8_valid_fast(const unsigned char *s, size_t len) {
        const uint64_t high = 0x8080808080808080u;
        size_t i = 0;
        while (i < len) {
                uint64_t w;
                if (len - i >= 8) {
                        memcpy(&w, s + i, 8);
                        if (!(w & high)) {
                                i += 8;
                                continue;
                        }
                }
                if (s[i] < 0x80) {
                        i++;
                        continue;
                }
                size_t j = i;
                while (j < len && s[j] >= 0x80)
                        j++;
                if (!al_utf8_valid(s + i, j - i))
                        return false;
                i = j;
        }
        return true;
}

/* cmark replaces NUL (and, with CMARK_OPT_VALIDATE_UTF8, bad UTF-8) with
 * U+FFFD itself, but that moves bytes; doing it first means that the
 * lines cmark numbers are the lines of the buffer we look at (see
 * looks_fenced) and that every string we hand out is valid UTF-8. */
static int normalise(const char *md, size_t len, char **ret_owned,
                     const char **ret_buf, size_t *ret_len) {
        *ret_owned = NULL;
        /* cmark skips a byte order mark at the very start, and counts
         * columns after it */
        if (len >= 3 && !memcmp(md, "\xef\xbb\xbf", 3)) {
                md += 3;
                len -= 3;
        }
        if (!memchr(md, '\r', len) && !memchr(md, '\0', len) &&
            utf8_valid_fast((const unsigned char *)md, len)) {
                *ret_buf = md;
                *ret_len = len;
                return 0;
        }
        size_t slen;
        _cleanup_free_ char *s =
                al_utf8_sanitize((const unsigned char *)md, len, &slen);
        if (!s)
                return -ENOMEM;
        size_t nuls = 0;
        for (const char *p = s; (p = memchr(p, '\0', slen - (size_t)(p - s)));
             p++)
                nuls++;
        char *out = malloc(slen + 2 * nuls + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < slen; i++) {
                if (s[i] == '\r') {
                        if (i + 1 < slen && s[i + 1] == '\n')
                                continue;
                        out[o++] = '\n';
                } else if (s[i] == '\0') {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                } else
                        out[o++] = s[i];
        }
        out[o] = '\0';
        *ret_owned = out;
        *ret_buf = out;
        *ret_len = o;
        return 0;
}

/* --- the bounded arena cmark allocates from ----------------------------- */

/* cmark's structures hold pointers, sizes and ints, nothing wider: 8-byte
 * alignment serves them (max_align_t's 16 would cost ~4 MiB of padding
 * and headers per MiB of ordinary input, ~half a million allocations). */
#define ARENA_ALIGN 8u
/* each allocation is preceded by its size, for realloc */
#define ARENA_HDR 8u
#define ARENA_MIN_CHUNK (64u << 10)
#define ARENA_MAX_CHUNK (8u << 20)
/* Chunks this large are mapped on their own, aligned, and offered to the
 * kernel as transparent huge pages: the parse of 1 MiB touches ~10 MiB
 * of fresh memory, and faulting that in 4 KiB pages cost more than a
 * third of the time (measured in a Firecracker VM). A hint only: without
 * THP they are ordinary pages. */
#define ARENA_HUGE (2u << 20)
/* allocations between two looks at the clock: a few hundred nanoseconds
 * of work each, so the check costs little and comes often */
#define ARENA_CLOCK_EVERY 64

struct chunk {
        struct chunk *next;
        size_t size;
        bool mapped; /* mmap()ed, else calloc()ed */
};

struct arena {
        struct chunk *chunks;
        char *cur, *end; /* free space in the newest chunk */
        char *dirty;     /* newest chunk: zero from here on (calloc'd) */
        char *last;      /* the newest allocation, grown in place */
        size_t total;    /* bytes of all chunks: the budget */
        size_t max_memory;
        long max_cpu_ms;
        size_t next_chunk;
        unsigned ticks;
        struct timespec wall0, cpu0;
        int fail; /* errno for the longjmp */
        jmp_buf jb;
};

/* cmark_mem's functions take no context: the arena of the parse running
 * on this thread. */
static _Thread_local struct arena *cur_arena;

/* Smaller budgets for this thread, so that tests of the bounds are quick
 * (extract-internal.h); 0 means the AL_EXTRACT_MAX_* constants. */
static _Thread_local size_t test_max_memory;
static _Thread_local long test_max_cpu_ms;

void al_extract_set_test_budgets(size_t max_memory, long max_cpu_ms) {
        test_max_memory = max_memory;
        test_max_cpu_ms = max_cpu_ms;
}

static _Noreturn void arena_bail(struct arena *a, int errnum) {
        a->fail = errnum;
        longjmp(a->jb, 1);
}

static double ms_since(clockid_t clk, const struct timespec *t0) {
        struct timespec t;
        clock_gettime(clk, &t);
        return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
               (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The wall clock (vDSO, cheap) first; only when that is past the budget
 * the thread's CPU time (a system call) decides, so a loaded machine does
 * not fail a parse that is merely slow to get the CPU. */
static void arena_tick(struct arena *a) {
        if (++a->ticks % ARENA_CLOCK_EVERY)
                return;
        if (ms_since(CLOCK_MONOTONIC, &a->wall0) > (double)a->max_cpu_ms &&
            ms_since(CLOCK_THREAD_CPUTIME_ID, &a->cpu0) > (double)a->max_cpu_ms)
                arena_bail(a, ETIMEDOUT);
}

static size_t round_up(size_t n) {
        return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

/* A zeroed chunk of size bytes (a multiple of ARENA_HUGE when it is at
 * least that), or NULL. */
static struct chunk *chunk_new(size_t size) {
        struct chunk *c;
        if (size < ARENA_HUGE) {
                c = calloc(1, size);
                if (c)
                        *c = (struct chunk){.size = size};
                return c;
        }
        /* over-map by one huge page and trim to an aligned start */
        char *m = mmap(NULL, size + ARENA_HUGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                return NULL;
        char *start = (char *)(((uintptr_t)m + ARENA_HUGE - 1) &
                               ~(uintptr_t)(ARENA_HUGE - 1));
        if (start > m)
                munmap(m, (size_t)(start - m));
        munmap(start + size, (size_t)(m + ARENA_HUGE - start));
        (void)madvise(start, size, MADV_HUGEPAGE);
        c = (struct chunk *)start;
        *c = (struct chunk){.size = size, .mapped = true};
        return c;
}

static void chunk_free(struct chunk *c) {
        if (c->mapped)
                munmap(c, c->size);
        else
                free(c);
}

/* size bytes, not zeroed; the budget is checked on each new chunk */
static char *arena_alloc(struct arena *a, size_t size) {
        if (size > a->max_memory)
                arena_bail(a, E2BIG);
        size_t need = ARENA_HDR + round_up(size ? size : 1);
        if ((size_t)(a->end - a->cur) < need) {
                const size_t head = round_up(sizeof(struct chunk));
                size_t csize = a->next_chunk;
                if (csize < head + need)
                        csize = head + need;
                if (csize >= ARENA_HUGE)
                        csize = (csize + ARENA_HUGE - 1) &
                                ~(size_t)(ARENA_HUGE - 1);
                if (a->total + csize > a->max_memory)
                        arena_bail(a, E2BIG);
                /* zeroed (so arena_calloc skips its own memset): from
                 * mmap, or from calloc, which knows when its memory is
                 * fresh */
                struct chunk *c = chunk_new(csize);
                if (!c)
                        arena_bail(a, ENOMEM);
                c->next = a->chunks;
                a->chunks = c;
                a->total += csize;
                a->cur = a->dirty = (char *)c + head;
                a->end = (char *)c + csize;
                if (a->next_chunk < ARENA_MAX_CHUNK)
                        a->next_chunk *= 2;
        }
        char *p = a->cur + ARENA_HDR;
        memcpy(a->cur, &size, sizeof(size));
        a->cur += need;
        a->last = p;
        arena_tick(a);
        return p;
}

/* What is past a->dirty was never handed out: still zero. */
static void arena_zero(struct arena *a, char *p, size_t size) {
        if (p < a->dirty)
                memset(p, 0,
                       (size_t)(a->dirty - p) < size ? (size_t)(a->dirty - p)
                                                     : size);
        if (a->dirty < a->cur)
                a->dirty = a->cur;
}

static void *arena_calloc(size_t n, size_t size) {
        struct arena *a = cur_arena;
        if (size && n > SIZE_MAX / size)
                arena_bail(a, E2BIG);
        char *p = arena_alloc(a, n * size);
        arena_zero(a, p, n * size);
        return p;
}

static void *arena_realloc(void *ptr, size_t size) {
        struct arena *a = cur_arena;
        char *p;
        if (!ptr) {
                p = arena_alloc(a, size);
        } else if (ptr == a->last && size <= a->max_memory &&
                   round_up(size ? size : 1) <=
                           (size_t)(a->end - (char *)ptr)) {
                /* cmark's buffers grow by realloc: in place when newest */
                memcpy((char *)ptr - ARENA_HDR, &size, sizeof(size));
                a->cur = (char *)ptr + round_up(size ? size : 1);
                arena_tick(a);
                p = ptr;
        } else {
                size_t old;
                memcpy(&old, (char *)ptr - ARENA_HDR, sizeof(old));
                p = arena_alloc(a, size);
                memcpy(p, ptr, old < size ? old : size);
        }
        if (a->dirty < a->cur)
                a->dirty = a->cur;
        return p;
}

/* Only the newest allocation is given back; the rest goes with the arena
 * (cmark frees little before the end: what it allocates, it keeps). */
static void arena_free(void *ptr) {
        struct arena *a = cur_arena;
        if (ptr && a && ptr == a->last) {
                a->cur = (char *)ptr - ARENA_HDR;
                a->last = NULL;
        }
}

static cmark_mem arena_mem = {arena_calloc, arena_realloc, arena_free};

static void arena_drop(struct arena *a) {
        while (a->chunks) {
                struct chunk *next = a->chunks->next;
                chunk_free(a->chunks);
                a->chunks = next;
        }
}

/* --- the tree ----------------------------------------------------------- */

/* A forward-only cursor over the lines of the normalised input. */
struct lines {
        const char *buf;
        size_t len;
        unsigned line; /* 1-based number of the line at off */
        size_t off;
};

/* Line n as [*ret_start, *ret_end) without its '\n'; false past the end. */
static bool line_at(struct lines *l, unsigned n, const char **ret_start,
                    size_t *ret_len) {
        if (n < l->line) {
                l->line = 1;
                l->off = 0;
        }
        while (l->line < n) {
                const char *nl = memchr(l->buf + l->off, '\n', l->len - l->off);
                if (!nl)
                        return false;
                l->off = (size_t)(nl - l->buf) + 1;
                l->line++;
        }
        const char *s = l->buf + l->off;
        const char *nl = memchr(s, '\n', l->len - l->off);
        *ret_start = s;
        *ret_len = nl ? (size_t)(nl - s) : l->len - l->off;
        return true;
}

/* cmark 0.30 has no public "is this block fenced": an indented block
 * reports an empty info string, like an untagged fence. Tell them apart
 * by the source: a fenced block starts (start_column is a byte offset into
 * the line, after any container markers) with a run of three or more '`'
 * or '~', and its code does not include that line. An indented block
 * whose first line is itself "```" starts at the same kind of run but
 * does include it, as its first code line; a fence cannot hold its own
 * opening line as content, as that line would close it. */
static bool looks_fenced(struct lines *l, unsigned line, unsigned col,
                         const char *lit) {
        const char *s;
        size_t n;
        if (col < 1 || !line_at(l, line, &s, &n) || col - 1 >= n)
                return false;
        s += col - 1;
        n -= col - 1;
        size_t run = 0;
        while (run < n && s[run] == s[0] && (s[0] == '`' || s[0] == '~'))
                run++;
        if (run < 3)
                return false;
        const char *nl = strchr(lit, '\n');
        size_t first = nl ? (size_t)(nl - lit) : strlen(lit);
        return !(first == n && memcmp(lit, s, n) == 0);
}

static size_t count_lines(const char *s) {
        size_t k = 0;
        while ((s = strchr(s, '\n'))) {
                k++;
                s++;
        }
        return k;
}

/* A fence closed by its closing line spans start .. start + lines + 1,
 * inside its parent. Without one it ends either at the end of the input
 * (cmark then sets end_line to the last line: no line for a closing
 * fence), or when its container ends (a list item or quote that the next
 * line does not continue: cmark then sets the block's end_line to that
 * next line, past its parent's end). */
static bool unterminated(cmark_node *n, size_t code_lines) {
        long start = cmark_node_get_start_line(n);
        long end = cmark_node_get_end_line(n);
        cmark_node *parent = cmark_node_parent(n);
        long parent_end = parent ? cmark_node_get_end_line(parent) : end;
        return !((long)code_lines == end - start - 1 && end <= parent_end);
}

static bool is_container(cmark_node_type t) {
        return t == CMARK_NODE_DOCUMENT || t == CMARK_NODE_BLOCK_QUOTE ||
               t == CMARK_NODE_LIST || t == CMARK_NODE_ITEM ||
               t == CMARK_NODE_CUSTOM_BLOCK;
}

struct collect {
        al_block *v;
        size_t n, cap;
        unsigned flags;
        struct lines lines;
        al_error *err;
};

static int add_block(struct collect *c, cmark_node *node) {
        const char *info = cmark_node_get_fence_info(node);
        const char *lit = cmark_node_get_literal(node);
        if (!info)
                info = "";
        if (!lit)
                lit = "";
        int start = cmark_node_get_start_line(node);
        int col = cmark_node_get_start_column(node);
        if (start < 1 || col < 1)
                return 0;
        bool fenced = *info || looks_fenced(&c->lines, (unsigned)start,
                                            (unsigned)col, lit);
        if (!fenced && !(c->flags & AL_EXTRACT_INDENTED))
                return 0;
        if (c->n >= AL_EXTRACT_MAX_BLOCKS)
                return al_error_set(c->err, E2BIG,
                                    "more than %u code blocks in the "
                                    "Markdown input",
                                    (unsigned)AL_EXTRACT_MAX_BLOCKS);
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                al_block *v = realloc(c->v, cap * sizeof(*v));
                if (!v)
                        return al_error_set(c->err, ENOMEM, "out of memory");
                c->v = v;
                c->cap = cap;
        }
        size_t len = strlen(lit);
        al_block *b = &c->v[c->n];
        *b = (al_block){
                .len = len,
                .line = (unsigned)start,
                .code_line = fenced ? (unsigned)start + 1 : (unsigned)start,
                .fenced = fenced,
                .unterminated = fenced && unterminated(node, count_lines(lit)),
        };
        b->code = strndup(lit, len);
        b->info = strdup(info);
        if (!b->code || !b->info || info_lang(info, &b->lang) < 0) {
                free(b->code);
                free(b->info);
                return al_error_set(c->err, ENOMEM, "out of memory");
        }
        c->n++;
        return 0;
}

/* Pre-order over the container blocks: code blocks come out in document
 * order. Paragraphs and headings hold inlines, never code blocks, and are
 * not entered. No cmark_iter: it would allocate. */
static int walk(cmark_node *doc, struct collect *c) {
        cmark_node *n = cmark_node_first_child(doc);
        while (n) {
                cmark_node_type t = cmark_node_get_type(n);
                if (t == CMARK_NODE_CODE_BLOCK) {
                        int r = add_block(c, n);
                        if (r < 0)
                                return r;
                }
                cmark_node *child =
                        is_container(t) ? cmark_node_first_child(n) : NULL;
                if (child) {
                        n = child;
                        continue;
                }
                while (n != doc && !cmark_node_next(n))
                        n = cmark_node_parent(n);
                n = n == doc ? NULL : cmark_node_next(n);
        }
        return 0;
}

/* Parse and walk, cmark allocating from a. When a budget runs out, the
 * error is set and c keeps the blocks taken so far, for the caller to
 * free. The walk runs under the same setjmp, in case cmark's accessors
 * allocate (they do not in 0.30; earlier versions' did). */
static int extract_bounded(struct arena *a, const char *buf, size_t len,
                           struct collect *c) {
        /* cmark needs ~10 bytes per input byte for ordinary Markdown:
         * start near that, in as few chunks as the cap allows */
        a->next_chunk = len < ARENA_MAX_CHUNK / 8 ? len * 8 : ARENA_MAX_CHUNK;
        if (a->next_chunk < ARENA_MIN_CHUNK)
                a->next_chunk = ARENA_MIN_CHUNK;
        a->max_memory =
                test_max_memory ? test_max_memory : AL_EXTRACT_MAX_MEMORY;
        a->max_cpu_ms =
                test_max_cpu_ms ? test_max_cpu_ms : AL_EXTRACT_MAX_CPU_MS;
        clock_gettime(CLOCK_MONOTONIC, &a->wall0);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a->cpu0);
        cur_arena = a;
        if (setjmp(a->jb)) {
                cur_arena = NULL;
                if (a->fail == ETIMEDOUT)
                        return al_error_set(c->err, ETIMEDOUT,
                                            "Markdown input too costly to "
                                            "parse: more than %ld ms of CPU",
                                            a->max_cpu_ms);
                if (a->fail == E2BIG)
                        return al_error_set(c->err, E2BIG,
                                            "Markdown input too complex to "
                                            "parse: more than %zu MiB of "
                                            "parser memory",
                                            a->max_memory >> 20);
                return al_error_set(c->err, a->fail,
                                    "out of memory parsing Markdown");
        }
        /* No CMARK_OPT_VALIDATE_UTF8: normalise() already did it. The
         * parser is not freed: its memory goes with the arena. */
        cmark_parser *p =
                cmark_parser_new_with_mem(CMARK_OPT_DEFAULT, &arena_mem);
        cmark_parser_feed(p, buf, len);
        int r = walk(cmark_parser_finish(p), c);
        cur_arena = NULL;
        return r;
}

/* --- API ---------------------------------------------------------------- */

void al_blocks_free(al_block *blocks, size_t n) {
        if (!blocks)
                return;
        for (size_t i = 0; i < n; i++) {
                free(blocks[i].lang);
                free(blocks[i].info);
                free(blocks[i].code);
        }
        free(blocks);
}

int al_extract_blocks(const char *md, size_t len, unsigned flags,
                      al_block **ret_blocks, size_t *ret_n, al_error *err) {
        if ((!md && len) || !ret_blocks || !ret_n ||
            (flags & ~(unsigned)AL_EXTRACT_INDENTED))
                return al_error_set(err, EINVAL,
                                    "al_extract_blocks: invalid arguments");
        if (len > AL_EXTRACT_MAX_INPUT)
                return al_error_set(err, EFBIG,
                                    "Markdown input of %zu bytes is larger "
                                    "than the limit of %u MiB",
                                    len, AL_EXTRACT_MAX_INPUT >> 20);
        if (!md)
                md = "";
        _cleanup_free_ char *owned = NULL;
        const char *buf;
        size_t blen;
        if (normalise(md, len, &owned, &buf, &blen) < 0)
                return al_error_set(err, ENOMEM, "out of memory");

        struct collect c = {
                .flags = flags,
                .lines = {.buf = buf, .len = blen, .line = 1},
                .err = err,
        };
        struct arena a = {0};
        int r = extract_bounded(&a, buf, blen, &c);
        arena_drop(&a);
        if (r < 0) {
                al_blocks_free(c.v, c.n);
                return r;
        }
        if (c.n == 0) {
                free(c.v);
                c.v = NULL;
        }
        *ret_blocks = c.v;
        *ret_n = c.n;
        return 0;
}
