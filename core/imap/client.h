/*
 * client.h - an IMAP session on one connection: greeting, STARTTLS,
 * capabilities, authentication, ID, ENABLE, COMPRESS, NAMESPACE, LIST,
 * SELECT, LOGOUT.  A sequence of commands over conn.h; blocking (each call
 * waits, bounded by the connection's timeout).
 *
 * Typical use (what `ferry check` does):
 *
 *     struct imap_client *cl = imap_client_new(&opts);
 *     struct imap_mailbox_list boxes;
 *     if (imap_client_open(cl, &e) < 0)          // connect + TLS + login
 *             ... e.code is ERR_NET / ERR_TLS / ERR_TIMEOUT / ERR_AUTH ...
 *     caps = imap_client_caps(cl);                // after login
 *     imap_mailbox_list_init(&boxes);
 *     imap_client_list(cl, &boxes, &e);           // names in UTF-8, roles
 *     imap_client_logout(cl, &e);
 *     imap_mailbox_list_release(&boxes);
 *     imap_client_free(cl);
 *
 * Authentication: the mechanism is the first of the allowed list (opts.mechs,
 * or the default order SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN, with
 * OAUTHBEARER, XOAUTH2 first when a token source is configured) that the
 * server offers.  Plain-text credentials (LOGIN, PLAIN, and the bearer
 * tokens of XOAUTH2 / OAUTHBEARER) are never sent over an unencrypted
 * connection unless the peer is on this machine.  The secret is asked for
 * through opts.get_secret only once the mechanism is chosen, and is wiped
 * after use.  opts.secret_early (optional) is called once the connection
 * is made (TCP, and TLS when implicit), before the greeting is read, so
 * that a caller can start obtaining the secret (run a helper) while the
 * server gets ready; get_secret is called later as usual, or not at all.  One attempt only: a NO is ERR_AUTH with the server's text.
 *
 * Errors: ERR_NET, ERR_TIMEOUT, ERR_TLS (certificates, STARTTLS missing),
 * ERR_AUTH, ERR_PROTO, ERR_SERVER (NO/BAD to other commands; text kept),
 * ERR_LIMIT.  Secrets never appear in errors or the trace.
 *
 * Ownership: the client owns its connection; strings in opts are copied.
 * Pointers returned by accessors stay valid until the next call that
 * changes them (caps: until the next login/STARTTLS/capability refresh) or
 * imap_client_free().
 */
#ifndef FERRY_IMAP_CLIENT_H
#define FERRY_IMAP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "conn.h"
#include "err.h"
#include "resp.h"

enum imap_auth_mech {
	IMAP_AUTH_LOGIN = 0,
	IMAP_AUTH_PLAIN,
	IMAP_AUTH_SCRAM_SHA_1,
	IMAP_AUTH_SCRAM_SHA_256,
	IMAP_AUTH_XOAUTH2,
	IMAP_AUTH_OAUTHBEARER,
};

/* "login", "plain", "scram-sha-1", ... (the config spelling). */
const char *imap_auth_mech_name(enum imap_auth_mech mech);
bool imap_auth_mech_is_oauth(enum imap_auth_mech mech);

enum imap_secret_kind {
	IMAP_SECRET_PASSWORD = 0,
	IMAP_SECRET_TOKEN,          /* OAuth2 bearer token */
};

/*
 * Append the secret to out (a buffer the client wipes afterwards).  Called
 * at most once per login, only when the chosen mechanism needs it.
 */
typedef int (*imap_secret_fn)(void *ctx, enum imap_secret_kind kind, struct buf *out,
			      struct err *e);

enum imap_client_state {
	IMAP_CLIENT_DISCONNECTED = 0,
	IMAP_CLIENT_NOT_AUTHENTICATED,
	IMAP_CLIENT_AUTHENTICATED,
	IMAP_CLIENT_SELECTED,
	IMAP_CLIENT_LOGGED_OUT,
};

struct imap_client_opts {
	struct imap_conn_opts conn;         /* host, port, TLS, timeout, limits */
	const char *user;
	const enum imap_auth_mech *mechs;   /* allowed, in order; NULL: default order */
	size_t nmechs;
	bool have_password;                 /* a password source is configured */
	bool have_token;                    /* an OAuth token source is configured */
	imap_secret_fn get_secret;
	void (*secret_early)(void *secret_ctx);     /* optional: see above */
	void *secret_ctx;
	bool no_compress;                   /* never COMPRESS=DEFLATE */
	bool no_enable;                     /* never ENABLE (tests, broken servers) */
	const char *client_name;            /* for ID; NULL: "ferry" */
	const char *client_version;         /* for ID; NULL: not sent */
	size_t max_mailboxes;               /* LIST bound; 0: 100,000 */
};

struct imap_client;

struct imap_client *imap_client_new(const struct imap_client_opts *opts);
/* Closes without LOGOUT if still connected. */
void imap_client_free(struct imap_client *cl);

/*
 * Connect, TLS (implicit, or STARTTLS when configured: a server that does
 * not offer it is ERR_TLS), read the greeting (BYE: ERR_NET; PREAUTH: the
 * session is authenticated, which with STARTTLS is refused as ERR_TLS),
 * learn the capabilities.
 */
int imap_client_connect(struct imap_client *cl, struct err *e);
/*
 * Authenticate (unless PREAUTH), refresh capabilities, then when offered:
 * COMPRESS=DEFLATE, ID, ENABLE CONDSTORE QRESYNC UTF8=ACCEPT.
 */
int imap_client_login(struct imap_client *cl, struct err *e);
/* imap_client_connect() then imap_client_login(). */
int imap_client_open(struct imap_client *cl, struct err *e);

const struct imap_caps *imap_client_caps(const struct imap_client *cl);
enum imap_client_state imap_client_state(const struct imap_client *cl);
/* The mechanism used to log in (meaningless after PREAUTH). */
enum imap_auth_mech imap_client_mech(const struct imap_client *cl);
/* After ENABLE: which of CONDSTORE, QRESYNC, UTF8=ACCEPT the server enabled. */
bool imap_client_enabled(const struct imap_client *cl, enum imap_cap cap);
/* The connection, for commands this layer does not wrap yet. */
struct imap_conn *imap_client_conn(struct imap_client *cl);

/*
 * The personal namespace (NAMESPACE when offered, else "" and the LIST
 * delimiter).  *prefix_out lives until imap_client_free().
 */
int imap_client_namespace(struct imap_client *cl, const char **prefix_out, char *delim_out,
			  struct err *e);

/*
 * Every mailbox (LIST "" "*"), with special-use roles (RETURN (SPECIAL-USE)
 * with LIST-EXTENDED and SPECIAL-USE; roles from plain LIST attributes
 * otherwise) and, with LIST-STATUS, STATUS data (MESSAGES UIDNEXT
 * UIDVALIDITY, and HIGHESTMODSEQ with CONDSTORE).  Names are decoded to
 * UTF-8.  `out` must be initialised (imap_mailbox_list_init); entries are
 * appended.
 */
int imap_client_list(struct imap_client *cl, struct imap_mailbox_list *out, struct err *e);
/*
 * The same LIST without RETURN (STATUS ...) (items' status left empty).
 * For a caller that asked STATUS first: on Dovecot, a LIST before a
 * mailbox's first STATUS in the session makes that STATUS resync the
 * folder (about 100 ms on 50,000 messages; bench/README.md).
 */
int imap_client_list_names(struct imap_client *cl, struct imap_mailbox_list *out, struct err *e);

/*
 * imap_client_list_names() in two halves, so that the LIST can go out
 * behind commands already in flight and share their round trip: _submit
 * sends it (NULL on error, e filled), _finish waits for its end and frees
 * `op` (also on error).  `out` must not be touched in between.  Untagged
 * data goes to the oldest command in flight that takes it, so commands
 * submitted before the LIST keep their own responses.
 */
struct imap_list_op;
struct imap_list_op *imap_client_list_names_submit(struct imap_client *cl,
						   struct imap_mailbox_list *out, struct err *e);
int imap_client_list_finish(struct imap_client *cl, struct imap_list_op *op, struct err *e);

/* SELECT (or EXAMINE when read_only) the mailbox named in UTF-8. */
int imap_client_select(struct imap_client *cl, const char *name, bool read_only,
		       struct imap_select_info *out, struct err *e);

/* LOGOUT and close.  A server that closes instead of answering is fine. */
int imap_client_logout(struct imap_client *cl, struct err *e);

#endif
