/*
 * conn_int.h - private to conn.c (pipeline, dispatch, trace) and
 * conn_net.c (TCP, TLS, deflate).  Not for other modules.
 */
#ifndef FERRY_IMAP_CONN_INT_H
#define FERRY_IMAP_CONN_INT_H

#include <gnutls/gnutls.h>
#include <sys/types.h>
#include <zlib.h>

#include "conn.h"

/* One piece of a command: text up to and including a CRLF, or literal bytes. */
struct cmd_seg {
	size_t off, len;
	bool literal;
	bool stream;            /* literal bytes from one of the command's sources */
	uint32_t src;           /* stream: the index of that source */
	bool sync;              /* text ending in {N}: wait for "+" after it */
};

struct imap_cmd {
	struct imap_conn *conn;     /* NULL once completed */
	struct imap_cmd *next;
	char tag[16];
	size_t taglen;              /* "TAG " */
	char verb[24];              /* first word, for messages */
	char *text;                 /* "TAG ...\r\n", wiped on free */
	size_t len;
	struct cmd_seg *segs;
	size_t nsegs, segs_cap;
	size_t seg_i, seg_off;      /* send progress */
	struct imap_literal_source *sources;        /* for the stream segments */
	size_t nsources;
	bool blocked;               /* waiting for "+" before the next segment */
	unsigned flags;
	size_t public_len;
	imap_untagged_fn untagged;
	imap_cont_fn cont;
	imap_done_fn done_fn;
	void *ctx;
	bool done, detached, has_err;
	struct imap_resp *resp;     /* tagged response */
	struct err err;
};

struct imap_conn {
	char *host;
	unsigned port;
	enum imap_tls_mode tls_mode;
	char *ca_file;
	char *pinned;
	unsigned timeout_ms;
	size_t max_command;

	enum imap_conn_state state;
	struct err err;             /* valid in IMAP_CONN_FAILED */
	char *bye_text;
	struct imap_resp *greeting;
	int fd;
	bool local_peer;
	bool assume_remote;

	/* TLS */
	bool tls;
	gnutls_session_t session;
	gnutls_certificate_credentials_t cred;
	size_t tls_wpending;        /* bytes of an interrupted gnutls_record_send */
	char fingerprint[8 + 32 * 3];

	/* deflate */
	bool zactive;
	z_stream zin, zout;

	struct imap_parser *parser;
	struct buf out;             /* bytes for the transport (compressed if zactive) */
	struct buf zstage;          /* plain bytes waiting to be deflated */
	struct buf rin;             /* bytes from the transport (compressed if zactive) */
	struct buf zplain;            /* inflated bytes (zactive only) */
	bool paused;                /* after STARTTLS/COMPRESS OK, until the switch */

	struct imap_cmd *cmds;      /* in flight, oldest first */
	struct imap_cmd *send_cmd;  /* first command not fully sent */
	struct imap_cmd *barrier;   /* a sent exclusive command not yet done */
	size_t npending;
	unsigned next_tag;
	enum imap_literal_mode literal_mode;
	imap_untagged_fn untagged;
	void *untagged_ctx;
	int64_t last_activity;

	/* server-side trace state */
	struct buf trace_line;
	uint64_t trace_skip;
	bool trace_cut;
};

#define CONN_EOF ((ssize_t)-2)

void conn_set_state(struct imap_conn *c, enum imap_conn_state s);
int conn_fail(struct imap_conn *c, const struct err *e);

/* conn_net.c */
/* >0 bytes, 0 would block, CONN_EOF at end of stream, -1 error (e filled). */
ssize_t conn_transport_read(struct imap_conn *c, char *p, size_t n, struct err *e);
/* >0 bytes written, 0 would block, -1 error. */
ssize_t conn_transport_write(struct imap_conn *c, const char *p, size_t n, struct err *e);
bool conn_transport_wants_write(const struct imap_conn *c);
bool conn_transport_has_pending(const struct imap_conn *c);
void conn_transport_close(struct imap_conn *c);
int conn_tls_handshake(struct imap_conn *c, struct err *e);
int conn_zlib_init(struct imap_conn *c, struct err *e);
int conn_deflate(struct imap_conn *c, const char *p, size_t n, struct err *e);
/* Inflate from rin into pin: bytes produced (0: needs more input), -1 error. */
int conn_inflate(struct imap_conn *c, struct err *e);

#endif
