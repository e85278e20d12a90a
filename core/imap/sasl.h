/*
 * sasl.h - client side of the SASL mechanisms ferry speaks: PLAIN,
 * SCRAM-SHA-1, SCRAM-SHA-256 (RFC 5802, RFC 7677), XOAUTH2 and OAUTHBEARER
 * (RFC 7628).
 *
 * Pure state machines: raw (decoded) server challenges in, raw client
 * responses out.  Base64 on the wire is the connection's business
 * (sasl_b64_encode / sasl_b64_decode below help).  No I/O, no logging.
 *
 * Secrets: the password or token is copied at sasl_new() and wiped by
 * sasl_free(); responses that carry a secret are written into a caller buffer
 * which the caller must release with buf_release_secret().  Error messages
 * never contain the secret.
 */
#ifndef FERRY_IMAP_SASL_H
#define FERRY_IMAP_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

enum sasl_mech {
	SASL_PLAIN = 0,
	SASL_SCRAM_SHA_1,
	SASL_SCRAM_SHA_256,
	SASL_XOAUTH2,
	SASL_OAUTHBEARER,
};

struct sasl_opts {
	enum sasl_mech mech;
	const char *user;           /* authentication identity */
	const char *secret;         /* password (PLAIN, SCRAM) or bearer token (OAuth) */
	const char *host;           /* OAUTHBEARER: host and port in the GS2 header */
	unsigned port;
	const char *test_nonce;     /* tests only: fixed SCRAM client nonce; NULL = random */
};

struct sasl;

/* The IANA name ("SCRAM-SHA-256"); lookup is case-insensitive. */
const char *sasl_mech_name(enum sasl_mech mech);
int sasl_mech_from_name(const char *name, enum sasl_mech *mech_out);
/* True for mechanisms that send the password itself (PLAIN); LOGIN is the same. */
bool sasl_mech_is_plaintext(enum sasl_mech mech);

struct sasl *sasl_new(const struct sasl_opts *opts, struct err *e);
void sasl_free(struct sasl *s);

/*
 * The client's initial response (appended to `out`), sent with SASL-IR or
 * after the server's first empty challenge.  All mechanisms here have one.
 */
int sasl_start(struct sasl *s, struct buf *out, struct err *e);

/*
 * The server sent a challenge (decoded bytes).  Append the client's answer
 * to `out` (possibly empty).  SCRAM verifies the server's signature here;
 * a mismatch is ERR_AUTH.  An OAuth error challenge (JSON) is answered as
 * the mechanism demands (empty for XOAUTH2, "\x01" for OAUTHBEARER) and
 * remembered: sasl_error_detail() then returns the server's status text.
 */
int sasl_step(struct sasl *s, const char *challenge, size_t len, struct buf *out,
	      struct err *e);

/*
 * The server finished with a tagged OK.  Returns -1 (ERR_AUTH) if the
 * mechanism required a final verification that did not happen (a SCRAM
 * server that never proved it knew the password).  The optional data is the
 * RFC 4422 "additional data with success" some servers put in the OK.
 */
int sasl_finish(struct sasl *s, const char *final, size_t len, struct err *e);

/* OAuth: the server's error JSON "status"/"schemes" summary, or NULL. */
const char *sasl_error_detail(const struct sasl *s);

/* Base64 helpers (RFC 4648, with padding); decoding rejects bad input. */
int sasl_b64_encode(const void *data, size_t len, struct buf *out, struct err *e);
int sasl_b64_decode(const char *text, size_t len, struct buf *out, struct err *e);

#endif
