/*
 * conn.h - one IMAP connection: socket, TLS (GnuTLS), COMPRESS=DEFLATE,
 * tags and the command pipeline.  Knows nothing of mailboxes or
 * capabilities beyond LITERAL+/LITERAL- (which the client tells it).
 *
 * Layers, bottom up:
 *   TCP (non-blocking) -> TLS (implicit or after STARTTLS) -> deflate
 *   -> the response parser (parse.h) -> dispatch by tag.
 *
 * Commands are submitted with imap_conn_submit() and pipelined: any number
 * may be in flight; each is matched to its tagged response.  Untagged
 * responses are offered to the in-flight commands' untagged handlers, oldest
 * first, and then to the connection-level handler.  A command containing a
 * synchronising literal ({N}) sends its rest only after the server's "+".
 * A command with a continuation handler (AUTHENTICATE) gets every "+" that
 * is not for a literal and answers it.
 *
 * Driving: imap_conn_fd(), imap_conn_events() and imap_conn_process() let
 * one poll() loop drive many connections; imap_conn_wait() is a blocking
 * helper that polls this one connection until a command completes.  A loop
 * calls imap_conn_process() (revents 0 is fine: it moves what it can),
 * looks at what completed and submits follow-ups, and only then polls with
 * the smallest imap_conn_poll_timeout(): a process step may already have
 * read the answer it would otherwise wait for.
 *
 * Timeouts: opts.timeout_ms bounds TCP connect, the TLS handshake, and the
 * silence of a server while something is expected of it (inactivity, reset
 * whenever bytes arrive or leave).
 *
 * TLS: the system trust store plus an optional CA file; the host name is
 * verified (SNI sent for names that are not IP literals).  With a pin
 * ("sha256:AB:CD:..." of the server certificate's DER), a matching
 * certificate is accepted even if its chain is not trusted or its name does
 * not match (the pin identifies the exact certificate, which is what a user
 * pinning a self-signed certificate wants); a mismatch is refused, showing
 * both fingerprints.  Every TLS failure is ERR_TLS.
 *
 * Trace: at debug level (LOG_CAT_NET) every line is logged as "C: ..." or
 * "S: ...".  Literal contents are never shown, only their sizes.  Commands
 * flagged IMAP_CMD_SECRET show only their public prefix; LOGIN and
 * AUTHENTICATE are treated as secret even if not flagged; continuation
 * answers are always redacted.
 *
 * Ownership: the connection owns its socket, TLS session, buffers and
 * parser.  A struct imap_cmd returned by imap_conn_submit() belongs to the
 * caller, who must imap_cmd_free() it (before or after completion; freeing
 * an incomplete command detaches it: the connection then drops it on
 * completion, without calling its handlers).  Responses passed to handlers
 * live only for the duration of the call.  The tagged response kept in a
 * command lives until imap_cmd_free().
 *
 * Failure: a network, TLS, protocol or timeout error fails the connection
 * (state IMAP_CONN_FAILED): every command in flight completes with that
 * error, and no more commands can be submitted.
 */
#ifndef FERRY_IMAP_CONN_H
#define FERRY_IMAP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"
#include "parse.h"

enum imap_tls_mode {
	IMAP_TLS_IMPLICIT = 0,      /* TLS from the first byte (port 993) */
	IMAP_TLS_STARTTLS,          /* plain, then STARTTLS; never downgrades */
	IMAP_TLS_NONE,              /* plain text (loopback, tests) */
};

enum imap_conn_state {
	IMAP_CONN_IDLE = 0,         /* created, not connected */
	IMAP_CONN_CONNECTING,       /* TCP connect in progress */
	IMAP_CONN_HANDSHAKE,        /* TLS handshake */
	IMAP_CONN_GREETING,         /* waiting for the server's greeting */
	IMAP_CONN_OPEN,             /* commands flow */
	IMAP_CONN_BYE,              /* the server said BYE; it will close */
	IMAP_CONN_CLOSED,           /* closed cleanly */
	IMAP_CONN_FAILED,           /* failed; see imap_conn_error() */
};

enum imap_literal_mode {
	IMAP_LITERAL_SYNC = 0,      /* every {N} waits for "+" */
	IMAP_LITERAL_PLUS,          /* LITERAL+: {N+} for all sizes */
	IMAP_LITERAL_MINUS,         /* LITERAL-: {N+} up to 4096 bytes */
};

struct imap_conn_opts {
	const char *host;           /* name or IP literal; copied */
	unsigned port;
	enum imap_tls_mode tls;
	const char *tls_ca_file;    /* optional PEM file of extra trust anchors */
	const char *tls_fingerprint;/* optional "sha256:AB:CD:..." (colons optional) */
	unsigned timeout_ms;        /* 0: 60 s */
	const struct imap_parser_limits *limits;   /* NULL: defaults */
	const struct imap_literal_sink *sink;      /* NULL: no streaming */
	size_t max_command;         /* largest command, literals included; 0: 64 MiB */
	bool assume_remote_peer;    /* tests: treat even a loopback peer as remote */
};

enum imap_cmd_flags {
	IMAP_CMD_SECRET = 1u << 0,      /* trace shows only the first public_len bytes */
	IMAP_CMD_EXCLUSIVE = 1u << 1,   /* nothing else is sent while it is in flight */
	IMAP_CMD_SWITCH = 1u << 2,      /* STARTTLS, COMPRESS: on OK, input pauses
					 * until imap_conn_start_tls/_compress() */
};

struct imap_conn;
struct imap_cmd;

/*
 * An untagged response while the command is in flight: return 1 if it was
 * consumed, 0 to pass it on, -1 (e filled) to fail the command (it still
 * waits for its tagged response; the connection goes on).
 */
typedef int (*imap_untagged_fn)(void *ctx, const struct imap_resp *r, struct err *e);
/*
 * A continuation request for a command with such a handler: append the
 * answer line (without CRLF) to `answer`, which is wiped after sending.
 * -1 (e filled) fails the connection.
 */
typedef int (*imap_cont_fn)(void *ctx, const struct imap_resp *r, struct buf *answer,
			    struct err *e);
/* The command completed: tagged response or connection failure. */
typedef void (*imap_done_fn)(void *ctx, struct imap_cmd *cmd);

/*
 * Bytes of a literal that are not in memory (APPEND of a large message):
 * read() fills up to n bytes and returns how many (> 0), or -1 with e
 * filled.  It is called as the socket takes data, until `size` bytes were
 * given; ctx must stay valid until the command completes.  A source that
 * fails or ends early fails the connection (the server expects the bytes).
 */
struct imap_literal_source {
	uint64_t size;
	ssize_t (*read)(void *ctx, char *buf, size_t n, struct err *e);
	void *ctx;
};

struct imap_cmd_req {
	/*
	 * The command after the tag, without the final CRLF.  A literal is
	 * written as on the wire: "{N}\r\n" (or "{N+}\r\n", "~{N}\r\n")
	 * followed by its N bytes.  {N} becomes {N+} when the literal mode
	 * allows.  Copied.
	 */
	const char *text;
	size_t len;
	/*
	 * Optional streamed literals: the command is text, then for each of
	 * the nsources sources (nsources 0 means 1) "{size}\r\n" (or
	 * "{size+}"), the source's bytes, and then between[i] before the
	 * next source (MULTIAPPEND's " (flags) date "), tail after the last
	 * one; none of these texts holds a line break or a literal.  The
	 * source structs are copied; between[] is copied.
	 */
	const struct imap_literal_source *source;
	size_t nsources;
	const char *const *between;
	const char *tail;
	size_t tail_len;
	unsigned flags;             /* enum imap_cmd_flags */
	size_t public_len;          /* with IMAP_CMD_SECRET: bytes the trace may show */
	imap_untagged_fn untagged;  /* optional */
	imap_cont_fn cont;          /* optional; implies IMAP_CMD_EXCLUSIVE */
	imap_done_fn done;          /* optional */
	void *ctx;
};

struct imap_conn *imap_conn_new(const struct imap_conn_opts *opts);
/* Close (without LOGOUT) and free; commands in flight complete with ERR_NET. */
void imap_conn_free(struct imap_conn *c);

/*
 * Resolve, connect (each address in turn, each bounded by the timeout),
 * and with IMAP_TLS_IMPLICIT complete the TLS handshake.  Blocking.
 * Afterwards the connection waits for the greeting (imap_conn_greeting()).
 * Errors: ERR_NET (resolve, refused, unreachable), ERR_TIMEOUT, ERR_TLS.
 */
int imap_conn_connect(struct imap_conn *c, struct err *e);

/* Tests: use an already connected socket (taken over) instead of connecting. */
int imap_conn_attach_fd(struct imap_conn *c, int fd, struct err *e);

/*
 * Wait for the greeting; *greeting_out (owned by the connection, valid
 * until imap_conn_free()) is the "* OK / PREAUTH / BYE" response.
 */
int imap_conn_greeting(struct imap_conn *c, const struct imap_resp **greeting_out,
		       struct err *e);

/* After a tagged OK to STARTTLS: handshake and verify.  Blocking. */
int imap_conn_start_tls(struct imap_conn *c, struct err *e);
/* After a tagged OK to COMPRESS DEFLATE: everything from now on is deflated. */
int imap_conn_start_compress(struct imap_conn *c, struct err *e);

void imap_conn_set_literal_mode(struct imap_conn *c, enum imap_literal_mode mode);
/* Untagged responses no command consumed.  Return -1 to fail the connection. */
void imap_conn_set_untagged(struct imap_conn *c, imap_untagged_fn fn, void *ctx);

/* Queue a command.  NULL with e filled if the connection is not open or the text is malformed. */
struct imap_cmd *imap_conn_submit(struct imap_conn *c, const struct imap_cmd_req *req,
				  struct err *e);

/*
 * Poll this connection until cmd completes.  0 on a tagged OK; -1 with
 * ERR_SERVER (NO/BAD, the server's text kept) or the connection's error
 * (ERR_NET, ERR_TLS, ERR_PROTO, ERR_LIMIT, ERR_TIMEOUT), or the error an
 * untagged handler returned.
 */
int imap_conn_wait(struct imap_conn *c, struct imap_cmd *cmd, struct err *e);

/* For a poll() loop: the socket, the events it wants, and one step. */
int imap_conn_fd(const struct imap_conn *c);
short imap_conn_events(const struct imap_conn *c);
/*
 * Move bytes both ways as far as possible without blocking, dispatch
 * complete responses, and check the inactivity timeout.  -1 when the
 * connection failed (e filled; imap_conn_error() keeps it too).
 */
int imap_conn_process(struct imap_conn *c, short revents, struct err *e);
/*
 * Milliseconds until the inactivity timeout fires (for poll()), 0 if there
 * is buffered TLS data to process now, or -1 if nothing is expected.
 */
int imap_conn_poll_timeout(const struct imap_conn *c);

enum imap_conn_state imap_conn_state(const struct imap_conn *c);
const char *imap_conn_state_name(enum imap_conn_state s);
const struct err *imap_conn_error(const struct imap_conn *c);
/* The text of the server's BYE, or NULL. */
const char *imap_conn_bye_text(const struct imap_conn *c);
bool imap_conn_is_tls(const struct imap_conn *c);
bool imap_conn_is_compressed(const struct imap_conn *c);
/* The peer is on this machine (127/8, ::1, a Unix socket): plain-text credentials may go. */
bool imap_conn_peer_is_local(const struct imap_conn *c);
/* The server certificate's "sha256:AB:..." fingerprint (TLS only), or NULL. */
const char *imap_conn_fingerprint(const struct imap_conn *c);
/* Number of commands submitted and not yet completed. */
size_t imap_conn_pending(const struct imap_conn *c);

/* Command results. */
bool imap_cmd_is_done(const struct imap_cmd *cmd);
/*
 * True while cmd waits for its answer and every command submitted before it
 * has completed: an untagged response arriving now was not sent for those
 * earlier commands (the server answers in order).  False once cmd is done.
 */
bool imap_cmd_is_oldest(const struct imap_cmd *cmd);
/* IMAP_STATUS_OK/NO/BAD once done with a tagged response; NONE if the connection failed. */
enum imap_status imap_cmd_status(const struct imap_cmd *cmd);
/* The tagged response (response codes such as CAPABILITY, APPENDUID), or NULL. */
const struct imap_resp *imap_cmd_response(const struct imap_cmd *cmd);
const char *imap_cmd_tag(const struct imap_cmd *cmd);
void imap_cmd_free(struct imap_cmd *cmd);

#endif
