/*
 * state_int.h - private to store/state*.c: the environment handle, the
 * transaction handle, key builders and the record codecs.  The on-disk
 * format is described in doc/state.md; keep the two in step.
 */
#ifndef FERRY_STATE_INT_H
#define FERRY_STATE_INT_H

#include <lmdb.h>
#include <stdint.h>

#include "buf.h"
#include "state.h"

/* Record format versions (the first byte of each value). */
#define STATE_MSG_V1 1
#define STATE_MAILBOX_V1 1
#define STATE_INTENT_V1 1

/* Largest encoded record; keeps a damaged length from asking for more. */
#define STATE_RECORD_MAX (2u * 1024 * 1024)

/* Value of the "magic" key in the meta DB. */
#define STATE_MAGIC "ferry sync state"

struct state {
	MDB_env *env;
	char *path;
	bool read_only;
	unsigned schema_on_disk;
	int active;             /* open transactions */
	bool writing;           /* a write transaction is open */
	bool grow_pending;      /* a transaction ran out of map space */
	MDB_dbi meta;           /* "meta": magic, schema, counters */
	MDB_dbi mailbox;        /* "mailbox": BE32 id -> mailbox record */
	MDB_dbi mbox_remote;    /* "mailbox_remote": remote name -> BE32 id */
	MDB_dbi mbox_local;     /* "mailbox_local": local name -> BE32 id */
	MDB_dbi msg;            /* "msg": BE64 id -> message record */
	MDB_dbi msg_uid;        /* "msg_uid": BE32 mbox BE32 uid BE64 id -> "" */
	MDB_dbi msg_name;       /* "msg_name" (dupsort): name -> BE32 mbox BE64 id */
	MDB_dbi msg_fp;         /* "msg_fp" (dupsort): hash -> BE32 mbox BE64 id */
	MDB_dbi journal;        /* "journal": BE64 id -> intent record */
};

struct state_txn {
	struct state *st;
	MDB_txn *txn;
	bool write;
	bool full;              /* MDB_MAP_FULL seen: only abort is left */
	bool relaxed;           /* state_txn_relax(): the meta page is not flushed */
};

/*
 * Convert an LMDB failure `rc` into ERR_STATE naming the path and `what`;
 * MDB_MAP_FULL marks `txn` full (txn may be NULL).  Returns -1.
 */
int state_lmdb_fail(struct state *st, struct state_txn *txn, int rc,
		    struct err *e, const char *what);

/* ERR_STATE "state at PATH is damaged (...)" with the rebuild advice. */
int state_damaged(struct state *st, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fail early if a previous call ran the transaction full. */
int state_txn_check(struct state_txn *txn, bool need_write, struct err *e);

/* Allocate the next value of a meta counter ("next_mailbox" ...). */
int state_meta_next(struct state_txn *txn, const char *key, uint64_t *id_out,
		    struct err *e);

/* Big-endian keys: they sort in numeric order. */
void state_be32(uint8_t *out, uint32_t v);
void state_be64(uint8_t *out, uint64_t v);
uint32_t state_get_be32(const uint8_t *p);
uint64_t state_get_be64(const uint8_t *p);
void state_le32(uint8_t *out, uint32_t v);
void state_le64(uint8_t *out, uint64_t v);
uint32_t state_get_le32(const uint8_t *p);
uint64_t state_get_le64(const uint8_t *p);

/* Codecs.  Encoders check the bounds in state.h (ERR_LIMIT) and append to
 * `b`; decoders fill *out from arena `a` or fail with state_damaged(). */
int state_msg_encode(const struct state_msg *m, struct buf *b, struct err *e);
int state_msg_decode(struct state *st, uint64_t id, const MDB_val *v,
		     struct arena *a, struct state_msg *out, struct err *e);
int state_mailbox_encode(const struct state_mailbox *mb, struct buf *b,
			 struct err *e);
int state_mailbox_decode(struct state *st, uint32_t id, const MDB_val *v,
			 struct arena *a, struct state_mailbox *out,
			 struct err *e);
int state_intent_encode(const struct state_intent *in, struct buf *b,
			struct err *e);
int state_intent_decode(struct state *st, uint64_t id, const MDB_val *v,
			struct arena *a, struct state_intent *out,
			struct err *e);

/* Length of an optional string (NULL = 0). */
size_t state_strlen(const char *s);

#endif
