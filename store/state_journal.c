/*
 * state_journal.c - the journal of pending intents: "journal", BE64 id ->
 * intent record.  Ids grow, so a cursor walk lists intents in the order
 * they were added.
 */
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "xalloc.h"

int state_intent_add(struct state_txn *txn, struct state_intent *in,
		     struct err *e)
{
	struct buf b = BUF_INIT(STATE_RECORD_MAX);
	uint8_t key[8];
	MDB_val k = { 8, key }, v;
	uint64_t id;
	int rc;

	if (state_txn_check(txn, true, e) < 0)
		return -1;
	if (state_intent_encode(in, &b, e) < 0 ||
	    state_meta_next(txn, "next_intent", &id, e) < 0) {
		buf_release(&b);
		return -1;
	}
	in->id = id;
	state_be64(key, id);
	v.mv_size = b.len;
	v.mv_data = b.data;
	rc = mdb_put(txn->txn, txn->st->journal, &k, &v, MDB_NOOVERWRITE);
	buf_release(&b);
	if (rc == MDB_KEYEXIST)
		return state_damaged(txn->st, e, "intent %llu exists twice",
				     (unsigned long long)id);
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot write an intent");
	return 0;
}

int state_intent_clear(struct state_txn *txn, uint64_t id, struct err *e)
{
	uint8_t key[8];
	MDB_val k = { 8, key };
	int rc;

	if (state_txn_check(txn, true, e) < 0)
		return -1;
	state_be64(key, id);
	rc = mdb_del(txn->txn, txn->st->journal, &k, NULL);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot clear an intent");
	return 0;
}

int state_intent_list(struct state_txn *txn, struct arena *a,
		      struct state_intent **list_out, size_t *n_out,
		      struct err *e)
{
	struct state_intent *list = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	*list_out = NULL;
	*n_out = 0;
	if (state_txn_check(txn, false, e) < 0)
		return -1;
	rc = mdb_cursor_open(txn->txn, txn->st->journal, &cur);
	if (rc != 0)
		return state_lmdb_fail(txn->st, txn, rc, e,
				       "cannot read the journal");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8) {
			ret = state_damaged(txn->st, e, "journal key of %zu bytes",
					    k.mv_size);
			break;
		}
		list = xgrow(list, &cap, n + 1, sizeof(*list));
		if (state_intent_decode(txn->st, state_get_be64(k.mv_data), &v,
					a, &list[n], e) < 0) {
			ret = -1;
			break;
		}
		n++;
	}
	if (ret == 0 && rc != MDB_NOTFOUND)
		ret = state_lmdb_fail(txn->st, txn, rc, e,
				      "cannot read the journal");
	mdb_cursor_close(cur);
	if (ret == 0 && n > 0) {
		*list_out = ARENA_NEW_ARRAY(a, struct state_intent, n);
		memcpy(*list_out, list, n * sizeof(*list));
		*n_out = n;
	}
	free(list);
	return ret;
}
