/*
 * state_mailbox.c - mailbox pair records and their two name indexes.
 *
 * "mailbox": BE32 id -> record; "mailbox_remote" / "mailbox_local": name
 * bytes (no NUL) -> BE32 id, one entry per non-empty name.
 */
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "xalloc.h"

static bool has_name(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static int name_len_check(const char *s, const char *what, struct err *e)
{
	size_t n = state_strlen(s);

	if (n > STATE_MAILBOX_NAME_MAX)
		return err_set(e, ERR_LIMIT, "%s too long (%zu bytes, at most %d)",
			       what, n, STATE_MAILBOX_NAME_MAX);
	return 0;
}

static int mailbox_put(struct state_txn *txn, const struct state_mailbox *mb,
		       struct err *e)
{
	struct buf b = BUF_INIT(STATE_RECORD_MAX);
	uint8_t key[4];
	MDB_val k = { 4, key }, v;
	int rc;

	if (state_mailbox_encode(mb, &b, e) < 0) {
		buf_release(&b);
		return -1;
	}
	state_be32(key, mb->id);
	v.mv_size = b.len;
	v.mv_data = b.data;
	rc = mdb_put(txn->txn, txn->st->mailbox, &k, &v, 0);
	buf_release(&b);
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot write a mailbox");
	return 0;
}

/* Point `name` at `id` in index `dbi`; the name must be free. */
static int name_index_add(struct state_txn *txn, MDB_dbi dbi, const char *name,
			  uint32_t id, const char *side, struct err *e)
{
	uint8_t val[4];
	MDB_val k = { strlen(name), (void *)name }, v = { 4, val };
	int rc;

	state_be32(val, id);
	rc = mdb_put(txn->txn, dbi, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return err_set(e, ERR_INTERNAL, "%s mailbox name \"%s\" is already recorded",
			       side, name);
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot write a mailbox name");
	return 0;
}

static int name_index_del(struct state_txn *txn, MDB_dbi dbi, const char *name,
			  struct err *e)
{
	MDB_val k = { strlen(name), (void *)name };
	int rc = mdb_del(txn->txn, dbi, &k, NULL);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot delete a mailbox name");
	return 0;
}

int state_mailbox_add(struct state_txn *txn, struct state_mailbox *mb,
		      struct err *e)
{
	uint64_t id;

	if (state_txn_check(txn, true, e) < 0 ||
	    name_len_check(mb->remote_name, "remote mailbox name", e) < 0 ||
	    name_len_check(mb->local_name, "local folder name", e) < 0)
		return -1;
	if (state_meta_next(txn, "next_mailbox", &id, e) < 0)
		return -1;
	if (id > UINT32_MAX)
		return state_damaged(txn->st, e, "mailbox ids exhausted");
	mb->id = (uint32_t)id;
	if (has_name(mb->remote_name) &&
	    name_index_add(txn, txn->st->mbox_remote, mb->remote_name, mb->id,
			   "remote", e) < 0)
		return -1;
	if (has_name(mb->local_name) &&
	    name_index_add(txn, txn->st->mbox_local, mb->local_name, mb->id,
			   "local", e) < 0)
		return -1;
	return mailbox_put(txn, mb, e);
}

/* Move index entry `old` -> `new` when the name changed. */
static int name_index_move(struct state_txn *txn, MDB_dbi dbi,
			   const char *old, const char *new, uint32_t id,
			   const char *side, struct err *e)
{
	if (strcmp(old ? old : "", new ? new : "") == 0)
		return 0;
	if (has_name(old) && name_index_del(txn, dbi, old, e) < 0)
		return -1;
	if (has_name(new) && name_index_add(txn, dbi, new, id, side, e) < 0)
		return -1;
	return 0;
}

int state_mailbox_update(struct state_txn *txn, const struct state_mailbox *mb,
			 struct err *e)
{
	struct state_mailbox old;
	struct arena a;
	int rc;

	if (state_txn_check(txn, true, e) < 0 ||
	    name_len_check(mb->remote_name, "remote mailbox name", e) < 0 ||
	    name_len_check(mb->local_name, "local folder name", e) < 0)
		return -1;
	arena_init(&a, 1024);
	rc = state_mailbox_get(txn, mb->id, &a, &old, e);
	if (rc == 0)
		rc = err_set(e, ERR_INTERNAL, "no mailbox %u to update", mb->id);
	if (rc > 0) {
		rc = 0;
		if (name_index_move(txn, txn->st->mbox_remote, old.remote_name,
				    mb->remote_name, mb->id, "remote", e) < 0 ||
		    name_index_move(txn, txn->st->mbox_local, old.local_name,
				    mb->local_name, mb->id, "local", e) < 0 ||
		    mailbox_put(txn, mb, e) < 0)
			rc = -1;
	}
	arena_release(&a);
	return rc;
}

int state_mailbox_del(struct state_txn *txn, uint32_t id, struct err *e)
{
	struct state_mailbox old;
	struct state_msg *msgs;
	size_t n, i;
	struct arena a;
	uint8_t key[4];
	MDB_val k = { 4, key };
	int rc;

	if (state_txn_check(txn, true, e) < 0)
		return -1;
	arena_init(&a, 4096);
	rc = state_mailbox_get(txn, id, &a, &old, e);
	if (rc <= 0) {
		arena_release(&a);
		return rc < 0 ? -1 : 1;
	}
	rc = state_msg_list(txn, id, &a, &msgs, &n, e);
	for (i = 0; rc == 0 && i < n; i++)
		if (state_msg_del(txn, msgs[i].id, e) < 0)
			rc = -1;
	if (rc == 0 && has_name(old.remote_name))
		rc = name_index_del(txn, txn->st->mbox_remote, old.remote_name, e);
	if (rc == 0 && has_name(old.local_name))
		rc = name_index_del(txn, txn->st->mbox_local, old.local_name, e);
	arena_release(&a);
	if (rc < 0)
		return -1;
	state_be32(key, id);
	rc = mdb_del(txn->txn, txn->st->mailbox, &k, NULL);
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot delete a mailbox");
	return 0;
}

int state_mailbox_get(struct state_txn *txn, uint32_t id, struct arena *a,
		      struct state_mailbox *mb_out, struct err *e)
{
	uint8_t key[4];
	MDB_val k = { 4, key }, v;
	int rc;

	if (state_txn_check(txn, false, e) < 0)
		return -1;
	state_be32(key, id);
	rc = mdb_get(txn->txn, txn->st->mailbox, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot read a mailbox");
	return state_mailbox_decode(txn->st, id, &v, a, mb_out, e) < 0 ? -1 : 1;
}

static int mailbox_find(struct state_txn *txn, MDB_dbi dbi, const char *name,
			struct arena *a, struct state_mailbox *mb_out,
			struct err *e)
{
	MDB_val k = { state_strlen(name), (void *)name }, v;
	int rc;

	if (state_txn_check(txn, false, e) < 0)
		return -1;
	if (!has_name(name) || k.mv_size > STATE_MAILBOX_NAME_MAX)
		return 0;
	rc = mdb_get(txn->txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot read a mailbox name");
	if (v.mv_size != 4)
		return state_damaged(txn->st, e, "mailbox name index entry of %zu bytes",
				     v.mv_size);
	rc = state_mailbox_get(txn, state_get_be32(v.mv_data), a, mb_out, e);
	if (rc == 0)
		return state_damaged(txn->st, e, "mailbox name \"%s\" points to no mailbox",
				     name);
	return rc;
}

int state_mailbox_find_remote(struct state_txn *txn, const char *remote_name,
			      struct arena *a, struct state_mailbox *mb_out,
			      struct err *e)
{
	return mailbox_find(txn, txn->st->mbox_remote, remote_name, a, mb_out, e);
}

int state_mailbox_find_local(struct state_txn *txn, const char *local_name,
			     struct arena *a, struct state_mailbox *mb_out,
			     struct err *e)
{
	return mailbox_find(txn, txn->st->mbox_local, local_name, a, mb_out, e);
}

int state_mailbox_list(struct state_txn *txn, struct arena *a,
		       struct state_mailbox **list_out, size_t *n_out,
		       struct err *e)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct state_mailbox *list = NULL;
	size_t n = 0, cap = 0;
	int rc, ret = 0;

	*list_out = NULL;
	*n_out = 0;
	if (state_txn_check(txn, false, e) < 0)
		return -1;
	rc = mdb_cursor_open(txn->txn, txn->st->mailbox, &cur);
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e, "cannot list mailboxes");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 4) {
			ret = state_damaged(txn->st, e, "mailbox key of %zu bytes",
					    k.mv_size);
			break;
		}
		list = xgrow(list, &cap, n + 1, sizeof(*list));
		if (state_mailbox_decode(txn->st, state_get_be32(k.mv_data), &v,
					 a, &list[n], e) < 0) {
			ret = -1;
			break;
		}
		n++;
	}
	if (ret == 0 && rc != MDB_NOTFOUND)
		ret = state_lmdb_fail(txn->st, txn, rc, e, "cannot list mailboxes");
	mdb_cursor_close(cur);
	if (ret == 0 && n > 0) {
		*list_out = ARENA_NEW_ARRAY(a, struct state_mailbox, n);
		memcpy(*list_out, list, n * sizeof(*list));
		*n_out = n;
	}
	free(list);
	return ret;
}
