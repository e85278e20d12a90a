/*
 * remote.c - the remote adapter's session: lifecycle, capabilities, the
 * literal sink router, mailbox names, selection, running commands, flags.
 * (STATUS pre-check and folders: remote_mbox.c.)
 */
#include "remote_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/cmd.h"
#include "fp.h"
#include "imap/mutf7.h"
#include "xalloc.h"

/* ---- the literal sink router ------------------------------------------------ */

static void lit_link(struct sync_remote *r, struct remote_lit *l)
{
	l->prev = NULL;
	l->next = r->lits;
	if (r->lits)
		r->lits->prev = l;
	r->lits = l;
}

static void lit_unlink(struct sync_remote *r, struct remote_lit *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		r->lits = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->next = l->prev = NULL;
}

static int sink_begin(void *ctx, const struct imap_literal_info *info,
		      enum imap_sink_choice *choice_out, void **handle_out, struct err *e)
{
	struct sync_remote *r = ctx;
	struct remote_lit *l;

	*choice_out = IMAP_SINK_MEMORY;
	if (r->sink_mode == REMOTE_SINK_OFF || info->resp_name == NULL ||
	    strcmp(info->resp_name, "FETCH") != 0 || info->prev_atom == NULL || info->depth != 1)
		return 0;
	if (r->sink_mode == REMOTE_SINK_BODY && strcmp(info->prev_atom, r->body_item) == 0) {
		l = xcalloc(1, sizeof(*l));
		l->mode = REMOTE_SINK_BODY;
		if (r->user_sink->begin(r->user_sink->ctx, info->size, &l->user, e) < 0) {
			free(l);
			return -1;
		}
	} else if (r->sink_mode == REMOTE_SINK_HEADER && strcmp(info->prev_atom, "BODY[HEADER]") == 0) {
		l = xcalloc(1, sizeof(*l));
		l->mode = REMOTE_SINK_HEADER;
		l->fp = xcalloc(1, sizeof(struct sync_fp_ctx));
		if (sync_fp_init(l->fp, e) < 0) {
			free(l->fp);
			free(l);
			return -1;
		}
	} else {
		return 0;
	}
	lit_link(r, l);
	*choice_out = IMAP_SINK_STREAM;
	*handle_out = l;
	return 0;
}

static int sink_data(void *ctx, void *handle, const char *bytes, size_t len, struct err *e)
{
	struct sync_remote *r = ctx;
	struct remote_lit *l = handle;

	if (l->mode == REMOTE_SINK_BODY)
		return r->user_sink->data(r->user_sink->ctx, l->user, bytes, len, e);
	if (l->mode == REMOTE_SINK_HEADER)
		sync_fp_update(l->fp, bytes, len);
	return 0;           /* detached: the bytes have nowhere to go */
}

static int sink_end(void *ctx, void *handle, struct err *e)
{
	struct remote_lit *l = handle;

	(void)ctx;
	(void)e;
	l->ended = true;
	return 0;
}

void remote_lit_claim(struct sync_remote *r, struct remote_lit *l)
{
	lit_unlink(r, l);
}

/* Give up what the literal holds (the caller's handle is aborted); it stays allocated. */
static void lit_detach(struct sync_remote *r, struct remote_lit *l)
{
	if (l->mode == REMOTE_SINK_BODY) {
		if (l->user && r->user_sink && r->user_sink->abort)
			r->user_sink->abort(r->user_sink->ctx, l->user);
		l->user = NULL;
	} else if (l->fp) {
		sync_fp_abort(l->fp);
		free(l->fp);
		l->fp = NULL;
	}
	l->mode = REMOTE_SINK_OFF;
}

void remote_lit_release(struct sync_remote *r, struct remote_lit *l)
{
	lit_detach(r, l);
	free(l);
}

/* The parser dropped the response of this literal. */
static void sink_abort(void *ctx, void *handle)
{
	struct sync_remote *r = ctx;
	struct remote_lit *l = handle;

	lit_unlink(r, l);
	remote_lit_release(r, l);
}

/*
 * At the end of an operation: literals nobody claimed.  Their caller's
 * handles are aborted now (the caller's sink may not outlive the call), but
 * the records stay listed: one whose response is still being parsed (the
 * connection failed mid-response) belongs to the parser, which aborts it
 * later; the rest are freed by sync_remote_free().
 */
void remote_lits_abort_all(struct sync_remote *r)
{
	struct remote_lit *l;

	for (l = r->lits; l; l = l->next)
		lit_detach(r, l);
}

/* ---- lifecycle ------------------------------------------------------------------ */

struct sync_remote *sync_remote_new(const struct imap_client_opts *opts)
{
	struct sync_remote *r = xcalloc(1, sizeof(*r));
	struct imap_client_opts o = *opts;

	r->sink.ctx = r;
	r->sink.begin = sink_begin;
	r->sink.data = sink_data;
	r->sink.end = sink_end;
	r->sink.abort = sink_abort;
	o.conn.sink = &r->sink;
	r->cl = imap_client_new(&o);
	return r;
}

void sync_remote_free(struct sync_remote *r)
{
	if (r == NULL)
		return;
	/* The connection's parser aborts (and so frees) its open literals when freed. */
	imap_client_free(r->cl);
	while (r->lits) {
		struct remote_lit *l = r->lits;

		lit_unlink(r, l);
		remote_lit_release(r, l);
	}
	free(r->selected);
	for (size_t i = 0; i < r->nuvs; i++)
		free(r->uvs[i].name);
	free(r->uvs);
	free(r);
}

static void learn_caps(struct sync_remote *r)
{
	const struct imap_caps *c = imap_client_caps(r->cl);
	struct sync_remote_caps *k = &r->caps;
	size_t i;

	memset(k, 0, sizeof(*k));
	k->qresync = imap_client_enabled(r->cl, IMAP_CAP_QRESYNC);
	k->condstore = imap_caps_has(c, IMAP_CAP_CONDSTORE) || imap_caps_has(c, IMAP_CAP_QRESYNC);
	k->uidplus = imap_caps_has(c, IMAP_CAP_UIDPLUS);
	k->move = imap_caps_has(c, IMAP_CAP_MOVE);
	k->literal_plus = imap_caps_has(c, IMAP_CAP_LITERAL_PLUS);
	k->list_status = imap_caps_has(c, IMAP_CAP_LIST_STATUS);
	k->esearch = imap_caps_has(c, IMAP_CAP_ESEARCH);
	k->utf8 = imap_client_enabled(r->cl, IMAP_CAP_UTF8_ACCEPT);
	k->unselect = imap_caps_has(c, IMAP_CAP_UNSELECT);
	for (i = 0; i < c->n; i++)
		if (strcasecmp(c->names[i], "MULTIAPPEND") == 0)
			k->multiappend = true;
}

int sync_remote_open(struct sync_remote *r, struct err *e)
{
	if (imap_client_open(r->cl, e) < 0)
		return -1;
	learn_caps(r);
	return 0;
}

int sync_remote_logout(struct sync_remote *r, struct err *e)
{
	remote_unselected(r);
	return imap_client_logout(r->cl, e);
}

struct imap_client *sync_remote_client(struct sync_remote *r)
{
	return r->cl;
}

const struct sync_remote_caps *sync_remote_caps(const struct sync_remote *r)
{
	return &r->caps;
}

void sync_remote_disable(struct sync_remote *r, const struct sync_remote_caps *off)
{
	struct sync_remote_caps *k = &r->caps;

	k->qresync &= !off->qresync;
	k->condstore &= !off->condstore;
	k->uidplus &= !off->uidplus;
	k->move &= !off->move;
	k->multiappend &= !off->multiappend;
	k->list_status &= !off->list_status;
	k->esearch &= !off->esearch;
	k->unselect &= !off->unselect;
}

unsigned long sync_remote_selects(const struct sync_remote *r)
{
	return r->selects;
}

/* ---- commands -------------------------------------------------------------------- */

int remote_conn(struct sync_remote *r, struct imap_conn **c_out, struct err *e)
{
	if (!sync_remote_connected(r))
		return err_set(e, ERR_NET, "not connected to the server");
	*c_out = imap_client_conn(r->cl);
	return 0;
}

unsigned remote_str_flags(const struct sync_remote *r)
{
	return r->caps.utf8 ? IMAP_STR_UTF8 : 0u;
}

int remote_add_mailbox(struct sync_remote *r, struct buf *b, const char *name, struct err *e)
{
	struct buf wire = BUF_INIT(REMOTE_NAME_MAX);
	size_t len = strlen(name);
	int rc;

	if (strcasecmp(name, "INBOX") == 0)
		rc = buf_adds(&wire, "INBOX", e);
	else if (r->caps.utf8)
		rc = utf8_valid(name, len) ? buf_add(&wire, name, len, e)
			: err_set(e, ERR_CONFIG, "mailbox name \"%s\" is not valid UTF-8", name);
	else
		rc = mutf7_encode(name, len, &wire, e);
	if (rc == 0)
		rc = imap_cmd_add_string(b, buf_cstr(&wire), wire.len, remote_str_flags(r), NULL, e) < 0
			? -1 : 0;
	buf_release(&wire);
	return rc;
}

struct imap_cmd *remote_submit(struct sync_remote *r, const struct buf *b, imap_untagged_fn fn,
			       void *ctx, struct err *e)
{
	struct imap_cmd_req req = { .text = buf_cstr(b), .len = b->len, .untagged = fn, .ctx = ctx };
	struct imap_conn *c;

	if (remote_conn(r, &c, e) < 0)
		return NULL;
	return imap_conn_submit(c, &req, e);
}

int remote_run(struct sync_remote *r, const struct buf *b, imap_untagged_fn fn, void *ctx,
	       struct imap_cmd **cmd_out, struct err *e)
{
	struct imap_cmd *cmd = remote_submit(r, b, fn, ctx, e);
	struct imap_conn *c;
	int rc;

	if (cmd_out)
		*cmd_out = NULL;
	if (cmd == NULL)
		return -1;
	c = imap_client_conn(r->cl);
	rc = imap_conn_wait(c, cmd, e);
	if (cmd_out)
		*cmd_out = cmd;
	else
		imap_cmd_free(cmd);
	return rc;
}

int remote_check_uids(const uint32_t *uids, size_t n, struct err *e)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (uids[i] == 0 || (i > 0 && uids[i] <= uids[i - 1]))
			return err_set(e, ERR_INTERNAL, "UID list is not ascending");
	return 0;
}

int remote_run_uid_sets(struct sync_remote *r, const char *prefix, const char *suffix,
			const uint32_t *uids, size_t n, size_t max_uids, imap_untagged_fn fn,
			void *ctx, struct err *e)
{
	return remote_run_uid_sets_ex(r, prefix, suffix, uids, n, max_uids, fn, NULL, ctx, e);
}

int remote_submit_uid_sets(struct sync_remote *r, const char *prefix, const char *suffix,
			   const uint32_t *uids, size_t n, size_t max_uids, imap_untagged_fn fn,
			   void *ctx, struct remote_cmds *q, struct err *e)
{
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);
	size_t done = 0, used;
	int rc = 0;

	if (remote_check_uids(uids, n, e) < 0)
		return -1;
	while (done < n) {
		struct imap_cmd *cmd;

		buf_reset(&b);
		if (buf_adds(&b, prefix, e) < 0 ||
		    imap_seqset_format(uids + done, max_uids && n - done > max_uids ? max_uids : n - done,
				       REMOTE_SET_MAX, &b, &used, e) < 0 ||
		    buf_adds(&b, suffix, e) < 0 || (cmd = remote_submit(r, &b, fn, ctx, e)) == NULL) {
			rc = -1;
			break;
		}
		done += used;
		if (q->n == q->cap)
			q->v = xgrow(q->v, &q->cap, q->n + 1, sizeof(*q->v));
		q->v[q->n++] = cmd;
	}
	buf_release(&b);
	return rc;
}

int remote_cmds_wait(struct sync_remote *r, struct remote_cmds *q, remote_tagged_fn tagged,
		     void *ctx, struct err *e)
{
	struct imap_conn *c = imap_client_conn(r->cl);
	int rc = 0;

	for (size_t i = 0; i < q->n; i++) {
		struct err e2;

		err_clear(&e2);
		if (imap_conn_wait(c, q->v[i], &e2) < 0 && rc == 0) {
			*e = e2;
			rc = -1;
		}
		if (rc == 0 && tagged && tagged(ctx, imap_cmd_response(q->v[i]), e) < 0)
			rc = -1;
		imap_cmd_free(q->v[i]);
	}
	free(q->v);
	memset(q, 0, sizeof(*q));
	return rc;
}

int remote_run_uid_sets_ex(struct sync_remote *r, const char *prefix, const char *suffix,
			   const uint32_t *uids, size_t n, size_t max_uids, imap_untagged_fn fn,
			   remote_tagged_fn tagged, void *ctx, struct err *e)
{
	struct remote_cmds q = { 0 };
	struct imap_conn *c;
	int rc;

	if (remote_conn(r, &c, e) < 0)
		return -1;
	rc = remote_submit_uid_sets(r, prefix, suffix, uids, n, max_uids, fn, ctx, &q, e);
	if (rc < 0) {
		struct err e2;

		(void)remote_cmds_wait(r, &q, NULL, NULL, &e2);
		return -1;
	}
	return remote_cmds_wait(r, &q, tagged, ctx, e);
}

uint32_t remote_fetch_uid(const struct imap_resp *resp)
{
	uint32_t uid;

	if (resp->nargs < 1 || resp->args[0].type != IMAP_ARG_LIST)
		return 0;
	if (!imap_arg_u32(imap_fetch_item(&resp->args[0], "UID"), &uid))
		return 0;
	return uid;
}

/* ---- flags ------------------------------------------------------------------------- */

static const struct {
	unsigned bit;
	const char *name;
} sys_flags[] = {
	{ SYNC_F_SEEN, "\\Seen" },
	{ SYNC_F_ANSWERED, "\\Answered" },
	{ SYNC_F_FLAGGED, "\\Flagged" },
	{ SYNC_F_DRAFT, "\\Draft" },
	{ SYNC_F_DELETED, "\\Deleted" },
};

static bool keyword_ok(const char *k)
{
	const unsigned char *p = (const unsigned char *)k;

	if (*p == '\0')
		return false;
	for (; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	return true;
}

int remote_add_flag_list(struct buf *b, const struct sync_flags *f, struct err *e)
{
	bool first = true;
	size_t i;

	if (buf_addc(b, '(', e) < 0)
		return -1;
	for (i = 0; i < sizeof(sys_flags) / sizeof(sys_flags[0]); i++) {
		if (!(f->sys & sys_flags[i].bit))
			continue;
		if ((!first && buf_addc(b, ' ', e) < 0) || buf_adds(b, sys_flags[i].name, e) < 0)
			return -1;
		first = false;
	}
	for (i = 0; i < f->nkw; i++) {
		if (!keyword_ok(f->kw[i]))
			return err_set(e, ERR_USAGE, "keyword \"%s\" cannot be sent to the server",
				       f->kw[i]);
		if ((!first && buf_addc(b, ' ', e) < 0) || buf_adds(b, f->kw[i], e) < 0)
			return -1;
		first = false;
	}
	return buf_addc(b, ')', e);
}

int remote_parse_flags(const struct imap_arg *list, struct arena *a, struct sync_flags *f,
		       struct err *e)
{
	const char **kw = NULL;
	size_t i, j, nkw = 0;

	memset(f, 0, sizeof(*f));
	if (list == NULL || list->type != IMAP_ARG_LIST)
		return err_set(e, ERR_PROTO, "server sent a malformed FLAGS list");
	for (i = 0; i < list->len; i++) {
		const struct imap_arg *x = &list->list[i];

		if (x->type == IMAP_ARG_NIL)
			continue;       /* a keyword "NIL" (Dovecot takes it): not synced */
		if (x->type != IMAP_ARG_ATOM)
			return err_set(e, ERR_PROTO, "server sent a malformed flag");
		if (x->str[0] != '\\') {
			nkw++;
			continue;
		}
		for (j = 0; j < sizeof(sys_flags) / sizeof(sys_flags[0]); j++)
			if (strcasecmp(x->str, sys_flags[j].name) == 0)
				f->sys |= sys_flags[j].bit;
		/* \Recent and unknown system flags are not synced. */
	}
	if (nkw == 0)
		return 0;
	kw = arena_alloc(a, nkw * sizeof(*kw));
	for (i = 0, j = 0; i < list->len; i++)
		if (list->list[i].type == IMAP_ARG_ATOM && list->list[i].str[0] != '\\')
			kw[j++] = arena_strndup(a, list->list[i].str, list->list[i].len);
	f->kw = kw;
	f->nkw = nkw;
	return 0;
}

/* ---- selection -------------------------------------------------------------------- */

void remote_unselected(struct sync_remote *r)
{
	free(r->selected);
	r->selected = NULL;
	memset(&r->sel, 0, sizeof(r->sel));
}

bool remote_selecting_reached(const struct remote_selecting *s)
{
	return s->waited || s->cmd == NULL || imap_cmd_is_done(s->cmd) ||
	       imap_cmd_is_oldest(s->cmd);
}

bool remote_selecting_done(const struct remote_selecting *s)
{
	return s->waited || s->cmd == NULL || imap_cmd_is_done(s->cmd);
}

static int select_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	struct remote_selecting *sc = ctx;
	int rc;

	if (!remote_selecting_reached(sc))
		return 0;       /* an earlier command's: not this mailbox's */
	rc = imap_resp_select_item(resp, &sc->sel, e);
	if (rc != 0 || sc->fn == NULL)
		return rc;
	return sc->fn(sc->ctx, resp, e);
}

void sync_remote_set_examine(struct sync_remote *r, bool on)
{
	r->examine = on;
}

int remote_select_submit(struct sync_remote *r, const char *name, const char *params,
			 imap_untagged_fn fn, void *ctx, struct remote_selecting *s,
			 struct err *e)
{
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);

	*s = (struct remote_selecting){ .r = r, .fn = fn, .ctx = ctx };
	remote_unselected(r);
	if (buf_adds(&b, r->examine ? "EXAMINE " : "SELECT ", e) < 0 ||
	    remote_add_mailbox(r, &b, name, e) < 0 ||
	    (params && (buf_addc(&b, ' ', e) < 0 || buf_adds(&b, params, e) < 0))) {
		buf_release(&b);
		return err_prefix(e, "mailbox \"%s\"", name);
	}
	s->seq = ++r->selects;
	s->cmd = remote_submit(r, &b, select_untagged, s, e);
	buf_release(&b);
	return s->cmd ? 0 : err_prefix(e, "mailbox \"%s\"", name);
}

static struct remote_uv *uv_find(const struct sync_remote *r, const char *name)
{
	for (size_t i = 0; i < r->nuvs; i++)
		if (strcmp(r->uvs[i].name, name) == 0)
			return &r->uvs[i];
	return NULL;
}

uint32_t remote_known_uidvalidity(const struct sync_remote *r, const char *name)
{
	const struct remote_uv *u = uv_find(r, name);

	return u != NULL ? u->uidvalidity : 0;
}

void remote_forget_uidvalidity(struct sync_remote *r, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < r->nuvs;) {
		/* the mailbox and anything below it (a rename moves those too);
		 * a sibling that merely shares the prefix is forgotten as well */
		if (strncmp(r->uvs[i].name, name, len) == 0) {
			free(r->uvs[i].name);
			r->uvs[i] = r->uvs[--r->nuvs];
		} else {
			i++;
		}
	}
}

int remote_selecting_check(const struct remote_selecting *s, const char *name, struct err *e)
{
	const struct remote_uv *u = uv_find(s->r, name);
	uint32_t now = s->sel.uidvalidity;

	if (u == NULL || now == 0 || now == u->uidvalidity)
		return 0;
	return err_set(e, ERR_SERVER,
		       "mailbox \"%s\": UIDVALIDITY is %lu, not %lu as when it was listed: the "
		       "mailbox was made again (or renumbered) during the run; nothing more is done "
		       "in it now, and the next run matches its messages anew",
		       name, (unsigned long)now, (unsigned long)u->uidvalidity);
}

/* The first SELECT of `name` in the session records its UIDVALIDITY; later ones must match it. */
static int uv_select(struct sync_remote *r, const struct remote_selecting *s, const char *name,
		     struct err *e)
{
	if (s->sel.uidvalidity == 0)
		return 0;
	if (uv_find(r, name) != NULL)
		return remote_selecting_check(s, name, e);
	r->uvs = xgrow(r->uvs, &r->cap_uvs, r->nuvs + 1, sizeof(*r->uvs));
	r->uvs[r->nuvs].name = xstrdup(name);
	r->uvs[r->nuvs++].uidvalidity = s->sel.uidvalidity;
	return 0;
}

void sync_remote_adopt_uidvalidities(struct sync_remote *to, const struct sync_remote *from)
{
	for (size_t i = 0; i < from->nuvs; i++) {
		struct remote_uv *u = uv_find(to, from->uvs[i].name);

		if (u == NULL) {
			to->uvs = xgrow(to->uvs, &to->cap_uvs, to->nuvs + 1, sizeof(*to->uvs));
			u = &to->uvs[to->nuvs++];
			u->name = xstrdup(from->uvs[i].name);
		}
		u->uidvalidity = from->uvs[i].uidvalidity;
	}
}

bool sync_remote_peer_is_local(const struct sync_remote *r)
{
	const struct imap_conn *c = imap_client_conn(r->cl);

	return c != NULL && imap_conn_peer_is_local(c);
}

bool sync_remote_connected(const struct sync_remote *r)
{
	const struct imap_conn *c = imap_client_conn(r->cl);

	return c != NULL && imap_conn_state(c) == IMAP_CONN_OPEN;
}

int remote_select_wait(struct remote_selecting *s, const char *name, struct err *e)
{
	struct sync_remote *r = s->r;
	bool latest = s->seq == r->selects;
	int rc = imap_conn_wait(imap_client_conn(r->cl), s->cmd, e);

	if (rc == 0 && imap_resp_select_item(imap_cmd_response(s->cmd), &s->sel, e) < 0)
		rc = -1;
	if (rc == 0 && uv_select(r, s, name, e) < 0)
		rc = -1;
	imap_cmd_free(s->cmd);
	s->cmd = NULL;
	s->waited = true;
	latest = latest && s->seq == r->selects;
	if (rc < 0) {
		if (latest)
			remote_unselected(r);
		return err_prefix(e, "mailbox \"%s\"", name);
	}
	if (latest) {
		free(r->selected);
		r->selected = xstrdup(name);
		r->sel = s->sel;
	}
	return 0;
}

int remote_select_with(struct sync_remote *r, const char *name, const char *params,
		       imap_untagged_fn fn, void *ctx, struct err *e)
{
	struct remote_selecting s;

	if (remote_select_submit(r, name, params, fn, ctx, &s, e) < 0)
		return -1;
	return remote_select_wait(&s, name, e);
}

int remote_select(struct sync_remote *r, const char *name, struct err *e)
{
	if (r->selected && strcmp(r->selected, name) == 0)
		return 0;
	return remote_select_with(r, name, NULL, NULL, NULL, e);
}
