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
 * never contain the secret (server text that quotes it is withheld).
 *
 * Output buffers: every function that appends to `out` reserves the whole
 * response first, so on failure (including ERR_LIMIT from the cap) `out` is
 * left exactly as it was, and a secret is never copied by a reallocation.
 *
 * Lifecycle: sasl_new(), then sasl_start() exactly once, then sasl_step()
 * per server challenge, then sasl_finish() on the tagged OK (or sasl_free()
 * on NO/BAD).  Calling sasl_step()/sasl_finish() before sasl_start() is a
 * programming error (assert).  After any failed step the exchange is dead:
 * further steps and sasl_finish() fail with ERR_AUTH.
 *
 * SCRAM choices (RFC 5802, RFC 7677):
 *  - gs2 header "n,," (no channel binding, no authzid); the user name is
 *    sent as given (UTF-8, ',' -> "=2C", '=' -> "=3D"), not SASLprepped;
 *  - the password is normalised with the RFC 8265 OpaqueString profile
 *    (gnutls_utf8_password_normalize) when that succeeds, and used as its
 *    raw bytes otherwise (e.g. a password that is not UTF-8);
 *  - the client nonce is 24 random bytes from gnutls_rnd, base64-encoded;
 *  - server-first must be exactly "r=,s=,i=" in that order, optionally
 *    followed by ",x=..." extensions (ignored); "m=" is refused; the
 *    server nonce must strictly extend ours; the salt must be non-empty
 *    strict base64; the iteration count a decimal without leading zeros in
 *    [4096, 10000000] (the floor is RFC 7677's minimum, applied to SHA-1
 *    too; the ceiling stops a server from pinning our CPU);
 *  - server-final must be "v=" (optionally followed by extensions) with the
 *    right signature, compared in constant time;
 *  - every SCRAM failure (including "e=" server errors, quoted) is ERR_AUTH;
 *    challenges longer than 8192 bytes or containing NUL are refused.
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
	const char *user;           /* authentication identity; non-empty UTF-8, no controls */
	const char *secret;         /* password (PLAIN, SCRAM) or bearer token (OAuth); non-empty */
	const char *host;           /* OAUTHBEARER: "host=" in the message; NULL or "" omits it */
	unsigned port;              /* OAUTHBEARER: "port=", sent only with a host; 0 omits it */
	const char *test_nonce;     /* tests only: fixed SCRAM client nonce; NULL = random */
};

struct sasl;

/*
 * The IANA name ("SCRAM-SHA-256"), a static string.  Lookup is
 * case-insensitive: 0 and *mech_out set, or -1 for a name not listed here
 * (LOGIN and the -PLUS variants are not SASL mechanisms of this module).
 */
const char *sasl_mech_name(enum sasl_mech mech);
int sasl_mech_from_name(const char *name, enum sasl_mech *mech_out);
/* True for mechanisms that send the password itself (PLAIN); LOGIN is the same. */
bool sasl_mech_is_plaintext(enum sasl_mech mech);

/*
 * Copies everything in opts.  NULL on error: ERR_CONFIG for a bad user name
 * or host, ERR_AUTH for an empty or over-long (> 16 KiB) secret or a token
 * with a control character, ERR_INTERNAL for a bad test_nonce.
 */
struct sasl *sasl_new(const struct sasl_opts *opts, struct err *e);
/* Wipes and frees everything; NULL is fine. */
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
 * A challenge the mechanism does not expect (any for PLAIN, a second one
 * for OAuth, one after SCRAM's server-final) is ERR_PROTO.
 */
int sasl_step(struct sasl *s, const char *challenge, size_t len, struct buf *out,
	      struct err *e);

/*
 * The server finished with a tagged OK.  Returns -1 (ERR_AUTH) if the
 * mechanism required a final verification that did not happen (a SCRAM
 * server that never proved it knew the password).  The optional data is the
 * RFC 4422 "additional data with success" some servers put in the OK
 * (decoded; `final` may be NULL when len is 0): for SCRAM it may carry the
 * server-final-message, which is then verified here.
 */
int sasl_finish(struct sasl *s, const char *final, size_t len, struct err *e);

/*
 * OAuth: a summary of the server's error JSON, e.g.
 * "status 400, schemes Bearer, scope https://mail.google.com/" (fields
 * present only; printable ASCII; values capped), or "malformed error
 * challenge (N bytes)", or NULL if no error challenge came.  Never contains
 * the token.  Valid until sasl_free().
 */
const char *sasl_error_detail(const struct sasl *s);

/*
 * Base64 helpers (RFC 4648 §4, with padding).  Decoding is strict: length a
 * multiple of 4, no whitespace, '=' only as final padding, zero pad bits;
 * bad input is ERR_PROTO.  Both may fail with ERR_LIMIT; `out` is unchanged
 * on failure.
 */
int sasl_b64_encode(const void *data, size_t len, struct buf *out, struct err *e);
int sasl_b64_decode(const char *text, size_t len, struct buf *out, struct err *e);

#endif
