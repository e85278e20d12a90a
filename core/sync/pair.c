/*
 * pair.c - which server mailbox goes with which local folder: the state's
 * pairs first, then new server mailboxes (special-use roles pair with an
 * existing local folder of the role's name), then new local folders.
 */
#include "engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- pairing */

static enum state_role role_of(enum imap_mbox_role r)
{
	switch (r) {
	case IMAP_ROLE_ALL: return STATE_ROLE_ALL;
	case IMAP_ROLE_ARCHIVE: return STATE_ROLE_ARCHIVE;
	case IMAP_ROLE_DRAFTS: return STATE_ROLE_DRAFTS;
	case IMAP_ROLE_FLAGGED: return STATE_ROLE_FLAGGED;
	case IMAP_ROLE_JUNK: return STATE_ROLE_JUNK;
	case IMAP_ROLE_SENT: return STATE_ROLE_SENT;
	case IMAP_ROLE_TRASH: return STATE_ROLE_TRASH;
	default: return STATE_ROLE_NONE;
	}
}

/* The conventional local folder name of a role, or NULL. */
static const char *role_folder(enum imap_mbox_role r)
{
	switch (r) {
	case IMAP_ROLE_ARCHIVE: return "Archive";
	case IMAP_ROLE_DRAFTS: return "Drafts";
	case IMAP_ROLE_JUNK: return "Junk";
	case IMAP_ROLE_SENT: return "Sent";
	case IMAP_ROLE_TRASH: return "Trash";
	default: return NULL;
	}
}

static bool is_selected(const struct eng *g, const char *name)
{
	return g->o->selected == NULL || g->o->selected(g->o->selected_ctx, name, g->sep);
}

static bool remote_usable(const struct imap_mailbox *b)
{
	return !(b->attrs & (IMAP_MBOX_NOSELECT | IMAP_MBOX_NONEXISTENT));
}

/* Discovery lists. */
struct eng_lists {
	struct imap_mailbox_list rl;
	struct maildir_folder_info *ll;
	size_t nl;
	bool *r_used, *l_used;
	struct state_mailbox *stm;
	size_t nstm;
};

static const struct imap_mailbox *find_remote(const struct eng_lists *L, const char *name, size_t *idx)
{
	for (size_t i = 0; i < L->rl.n; i++)
		if (remote_usable(&L->rl.items[i]) && strcmp(L->rl.items[i].name, name) == 0) {
			if (idx)
				*idx = i;
			return &L->rl.items[i];
		}
	return NULL;
}

static bool find_local(const struct eng_lists *L, const char *name, size_t *idx)
{
	for (size_t i = 0; i < L->nl; i++)
		if (strcmp(L->ll[i].name, name) == 0) {
			if (idx)
				*idx = i;
			return true;
		}
	return false;
}

static bool state_has_local(const struct eng_lists *L, const char *name)
{
	for (size_t i = 0; i < L->nstm; i++)
		if (L->stm[i].local_name && strcmp(L->stm[i].local_name, name) == 0)
			return true;
	return false;
}

static bool state_has_remote(const struct eng_lists *L, const char *name)
{
	for (size_t i = 0; i < L->nstm; i++)
		if (L->stm[i].remote_name && strcmp(L->stm[i].remote_name, name) == 0)
			return true;
	return false;
}

static struct eng_mbox *add_pair(struct eng *g, const char *rname, const char *lname)
{
	struct eng_mbox *m;

	g->mb = xrealloc(g->mb, (g->nmb + 1) * sizeof(*g->mb));
	m = &g->mb[g->nmb++];
	memset(m, 0, sizeof(*m));
	m->sm.remote_name = arena_strdup(&g->a, rname);
	m->sm.local_name = arena_strdup(&g->a, lname);
	return m;
}

static void pair_known(struct eng *g, struct eng_lists *L)
{
	for (size_t i = 0; i < L->nstm; i++) {
		const struct state_mailbox *s = &L->stm[i];
		const char *rn = s->remote_name ? s->remote_name : "";
		const char *ln = s->local_name ? s->local_name : "";
		struct eng_marker mk;
		size_t ri, li;
		struct eng_mbox *m;

		if (!is_selected(g, *rn ? rn : ln))
			continue;
		m = add_pair(g, *rn ? rn : ln, *ln ? ln : rn);
		m->sm = *s;
		m->sm.remote_name = arena_strdup(&g->a, *rn ? rn : ln);
		m->sm.local_name = arena_strdup(&g->a, *ln ? ln : rn);
		if (eng_marker_load(s, &mk)) {
			m->local_existed = mk.local_existed != 0;
			m->remote_existed = mk.remote_existed != 0;
			m->have_prev_scan = mk.has_scan != 0;
			m->prev_scan = mk.scan;
		}
		if (find_remote(L, m->sm.remote_name, &ri)) {
			L->r_used[ri] = true;
			m->remote_exists = true;
			m->status = L->rl.items[ri].status;
		}
		if (find_local(L, m->sm.local_name, &li)) {
			L->l_used[li] = true;
			m->local_exists = true;
		}
	}
}

/* A new server mailbox: its local folder (by role, or its own name). */
static const char *local_for_remote(const struct eng_lists *L, const struct imap_mailbox *b)
{
	const char *rf = role_folder(b->role);
	size_t li;

	if (rf != NULL && !find_local(L, b->name, NULL) && find_local(L, rf, &li) &&
	    !L->l_used[li] && !state_has_local(L, rf) && !find_remote(L, rf, NULL))
		return rf;
	return b->name;
}

static void pair_new(struct eng *g, struct eng_lists *L)
{
	for (size_t i = 0; i < L->rl.n; i++) {
		const struct imap_mailbox *b = &L->rl.items[i];
		const char *ln;
		size_t li;
		struct eng_mbox *m;

		if (L->r_used[i] || !remote_usable(b) || !is_selected(g, b->name))
			continue;
		ln = local_for_remote(L, b);
		if (state_has_local(L, ln)) {
			log_msg(LOG_WARN, LOG_CAT_SYNC, "mailbox \"%s\": local folder \"%s\" belongs to another "
				 "mailbox; skipped", b->name, ln);
			continue;
		}
		m = add_pair(g, b->name, ln);
		m->sm.role = role_of(b->role);
		m->remote_exists = true;
		m->status = b->status;
		L->r_used[i] = true;
		if (find_local(L, ln, &li)) {
			L->l_used[li] = true;
			m->local_exists = true;
		}
	}
	for (size_t i = 0; i < L->nl; i++) {
		struct eng_mbox *m;

		if (L->l_used[i] || !is_selected(g, L->ll[i].name) ||
		    state_has_remote(L, L->ll[i].name))
			continue;
		m = add_pair(g, L->ll[i].name, L->ll[i].name);
		m->local_exists = true;
		L->l_used[i] = true;
	}
}

static int add_new_mailboxes(struct state_txn *txn, void *ctx, struct err *e)
{
	struct eng *g = ctx;

	for (size_t i = 0; i < g->nmb; i++) {
		if (g->mb[i].sm.id != 0)
			continue;
		if (state_mailbox_add(txn, &g->mb[i].sm, e) < 0)
			return -1;
	}
	return 0;
}

/* Ids for new pairs: real ones, or (dry run) ones above the state's. */
static int assign_ids(struct eng *g, struct err *e)
{
	uint32_t max = 0;
	bool any = false;

	for (size_t i = 0; i < g->nmb; i++) {
		if (g->mb[i].sm.id > max)
			max = g->mb[i].sm.id;
		any |= g->mb[i].sm.id == 0;
	}
	if (!any)
		return 0;
	if (g->o->dry_run) {
		for (size_t i = 0; i < g->nmb; i++)
			if (g->mb[i].sm.id == 0)
				g->mb[i].sm.id = ++max;
		return 0;
	}
	/* A failed commit leaves ids that were never stored: clear them. */
	if (eng_commit(g, add_new_mailboxes, g, e) < 0)
		return -1;
	return 0;
}

static int load_state_mailboxes(struct eng *g, struct eng_lists *L, struct err *e)
{
	struct state_txn *txn;
	int rc;

	if (state_txn_begin(g->st, false, &txn, e) < 0)
		return -1;
	rc = state_mailbox_list(txn, &g->a, &L->stm, &L->nstm, e);
	state_txn_abort(txn);
	return rc;
}

static char list_separator(const struct imap_mailbox_list *rl)
{
	for (size_t i = 0; i < rl->n; i++)
		if (rl->items[i].delim != '\0')
			return rl->items[i].delim;
	return '/';
}

/*
 * The server's mailboxes.  With mailboxes in the state and a server that
 * offers CONDSTORE: first a pipelined STATUS of each known one, then a
 * LIST without STATUS, the answers put on the LIST items (Dovecot resyncs
 * a big folder on a STATUS that follows a LIST in the session:
 * bench/README.md, (d)).  Otherwise one LIST (with STATUS when offered).
 * Without CONDSTORE a STATUS cannot show that a mailbox is unchanged (no
 * HIGHESTMODSEQ: flags may have changed), and the listing's SELECT brings
 * UIDVALIDITY and UIDNEXT anyway, so none is asked (eng_status_wanted).
 */
static int list_remote(struct eng *g, struct eng_lists *L, struct err *e)
{
	struct imap_client *cl = sync_remote_client(g->r);
	const char **names = xcalloc(L->nstm + 1, sizeof(*names));
	struct imap_status_data *st = xcalloc(L->nstm + 1, sizeof(*st));
	size_t n = 0, ri;
	int rc;

	for (size_t i = 0; eng_status_wanted(g) && i < L->nstm; i++)
		if (L->stm[i].uidvalidity != 0 && L->stm[i].remote_name && *L->stm[i].remote_name)
			names[n++] = L->stm[i].remote_name;
	if (n == 0) {
		rc = imap_client_list(cl, &L->rl, e);
	} else {
		rc = sync_remote_status_each_list(g->r, names, n, st, &L->rl, e);
		for (size_t i = 0; rc == 0 && i < n; i++)
			if (st[i].have && find_remote(L, names[i], &ri))
				L->rl.items[ri].status = st[i];
	}
	free(names);
	free(st);
	return rc;
}

static int discover(struct eng *g, struct eng_lists *L, struct err *e)
{
	struct maildir_config mc = { 0 };

	imap_mailbox_list_init(&L->rl);
	if (load_state_mailboxes(g, L, e) < 0)
		return -1;
	if (list_remote(g, L, e) < 0)
		return err_prefix(e, "cannot list the server's mailboxes");
	g->sep = list_separator(&L->rl);
	mc.root = g->o->maildir_root;
	mc.inbox = g->o->maildir_inbox;
	mc.layout = g->o->layout;
	mc.sep = g->sep;
	if (maildir_open(&g->md, &mc, e) < 0)
		return -1;
	g->md_open = true;
	if (maildir_list(&g->md, &g->a, &L->ll, &L->nl, e) < 0)
		return -1;
	L->r_used = arena_zalloc(&g->a, (L->rl.n + 1) * sizeof(bool));
	L->l_used = arena_zalloc(&g->a, (L->nl + 1) * sizeof(bool));
	pair_known(g, L);
	pair_new(g, L);
	return assign_ids(g, e);
}

int eng_discover(struct eng *g, struct err *e)
{
	struct eng_lists L;
	int rc;

	memset(&L, 0, sizeof(L));
	rc = discover(g, &L, e);
	imap_mailbox_list_release(&L.rl);
	return rc;
}
