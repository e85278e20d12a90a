/*
 * client.c - the IMAP session: a sequence of commands over one connection.
 * Authentication lives in client_auth.c (client_int.h joins them).
 */
#include "client_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd.h"
#include "log.h"
#include "mutf7.h"
#include "xalloc.h"

#define CMD_TEXT_MAX (1024u * 1024u)

static const char *const client_state_names[] = {
	[IMAP_CLIENT_DISCONNECTED] = "disconnected",
	[IMAP_CLIENT_NOT_AUTHENTICATED] = "not authenticated",
	[IMAP_CLIENT_AUTHENTICATED] = "authenticated",
	[IMAP_CLIENT_SELECTED] = "selected",
	[IMAP_CLIENT_LOGGED_OUT] = "logged out",
};

void client_set_state(struct imap_client *cl, enum imap_client_state s)
{
	if (cl->state == s)
		return;
	log_debug(LOG_CAT_NET, "session with \"%s\": %s -> %s", cl->host,
		  client_state_names[cl->state], client_state_names[s]);
	cl->state = s;
}

struct imap_client *imap_client_new(const struct imap_client_opts *opts)
{
	struct imap_client *cl = xcalloc(1, sizeof(*cl));

	cl->opts = *opts;
	cl->host = xstrdup(opts->conn.host ? opts->conn.host : "");
	cl->opts.conn.host = cl->host;
	cl->user = xstrdup(opts->user ? opts->user : "");
	cl->opts.user = cl->user;
	if (opts->mechs && opts->nmechs) {
		cl->mechs = (enum imap_auth_mech *)xmemdup(opts->mechs, opts->nmechs * sizeof(*opts->mechs));
		cl->opts.mechs = cl->mechs;
	} else {
		cl->opts.mechs = NULL;
		cl->opts.nmechs = 0;
	}
	cl->client_name = xstrdup(opts->client_name ? opts->client_name : "ferry");
	cl->client_version = opts->client_version ? xstrdup(opts->client_version) : NULL;
	cl->ca_file = opts->conn.tls_ca_file ? xstrdup(opts->conn.tls_ca_file) : NULL;
	cl->pin = opts->conn.tls_fingerprint ? xstrdup(opts->conn.tls_fingerprint) : NULL;
	cl->opts.conn.tls_ca_file = cl->ca_file;
	cl->opts.conn.tls_fingerprint = cl->pin;
	if (cl->opts.max_mailboxes == 0)
		cl->opts.max_mailboxes = 100000;
	return cl;
}

void imap_client_free(struct imap_client *cl)
{
	if (cl == NULL)
		return;
	imap_conn_free(cl->conn);
	imap_caps_release(&cl->caps);
	free(cl->host);
	free(cl->user);
	free(cl->mechs);
	free(cl->client_name);
	free(cl->client_version);
	free(cl->ca_file);
	free(cl->pin);
	free(cl->ns_prefix);
	free(cl);
}

/* ---- running commands ---------------------------------------------------- */

int client_run(struct imap_client *cl, const struct imap_cmd_req *req,
	       struct imap_cmd **cmd_out, struct err *e)
{
	struct imap_cmd *cmd;
	int rc;

	if (cl->conn == NULL)
		return err_set(e, ERR_NET, "not connected to \"%s\"", cl->host);
	cmd = imap_conn_submit(cl->conn, req, e);
	if (cmd == NULL)
		return -1;
	rc = imap_conn_wait(cl->conn, cmd, e);
	if (cmd_out)
		*cmd_out = cmd;
	else
		imap_cmd_free(cmd);
	return rc;
}

/* A simple command, no handler: "CAPABILITY", "STARTTLS" ... */
int client_simple(struct imap_client *cl, const char *text, unsigned flags,
		  struct imap_cmd **cmd_out, struct err *e)
{
	struct imap_cmd_req req = { .text = text, .len = strlen(text), .flags = flags };

	return client_run(cl, &req, cmd_out, e);
}

/* Flags for imap_cmd_add_string() on this session. */
unsigned client_str_flags(const struct imap_client *cl)
{
	return imap_client_enabled(cl, IMAP_CAP_UTF8_ACCEPT) ? IMAP_STR_UTF8 : 0u;
}

/* ---- capabilities ---------------------------------------------------------- */

static void set_literal_mode(struct imap_client *cl)
{
	enum imap_literal_mode m = IMAP_LITERAL_SYNC;

	if (imap_caps_has(&cl->caps, IMAP_CAP_LITERAL_PLUS))
		m = IMAP_LITERAL_PLUS;
	else if (imap_caps_has(&cl->caps, IMAP_CAP_LITERAL_MINUS) ||
		 imap_caps_has(&cl->caps, IMAP_CAP_IMAP4REV2))
		m = IMAP_LITERAL_MINUS;
	if (cl->conn)
		imap_conn_set_literal_mode(cl->conn, m);
}

static int caps_from_args(struct imap_client *cl, const struct imap_arg *args, size_t n,
			  struct err *e)
{
	if (imap_caps_parse(&cl->caps, args, n, e) < 0) {
		cl->have_caps = false;
		return -1;
	}
	cl->have_caps = true;
	set_literal_mode(cl);
	return 0;
}

/* A "[CAPABILITY ...]" code in a status response: 1 if there was one. */
int client_caps_from_code(struct imap_client *cl, const struct imap_resp *r, struct err *e)
{
	if (r == NULL || r->code == NULL || strcmp(r->code, "CAPABILITY") != 0)
		return 0;
	if (r->code_args == NULL)
		return err_set(e, ERR_PROTO, "server \"%s\" sent a malformed CAPABILITY code",
			       cl->host);
	return caps_from_args(cl, r->code_args, r->ncode_args, e) < 0 ? -1 : 1;
}

static void note_enabled(struct imap_client *cl, const struct imap_resp *r)
{
	size_t i;

	for (i = 0; i < r->nargs; i++) {
		if (imap_arg_is_atom(&r->args[i], "CONDSTORE"))
			cl->enabled |= (uint64_t)1 << IMAP_CAP_CONDSTORE;
		if (imap_arg_is_atom(&r->args[i], "QRESYNC"))
			cl->enabled |= ((uint64_t)1 << IMAP_CAP_QRESYNC) |
				       ((uint64_t)1 << IMAP_CAP_CONDSTORE);
		if (imap_arg_is_atom(&r->args[i], "UTF8=ACCEPT"))
			cl->enabled |= (uint64_t)1 << IMAP_CAP_UTF8_ACCEPT;
	}
}

/* Untagged responses no command took: capabilities, ENABLED; others are ignored here. */
static int client_untagged(void *ctx, const struct imap_resp *r, struct err *e)
{
	struct imap_client *cl = ctx;

	if (r->name && strcmp(r->name, "CAPABILITY") == 0)
		return caps_from_args(cl, r->args, r->nargs, e) < 0 ? -1 : 1;
	if (r->name && strcmp(r->name, "ENABLED") == 0) {
		note_enabled(cl, r);
		return 1;
	}
	if (r->status == IMAP_STATUS_OK && client_caps_from_code(cl, r, e) < 0)
		return -1;
	return 0;
}

int client_refresh_caps(struct imap_client *cl, struct err *e)
{
	imap_caps_release(&cl->caps);
	cl->have_caps = false;
	if (client_simple(cl, "CAPABILITY", 0, NULL, e) < 0)
		return -1;
	if (!cl->have_caps)
		return err_set(e, ERR_PROTO, "server \"%s\" did not list its capabilities", cl->host);
	return 0;
}

const struct imap_caps *imap_client_caps(const struct imap_client *cl)
{
	return &cl->caps;
}

bool imap_client_enabled(const struct imap_client *cl, enum imap_cap cap)
{
	return (cl->enabled & ((uint64_t)1 << cap)) != 0;
}

enum imap_client_state imap_client_state(const struct imap_client *cl)
{
	return cl->state;
}

enum imap_auth_mech imap_client_mech(const struct imap_client *cl)
{
	return cl->mech;
}

struct imap_conn *imap_client_conn(struct imap_client *cl)
{
	return cl->conn;
}

/* ---- connect ------------------------------------------------------------------ */

static int starttls(struct imap_client *cl, struct err *e)
{
	if (cl->state == IMAP_CLIENT_AUTHENTICATED)
		return err_set(e, ERR_TLS, "server \"%s\" pre-authenticated the plain-text "
			       "connection, so STARTTLS is impossible; refusing to go on without TLS",
			       cl->host);
	if (!cl->have_caps && client_refresh_caps(cl, e) < 0)
		return -1;
	if (!imap_caps_has(&cl->caps, IMAP_CAP_STARTTLS))
		return err_set(e, ERR_TLS, "server \"%s\" does not offer STARTTLS; refusing to "
			       "go on without TLS (tls: starttls)", cl->host);
	if (client_simple(cl, "STARTTLS", IMAP_CMD_SWITCH, NULL, e) < 0) {
		if (e->code == ERR_SERVER)
			e->code = ERR_TLS;
		return -1;
	}
	if (imap_conn_start_tls(cl->conn, e) < 0)
		return -1;
	/* RFC 3501 6.2.1: forget what was said before TLS. */
	return client_refresh_caps(cl, e);
}

static int read_greeting(struct imap_client *cl, struct err *e)
{
	const struct imap_resp *g;

	if (imap_conn_greeting(cl->conn, &g, e) < 0)
		return -1;
	if (g->status == IMAP_STATUS_BYE)
		return err_set(e, ERR_NET, "server \"%s\" refused the connection: %s", cl->host,
			       g->text ? g->text : "");
	if (g->status != IMAP_STATUS_OK && g->status != IMAP_STATUS_PREAUTH)
		return err_set(e, ERR_PROTO, "server \"%s\" sent a bad greeting", cl->host);
	client_set_state(cl, g->status == IMAP_STATUS_PREAUTH ? IMAP_CLIENT_AUTHENTICATED
							       : IMAP_CLIENT_NOT_AUTHENTICATED);
	return client_caps_from_code(cl, g, e) < 0 ? -1 : 0;
}

int imap_client_connect(struct imap_client *cl, struct err *e)
{
	if (cl->conn)
		return err_set(e, ERR_INTERNAL, "already connected");
	cl->conn = imap_conn_new(&cl->opts.conn);
	imap_conn_set_untagged(cl->conn, client_untagged, cl);
	if (imap_conn_connect(cl->conn, e) < 0)
		return -1;
	if (cl->opts.secret_early)
		cl->opts.secret_early(cl->opts.secret_ctx);
	if (read_greeting(cl, e) < 0)
		return -1;
	if (cl->opts.conn.tls == IMAP_TLS_STARTTLS && starttls(cl, e) < 0)
		return -1;
	if (!cl->have_caps && client_refresh_caps(cl, e) < 0)
		return -1;
	return 0;
}

int imap_client_attach_fd(struct imap_client *cl, int fd, struct err *e)
{
	if (cl->conn)
		return err_set(e, ERR_INTERNAL, "already connected");
	cl->conn = imap_conn_new(&cl->opts.conn);
	imap_conn_set_untagged(cl->conn, client_untagged, cl);
	if (imap_conn_attach_fd(cl->conn, fd, e) < 0)
		return -1;
	if (cl->opts.secret_early)
		cl->opts.secret_early(cl->opts.secret_ctx);
	if (read_greeting(cl, e) < 0)
		return -1;
	if (cl->opts.conn.tls == IMAP_TLS_STARTTLS && starttls(cl, e) < 0)
		return -1;
	if (!cl->have_caps && client_refresh_caps(cl, e) < 0)
		return -1;
	return 0;
}

/* ---- after login: COMPRESS, ID, ENABLE --------------------------------- */

static int compress(struct imap_client *cl, struct err *e)
{
	struct imap_cmd *cmd = NULL;
	int rc;

	if (cl->opts.no_compress || imap_conn_is_compressed(cl->conn) ||
	    !imap_caps_has(&cl->caps, IMAP_CAP_COMPRESS_DEFLATE))
		return 0;
	/* GnuTLS 3.7 never compresses TLS records, so deflate is never doubled. */
	rc = client_simple(cl, "COMPRESS DEFLATE", IMAP_CMD_SWITCH, &cmd, e);
	if (rc < 0 && e->code == ERR_SERVER) {
		log_info("server \"%s\" refused COMPRESS: %s", cl->host, e->msg);
		imap_cmd_free(cmd);
		return 0;
	}
	imap_cmd_free(cmd);
	if (rc < 0)
		return -1;
	return imap_conn_start_compress(cl->conn, e);
}

static int build_id(struct imap_client *cl, struct buf *b, struct err *e)
{
	unsigned f = IMAP_STR_NO_ATOM | client_str_flags(cl);

	if (buf_adds(b, "ID (\"name\" ", e) < 0 ||
	    imap_cmd_add_string(b, cl->client_name, strlen(cl->client_name), f, NULL, e) < 0)
		return -1;
	if (cl->client_version &&
	    (buf_adds(b, " \"version\" ", e) < 0 ||
	     imap_cmd_add_string(b, cl->client_version, strlen(cl->client_version), f, NULL,
				 e) < 0))
		return -1;
	return buf_addc(b, ')', e);
}

static int build_enable(struct imap_client *cl, struct buf *b, struct err *e)
{
	static const enum imap_cap wanted[] = { IMAP_CAP_CONDSTORE, IMAP_CAP_QRESYNC,
						IMAP_CAP_UTF8_ACCEPT };
	size_t i;

	buf_reset(b);
	for (i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
		if (imap_caps_has(&cl->caps, wanted[i]) &&
		    buf_addf(b, e, "%s %s", b->len ? "" : "ENABLE", imap_cap_name(wanted[i])) < 0)
			return -1;
	return 0;
}

/* Submit a command whose NO/BAD we tolerate; NULL if it could not be queued. */
static struct imap_cmd *submit_text(struct imap_client *cl, const struct buf *b, struct err *e)
{
	struct imap_cmd_req req = { .text = buf_cstr(b), .len = b->len };

	return imap_conn_submit(cl->conn, &req, e);
}

/* Wait for an optional command: only connection failures are errors. */
static int wait_optional(struct imap_client *cl, struct imap_cmd *cmd, struct err *e)
{
	int rc;

	if (cmd == NULL)
		return 0;
	rc = imap_conn_wait(cl->conn, cmd, e);
	imap_cmd_free(cmd);
	if (rc < 0 && e->code == ERR_SERVER) {
		log_info("%s", e->msg);
		return 0;
	}
	return rc;
}

/* ID and ENABLE, pipelined. */
static int id_and_enable(struct imap_client *cl, struct err *e)
{
	struct buf b = BUF_INIT(CMD_TEXT_MAX);
	struct imap_cmd *id = NULL, *en = NULL;
	struct err e2;
	int rc = -1;

	if (imap_caps_has(&cl->caps, IMAP_CAP_ID)) {
		if (build_id(cl, &b, e) < 0 || (id = submit_text(cl, &b, e)) == NULL)
			goto out;
	}
	if (!cl->opts.no_enable && imap_caps_has(&cl->caps, IMAP_CAP_ENABLE)) {
		if (build_enable(cl, &b, e) < 0)
			goto out;
		if (b.len > 0 && (en = submit_text(cl, &b, e)) == NULL)
			goto out;
	}
	rc = wait_optional(cl, id, e);
	id = NULL;
	if (wait_optional(cl, en, &e2) < 0 && rc == 0) {
		*e = e2;
		rc = -1;
	}
	en = NULL;
out:
	imap_cmd_free(id);
	imap_cmd_free(en);
	buf_release(&b);
	return rc;
}

int imap_client_login(struct imap_client *cl, struct err *e)
{
	if (cl->conn == NULL)
		return err_set(e, ERR_INTERNAL, "login before connect");
	if (cl->state == IMAP_CLIENT_NOT_AUTHENTICATED) {
		if (client_authenticate(cl, e) < 0)
			return -1;
		client_set_state(cl, IMAP_CLIENT_AUTHENTICATED);
	}
	if (compress(cl, e) < 0 || id_and_enable(cl, e) < 0)
		return -1;
	return 0;
}

int imap_client_open(struct imap_client *cl, struct err *e)
{
	if (imap_client_connect(cl, e) < 0 || imap_client_login(cl, e) < 0)
		return -1;
	return 0;
}

struct list_ctx {
	struct imap_client *cl;
	struct imap_mailbox_list *out;
	bool utf8;
};

static int list_untagged(void *ctx, const struct imap_resp *r, struct err *e);

/* ---- NAMESPACE ---------------------------------------------------------------- */

struct ns_ctx {
	struct imap_client *cl;
	bool utf8;
};

static int ns_untagged(void *ctx, const struct imap_resp *r, struct err *e)
{
	struct ns_ctx *nc = ctx;
	const struct imap_arg *personal, *first;
	const char *prefix, *d;
	size_t plen, dlen;
	struct buf b = BUF_INIT(4096);

	if (r->name == NULL || strcmp(r->name, "NAMESPACE") != 0)
		return 0;
	if (r->nargs < 1)
		return err_set(e, ERR_PROTO, "server sent a malformed NAMESPACE response");
	personal = &r->args[0];
	if (personal->type == IMAP_ARG_NIL)
		return 1;
	if (personal->type != IMAP_ARG_LIST)
		return err_set(e, ERR_PROTO, "server sent a malformed NAMESPACE response");
	if (personal->len == 0)
		return 1;
	first = &personal->list[0];
	if (first->type != IMAP_ARG_LIST || first->len < 2 ||
	    (prefix = imap_arg_str(&first->list[0], &plen)) == NULL)
		return err_set(e, ERR_PROTO, "server sent a malformed NAMESPACE response");
	d = imap_arg_str(&first->list[1], &dlen);
	if (nc->utf8 ? buf_add(&b, prefix, plen, e) < 0 : mutf7_decode(prefix, plen, &b, e) < 0) {
		buf_release(&b);
		return -1;
	}
	free(nc->cl->ns_prefix);
	nc->cl->ns_prefix = buf_detach(&b, NULL);
	nc->cl->ns_delim = d && dlen == 1 ? d[0] : '\0';
	return 1;
}

int imap_client_namespace(struct imap_client *cl, const char **prefix_out, char *delim_out,
			  struct err *e)
{
	struct ns_ctx nc = { cl, imap_client_enabled(cl, IMAP_CAP_UTF8_ACCEPT) };
	struct imap_cmd_req req = { .text = "NAMESPACE", .len = 9, .untagged = ns_untagged,
				    .ctx = &nc };

	if (!cl->have_ns && imap_caps_has(&cl->caps, IMAP_CAP_NAMESPACE)) {
		if (client_run(cl, &req, NULL, e) < 0)
			return -1;
		cl->have_ns = true;
	}
	if (!cl->have_ns) {
		/* No NAMESPACE: LIST "" "" names just the hierarchy delimiter. */
		struct imap_mailbox_list l;
		struct list_ctx lc = { cl, &l, nc.utf8 };
		struct imap_cmd_req lreq = { .text = "LIST \"\" \"\"", .len = 10,
					     .untagged = list_untagged, .ctx = &lc };
		int rc;

		imap_mailbox_list_init(&l);
		rc = client_run(cl, &lreq, NULL, e);
		imap_mailbox_list_release(&l);
		if (rc < 0)
			return -1;
		cl->ns_delim = cl->list_delim;
		cl->have_ns = true;
	}
	*prefix_out = cl->ns_prefix ? cl->ns_prefix : "";
	*delim_out = cl->ns_delim;
	return 0;
}

/* ---- LIST -------------------------------------------------------------------- */

static int list_untagged(void *ctx, const struct imap_resp *r, struct err *e)
{
	struct list_ctx *lc = ctx;
	struct imap_status_data st;
	struct imap_mailbox *m;
	const char *wire;

	if (r->name == NULL || r->kind != IMAP_RESP_UNTAGGED)
		return 0;
	if (strcmp(r->name, "LIST") == 0) {
		int rc = imap_resp_list_add(r, lc->utf8, lc->cl->opts.max_mailboxes, lc->out, e);

		if (rc < 0)
			return -1;
		if (rc > 0) {
			/* One odd mailbox is no reason to sync none. */
			log_warn("server mailbox left out: %s", e->msg);
			err_clear(e);
			return 1;
		}
		if (lc->out->items[lc->out->n - 1].delim)
			lc->cl->list_delim = lc->out->items[lc->out->n - 1].delim;
		return 1;
	}
	if (strcmp(r->name, "STATUS") == 0) {
		if (imap_resp_status(r, &wire, &st, e) < 0)
			return -1;
		m = imap_mailbox_list_find(lc->out, wire);
		if (m)
			m->status = st;
		return 1;
	}
	return 0;
}

static int build_list(const struct imap_client *cl, bool want_status, struct buf *b,
		      struct err *e)
{
	const struct imap_caps *c = &cl->caps;
	bool special = imap_caps_has(c, IMAP_CAP_SPECIAL_USE) &&
		       imap_caps_has(c, IMAP_CAP_LIST_EXTENDED);
	bool status = want_status && imap_caps_has(c, IMAP_CAP_LIST_STATUS);

	if (buf_adds(b, "LIST \"\" \"*\"", e) < 0)
		return -1;
	if (!special && !status)
		return 0;
	if (buf_addf(b, e, " RETURN (%s%s", special ? "SPECIAL-USE" : "",
		     special && status ? " " : "") < 0)
		return -1;
	if (status && buf_addf(b, e, "STATUS (MESSAGES UIDNEXT UIDVALIDITY%s)",
			       imap_caps_has(c, IMAP_CAP_CONDSTORE) ? " HIGHESTMODSEQ" : "") < 0)
		return -1;
	return buf_addc(b, ')', e);
}

static int client_list(struct imap_client *cl, bool want_status, struct imap_mailbox_list *out,
		       struct err *e)
{
	struct list_ctx lc = { cl, out, imap_client_enabled(cl, IMAP_CAP_UTF8_ACCEPT) };
	struct buf b = BUF_INIT(256);
	struct imap_cmd_req req = { .untagged = list_untagged, .ctx = &lc };
	int rc;

	if (build_list(cl, want_status, &b, e) < 0) {
		buf_release(&b);
		return -1;
	}
	req.text = buf_cstr(&b);
	req.len = b.len;
	rc = client_run(cl, &req, NULL, e);
	buf_release(&b);
	if (rc == 0)
		imap_mailbox_list_dedupe(out);
	return rc;
}

struct imap_list_op {
	struct list_ctx lc;
	struct imap_cmd *cmd;
};

struct imap_list_op *imap_client_list_names_submit(struct imap_client *cl,
						   struct imap_mailbox_list *out, struct err *e)
{
	struct imap_list_op *op;
	struct buf b = BUF_INIT(256);
	struct imap_cmd_req req = { .untagged = list_untagged };

	if (cl->conn == NULL) {
		err_set(e, ERR_NET, "not connected to \"%s\"", cl->host);
		return NULL;
	}
	if (build_list(cl, false, &b, e) < 0) {
		buf_release(&b);
		return NULL;
	}
	op = xcalloc(1, sizeof(*op));
	op->lc = (struct list_ctx){ cl, out, imap_client_enabled(cl, IMAP_CAP_UTF8_ACCEPT) };
	req.ctx = &op->lc;
	req.text = buf_cstr(&b);
	req.len = b.len;
	op->cmd = imap_conn_submit(cl->conn, &req, e);
	buf_release(&b);
	if (op->cmd == NULL) {
		free(op);
		return NULL;
	}
	return op;
}

int imap_client_list_finish(struct imap_client *cl, struct imap_list_op *op, struct err *e)
{
	int rc = imap_conn_wait(cl->conn, op->cmd, e);

	if (rc == 0)
		imap_mailbox_list_dedupe(op->lc.out);
	imap_cmd_free(op->cmd);
	free(op);
	return rc;
}

int imap_client_list(struct imap_client *cl, struct imap_mailbox_list *out, struct err *e)
{
	return client_list(cl, true, out, e);
}

int imap_client_list_names(struct imap_client *cl, struct imap_mailbox_list *out, struct err *e)
{
	return client_list(cl, false, out, e);
}

/* ---- SELECT ------------------------------------------------------------------ */

struct select_ctx {
	struct imap_select_info *info;
};

static int select_untagged(void *ctx, const struct imap_resp *r, struct err *e)
{
	struct select_ctx *sc = ctx;

	return imap_resp_select_item(r, sc->info, e);
}

static int build_select(struct imap_client *cl, const char *name, bool read_only,
			struct buf *b, struct err *e)
{
	struct buf wire = BUF_INIT(4096);
	bool utf8 = imap_client_enabled(cl, IMAP_CAP_UTF8_ACCEPT);
	int rc;

	if (utf8 ? buf_adds(&wire, name, e) : mutf7_encode(name, strlen(name), &wire, e)) {
		buf_release(&wire);
		return err_prefix(e, "mailbox \"%s\"", name);
	}
	rc = buf_adds(b, read_only ? "EXAMINE " : "SELECT ", e) < 0 ||
	     imap_cmd_add_string(b, buf_cstr(&wire), wire.len, client_str_flags(cl), NULL, e) < 0
		     ? -1 : 0;
	buf_release(&wire);
	return rc;
}

int imap_client_select(struct imap_client *cl, const char *name, bool read_only,
		       struct imap_select_info *out, struct err *e)
{
	struct select_ctx sc = { out };
	struct buf b = BUF_INIT(CMD_TEXT_MAX);
	struct imap_cmd_req req = { .untagged = select_untagged, .ctx = &sc };
	struct imap_cmd *cmd = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (build_select(cl, name, read_only, &b, e) < 0) {
		buf_release(&b);
		return -1;
	}
	req.text = buf_cstr(&b);
	req.len = b.len;
	rc = client_run(cl, &req, &cmd, e);
	buf_release(&b);
	if (rc == 0 && imap_resp_select_item(imap_cmd_response(cmd), out, e) < 0)
		rc = -1;
	if (rc == 0 && read_only)
		out->read_only = true;
	imap_cmd_free(cmd);
	client_set_state(cl, rc == 0 ? IMAP_CLIENT_SELECTED : IMAP_CLIENT_AUTHENTICATED);
	if (rc < 0)
		err_prefix(e, "mailbox \"%s\"", name);
	return rc;
}

/* ---- LOGOUT ------------------------------------------------------------------ */

int imap_client_logout(struct imap_client *cl, struct err *e)
{
	int rc = 0;

	if (cl->conn == NULL)
		return 0;
	if (imap_conn_state(cl->conn) == IMAP_CONN_OPEN)
		rc = client_simple(cl, "LOGOUT", 0, NULL, e);
	if (rc < 0 && imap_conn_bye_text(cl->conn) != NULL && e->code == ERR_NET)
		rc = 0;     /* closed after BYE without the tagged OK: fine */
	imap_conn_free(cl->conn);
	cl->conn = NULL;
	client_set_state(cl, IMAP_CLIENT_LOGGED_OUT);
	return rc;
}
