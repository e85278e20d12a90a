/*
 * state.c - the state environment: open, schema check and migration,
 * transactions, map growth, meta counters.  Records live in state_msg.c,
 * state_mailbox.c and state_journal.c; encodings in state_codec.c.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "lock.h"
#include "log.h"
#include "state_int.h"
#include "xalloc.h"

#define STATE_DEFAULT_MAP_SIZE ((size_t)64 * 1024 * 1024)
#define STATE_MIN_MAP_SIZE ((size_t)64 * 1024)
/* Growth stops here: a state this large means something else is wrong. */
#define STATE_MAX_MAP_SIZE ((size_t)1 << (sizeof(size_t) > 4 ? 40 : 30))
#define STATE_MAX_DBS 16
#define STATE_WRITE_TRIES 16

static const char rebuild_advice[] =
	"to rebuild it, move the folder aside and run ferry again: messages are "
	"re-matched by fingerprint, nothing is downloaded twice or deleted";

/*
 * A write that ran out of disk comes back from LMDB as ENOSPC, or as EIO
 * when the write was cut short.  Say "full" when the file system is: an
 * "Input/output error" sends a user looking for a failing disk.
 */
static bool state_disk_full(const struct state *st, int rc, unsigned long long *free_kib)
{
	struct statvfs sv;

	if (rc != ENOSPC && rc != EIO && rc != EDQUOT)
		return false;
	if (statvfs(st->path, &sv) < 0)
		return false;
	*free_kib = (unsigned long long)sv.f_bavail * sv.f_frsize / 1024;
	return rc != EIO || *free_kib < 4096;
}

int state_lmdb_fail(struct state *st, struct state_txn *txn, int rc,
		    struct err *e, const char *what)
{
	unsigned long long free_kib = 0;

	if (rc == MDB_MAP_FULL && txn != NULL)
		txn->full = true;
	if (state_disk_full(st, rc, &free_kib)) {
		rc = rc == EDQUOT ? EDQUOT : ENOSPC;
		err_set(e, ERR_STATE, "state at \"%s\": %s: %s (%llu KiB free on its file "
			"system); free some space there and run ferry again: what was recorded is "
			"kept, and what is left is done then", st->path, what, strerror(rc), free_kib);
	} else {
		err_set(e, ERR_STATE, "state at \"%s\": %s: %s", st->path, what,
			mdb_strerror(rc));
	}
	if (e != NULL) {
		e->lib = rc;
		if (rc > 0)
			e->sys = rc;
		e->retry = rc == MDB_MAP_FULL;
	}
	return -1;
}

int state_damaged(struct state *st, struct err *e, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return err_set(e, ERR_STATE, "state at \"%s\" is damaged (%s); %s",
		       st->path, what, rebuild_advice);
}

bool state_err_map_full(const struct err *e)
{
	return e != NULL && e->code == ERR_STATE && e->lib == MDB_MAP_FULL;
}

int state_txn_check(struct state_txn *txn, bool need_write, struct err *e)
{
	assert(!need_write || txn->write);
	if (txn->full)
		return state_lmdb_fail(txn->st, txn, MDB_MAP_FULL, e,
				       "earlier write in this transaction");
	return 0;
}

const char *state_path(const struct state *st)
{
	return st->path;
}

unsigned state_schema_on_disk(const struct state *st)
{
	return st->schema_on_disk;
}

size_t state_map_size(const struct state *st)
{
	MDB_envinfo info;

	if (mdb_env_info(st->env, &info) != 0)
		return 0;
	return info.me_mapsize;
}

/* ---- map growth ------------------------------------------------------ */

/* Double the map.  Only with no transaction open in this process. */
static int state_grow(struct state *st, struct err *e)
{
	size_t size = state_map_size(st);
	int rc;

	assert(st->active == 0);
	if (size >= STATE_MAX_MAP_SIZE)
		return err_set(e, ERR_STATE, "state at \"%s\" is full (%zu bytes)",
			       st->path, size);
	size *= 2;
	rc = mdb_env_set_mapsize(st->env, size);
	if (rc != 0)
		return state_lmdb_fail(st, NULL, rc, e, "cannot grow the map");
	st->grow_pending = false;
	log_debug(LOG_CAT_STATE, "state map grown to %zu bytes", size);
	return 0;
}

/* Before a write transaction: grow if a transaction ran full or the map is
 * more than 3/4 used.  Growing needs no transaction open, else it waits. */
static int state_grow_ahead(struct state *st, struct err *e)
{
	MDB_envinfo info;
	MDB_stat stat;

	if (st->active != 0)
		return 0;
	if (!st->grow_pending && mdb_env_info(st->env, &info) == 0 &&
	    mdb_env_stat(st->env, &stat) == 0) {
		size_t used = (info.me_last_pgno + 1) * (size_t)stat.ms_psize;

		if (used > info.me_mapsize / 4 * 3)
			st->grow_pending = true;
	}
	return st->grow_pending ? state_grow(st, e) : 0;
}

/* ---- transactions ---------------------------------------------------- */

int state_txn_begin(struct state *st, bool write, struct state_txn **txn_out,
		    struct err *e)
{
	MDB_txn *mtx = NULL;
	struct state_txn *txn;
	int rc;

	*txn_out = NULL;
	assert(!write || (!st->read_only && !st->writing));
	if (write && state_grow_ahead(st, e) < 0)
		return -1;
	rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &mtx);
	if (rc == MDB_MAP_RESIZED && st->active == 0) {
		/* Another process grew the map: adopt its size and retry. */
		rc = mdb_env_set_mapsize(st->env, 0);
		if (rc == 0)
			rc = mdb_txn_begin(st->env, NULL,
					   write ? 0 : MDB_RDONLY, &mtx);
	}
	if (rc != 0)
		return state_lmdb_fail(st, NULL, rc, e,
				       "cannot begin a transaction");
	txn = xcalloc(1, sizeof(*txn));
	txn->st = st;
	txn->txn = mtx;
	txn->write = write;
	st->active++;
	if (write)
		st->writing = true;
	*txn_out = txn;
	return 0;
}

/* Forget `txn` (already committed or aborted in LMDB); grow if it ran full
 * and it was the last one open. */
static void state_txn_end(struct state_txn *txn)
{
	struct state *st = txn->st;

	if (txn->full)
		st->grow_pending = true;
	if (txn->write)
		st->writing = false;
	st->active--;
	free(txn);
	if (st->grow_pending && st->active == 0 && !st->read_only) {
		struct err e;

		if (state_grow(st, &e) < 0)
			log_warn("%s", e.msg);
	}
}

int state_txn_commit(struct state_txn *txn, struct err *e)
{
	int rc;

	if (txn->full) {
		mdb_txn_abort(txn->txn);
		state_lmdb_fail(txn->st, txn, MDB_MAP_FULL, e, "cannot commit");
		state_txn_end(txn);
		return -1;
	}
	/* NOMETASYNC is one of LMDB's changeable flags: setting it cannot fail. */
	if (txn->relaxed)
		mdb_env_set_flags(txn->st->env, MDB_NOMETASYNC, 1);
	rc = mdb_txn_commit(txn->txn);
	if (txn->relaxed)
		mdb_env_set_flags(txn->st->env, MDB_NOMETASYNC, 0);
	if (rc != 0) {
		/* mdb_txn_commit frees the transaction even on failure. */
		state_lmdb_fail(txn->st, txn, rc, e, "cannot commit");
		state_txn_end(txn);
		return -1;
	}
	state_txn_end(txn);
	return 0;
}

void state_txn_relax(struct state_txn *txn)
{
	txn->relaxed = true;
}

void state_txn_abort(struct state_txn *txn)
{
	if (txn == NULL)
		return;
	mdb_txn_abort(txn->txn);
	state_txn_end(txn);
}

int state_write(struct state *st,
		int (*fn)(struct state_txn *txn, void *ctx, struct err *e),
		void *ctx, struct err *e)
{
	int tries;

	for (tries = 0; tries < STATE_WRITE_TRIES; tries++) {
		struct state_txn *txn;

		if (state_txn_begin(st, true, &txn, e) < 0)
			return -1;
		if (fn(txn, ctx, e) < 0) {
			state_txn_abort(txn);
			if (!state_err_map_full(e))
				return -1;
			continue;
		}
		if (state_txn_commit(txn, e) == 0)
			return 0;
		if (!state_err_map_full(e))
			return -1;
	}
	return -1;
}

/* ---- meta ------------------------------------------------------------ */

int state_meta_next(struct state_txn *txn, const char *key, uint64_t *id_out,
		    struct err *e)
{
	struct state *st = txn->st;
	MDB_val k = { strlen(key), (void *)key }, v;
	uint8_t raw[8];
	uint64_t next = 1;
	int rc;

	if (state_txn_check(txn, true, e) < 0)
		return -1;
	rc = mdb_get(txn->txn, st->meta, &k, &v);
	if (rc == 0) {
		if (v.mv_size != 8)
			return state_damaged(st, e, "counter \"%s\" has %zu bytes",
					     key, v.mv_size);
		next = state_get_le64(v.mv_data);
	} else if (rc != MDB_NOTFOUND) {
		return state_lmdb_fail(st, txn, rc, e, "cannot read a counter");
	}
	if (next == 0 || next == UINT64_MAX)
		return state_damaged(st, e, "counter \"%s\" is %llu", key,
				     (unsigned long long)next);
	state_le64(raw, next + 1);
	v.mv_size = 8;
	v.mv_data = raw;
	rc = mdb_put(txn->txn, st->meta, &k, &v, 0);
	if (rc != 0)
		return state_lmdb_fail(st, txn, rc, e, "cannot write a counter");
	*id_out = next;
	return 0;
}

static int meta_put(struct state_txn *txn, const char *key, const void *p,
		    size_t n, struct err *e)
{
	MDB_val k = { strlen(key), (void *)key }, v = { n, (void *)p };
	int rc = mdb_put(txn->txn, txn->st->meta, &k, &v, 0);

	return rc ? state_lmdb_fail(txn->st, txn, rc, e, "cannot write meta") : 0;
}

/* ---- schema ---------------------------------------------------------- */

/*
 * Migration hook: migrations[i] upgrades schema migrations[i].from to
 * from + 1 inside the open write transaction (DB handles are open).  Schema 1
 * is the first, so the table holds only its terminator.  Add a step here
 * with each new schema; a migration that fails aborts the open.
 */
struct state_migration {
	unsigned from;
	int (*run)(struct state_txn *txn, struct err *e);
};

static const struct state_migration migrations[] = {
	{ 0, NULL },
};

static int state_migrate(struct state_txn *txn, unsigned from, struct err *e)
{
	unsigned v = from;
	uint8_t raw[4];

	while (v < STATE_SCHEMA_VERSION) {
		const struct state_migration *m;

		for (m = migrations; m->run != NULL; m++)
			if (m->from == v)
				break;
		if (m->run == NULL)
			return err_set(e, ERR_STATE, "state at \"%s\" has schema %u, which this ferry cannot upgrade; %s",
				       txn->st->path, from, rebuild_advice);
		if (m->run(txn, e) < 0)
			return err_prefix(e, "state at \"%s\": upgrade from schema %u",
					  txn->st->path, v);
		v++;
	}
	state_le32(raw, STATE_SCHEMA_VERSION);
	return meta_put(txn, "schema", raw, 4, e);
}

struct state_db {
	const char *name;
	size_t offset;          /* of the MDB_dbi in struct state */
	unsigned flags;
};

#define DB(n, field, f) { n, offsetof(struct state, field), f }
static const struct state_db state_dbs[] = {
	DB("meta", meta, 0),
	DB("mailbox", mailbox, 0),
	DB("mailbox_remote", mbox_remote, 0),
	DB("mailbox_local", mbox_local, 0),
	DB("msg", msg, 0),
	DB("msg_uid", msg_uid, 0),
	DB("msg_name", msg_name, MDB_DUPSORT),
	DB("msg_fp", msg_fp, MDB_DUPSORT),
	DB("journal", journal, 0),
};
#undef DB

static int state_open_dbs(struct state_txn *txn, bool create, struct err *e)
{
	size_t i;

	for (i = 0; i < sizeof(state_dbs) / sizeof(state_dbs[0]); i++) {
		const struct state_db *d = &state_dbs[i];
		MDB_dbi *dbi = (MDB_dbi *)((char *)txn->st + d->offset);
		int rc = mdb_dbi_open(txn->txn, d->name,
				      d->flags | (create ? MDB_CREATE : 0), dbi);

		if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
			return state_damaged(txn->st, e, "table \"%s\" is missing",
					     d->name);
		if (rc != 0)
			return state_lmdb_fail(txn->st, txn, rc, e,
					       "cannot open a table");
	}
	return 0;
}

/* A new environment: create every table and write the meta keys. */
static int state_init_new(struct state_txn *txn, struct err *e)
{
	uint8_t raw[4];

	if (state_open_dbs(txn, true, e) < 0)
		return -1;
	state_le32(raw, STATE_SCHEMA_VERSION);
	if (meta_put(txn, "magic", STATE_MAGIC, strlen(STATE_MAGIC), e) < 0 ||
	    meta_put(txn, "schema", raw, 4, e) < 0)
		return -1;
	txn->st->schema_on_disk = STATE_SCHEMA_VERSION;
	return 0;
}

/* Check magic and schema of an existing environment; 1 if it is empty. */
static int state_check_meta(struct state_txn *txn, struct err *e)
{
	struct state *st = txn->st;
	MDB_val k, v;
	MDB_dbi main_dbi;
	MDB_stat ms;
	unsigned schema;
	int rc;

	rc = mdb_dbi_open(txn->txn, "meta", 0, &st->meta);
	if (rc == MDB_NOTFOUND) {
		rc = mdb_dbi_open(txn->txn, NULL, 0, &main_dbi);
		if (rc == 0)
			rc = mdb_stat(txn->txn, main_dbi, &ms);
		if (rc != 0)
			return state_lmdb_fail(st, txn, rc, e, "cannot read");
		if (ms.ms_entries == 0)
			return 1;
		return err_set(e, ERR_STATE, "state at \"%s\" is not a ferry state (an unknown LMDB database); %s",
			       st->path, rebuild_advice);
	}
	if (rc == MDB_INCOMPATIBLE)
		return err_set(e, ERR_STATE, "state at \"%s\" is not a ferry state (an unknown LMDB database); %s",
			       st->path, rebuild_advice);
	if (rc != 0)
		return state_lmdb_fail(st, txn, rc, e, "cannot open the meta table");
	k.mv_data = "magic";
	k.mv_size = 5;
	rc = mdb_get(txn->txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND ||
	    (rc == 0 && (v.mv_size != strlen(STATE_MAGIC) ||
			 memcmp(v.mv_data, STATE_MAGIC, v.mv_size) != 0)))
		return err_set(e, ERR_STATE, "state at \"%s\" is not a ferry state (no ferry magic); %s",
			       st->path, rebuild_advice);
	if (rc != 0)
		return state_lmdb_fail(st, txn, rc, e, "cannot read the meta table");
	k.mv_data = "schema";
	k.mv_size = 6;
	rc = mdb_get(txn->txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 4))
		return state_damaged(st, e, "no schema version");
	if (rc != 0)
		return state_lmdb_fail(st, txn, rc, e, "cannot read the meta table");
	schema = state_get_le32(v.mv_data);
	st->schema_on_disk = schema;
	if (schema > STATE_SCHEMA_VERSION)
		return err_set(e, ERR_STATE, "state at \"%s\" was written by a newer ferry (schema %u, this ferry knows %d)",
			       st->path, schema, STATE_SCHEMA_VERSION);
	if (schema == 0)
		return state_damaged(st, e, "schema version 0");
	return 0;
}

/* One attempt at checking (and creating or migrating) the schema. */
static int state_setup(struct state *st, struct err *e)
{
	struct state_txn *txn;
	int rc;

	if (state_txn_begin(st, !st->read_only, &txn, e) < 0)
		return -1;
	rc = state_check_meta(txn, e);
	if (rc == 1 && st->read_only) {
		state_txn_abort(txn);
		return 1;
	}
	if (rc == 1)
		rc = state_init_new(txn, e);
	else if (rc == 0)
		rc = state_open_dbs(txn, false, e);
	if (rc == 0 && st->schema_on_disk < STATE_SCHEMA_VERSION) {
		if (st->read_only)
			rc = err_set(e, ERR_STATE, "state at \"%s\" has the older schema %u; run \"ferry sync\" once to upgrade it",
				     st->path, st->schema_on_disk);
		else
			rc = state_migrate(txn, st->schema_on_disk, e);
	}
	if (rc < 0) {
		state_txn_abort(txn);
		return -1;
	}
	/* Committing keeps the table handles open for later transactions. */
	return state_txn_commit(txn, e);
}

static int state_env_open(struct state *st, size_t map_size, struct err *e)
{
	unsigned flags = MDB_NOTLS | (st->read_only ? MDB_RDONLY : 0);
	int rc;

	rc = mdb_env_create(&st->env);
	if (rc != 0)
		return state_lmdb_fail(st, NULL, rc, e, "cannot create an environment");
	rc = mdb_env_set_maxdbs(st->env, STATE_MAX_DBS);
	if (rc == 0)
		rc = mdb_env_set_mapsize(st->env, map_size);
	if (rc == 0)
		rc = mdb_env_open(st->env, st->path, flags, 0600);
	if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
		return err_set(e, ERR_STATE, "state at \"%s\" is damaged or not a ferry state (%s); %s",
			       st->path, mdb_strerror(rc), rebuild_advice);
	if (rc > 0)     /* an errno: permissions, disk, a file in the way */
		return err_sys(e, ERR_IO, rc, "cannot open the state at \"%s\"",
			       st->path);
	if (rc != 0)
		return state_lmdb_fail(st, NULL, rc, e, "cannot open");
	if (!st->read_only) {
		int dead = 0;

		/* Free reader slots of killed processes (a `ferry status` that
		 * died mid-read): they would pin old pages and grow the file. */
		rc = mdb_reader_check(st->env, &dead);
		if (rc == 0 && dead > 0)
			log_debug(LOG_CAT_STATE, "cleared %d stale state readers", dead);
	}
	return 0;
}

/* The state holds mail metadata: say so if others can read the folder. */
static void state_check_mode(const char *dir)
{
	struct stat sb;

	if (stat(dir, &sb) == 0 && (sb.st_mode & 077) != 0)
		log_warn("state folder \"%s\" is accessible by other users (mode %03o); chmod 700 it",
			 dir, (unsigned)(sb.st_mode & 0777));
}

int state_open(const char *dir, const struct state_options *opts,
	       struct state **st_out, struct err *e)
{
	struct state_options none = { false, 0 };
	struct state *st;
	size_t map_size;
	int tries, rc = -1;

	*st_out = NULL;
	if (opts == NULL)
		opts = &none;
	map_size = opts->map_size ? opts->map_size : STATE_DEFAULT_MAP_SIZE;
	if (map_size < STATE_MIN_MAP_SIZE)
		map_size = STATE_MIN_MAP_SIZE;
	if (opts->read_only) {
		char *data = xasprintf("%s/data.mdb", dir);
		struct stat sb;
		int missing = stat(data, &sb) < 0 ? errno : 0;

		free(data);
		if (missing == ENOENT || missing == ENOTDIR)
			return 1;
	} else {
		if (lock_mkdirs(dir, e) < 0)
			return -1;
		state_check_mode(dir);
	}
	st = xcalloc(1, sizeof(*st));
	st->path = xstrdup(dir);
	st->read_only = opts->read_only;
	if (state_env_open(st, map_size, e) < 0)
		goto fail;
	/* A tiny map may be too small even for the tables: grow and redo. */
	for (tries = 0; tries < STATE_WRITE_TRIES; tries++) {
		rc = state_setup(st, e);
		if (rc >= 0 || !state_err_map_full(e))
			break;
	}
	if (rc < 0)
		goto fail;
	if (rc == 1) {
		state_close(st);
		return 1;
	}
	*st_out = st;
	return 0;
fail:
	state_close(st);
	return -1;
}

void state_close(struct state *st)
{
	if (st == NULL)
		return;
	assert(st->active == 0);
	if (st->env != NULL)
		mdb_env_close(st->env);
	free(st->path);
	free(st);
}
