/* sqlite: real application code as the guest.  SQLite (Debian's libsqlite3)
 * runs a YCSB-style mix -- reads, updates, scans over Zipfian keys -- on a
 * database that lives in the guest region, with its heap there too.
 *
 * Region layout (the region is the guest's memory, migrated page by page):
 *   [0, db_bytes)              the database image: SQLite's file format, page 1
 *                              (the header) at offset 0, served to SQLite with
 *                              sqlite3_deserialize over this memory (fixed
 *                              buffer: not resizeable, not freed on close)
 *   [heap_off, heap_off+heap)  SQLite's heap (SQLITE_CONFIG_MALLOC with the
 *                              allocator below): connection, schema, page
 *                              cache, prepared statements, B-tree cursors,
 *                              the rollback journal (journal_mode=MEMORY)
 * Outside the region: the engine's code and static data (libsqlite3.so), the
 * vCPU threads' stacks, libc.  A VM's kernel and binaries are migrated too, but
 * their pages are few and hot at once; what differs between policies is how
 * the data and heap pages arrive, and those are in the region.
 *
 * The image (image_build, run by the destination before it forks the source,
 * and by anyone with the same knobs and seed) is the table after loading:
 * `usertable(k INTEGER PRIMARY KEY, ver INTEGER, v BLOB)`, rows k = 0..n-1
 * inserted in key order, ver = 0, v = value(seed, k, ver).  The heap area is
 * zero in the image: the destination starts a fresh heap and opens the
 * database from its image (the header and schema are its first faults) --
 * as a process would after a restart; SQLite's heap holds pointers, and the
 * destination's region is at another address than the source's.
 *
 * Ops: read = SELECT ver, v by key (the value is checked against the one its
 * key and version give); update = UPDATE ... SET ver = ver + 1, v =
 * value(k, ver + 1) (one statement, autocommit); scan = up to scan-len rows
 * from a key in key order, each checked.  Keys: Zipfian ranks scrambled over
 * the key space by a seeded permutation (YCSB's scrambled Zipfian).
 *
 * Several vCPUs share one connection opened in serialized mode
 * (SQLITE_OPEN_FULLMUTEX): SQLite runs one API call at a time, as an
 * embedded engine does in one process; each vCPU has its own statements. */
#include "common/util.h"
#include "workloads/workload.h"
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static const struct pcb_knob sq_knobs[] = {
	{ "records", "0", "rows in the table (0: as many as fill about half of the database area)" },
	{ "value", "1000", "bytes per row value (YCSB's record: 10 fields of 100 bytes)" },
	{ "read", "0.5", "weight of reads (one row by key)" },
	{ "update", "0.5", "weight of updates (a row's version + 1 and a new value, one statement)" },
	{ "scan", "0", "weight of scans (up to scan-len rows from a key, in key order)" },
	{ "scan-len", "100", "most rows per scan (uniform in 1..scan-len, as YCSB)" },
	{ "theta", "0.99", "Zipf skew of the key popularity (0 < theta < 1)" },
	{ "heap-mb", "0", "MiB of the region given to SQLite's heap (0: 1/8 of the region, at least 4)" },
	{ "cache-kb", "2000", "SQLite page cache (PRAGMA cache_size=-N; SQLite's default), on the heap" },
	{ "mmap", "1", "1: SQLite reads database pages in place (PRAGMA mmap_size); 0: copies them into its page cache" },
	{ NULL, NULL, NULL },
};

/* ---- the heap: a size-class allocator over part of the region ----
 * Classes of 16..128 bytes in steps of 16, then four per power of two
 * (at most 25% lost to rounding).  Free lists are offsets from the arena's
 * start, so the allocator's own state is pointer-free; a block carries its
 * class in a 16-byte header.  Deterministic: the same calls give the same
 * layout.  Memory is never given back to the bump area. */
#define SQ_NCLASS 160
#define SQ_MAGIC 0x73716c68u
struct arena {
	pthread_mutex_t lock;
	uint64_t bump, end;
	uint64_t used, peak, fails;
	uint64_t free[SQ_NCLASS];
};
struct blk {
	uint32_t cls, magic;
	uint64_t pad;
};
static struct arena *g_arena;   /* the heap SQLite allocates from now */
/* What SQLite allocates for itself at sqlite3_initialize (before any
 * database is open, kept for the process's life) lives outside the region,
 * with its static data: a small arena of its own. */
static _Alignas(64) uint8_t g_boot_mem[1 << 20];
static struct arena *g_boot;

static struct arena *arena_of(const uint8_t *p)
{
	if (g_boot && p >= (uint8_t *)g_boot && p < (uint8_t *)g_boot + g_boot->end)
		return g_boot;
	struct arena *a = g_arena;
	return a && p >= (uint8_t *)a && p < (uint8_t *)a + a->end ? a : NULL;
}

static unsigned size_class(uint64_t n)
{
	if (n <= 128)
		return n ? (unsigned)((n + 15) / 16 - 1) : 0;
	unsigned p = 63u - (unsigned)__builtin_clzll(n - 1);   /* 2^p < n <= 2^(p+1) */
	return 8 + (p - 7) * 4 + (unsigned)((n - 1 - (1ull << p)) >> (p - 2));
}

static uint64_t class_size(unsigned c)
{
	if (c < 8)
		return (c + 1) * 16ull;
	c -= 8;
	unsigned p = 7 + c / 4;
	return (1ull << p) + (uint64_t)(c % 4 + 1) * (1ull << (p - 2));
}

static struct arena *arena_start(uint8_t *base, uint64_t bytes)
{
	struct arena *a = (struct arena *)base;
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->bump = (sizeof(*a) + 15) & ~15ull;
	a->end = bytes;
	return a;
}

static void arena_reset(uint8_t *base, uint64_t bytes)
{
	g_arena = arena_start(base, bytes);
}

static void *a_malloc(int n)
{
	struct arena *a = g_arena ? g_arena : g_boot;
	unsigned c = size_class(n > 0 ? (uint64_t)n : 1);
	uint64_t sz = class_size(c), off;
	pthread_mutex_lock(&a->lock);
	if (c < SQ_NCLASS && (off = a->free[c]) != 0) {
		memcpy(&a->free[c], (uint8_t *)a + off, 8);
	} else if (c < SQ_NCLASS && a->bump + sizeof(struct blk) + sz <= a->end) {
		off = a->bump + sizeof(struct blk);
		a->bump += sizeof(struct blk) + sz;
	} else {
		a->fails++;
		pthread_mutex_unlock(&a->lock);
		return NULL;
	}
	a->used += sz;
	if (a->used > a->peak)
		a->peak = a->used;
	pthread_mutex_unlock(&a->lock);
	uint8_t *p = (uint8_t *)a + off;
	struct blk *h = (struct blk *)(p - sizeof(struct blk));
	h->cls = c;
	h->magic = SQ_MAGIC;
	return p;
}

static void a_free(void *pv)
{
	uint8_t *p = pv;
	/* a block of an earlier heap (a connection left at the source after a
	 * pre-copy switch-over) is not ours to reuse */
	struct arena *a = p ? arena_of(p) : NULL;
	if (!a)
		return;
	struct blk *h = (struct blk *)(p - sizeof(struct blk));
	uint64_t off = (uint64_t)(p - (uint8_t *)a);
	pthread_mutex_lock(&a->lock);
	memcpy(p, &a->free[h->cls], 8);
	a->free[h->cls] = off;
	a->used -= class_size(h->cls);
	pthread_mutex_unlock(&a->lock);
}

static int a_size(void *p)
{
	return p ? (int)class_size(((struct blk *)((uint8_t *)p - sizeof(struct blk)))->cls) : 0;
}

static void *a_realloc(void *p, int n)
{
	if (!p)
		return a_malloc(n);
	int have = a_size(p);
	if (n <= have && size_class((uint64_t)n) == size_class((uint64_t)have))
		return p;
	void *q = a_malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, (size_t)(n < have ? n : have));
	a_free(p);
	return q;
}

static int a_roundup(int n) { return (int)class_size(size_class(n > 0 ? (uint64_t)n : 1)); }
static int a_init(void *x) { (void)x; return SQLITE_OK; }
static void a_shutdown(void *x) { (void)x; }

static const sqlite3_mem_methods sq_mem = { a_malloc, a_free, a_realloc, a_size, a_roundup, a_init, a_shutdown, NULL };

/* SQLite is set up once per process: our allocator, then sqlite3_initialize. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_ready;

static int sqlite_ready(char *why, size_t whylen)
{
	if (g_ready)
		return 0;
	g_boot = arena_start(g_boot_mem, sizeof(g_boot_mem));
	struct arena *saved = g_arena;
	g_arena = NULL;
	int rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &sq_mem);
	if (rc == SQLITE_OK)
		rc = sqlite3_initialize();
	g_arena = saved;
	if (rc != SQLITE_OK) {
		snprintf(why, whylen, "SQLite cannot take the region's heap (SQLITE_CONFIG_MALLOC): %s", sqlite3_errstr(rc));
		return -PCB_EXIT_SOFTWARE;
	}
	g_ready = true;
	return 0;
}

/* ---- configuration ---- */
struct sq_cfg {
	uint64_t records, value, scan_len, heap_bytes, cache_kb, mmap;
	uint64_t db_bytes, heap_off;
	double read, update, scan, theta;
	uint64_t vseed;
};

extern const struct pcb_workload_ops pcb_workload_sqlite;

static int sq_cfg_get(const struct pcb_wl_params *prm, struct sq_cfg *c, char *why, size_t whylen)
{
	const struct pcb_workload_ops *o = &pcb_workload_sqlite;
	uint64_t heap_mb;
	memset(c, 0, sizeof(*c));
	if (pcb_wl_opt_u64(o, prm, "records", 0, 1ull << 32, &c->records, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "value", 1, 65536, &c->value, why, whylen) < 0 ||
	    pcb_wl_opt_dbl(o, prm, "read", 0, 1, &c->read, why, whylen) < 0 ||
	    pcb_wl_opt_dbl(o, prm, "update", 0, 1, &c->update, why, whylen) < 0 ||
	    pcb_wl_opt_dbl(o, prm, "scan", 0, 1, &c->scan, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "scan-len", 1, 100000, &c->scan_len, why, whylen) < 0 ||
	    pcb_wl_opt_dbl(o, prm, "theta", 0.01, 0.999, &c->theta, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "heap-mb", 0, 1 << 20, &heap_mb, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "cache-kb", 0, 1 << 30, &c->cache_kb, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "mmap", 0, 1, &c->mmap, why, whylen) < 0)
		return -1;
	double sum = c->read + c->update + c->scan;
	if (sum <= 0) {
		snprintf(why, whylen, "invalid value for workload option read: '0' (read, update and scan are all 0)");
		return -1;
	}
	c->read /= sum;
	c->update /= sum;
	c->scan /= sum;
	uint64_t region = prm->npages * PCB_PAGE_SIZE;
	c->heap_bytes = heap_mb ? heap_mb << 20 : region / 8 > (4u << 20) ? region / 8 : 4u << 20;
	if (region < (8u << 20) || c->heap_bytes + (4u << 20) > region) {
		snprintf(why, whylen, "invalid value for workload option heap-mb: '%llu' (the %llu MiB region needs at least 4 MiB "
			 "of database besides the heap; sqlite needs --mem of 8M or more)", (unsigned long long)(c->heap_bytes >> 20),
			 (unsigned long long)(region >> 20));
		return -1;
	}
	c->heap_bytes &= ~(uint64_t)(PCB_PAGE_SIZE - 1);
	c->db_bytes = region - c->heap_bytes;
	c->heap_off = c->db_bytes;
	/* a 4 KiB table leaf holds about 4000 / (value + 12) rows */
	uint64_t fit = c->db_bytes / 2 / (c->value + 24);
	if (!c->records)
		c->records = fit ? fit : 1;
	if (c->records > c->db_bytes / (c->value + 24) * 9 / 10) {
		snprintf(why, whylen, "invalid value for workload option records: '%llu' (%llu-byte values fill the %llu MiB "
			 "database area at about %llu rows)", (unsigned long long)c->records, (unsigned long long)c->value,
			 (unsigned long long)(c->db_bytes >> 20), (unsigned long long)(c->db_bytes / (c->value + 24)));
		return -1;
	}
	c->vseed = pcb_mix64(prm->seed ^ 0x73716c697465ull);
	return 0;
}

/* The value of row k at version ver. */
static void value_gen(uint64_t vseed, uint64_t k, uint64_t ver, uint8_t *out, size_t len)
{
	uint64_t h = pcb_mix64(vseed ^ pcb_mix64((k << 20) ^ ver));
	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = pcb_mix64(h + i);
		memcpy(out + i, &w, len - i < 8 ? len - i : 8);
	}
}

/* SQL function value(k, ver): the blob a row holds at that version. */
static void sql_value(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const struct sq_cfg *c = sqlite3_user_data(ctx);
	uint8_t *b = sqlite3_malloc((int)c->value);
	if (!b) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	value_gen(c->vseed, (uint64_t)sqlite3_value_int64(argv[0]), (uint64_t)sqlite3_value_int64(argv[1]), b, c->value);
	sqlite3_result_blob(ctx, b, (int)c->value, sqlite3_free);
}

static int sq_fail(sqlite3 *db, const char *what, char *why, size_t whylen)
{
	snprintf(why, whylen, "sqlite: %s: %s", what, db ? sqlite3_errmsg(db) : "cannot open a connection");
	return -PCB_EXIT_SOFTWARE;
}

/* Open a connection on the database image at mem (szdb bytes used, the
 * area's size as the fixed buffer), with the heap and pragmas set. */
static int sq_open(const struct sq_cfg *c, uint8_t *mem, uint64_t szdb, sqlite3 **out, char *why, size_t whylen)
{
	sqlite3 *db = NULL;
	char sql[256];
	*out = NULL;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK)
		return sq_fail(db, "open", why, whylen);
	if (sqlite3_deserialize(db, "main", mem, (sqlite3_int64)szdb, (sqlite3_int64)c->db_bytes, 0) != SQLITE_OK)
		return sq_fail(db, "sqlite3_deserialize over the region", why, whylen);
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=MEMORY; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-%llu; "
		 "PRAGMA mmap_size=%llu;", (unsigned long long)c->cache_kb, (unsigned long long)(c->mmap ? c->db_bytes : 0));
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_fail(db, "pragmas", why, whylen);
	if (sqlite3_create_function(db, "value", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, (void *)c, sql_value, NULL, NULL) != SQLITE_OK)
		return sq_fail(db, "create function", why, whylen);
	*out = db;
	return 0;
}

/* The database's size as its header says (offset 16: page size, 1 = 65536; offset 28: pages). */
static uint64_t header_db_size(const uint8_t *h)
{
	uint32_t ps = (uint32_t)h[16] << 8 | h[17];
	uint32_t np = (uint32_t)h[28] << 24 | (uint32_t)h[29] << 16 | (uint32_t)h[30] << 8 | h[31];
	return (uint64_t)(ps == 1 ? 65536 : ps) * np;
}

static int sq_build(const struct pcb_wl_params *prm, uint8_t *mem, char *why, size_t whylen)
{
	struct sq_cfg c;
	if (sq_cfg_get(prm, &c, why, whylen) < 0)
		return -1;
	pthread_mutex_lock(&g_lock);
	int rc = sqlite_ready(why, whylen);
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;
	if (rc)
		goto out;
	arena_reset(mem + c.heap_off, c.heap_bytes);
	if ((rc = sq_open(&c, mem, 0, &db, why, whylen)) != 0)
		goto out;
	rc = -PCB_EXIT_SOFTWARE;
	if (sqlite3_exec(db, "PRAGMA page_size=4096; CREATE TABLE usertable(k INTEGER PRIMARY KEY, ver INTEGER NOT NULL, "
			 "v BLOB NOT NULL); BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO usertable VALUES(?1, 0, value(?1, 0))", -1, &ins, NULL) != SQLITE_OK) {
		sq_fail(db, "creating the table", why, whylen);
		goto out;
	}
	for (uint64_t k = 0; k < c.records; k++) {
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)k);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			sq_fail(db, "loading the table", why, whylen);
			goto out;
		}
		sqlite3_reset(ins);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sq_fail(db, "COMMIT", why, whylen);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(ins);
	sqlite3_close(db);
	/* the image's heap area is zero: the destination starts its own heap */
	memset(mem + c.heap_off, 0, c.heap_bytes);
	g_arena = NULL;
	pthread_mutex_unlock(&g_lock);
	return rc;
}

/* ---- the guest ---- */
struct sq_shared {
	struct sq_cfg c;
	struct pcb_zipf z;
	uint32_t *perm;                /* popularity rank -> key */
	pthread_mutex_t lock;
	sqlite3 *db;                   /* the connection on region (NULL: none yet) */
	uint8_t *region;
	unsigned epoch;                /* connections opened so far */
};

struct sq_ts {
	struct sq_shared *s;
	struct pcb_rng rng;
	unsigned epoch;
	sqlite3_stmt *rd, *up, *sc;
	uint8_t *want;
};

static int sq_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	struct sq_shared *s = calloc(1, sizeof(*s));
	if (!s)
		return -PCB_EXIT_OSERR;
	if (sq_cfg_get(prm, &s->c, why, whylen) < 0) {
		free(s);
		return -1;
	}
	pcb_zipf_init(&s->z, s->c.records, s->c.theta);
	s->perm = pcb_perm_new(s->c.records, prm->seed, 0x73716cull);
	if (!s->perm) {
		free(s);
		return -PCB_EXIT_OSERR;
	}
	pthread_mutex_init(&s->lock, NULL);
	*shared = s;
	return 0;
}

/* The connection and the heap belong to the region: after a --precopy
 * switch-over (another region) they are left where they are, and a fresh
 * heap and connection start on the new region. */
static void sq_fini(void *shared)
{
	struct sq_shared *s = shared;
	if (!s)
		return;
	free(s->perm);
	free(s);
}

static int sq_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	struct sq_shared *s = shared;
	struct sq_ts *t = calloc(1, sizeof(*t));
	if (!t || !(t->want = malloc(s->c.value))) {
		free(t);
		return -1;
	}
	t->s = s;
	pcb_rng_seed(&t->rng, prm->seed, 0x73716c00ull + vcpu);
	*ts = t;
	return 0;
}

static void sq_thread_fini(void *ts)
{
	struct sq_ts *t = ts;
	free(t->want);
	free(t);
}

/* First op on a region: the first vCPU there starts the heap and opens the
 * database from its image; every vCPU prepares its statements. */
static int sq_attach(struct sq_ts *t, uint8_t *region, struct pcb_app_op *op)
{
	struct sq_shared *s = t->s;
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	if (s->region != region) {
		pthread_mutex_lock(&g_lock);
		rc = sqlite_ready(op->why, sizeof(op->why));
		if (!rc) {
			arena_reset(region + s->c.heap_off, s->c.heap_bytes);
			s->db = NULL;   /* the previous connection stays with its region */
			uint64_t sz = header_db_size(region);
			rc = sz > s->c.db_bytes ? -PCB_EXIT_SOFTWARE : sq_open(&s->c, region, sz, &s->db, op->why, sizeof(op->why));
			if (sz > s->c.db_bytes)
				snprintf(op->why, sizeof(op->why), "sqlite: the database header says %llu bytes, the area holds %llu",
					 (unsigned long long)sz, (unsigned long long)s->c.db_bytes);
		}
		pthread_mutex_unlock(&g_lock);
		s->region = region;
		s->epoch++;
	}
	sqlite3 *db = s->db;
	unsigned epoch = s->epoch;
	pthread_mutex_unlock(&s->lock);
	if (rc || !db)
		return rc ? rc : -PCB_EXIT_SOFTWARE;
	if (sqlite3_prepare_v2(db, "SELECT ver, v FROM usertable WHERE k = ?1", -1, &t->rd, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE usertable SET ver = ver + 1, v = value(k, ver + 1) WHERE k = ?1", -1, &t->up, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT k, ver, v FROM usertable WHERE k >= ?1 ORDER BY k LIMIT ?2", -1, &t->sc, NULL) != SQLITE_OK)
		return sq_fail(db, "prepare", op->why, sizeof(op->why));
	t->epoch = epoch;
	return 0;
}

/* A row as read: does its value match its key and version? */
static bool row_ok(struct sq_ts *t, sqlite3_stmt *st, int kcol, uint64_t k)
{
	uint64_t key = kcol >= 0 ? (uint64_t)sqlite3_column_int64(st, kcol) : k;
	uint64_t ver = (uint64_t)sqlite3_column_int64(st, kcol + 1);
	const void *v = sqlite3_column_blob(st, kcol + 2);
	int n = sqlite3_column_bytes(st, kcol + 2);
	value_gen(t->s->c.vseed, key, ver, t->want, t->s->c.value);
	return v && (uint64_t)n == t->s->c.value && !memcmp(v, t->want, t->s->c.value);
}

static int sq_op(void *ts, uint8_t *region, struct pcb_app_op *op)
{
	struct sq_ts *t = ts;
	struct sq_shared *s = t->s;
	if (t->epoch != s->epoch || s->region != region) {
		int rc = sq_attach(t, region, op);
		if (rc)
			return PCB_APP_ERR;
	}
	double u = pcb_rng_double(&t->rng);
	uint64_t k = s->perm[pcb_zipf_rank(&s->z, &t->rng)];
	sqlite3_stmt *st = u < s->c.read ? t->rd : u < s->c.read + s->c.update ? t->up : t->sc;
	op->kind = st == t->up ? PCB_ACC_WRITE : PCB_ACC_READ;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)k);
	if (st == t->sc)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(1 + pcb_rng_below(&t->rng, s->c.scan_len)));
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		op->rows++;
		if (!row_ok(t, st, st == t->sc ? 0 : -1, k))
			op->mismatch++;
	}
	if (st == t->up)
		op->rows = (uint32_t)sqlite3_changes(s->db);
	sqlite3_reset(st);
	if (r != SQLITE_DONE) {
		snprintf(op->why, sizeof(op->why), "sqlite: %s of key %llu: %s", st == t->up ? "update" : st == t->rd ? "read" : "scan",
			 (unsigned long long)k, sqlite3_errstr(r));
		return PCB_APP_ERR;
	}
	return PCB_APP_OK;
}

/* The end: PRAGMA integrity_check, then every row read back in key order. */
static int sq_check(void *shared, struct pcb_app_report *rep, char *why, size_t whylen)
{
	struct sq_shared *s = shared;
	memset(rep, 0, sizeof(*rep));
	snprintf(rep->engine, sizeof(rep->engine), "SQLite %s", sqlite3_libversion());
	rep->db_bytes = s->c.db_bytes;
	rep->heap_bytes = s->c.heap_bytes;
	if (!s->db) {
		snprintf(why, whylen, "sqlite: the guest never opened the database");
		return PCB_EXIT_SOFTWARE;
	}
	sqlite3_stmt *st = NULL;
	struct sq_ts t = { .s = s, .want = malloc(s->c.value) };
	XXH3_state_t *xs = XXH3_createState();
	int rc = PCB_EXIT_SOFTWARE;
	if (!t.want || !xs) {
		snprintf(why, whylen, "out of memory");
		rc = PCB_EXIT_OSERR;
		goto out;
	}
	if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		sq_fail(s->db, "PRAGMA integrity_check", why, whylen);
		goto out;
	}
	snprintf(rep->integrity, sizeof(rep->integrity), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(s->db, "SELECT k, ver, v FROM usertable ORDER BY k", -1, &st, NULL) != SQLITE_OK) {
		sq_fail(s->db, "reading the table", why, whylen);
		goto out;
	}
	XXH3_64bits_reset(xs);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t kv[2] = { (uint64_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1) };
		rep->rows++;
		rep->versions += kv[1];
		rep->rows_bad += !row_ok(&t, st, 0, 0);
		XXH3_64bits_update(xs, kv, sizeof(kv));
		XXH3_64bits_update(xs, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
	}
	if (r != SQLITE_DONE) {
		sq_fail(s->db, "reading the table", why, whylen);
		goto out;
	}
	rep->rows_digest = XXH3_64bits_digest(xs);
	rep->db_used_bytes = header_db_size(s->region);
	rep->heap_peak_bytes = g_arena ? g_arena->peak : 0;
	rc = 0;
out:
	sqlite3_finalize(st);
	XXH3_freeState(xs);
	free(t.want);
	return rc;
}

const struct pcb_workload_ops pcb_workload_sqlite = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "sqlite",
	.help = "SQLite (real code) over a database and heap in the region: YCSB-style reads, updates, scans on Zipfian keys",
	.knobs = sq_knobs,
	.init = sq_init,
	.fini = sq_fini,
	.thread_init = sq_thread_init,
	.thread_fini = sq_thread_fini,
	.image_build = sq_build,
	.app_op = sq_op,
	.app_check = sq_check,
};
