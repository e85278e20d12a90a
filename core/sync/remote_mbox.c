/*
 * remote_mbox.c - the remote adapter's mailbox-level calls: the STATUS /
 * LIST-STATUS pre-check, UIDNEXT, and mailbox creation / deletion.
 */
#include "remote_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/cmd.h"
#include "imap/mutf7.h"
#include "xalloc.h"

/* ---- STATUS pre-check ---------------------------------------------------------------- */

struct status_ctx {
	struct sync_remote *r;
	const char *const *names;
	char **wire;                    /* names[i] as the server spells it (decoded compare) */
	size_t n;
	struct imap_status_data *out;
};

static int wire_name(struct sync_remote *r, const char *name, char **out, struct err *e)
{
	struct buf w = BUF_INIT(REMOTE_NAME_MAX);

	if (strcasecmp(name, "INBOX") == 0 ? buf_adds(&w, "INBOX", e) < 0
	    : r->caps.utf8 ? buf_adds(&w, name, e) < 0
	    : mutf7_encode(name, strlen(name), &w, e) < 0) {
		buf_release(&w);
		return -1;
	}
	*out = buf_detach(&w, NULL);
	return 0;
}

static int status_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	struct status_ctx *sc = ctx;
	struct imap_status_data st;
	const char *wn;
	size_t i;

	if (resp->name == NULL || strcmp(resp->name, "STATUS") != 0)
		return resp->name && strcmp(resp->name, "LIST") == 0 ? 1 : 0;
	if (imap_resp_status(resp, &wn, &st, e) < 0)
		return -1;
	for (i = 0; i < sc->n; i++) {
		bool inbox = strcasecmp(sc->wire[i], "INBOX") == 0;

		if (inbox ? strcasecmp(wn, "INBOX") == 0 : strcmp(wn, sc->wire[i]) == 0)
			sc->out[i] = st;
	}
	return 1;
}

/* True if the selected mailbox is one of names (compared without case: more NOOPs, never fewer). */
static bool selected_among(const struct sync_remote *r, const char *const *names, size_t n)
{
	for (size_t i = 0; r->selected != NULL && i < n; i++)
		if (strcasecmp(r->selected, names[i]) == 0)
			return true;
	return false;
}

static int status_run(struct sync_remote *r, const char *const *names, size_t n,
		      bool allow_list, struct imap_mailbox_list *names_list,
		      struct imap_status_data *out, struct err *e)
{
	struct status_ctx sc = { r, names, NULL, n, out };
	const char *items = r->caps.condstore ? "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
					      : "(MESSAGES UIDNEXT UIDVALIDITY)";
	struct imap_cmd **cmds = NULL;
	struct imap_list_op *list_op = NULL;
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);
	struct imap_conn *c;
	size_t i, nsub = 0;
	int rc = 0;

	memset(out, 0, n * sizeof(*out));
	if (n == 0)
		return names_list ? imap_client_list_names(r->cl, names_list, e) : 0;
	if (remote_conn(r, &c, e) < 0)
		return -1;
	/*
	 * STATUS of the selected mailbox reports this session's view, which
	 * lags behind changes made by other sessions until the next command
	 * that lets the server catch up: a NOOP first.  (Only then: the
	 * STATUS of any other mailbox is current.  Names compared without
	 * case, so an INBOX spelt otherwise still gets its NOOP.)
	 */
	if (selected_among(r, names, n)) {
		rc = buf_adds(&b, "NOOP", e) < 0 ? -1 : remote_run(r, &b, NULL, NULL, NULL, e);
		buf_reset(&b);
		if (rc < 0) {
			buf_release(&b);
			return -1;
		}
	}
	sc.wire = xcalloc(n, sizeof(*sc.wire));
	for (i = 0; i < n && rc == 0; i++)
		rc = wire_name(r, names[i], &sc.wire[i], e);
	if (rc == 0 && allow_list && r->caps.list_status && n > 1) {
		/*
		 * One LIST of everything; STATUS responses for the selectable
		 * ones.  (One mailbox, as for UIDNEXT before an APPEND: STATUS.)
		 */
		rc = buf_addf(&b, e, "LIST \"\" \"*\" RETURN (STATUS %s)", items) < 0 ? -1
			: remote_run(r, &b, status_untagged, &sc, NULL, e);
	} else if (rc == 0) {
		/* Pipelined STATUS; a NO (no such mailbox) leaves out[i].have 0. */
		cmds = xcalloc(n, sizeof(*cmds));
		for (i = 0; i < n && rc == 0; i++) {
			buf_reset(&b);
			if (buf_adds(&b, "STATUS ", e) < 0 || remote_add_mailbox(r, &b, names[i], e) < 0 ||
			    buf_addf(&b, e, " %s", items) < 0 ||
			    (cmds[i] = remote_submit(r, &b, status_untagged, &sc, e)) == NULL)
				rc = -1;
			else
				nsub++;
		}
		if (rc == 0 && names_list && (list_op = imap_client_list_names_submit(r->cl, names_list,
											 e)) == NULL)
			rc = -1;
		for (i = 0; i < nsub; i++) {
			struct err e2;

			err_clear(&e2);
			if (imap_conn_wait(c, cmds[i], &e2) < 0 && e2.code != ERR_SERVER && rc == 0) {
				*e = e2;
				rc = -1;
			}
			imap_cmd_free(cmds[i]);
		}
		free(cmds);
		if (list_op) {
			struct err e2;

			err_clear(&e2);
			if (imap_client_list_finish(r->cl, list_op, &e2) < 0 && rc == 0) {
				*e = e2;
				rc = -1;
			}
		}
	}
	for (i = 0; i < n; i++)
		free(sc.wire[i]);
	free(sc.wire);
	buf_release(&b);
	return rc;
}

int sync_remote_status_all(struct sync_remote *r, const char *const *names, size_t n,
			   struct imap_status_data *out, struct err *e)
{
	return status_run(r, names, n, true, NULL, out, e);
}

int sync_remote_status_each(struct sync_remote *r, const char *const *names, size_t n,
			    struct imap_status_data *out, struct err *e)
{
	return status_run(r, names, n, false, NULL, out, e);
}

int sync_remote_status_each_list(struct sync_remote *r, const char *const *names, size_t n,
				 struct imap_status_data *out, struct imap_mailbox_list *list,
				 struct err *e)
{
	return status_run(r, names, n, false, list, out, e);
}

bool sync_remote_unchanged(const struct imap_status_data *st, const struct sync_remote_known *known)
{
	const unsigned need = IMAP_STATUS_HAVE_MESSAGES | IMAP_STATUS_HAVE_UIDNEXT |
			      IMAP_STATUS_HAVE_UIDVALIDITY | IMAP_STATUS_HAVE_HIGHESTMODSEQ;

	if (st == NULL || known == NULL || (st->have & need) != need)
		return false;
	return known->uidvalidity != 0 && known->highestmodseq != 0 &&
	       st->uidvalidity == known->uidvalidity && st->uidnext == known->uidnext &&
	       st->messages == known->messages && st->highestmodseq == known->highestmodseq;
}

/* ---- UIDNEXT ----------------------------------------------------------------------------- */

int sync_remote_uidnext(struct sync_remote *r, const char *name, uint32_t *uidnext_out,
			struct err *e)
{
	struct imap_status_data st;
	const char *names[1] = { name };

	*uidnext_out = 0;
	if (sync_remote_status_all(r, names, 1, &st, e) < 0)
		return -1;
	if (!(st.have & IMAP_STATUS_HAVE_UIDNEXT))
		return err_set(e, ERR_SERVER, "mailbox \"%s\" has no UIDNEXT (does it exist?)", name);
	*uidnext_out = st.uidnext;
	return 0;
}

/* ---- folders ------------------------------------------------------------------------------ */

static int mailbox_cmd(struct sync_remote *r, const char *verb, const char *name,
		       struct imap_cmd **cmd_out, struct err *e)
{
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);
	int rc;

	rc = buf_addf(&b, e, "%s ", verb) < 0 || remote_add_mailbox(r, &b, name, e) < 0
		? -1 : remote_run(r, &b, NULL, NULL, cmd_out, e);
	buf_release(&b);
	return rc;
}

int sync_remote_create(struct sync_remote *r, const char *name, bool *existed_out,
		       struct err *e)
{
	struct imap_cmd *cmd = NULL;
	int rc = mailbox_cmd(r, "CREATE", name, &cmd, e);

	if (existed_out != NULL)
		*existed_out = false;
	if (rc < 0 && cmd && imap_cmd_status(cmd) == IMAP_STATUS_NO) {
		const struct imap_resp *resp = imap_cmd_response(cmd);

		if (resp && resp->code && strcmp(resp->code, "ALREADYEXISTS") == 0) {
			err_clear(e);
			rc = 0;
			if (existed_out != NULL)
				*existed_out = true;
		}
	}
	imap_cmd_free(cmd);
	if (rc < 0)
		return err_prefix(e, "creating mailbox \"%s\"", name);
	if (mailbox_cmd(r, "SUBSCRIBE", name, NULL, e) < 0)
		return err_prefix(e, "subscribing to mailbox \"%s\"", name);
	return 0;
}

/* Leave the selected state without expunging (never CLOSE: it expunges \Deleted). */
static int unselect(struct sync_remote *r, struct err *e)
{
	struct buf b = BUF_INIT(64);
	int rc;

	if (r->caps.unselect) {
		rc = buf_adds(&b, "UNSELECT", e) < 0 ? -1 : remote_run(r, &b, NULL, NULL, NULL, e);
	} else {
		/* EXAMINE of another mailbox: read-only, expunges nothing. */
		r->selects++;
		rc = buf_adds(&b, "EXAMINE INBOX", e) < 0 ? -1 : remote_run(r, &b, NULL, NULL, NULL, e);
	}
	buf_release(&b);
	remote_unselected(r);
	return rc;
}

int sync_remote_delete(struct sync_remote *r, const char *name, struct err *e)
{
	struct imap_cmd *cmd = NULL;
	int rc;

	if (r->selected && strcmp(r->selected, name) == 0 && unselect(r, e) < 0)
		return err_prefix(e, "deleting mailbox \"%s\"", name);
	/* Not subscribed is fine; only a dead connection matters. */
	rc = mailbox_cmd(r, "UNSUBSCRIBE", name, &cmd, e);
	if (rc < 0 && (cmd == NULL || imap_cmd_status(cmd) == IMAP_STATUS_NONE)) {
		imap_cmd_free(cmd);
		return err_prefix(e, "deleting mailbox \"%s\"", name);
	}
	imap_cmd_free(cmd);
	err_clear(e);
	remote_forget_uidvalidity(r, name);
	if (mailbox_cmd(r, "DELETE", name, NULL, e) < 0)
		return err_prefix(e, "deleting mailbox \"%s\"", name);
	return 0;
}

int sync_remote_rename(struct sync_remote *r, const char *from, const char *to, struct err *e)
{
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);
	int rc;

	/* any selected mailbox may be `from` or one of its inferiors */
	if (r->selected && unselect(r, e) < 0)
		return err_prefix(e, "renaming mailbox \"%s\"", from);
	remote_forget_uidvalidity(r, from);
	remote_forget_uidvalidity(r, to);
	rc = buf_adds(&b, "RENAME ", e) < 0 || remote_add_mailbox(r, &b, from, e) < 0 ||
	     buf_addc(&b, ' ', e) < 0 || remote_add_mailbox(r, &b, to, e) < 0
		? -1 : remote_run(r, &b, NULL, NULL, NULL, e);
	buf_release(&b);
	if (rc < 0)
		return err_prefix(e, "renaming mailbox \"%s\" to \"%s\"", from, to);
	if (mailbox_cmd(r, "SUBSCRIBE", to, NULL, e) < 0)
		return err_prefix(e, "subscribing to mailbox \"%s\"", to);
	return 0;
}
