/*
 * libFuzzer target: the state's record decoders (store/state_codec.c) on
 * arbitrary bytes.  The first byte picks the record type (message, mailbox,
 * intent); the rest is the value as LMDB would hand it over.  A decoded
 * record is re-encoded and must decode to the same bytes again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "state_int.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(struct buf *b, const char *orig, size_t n)
{
	if (b->len != n || memcmp(b->data, orig, n) != 0) {
		/* Decoding is canonical except for ignored padding: none exists. */
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state fake = { .path = "/fuzz/state" };
	struct buf b = BUF_INIT(STATE_RECORD_MAX);
	struct arena a;
	struct err e;
	char *copy;
	MDB_val v;

	if (size < 1)
		return 0;
	/* An exact-size copy so that ASan sees any over-read. */
	copy = size > 1 ? xmemdup(data + 1, size - 1) : NULL;
	v.mv_size = size - 1;
	v.mv_data = copy;
	arena_init(&a, 1024);
	switch (data[0] % 3) {
	case 0: {
		struct state_msg m;

		if (state_msg_decode(&fake, 1, &v, &a, &m, &e) == 0 &&
		    state_msg_encode(&m, &b, &e) == 0)
			roundtrip(&b, copy, v.mv_size);
		break;
	}
	case 1: {
		struct state_mailbox mb;

		if (state_mailbox_decode(&fake, 1, &v, &a, &mb, &e) == 0 &&
		    state_mailbox_encode(&mb, &b, &e) == 0)
			roundtrip(&b, copy, v.mv_size);
		break;
	}
	default: {
		struct state_intent in;

		if (state_intent_decode(&fake, 1, &v, &a, &in, &e) == 0 &&
		    state_intent_encode(&in, &b, &e) == 0)
			roundtrip(&b, copy, v.mv_size);
		break;
	}
	}
	buf_release(&b);
	arena_release(&a);
	free(copy);
	return 0;
}
