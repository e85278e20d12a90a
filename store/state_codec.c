/*
 * state_codec.c - binary encodings of the state's records (doc/state.md).
 *
 * Every record is a version byte followed by fixed-width little-endian
 * integers and length-prefixed byte strings.  Decoding reads through a
 * bounded reader that never moves past the value it was given: a short or
 * over-long value, an impossible length, a NUL inside a string or an unknown
 * version is a damaged record (ERR_STATE).
 */
#include <stdarg.h>
#include <string.h>

#include "state_int.h"
#include "xalloc.h"

void state_be32(uint8_t *out, uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

void state_be64(uint8_t *out, uint64_t v)
{
	state_be32(out, (uint32_t)(v >> 32));
	state_be32(out + 4, (uint32_t)v);
}

uint32_t state_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint64_t state_get_be64(const uint8_t *p)
{
	return (uint64_t)state_get_be32(p) << 32 | state_get_be32(p + 4);
}

void state_le32(uint8_t *out, uint32_t v)
{
	out[0] = (uint8_t)v;
	out[1] = (uint8_t)(v >> 8);
	out[2] = (uint8_t)(v >> 16);
	out[3] = (uint8_t)(v >> 24);
}

void state_le64(uint8_t *out, uint64_t v)
{
	state_le32(out, (uint32_t)v);
	state_le32(out + 4, (uint32_t)(v >> 32));
}

uint32_t state_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint64_t state_get_le64(const uint8_t *p)
{
	return (uint64_t)state_get_le32(p) | (uint64_t)state_get_le32(p + 4) << 32;
}

size_t state_strlen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* ---- writer ---------------------------------------------------------- */

static int put_u8(struct buf *b, unsigned v, struct err *e)
{
	return buf_addc(b, (char)(uint8_t)v, e);
}

static int put_u16(struct buf *b, unsigned v, struct err *e)
{
	uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	return buf_add(b, x, 2, e);
}

static int put_u32(struct buf *b, uint32_t v, struct err *e)
{
	uint8_t x[4];

	state_le32(x, v);
	return buf_add(b, x, 4, e);
}

static int put_u64(struct buf *b, uint64_t v, struct err *e)
{
	uint8_t x[8];

	state_le64(x, v);
	return buf_add(b, x, 8, e);
}

/* A string with a 16-bit length; `what` names it in the ERR_LIMIT message. */
static int put_str16(struct buf *b, const char *s, size_t max,
		     const char *what, struct err *e)
{
	size_t n = state_strlen(s);

	if (n > max)
		return err_set(e, ERR_LIMIT, "%s too long (%zu bytes, at most %zu)",
			       what, n, max);
	if (put_u16(b, (unsigned)n, e) < 0)
		return -1;
	return n ? buf_add(b, s, n, e) : 0;
}

/* ---- reader ---------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static unsigned rd_u8(struct rd *r)
{
	const uint8_t *p = rd_take(r, 1);

	return p ? p[0] : 0;
}

static unsigned rd_u16(struct rd *r)
{
	const uint8_t *p = rd_take(r, 2);

	return p ? (unsigned)p[0] | (unsigned)p[1] << 8 : 0;
}

static uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = rd_take(r, 4);

	return p ? state_get_le32(p) : 0;
}

static uint64_t rd_u64(struct rd *r)
{
	const uint8_t *p = rd_take(r, 8);

	return p ? state_get_le64(p) : 0;
}

static void rd_bytes(struct rd *r, uint8_t *out, size_t n)
{
	const uint8_t *p = rd_take(r, n);

	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

/* A 16-bit-length string copied into `a`, NUL-terminated; a NUL inside it
 * or a length over `max` marks the reader bad.  Never returns NULL. */
static char *rd_str16(struct rd *r, size_t max, struct arena *a)
{
	size_t n = rd_u16(r);
	const uint8_t *p;

	if (n > max)
		r->bad = true;
	p = rd_take(r, n);
	if (p == NULL || memchr(p, '\0', n) != NULL) {
		r->bad = true;
		return arena_strdup(a, "");
	}
	return arena_strndup(a, (const char *)p, n);
}

static bool rd_done(const struct rd *r)
{
	return !r->bad && r->off == r->len;
}

/* ---- messages -------------------------------------------------------- */

int state_msg_encode(const struct state_msg *m, struct buf *b, struct err *e)
{
	size_t i;

	if (m->nkeywords > STATE_KEYWORDS_MAX)
		return err_set(e, ERR_LIMIT, "too many keywords (%zu, at most %d)",
			       m->nkeywords, STATE_KEYWORDS_MAX);
	if (put_u8(b, STATE_MSG_V1, e) < 0 ||
	    put_u8(b, m->placeholder ? 1 : 0, e) < 0 ||
	    put_u32(b, m->mailbox, e) < 0 || put_u32(b, m->uid, e) < 0 ||
	    put_u32(b, m->flags, e) < 0 || put_u64(b, m->size, e) < 0 ||
	    buf_add(b, m->body_hash, STATE_HASH_LEN, e) < 0 ||
	    put_str16(b, m->name, STATE_NAME_MAX, "local unique name", e) < 0 ||
	    put_str16(b, m->message_id, STATE_MSGID_MAX, "message-id", e) < 0 ||
	    put_u16(b, (unsigned)m->nkeywords, e) < 0)
		return -1;
	for (i = 0; i < m->nkeywords; i++) {
		if (m->keywords[i] == NULL || m->keywords[i][0] == '\0')
			return err_set(e, ERR_INTERNAL, "empty keyword");
		if (put_str16(b, m->keywords[i], STATE_KEYWORD_MAX, "keyword",
			      e) < 0)
			return -1;
	}
	return 0;
}

int state_msg_decode(struct state *st, uint64_t id, const MDB_val *v,
		     struct arena *a, struct state_msg *out, struct err *e)
{
	struct rd r = { v->mv_data, v->mv_size, 0, false };
	unsigned version, bits;
	size_t i, n;
	char **kw;

	memset(out, 0, sizeof(*out));
	out->id = id;
	version = rd_u8(&r);
	if (r.bad || version != STATE_MSG_V1)
		return state_damaged(st, e, "message record %llu has version %u",
				     (unsigned long long)id, version);
	bits = rd_u8(&r);
	out->placeholder = bits & 1;
	out->mailbox = rd_u32(&r);
	out->uid = rd_u32(&r);
	out->flags = rd_u32(&r);
	out->size = rd_u64(&r);
	rd_bytes(&r, out->body_hash, STATE_HASH_LEN);
	out->name = rd_str16(&r, STATE_NAME_MAX, a);
	out->message_id = rd_str16(&r, STATE_MSGID_MAX, a);
	n = rd_u16(&r);
	if (n > STATE_KEYWORDS_MAX || n * 3 > r.len - (r.bad ? r.len : r.off))
		r.bad = true;       /* each keyword takes 3 bytes or more */
	kw = ARENA_NEW_ARRAY(a, char *, r.bad ? 1 : n + 1);
	for (i = 0; !r.bad && i < n; i++) {
		kw[i] = rd_str16(&r, STATE_KEYWORD_MAX, a);
		if (kw[i][0] == '\0')
			r.bad = true;
	}
	out->keywords = (const char *const *)kw;
	out->nkeywords = r.bad ? 0 : n;
	if ((bits & ~1u) != 0 || out->mailbox == 0 || !rd_done(&r))
		return state_damaged(st, e, "message record %llu cannot be decoded",
				     (unsigned long long)id);
	return 0;
}

/* ---- mailboxes ------------------------------------------------------- */

int state_mailbox_encode(const struct state_mailbox *mb, struct buf *b,
			 struct err *e)
{
	if (mb->marker_len > STATE_MARKER_MAX)
		return err_set(e, ERR_LIMIT, "scan marker too long (%zu bytes, at most %d)",
			       mb->marker_len, STATE_MARKER_MAX);
	if ((unsigned)mb->role >= STATE_ROLE_COUNT_)
		return err_set(e, ERR_INTERNAL, "bad mailbox role %d", (int)mb->role);
	if (put_u8(b, STATE_MAILBOX_V1, e) < 0 || put_u8(b, mb->role, e) < 0 ||
	    put_u32(b, mb->uidvalidity, e) < 0 ||
	    put_u32(b, mb->uidnext, e) < 0 ||
	    put_u64(b, mb->highestmodseq, e) < 0 ||
	    put_u32(b, mb->msg_count, e) < 0 ||
	    put_u64(b, (uint64_t)mb->last_sync, e) < 0 ||
	    put_str16(b, mb->remote_name, STATE_MAILBOX_NAME_MAX,
		      "remote mailbox name", e) < 0 ||
	    put_str16(b, mb->local_name, STATE_MAILBOX_NAME_MAX,
		      "local folder name", e) < 0 ||
	    put_u32(b, (uint32_t)mb->marker_len, e) < 0)
		return -1;
	return mb->marker_len ? buf_add(b, mb->marker, mb->marker_len, e) : 0;
}

int state_mailbox_decode(struct state *st, uint32_t id, const MDB_val *v,
			 struct arena *a, struct state_mailbox *out,
			 struct err *e)
{
	struct rd r = { v->mv_data, v->mv_size, 0, false };
	unsigned version, role;
	uint32_t n;
	const uint8_t *p;

	memset(out, 0, sizeof(*out));
	out->id = id;
	version = rd_u8(&r);
	if (r.bad || version != STATE_MAILBOX_V1)
		return state_damaged(st, e, "mailbox record %u has version %u",
				     id, version);
	role = rd_u8(&r);
	if (role >= STATE_ROLE_COUNT_)
		r.bad = true;
	out->role = (enum state_role)(r.bad ? 0 : role);
	out->uidvalidity = rd_u32(&r);
	out->uidnext = rd_u32(&r);
	out->highestmodseq = rd_u64(&r);
	out->msg_count = rd_u32(&r);
	out->last_sync = (int64_t)rd_u64(&r);
	out->remote_name = rd_str16(&r, STATE_MAILBOX_NAME_MAX, a);
	out->local_name = rd_str16(&r, STATE_MAILBOX_NAME_MAX, a);
	n = rd_u32(&r);
	if (n > STATE_MARKER_MAX)
		r.bad = true;
	p = rd_take(&r, r.bad ? 0 : n);
	if (!rd_done(&r))
		return state_damaged(st, e, "mailbox record %u cannot be decoded",
				     id);
	out->marker = n ? arena_alloc(a, n) : NULL;
	if (n)
		memcpy((void *)out->marker, p, n);
	out->marker_len = n;
	return 0;
}

/* ---- intents --------------------------------------------------------- */

int state_intent_encode(const struct state_intent *in, struct buf *b,
			struct err *e)
{
	if ((unsigned)in->kind == 0 || in->kind >= STATE_INTENT_KIND_COUNT_)
		return err_set(e, ERR_INTERNAL, "bad intent kind %d", (int)in->kind);
	if (put_u8(b, STATE_INTENT_V1, e) < 0 || put_u8(b, in->kind, e) < 0 ||
	    put_u32(b, in->mailbox, e) < 0 || put_u32(b, in->target, e) < 0 ||
	    put_u32(b, in->uid, e) < 0 || put_u32(b, in->uidnext, e) < 0 ||
	    put_u64(b, in->msg, e) < 0 ||
	    put_u64(b, (uint64_t)in->created, e) < 0 ||
	    buf_add(b, in->body_hash, STATE_HASH_LEN, e) < 0 ||
	    put_str16(b, in->name, STATE_NAME_MAX, "local unique name", e) < 0 ||
	    put_str16(b, in->message_id, STATE_MSGID_MAX, "message-id", e) < 0)
		return -1;
	return 0;
}

int state_intent_decode(struct state *st, uint64_t id, const MDB_val *v,
			struct arena *a, struct state_intent *out,
			struct err *e)
{
	struct rd r = { v->mv_data, v->mv_size, 0, false };
	unsigned version, kind;

	memset(out, 0, sizeof(*out));
	out->id = id;
	version = rd_u8(&r);
	if (r.bad || version != STATE_INTENT_V1)
		return state_damaged(st, e, "intent %llu has version %u",
				     (unsigned long long)id, version);
	kind = rd_u8(&r);
	if (kind == 0 || kind >= STATE_INTENT_KIND_COUNT_)
		r.bad = true;
	out->kind = (enum state_intent_kind)kind;
	out->mailbox = rd_u32(&r);
	out->target = rd_u32(&r);
	out->uid = rd_u32(&r);
	out->uidnext = rd_u32(&r);
	out->msg = rd_u64(&r);
	out->created = (int64_t)rd_u64(&r);
	rd_bytes(&r, out->body_hash, STATE_HASH_LEN);
	out->name = rd_str16(&r, STATE_NAME_MAX, a);
	out->message_id = rd_str16(&r, STATE_MSGID_MAX, a);
	if (!rd_done(&r))
		return state_damaged(st, e, "intent %llu cannot be decoded",
				     (unsigned long long)id);
	return 0;
}
