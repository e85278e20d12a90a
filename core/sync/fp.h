/*
 * fp.h - the sync fingerprint of a message (SYNC-DESIGN.md "Fingerprint").
 *
 * SHA-256 over "ferry-fp1\n", then the message's header section (everything
 * up to and including the first empty line) with every line ending written
 * as CRLF (a bare LF becomes CR LF; a CR not followed by LF is content),
 * then "\n" and the message's full size in CRLF form as a decimal number.
 * The same message gives the same 32 bytes whether it is read from a local
 * file (feed the whole file: the size is counted, bytes plus bare LFs) or
 * from the server (feed BODY.PEEK[HEADER] and pass RFC822.SIZE to
 * sync_fp_final_size()).
 *
 * The context also picks up the first Message-ID header's value (unfolded,
 * blanks trimmed, at most SYNC_FP_MSGID_MAX bytes; the state keeps it).
 * Header bytes beyond SYNC_FP_HEADER_SCAN are hashed but not searched for
 * the Message-ID.
 *
 * Ownership: the context owns a hash handle and a capped buffer from
 * sync_fp_init() until sync_fp_final*() or sync_fp_abort(), which release
 * them.  The result is a plain value.
 */
#ifndef FERRY_SYNC_FP_H
#define FERRY_SYNC_FP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define SYNC_FP_BYTES 32
#define SYNC_FP_MSGID_MAX 998
#define SYNC_FP_HEADER_SCAN 65536

struct sync_fp_value {
	unsigned char bytes[SYNC_FP_BYTES];
	char message_id[SYNC_FP_MSGID_MAX + 1];  /* "" if none */
	uint64_t size;                           /* the CRLF size hashed */
};

struct sync_fp_ctx {
	void *hash;                     /* gnutls_hash_hd_t */
	bool pending_cr;                /* a header CR waits for the next byte */
	bool last_cr;                   /* the last byte fed was CR */
	bool header_done;               /* the empty line went by */
	size_t line_len;                /* content bytes of the current line */
	uint64_t size;                  /* CRLF size so far */
	struct buf header;              /* normalised header, capped, for Message-ID */
	unsigned char out[4096];        /* hash input waiting to be flushed */
	size_t nout;
};

int sync_fp_init(struct sync_fp_ctx *c, struct err *e);
/* Feed the next bytes of the message (or of its header section). */
void sync_fp_update(struct sync_fp_ctx *c, const void *data, size_t n);
/*
 * sync_fp_update() of the header only: the bytes after the header's end
 * are not looked at, so the size stays unknown to the context: finish
 * with sync_fp_final_size() given the size (the caller counted it, e.g.
 * with crlf_to_lf_counting()).
 */
void sync_fp_update_header(struct sync_fp_ctx *c, const void *data, size_t n);
/* Finish with the counted CRLF size (a whole message was fed). */
void sync_fp_final(struct sync_fp_ctx *c, struct sync_fp_value *out);
/* Finish with a known size (RFC822.SIZE; only the header was fed). */
void sync_fp_final_size(struct sync_fp_ctx *c, uint64_t size, struct sync_fp_value *out);
/* Release without a result.  Safe after final (no-op). */
void sync_fp_abort(struct sync_fp_ctx *c);

/* Fingerprint a whole file from `fd`, read to its end (the fd stays open). */
int sync_fp_fd(int fd, struct sync_fp_value *out, struct err *e);

#endif
