/*
 * state_msg.c - message records and their three indexes.
 *
 *   "msg"       BE64 id -> record (state_codec.c)
 *   "msg_uid"   BE32 mailbox, BE32 uid, BE64 id -> ""   (every record; uid 0
 *               records sort first in their mailbox)
 *   "msg_name"  name bytes -> BE32 mailbox, BE64 id    (dupsort; non-empty names)
 *   "msg_fp"    32-byte body hash -> BE32 mailbox, BE64 id  (dupsort; non-zero hashes)
 *
 * Every change to a record goes through index_del() of the old record and
 * index_add() of the new one in the same transaction, so the indexes never
 * disagree with the records.
 */
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "xalloc.h"

#define UID_KEY_LEN 16
#define REF_LEN 12

static bool has_str(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static bool hash_known(const uint8_t *h)
{
	size_t i;

	for (i = 0; i < STATE_HASH_LEN; i++)
		if (h[i] != 0)
			return true;
	return false;
}

static void uid_key(uint8_t *out, uint32_t mailbox, uint32_t uid, uint64_t id)
{
	state_be32(out, mailbox);
	state_be32(out + 4, uid);
	state_be64(out + 8, id);
}

static void ref_val(uint8_t *out, uint32_t mailbox, uint64_t id)
{
	state_be32(out, mailbox);
	state_be64(out + 4, id);
}

static int lmdb_fail(struct state_txn *txn, int rc, struct err *e,
		     const char *what)
{
	return state_lmdb_fail(txn->st, txn, rc, e, what);
}

/* ---- index maintenance ----------------------------------------------- */

static int index_add(struct state_txn *txn, const struct state_msg *m,
		     struct err *e)
{
	struct state *st = txn->st;
	uint8_t ukey[UID_KEY_LEN], ref[REF_LEN];
	MDB_val k = { UID_KEY_LEN, ukey }, v = { 0, "" };
	int rc;

	uid_key(ukey, m->mailbox, m->uid, m->id);
	rc = mdb_put(txn->txn, st->msg_uid, &k, &v, 0);
	if (rc != 0)
		return lmdb_fail(txn, rc, e, "cannot write the uid index");
	ref_val(ref, m->mailbox, m->id);
	v.mv_size = REF_LEN;
	v.mv_data = ref;
	if (has_str(m->name)) {
		k.mv_size = strlen(m->name);
		k.mv_data = (void *)m->name;
		rc = mdb_put(txn->txn, st->msg_name, &k, &v, MDB_NODUPDATA);
		if (rc != 0)
			return lmdb_fail(txn, rc, e, "cannot write the name index");
	}
	if (hash_known(m->body_hash)) {
		k.mv_size = STATE_HASH_LEN;
		k.mv_data = (void *)m->body_hash;
		rc = mdb_put(txn->txn, st->msg_fp, &k, &v, MDB_NODUPDATA);
		if (rc != 0)
			return lmdb_fail(txn, rc, e,
					 "cannot write the fingerprint index");
	}
	return 0;
}

static int index_del(struct state_txn *txn, const struct state_msg *m,
		     struct err *e)
{
	struct state *st = txn->st;
	uint8_t ukey[UID_KEY_LEN], ref[REF_LEN];
	MDB_val k = { UID_KEY_LEN, ukey }, v = { REF_LEN, ref };
	int rc;

	uid_key(ukey, m->mailbox, m->uid, m->id);
	rc = mdb_del(txn->txn, st->msg_uid, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_fail(txn, rc, e, "cannot update the uid index");
	ref_val(ref, m->mailbox, m->id);
	if (has_str(m->name)) {
		k.mv_size = strlen(m->name);
		k.mv_data = (void *)m->name;
		rc = mdb_del(txn->txn, st->msg_name, &k, &v);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return lmdb_fail(txn, rc, e, "cannot update the name index");
	}
	if (hash_known(m->body_hash)) {
		k.mv_size = STATE_HASH_LEN;
		k.mv_data = (void *)m->body_hash;
		rc = mdb_del(txn->txn, st->msg_fp, &k, &v);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return lmdb_fail(txn, rc, e,
					 "cannot update the fingerprint index");
	}
	return 0;
}

/* The record id of (mailbox, uid) via the uid index: 1 found, 0 not. */
static int uid_lookup(struct state_txn *txn, uint32_t mailbox, uint32_t uid,
		      uint64_t *id_out, struct err *e)
{
	uint8_t prefix[8];
	MDB_val k = { 8, prefix }, v;
	MDB_cursor *cur;
	int rc, ret = 0;

	state_be32(prefix, mailbox);
	state_be32(prefix + 4, uid);
	rc = mdb_cursor_open(txn->txn, txn->st->msg_uid, &cur);
	if (rc != 0)
		return lmdb_fail(txn, rc, e, "cannot read the uid index");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == UID_KEY_LEN &&
	    memcmp(k.mv_data, prefix, 8) == 0) {
		*id_out = state_get_be64((const uint8_t *)k.mv_data + 8);
		ret = 1;
	} else if (rc == 0 && k.mv_size != UID_KEY_LEN) {
		ret = state_damaged(txn->st, e, "uid index key of %zu bytes",
				    k.mv_size);
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		ret = lmdb_fail(txn, rc, e, "cannot read the uid index");
	}
	mdb_cursor_close(cur);
	return ret;
}

int state_msg_max_uid(struct state_txn *txn, uint32_t mailbox, uint32_t *uid_out,
		      struct err *e)
{
	uint8_t next[8];
	MDB_val k = { 8, next }, v;
	MDB_cursor *cur;
	int rc, ret = 0;

	*uid_out = 0;
	if (state_txn_check(txn, false, e) < 0)
		return -1;
	rc = mdb_cursor_open(txn->txn, txn->st->msg_uid, &cur);
	if (rc != 0)
		return lmdb_fail(txn, rc, e, "cannot read the uid index");
	/* The key before the next mailbox's first one (or the last key). */
	state_be32(next, mailbox + 1);
	state_be32(next + 4, 0);
	rc = mailbox == UINT32_MAX ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size != UID_KEY_LEN)
		ret = state_damaged(txn->st, e, "uid index key of %zu bytes", k.mv_size);
	else if (rc == 0 && state_get_be32(k.mv_data) == mailbox)
		*uid_out = state_get_be32((const uint8_t *)k.mv_data + 4);
	else if (rc != 0 && rc != MDB_NOTFOUND)
		ret = lmdb_fail(txn, rc, e, "cannot read the uid index");
	mdb_cursor_close(cur);
	return ret;
}

/* The record id of `name` in `mailbox` via the name index: 1 found, 0 not. */
static int name_lookup(struct state_txn *txn, uint32_t mailbox,
		       const char *name, uint64_t *id_out, struct err *e)
{
	uint8_t prefix[4];
	MDB_val k = { strlen(name), (void *)name }, v = { 4, prefix };
	MDB_cursor *cur;
	int rc, ret = 0;

	if (k.mv_size > STATE_NAME_MAX)
		return 0;
	state_be32(prefix, mailbox);
	rc = mdb_cursor_open(txn->txn, txn->st->msg_name, &cur);
	if (rc != 0)
		return lmdb_fail(txn, rc, e, "cannot read the name index");
	rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
	if (rc == 0 && v.mv_size != REF_LEN) {
		ret = state_damaged(txn->st, e, "name index entry of %zu bytes",
				    v.mv_size);
	} else if (rc == 0 && memcmp(v.mv_data, prefix, 4) == 0) {
		*id_out = state_get_be64((const uint8_t *)v.mv_data + 4);
		ret = 1;
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		ret = lmdb_fail(txn, rc, e, "cannot read the name index");
	}
	mdb_cursor_close(cur);
	return ret;
}

/* Enforce: a non-zero uid and a non-empty name are unique per mailbox. */
static int check_unique(struct state_txn *txn, const struct state_msg *m,
			struct err *e)
{
	uint64_t other;
	int rc;

	if (m->uid != 0) {
		rc = uid_lookup(txn, m->mailbox, m->uid, &other, e);
		if (rc < 0)
			return -1;
		if (rc > 0)
			return err_set(e, ERR_INTERNAL, "uid %u is already recorded in mailbox %u",
				       m->uid, m->mailbox);
	}
	if (has_str(m->name)) {
		rc = name_lookup(txn, m->mailbox, m->name, &other, e);
		if (rc < 0)
			return -1;
		if (rc > 0)
			return err_set(e, ERR_INTERNAL, "local name \"%s\" is already recorded in mailbox %u",
				       m->name, m->mailbox);
	}
	return 0;
}

static int mailbox_exists(struct state_txn *txn, uint32_t id, struct err *e)
{
	uint8_t key[4];
	MDB_val k = { 4, key }, v;
	int rc;

	state_be32(key, id);
	rc = mdb_get(txn->txn, txn->st->mailbox, &k, &v);
	if (rc == MDB_NOTFOUND)
		return err_set(e, ERR_INTERNAL, "no mailbox %u for a message", id);
	if (rc != 0)
		return lmdb_fail(txn, rc, e, "cannot read a mailbox");
	return 0;
}

/* Write the encoded record `b` under `id`. */
static int record_put(struct state_txn *txn, uint64_t id, const struct buf *b,
		      struct err *e)
{
	uint8_t key[8];
	MDB_val k = { 8, key }, v = { b->len, b->data };
	int rc;

	state_be64(key, id);
	rc = mdb_put(txn->txn, txn->st->msg, &k, &v, 0);
	return rc ? lmdb_fail(txn, rc, e, "cannot write a message") : 0;
}

/* Encode `m` into `b` (bounds checked) and check that its mailbox exists,
 * before any index is touched.  The record id is the key, not in `b`. */
static int msg_prepare(struct state_txn *txn, const struct state_msg *m,
		       struct buf *b, struct err *e)
{
	if (state_txn_check(txn, true, e) < 0 || state_msg_encode(m, b, e) < 0)
		return -1;
	return mailbox_exists(txn, m->mailbox, e);
}

/* ---- public ---------------------------------------------------------- */

int state_msg_add(struct state_txn *txn, struct state_msg *m, struct err *e)
{
	struct buf b = BUF_INIT(STATE_RECORD_MAX);
	uint64_t id;
	int rc = -1;

	if (msg_prepare(txn, m, &b, e) == 0 && check_unique(txn, m, e) == 0 &&
	    state_meta_next(txn, "next_msg", &id, e) == 0) {
		m->id = id;
		if (record_put(txn, id, &b, e) == 0)
			rc = index_add(txn, m, e);
	}
	buf_release(&b);
	return rc;
}

int state_msg_update(struct state_txn *txn, const struct state_msg *m,
		     struct err *e)
{
	struct buf b = BUF_INIT(STATE_RECORD_MAX);
	struct state_msg old;
	struct arena a;
	int rc;

	if (msg_prepare(txn, m, &b, e) < 0) {
		buf_release(&b);
		return -1;
	}
	arena_init(&a, 1024);
	rc = state_msg_get(txn, m->id, &a, &old, e);
	if (rc == 0)
		rc = err_set(e, ERR_INTERNAL, "no message record %llu to update",
			     (unsigned long long)m->id);
	if (rc > 0)
		rc = index_del(txn, &old, e);
	arena_release(&a);
	if (rc == 0 && check_unique(txn, m, e) == 0 &&
	    record_put(txn, m->id, &b, e) == 0)
		rc = index_add(txn, m, e);
	else
		rc = -1;
	buf_release(&b);
	return rc;
}

int state_msg_del(struct state_txn *txn, uint64_t id, struct err *e)
{
	struct state_msg old;
	struct arena a;
	uint8_t key[8];
	MDB_val k = { 8, key };
	int rc;

	if (state_txn_check(txn, true, e) < 0)
		return -1;
	arena_init(&a, 1024);
	rc = state_msg_get(txn, id, &a, &old, e);
	if (rc > 0)
		rc = index_del(txn, &old, e);
	else if (rc == 0)
		rc = 1;
	arena_release(&a);
	if (rc != 0)
		return rc;
	state_be64(key, id);
	rc = mdb_del(txn->txn, txn->st->msg, &k, NULL);
	return rc ? lmdb_fail(txn, rc, e, "cannot delete a message") : 0;
}

int state_msg_get(struct state_txn *txn, uint64_t id, struct arena *a,
		  struct state_msg *m_out, struct err *e)
{
	uint8_t key[8];
	MDB_val k = { 8, key }, v;
	int rc;

	if (state_txn_check(txn, false, e) < 0)
		return -1;
	state_be64(key, id);
	rc = mdb_get(txn->txn, txn->st->msg, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return lmdb_fail(txn, rc, e, "cannot read a message");
	return state_msg_decode(txn->st, id, &v, a, m_out, e) < 0 ? -1 : 1;
}

/* Load record `id` that an index points to; a dangling entry is damage. */
static int load_indexed(struct state_txn *txn, uint64_t id, struct arena *a,
			struct state_msg *m_out, struct err *e)
{
	int rc = state_msg_get(txn, id, a, m_out, e);

	if (rc == 0)
		return state_damaged(txn->st, e, "an index points to the missing record %llu",
				     (unsigned long long)id);
	return rc;
}

int state_msg_find_uid(struct state_txn *txn, uint32_t mailbox, uint32_t uid,
		       struct arena *a, struct state_msg *m_out, struct err *e)
{
	uint64_t id;
	int rc;

	if (state_txn_check(txn, false, e) < 0)
		return -1;
	if (uid == 0)
		return 0;
	rc = uid_lookup(txn, mailbox, uid, &id, e);
	return rc > 0 ? load_indexed(txn, id, a, m_out, e) : rc;
}

int state_msg_find_name(struct state_txn *txn, uint32_t mailbox,
			const char *name, struct arena *a,
			struct state_msg *m_out, struct err *e)
{
	uint64_t id;
	int rc;

	if (state_txn_check(txn, false, e) < 0)
		return -1;
	if (!has_str(name))
		return 0;
	rc = name_lookup(txn, mailbox, name, &id, e);
	return rc > 0 ? load_indexed(txn, id, a, m_out, e) : rc;
}

/* A growing list of records, copied into the arena at the end. */
struct msg_list {
	struct state_msg *v;
	size_t n, cap;
};

static void msg_list_finish(struct msg_list *l, int ret, struct arena *a,
			    struct state_msg **list_out, size_t *n_out)
{
	*list_out = NULL;
	*n_out = 0;
	if (ret == 0 && l->n > 0) {
		*list_out = ARENA_NEW_ARRAY(a, struct state_msg, l->n);
		memcpy(*list_out, l->v, l->n * sizeof(*l->v));
		*n_out = l->n;
	}
	free(l->v);
}

/*
 * Walk the duplicates of `key` in a dupsort index from the first with
 * mailbox prefix `mailbox` (all if 0); load each record; keep those whose
 * Message-ID equals `msgid` when `match_msgid`.
 */
static int refs_collect(struct state_txn *txn, MDB_dbi dbi, MDB_val key,
			uint32_t mailbox, bool match_msgid, const char *msgid,
			struct arena *a, struct msg_list *l, struct err *e)
{
	uint8_t prefix[4];
	MDB_val k = key, v = { 4, prefix };
	MDB_cursor *cur;
	int rc, ret = 0;

	state_be32(prefix, mailbox);
	rc = mdb_cursor_open(txn->txn, dbi, &cur);
	if (rc != 0)
		return lmdb_fail(txn, rc, e, "cannot read an index");
	rc = mdb_cursor_get(cur, &k, &v,
			    mailbox ? MDB_GET_BOTH_RANGE : MDB_SET_KEY);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
		struct state_msg m;
		uint64_t id;

		if (v.mv_size != REF_LEN) {
			ret = state_damaged(txn->st, e, "index entry of %zu bytes",
					    v.mv_size);
			break;
		}
		if (mailbox && memcmp(v.mv_data, prefix, 4) != 0)
			break;
		id = state_get_be64((const uint8_t *)v.mv_data + 4);
		if (load_indexed(txn, id, a, &m, e) < 0) {
			ret = -1;
			break;
		}
		if (match_msgid && strcmp(m.message_id, msgid ? msgid : "") != 0)
			continue;
		l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
		l->v[l->n++] = m;
	}
	if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
		ret = lmdb_fail(txn, rc, e, "cannot read an index");
	mdb_cursor_close(cur);
	return ret;
}

int state_msg_find_name_all(struct state_txn *txn, const char *name,
			    struct arena *a, struct state_msg **list_out,
			    size_t *n_out, struct err *e)
{
	struct msg_list l = { NULL, 0, 0 };
	MDB_val k = { state_strlen(name), (void *)name };
	int ret = 0;

	if (state_txn_check(txn, false, e) < 0)
		ret = -1;
	else if (has_str(name) && k.mv_size <= STATE_NAME_MAX)
		ret = refs_collect(txn, txn->st->msg_name, k, 0, false, NULL, a,
				   &l, e);
	msg_list_finish(&l, ret, a, list_out, n_out);
	return ret;
}

int state_msg_find_fp(struct state_txn *txn, uint32_t mailbox,
		      const char *message_id,
		      const uint8_t body_hash[STATE_HASH_LEN], struct arena *a,
		      struct state_msg **list_out, size_t *n_out,
		      struct err *e)
{
	struct msg_list l = { NULL, 0, 0 };
	MDB_val k = { STATE_HASH_LEN, (void *)body_hash };
	int ret = 0;

	if (state_txn_check(txn, false, e) < 0)
		ret = -1;
	else if (hash_known(body_hash))
		ret = refs_collect(txn, txn->st->msg_fp, k, mailbox, true,
				   message_id, a, &l, e);
	msg_list_finish(&l, ret, a, list_out, n_out);
	return ret;
}

/* ---- iteration ------------------------------------------------------- */

int state_msg_iter_init(struct state_iter *it, struct state_txn *txn,
			uint32_t mailbox, uint32_t min_uid, struct err *e)
{
	MDB_cursor *cur;
	int rc;

	memset(it, 0, sizeof(*it));
	if (state_txn_check(txn, false, e) < 0)
		return -1;
	rc = mdb_cursor_open(txn->txn, txn->st->msg_uid, &cur);
	if (rc != 0)
		return lmdb_fail(txn, rc, e, "cannot read the uid index");
	it->cursor_ = cur;
	it->txn_ = txn;
	it->mailbox_ = mailbox;
	it->min_uid_ = min_uid;
	return 0;
}

int state_msg_iter_next(struct state_iter *it, struct arena *a,
			struct state_msg *m_out, struct err *e)
{
	uint8_t start[8];
	MDB_val k = { 8, start }, v;
	int rc;

	if (it->done_)
		return 0;
	if (state_txn_check(it->txn_, false, e) < 0)
		return -1;
	if (!it->started_) {
		state_be32(start, it->mailbox_);
		state_be32(start + 4, it->min_uid_);
		rc = mdb_cursor_get(it->cursor_, &k, &v, MDB_SET_RANGE);
		it->started_ = true;
	} else {
		rc = mdb_cursor_get(it->cursor_, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) {
		it->done_ = true;
		return 0;
	}
	if (rc != 0)
		return lmdb_fail(it->txn_, rc, e, "cannot read the uid index");
	if (k.mv_size != UID_KEY_LEN)
		return state_damaged(it->txn_->st, e, "uid index key of %zu bytes",
				     k.mv_size);
	if (state_get_be32(k.mv_data) != it->mailbox_) {
		it->done_ = true;
		return 0;
	}
	return load_indexed(it->txn_,
			    state_get_be64((const uint8_t *)k.mv_data + 8), a,
			    m_out, e);
}

void state_msg_iter_release(struct state_iter *it)
{
	if (it->cursor_ != NULL)
		mdb_cursor_close(it->cursor_);
	it->cursor_ = NULL;
	it->done_ = true;
}

int state_msg_list(struct state_txn *txn, uint32_t mailbox, struct arena *a,
		   struct state_msg **list_out, size_t *n_out, struct err *e)
{
	struct msg_list l = { NULL, 0, 0 };
	struct state_iter it;
	int rc, ret = 0;

	if (state_msg_iter_init(&it, txn, mailbox, 0, e) < 0) {
		ret = -1;
	} else {
		for (;;) {
			l.v = xgrow(l.v, &l.cap, l.n + 1, sizeof(*l.v));
			rc = state_msg_iter_next(&it, a, &l.v[l.n], e);
			if (rc <= 0) {
				ret = rc;
				break;
			}
			l.n++;
		}
		state_msg_iter_release(&it);
	}
	msg_list_finish(&l, ret, a, list_out, n_out);
	return ret;
}
