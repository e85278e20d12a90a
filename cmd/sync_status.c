#include "sync_status.h"

#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "maildir.h"

static uint32_t state_to_maildir_flags(uint32_t f, const char *const *kw, size_t nkw)
{
	uint32_t m = 0;
	size_t i;

	if (f & STATE_FLAG_SEEN)
		m |= MAILDIR_FLAG_SEEN;
	if (f & STATE_FLAG_ANSWERED)
		m |= MAILDIR_FLAG_REPLIED;
	if (f & STATE_FLAG_FLAGGED)
		m |= MAILDIR_FLAG_FLAGGED;
	if (f & STATE_FLAG_DRAFT)
		m |= MAILDIR_FLAG_DRAFT;
	if (f & STATE_FLAG_DELETED)
		m |= MAILDIR_FLAG_TRASHED;
	if (f & STATE_FLAG_FORWARDED)
		m |= MAILDIR_FLAG_PASSED;
	/* The engine may keep $Forwarded as a keyword: it is Maildir's P. */
	for (i = 0; i < nkw; i++)
		if (strcasecmp(kw[i], "$Forwarded") == 0)
			m |= MAILDIR_FLAG_PASSED;
	return m;
}

/*
 * The state does not record the server's hierarchy separator, which maps a
 * folder name to its path; try the two that servers use and take the one
 * under which the folder exists.  1: not found under either.
 */
static int open_folder(const struct cfg_account *a, const char *name, struct maildir *md,
		       struct maildir_folder *f, struct err *e)
{
	static const char seps[] = { '/', '.' };
	struct maildir_config mc;
	struct stat st;
	size_t i;

	if (stat(a->local.path, &st) < 0)
		return 1;
	for (i = 0; i < sizeof(seps); i++) {
		int r;

		memset(&mc, 0, sizeof(mc));
		mc.root = a->local.path;
		mc.inbox = a->local.inbox;
		mc.layout = a->local.layout == CFG_LAYOUT_MAILDIRPP ? MAILDIR_LAYOUT_MAILDIRPP
								   : MAILDIR_LAYOUT_VERBATIM;
		mc.sep = seps[i];
		if (maildir_open(md, &mc, e) < 0)
			return -1;
		r = maildir_folder_open(md, name, false, f, e);
		if (r <= 0)
			return r;
		maildir_release(md);
	}
	return 1;
}

/* The record's keywords less $Forwarded, which Maildir keeps as the P flag. */
static const char *const *keywords_without_forwarded(struct arena *ar, const struct state_msg *m,
						     size_t *n_out)
{
	const char **kw = ARENA_NEW_ARRAY(ar, const char *, m->nkeywords ? m->nkeywords : 1);
	size_t i, n = 0;

	for (i = 0; i < m->nkeywords; i++)
		if (strcasecmp(m->keywords[i], "$Forwarded") != 0)
			kw[n++] = m->keywords[i];
	*n_out = n;
	return kw;
}

int sync_pending_local(const struct cfg_account *a, struct state_txn *txn,
		       const struct state_mailbox *mb, struct arena *ar, struct sync_pending *out,
		       struct err *e)
{
	struct maildir_snapshot snap;
	struct maildir_change *changes;
	struct maildir_known *known;
	struct state_msg *msgs;
	struct maildir_folder f;
	struct maildir md;
	size_t n, nk = 0, nchanges, i;
	int r;

	memset(out, 0, sizeof(*out));
	if (state_msg_list(txn, mb->id, ar, &msgs, &n, e) < 0)
		return -1;
	known = ARENA_NEW_ARRAY(ar, struct maildir_known, n ? n : 1);
	for (i = 0; i < n; i++) {
		if (msgs[i].name == NULL || msgs[i].name[0] == '\0')
			continue;
		known[nk].uniq = msgs[i].name;
		known[nk].flags = state_to_maildir_flags(msgs[i].flags, msgs[i].keywords,
							 msgs[i].nkeywords);
		known[nk].keywords = keywords_without_forwarded(ar, &msgs[i], &known[nk].keyword_count);
		nk++;
	}
	if (mb->local_name == NULL || mb->local_name[0] == '\0')
		return 0;
	r = open_folder(a, mb->local_name, &md, &f, e);
	if (r < 0)
		return -1;
	if (r == 1) {
		out->removed = nk;
		return 0;
	}
	r = maildir_scan(&f, &snap, e);
	if (r == 0) {
		maildir_diff(&snap, known, nk, ar, &changes, &nchanges);
		for (i = 0; i < nchanges; i++) {
			if (changes[i].kind == MAILDIR_CHANGE_NEW)
				out->added++;
			else if (changes[i].kind == MAILDIR_CHANGE_GONE)
				out->removed++;
			else
				out->flagged++;
		}
		maildir_snapshot_release(&snap);
	}
	maildir_folder_close(&f);
	maildir_release(&md);
	return r;
}
