/*
 * idle.c - mailboxes with nothing to do on either side, found before any
 * record is loaded (SPEC §5: a sync with nothing to do costs O(mailboxes),
 * not O(messages)).
 *
 * A mailbox is idle when the server's STATUS matches what the last run
 * recorded, HIGHESTMODSEQ included (so only with CONDSTORE: without it a
 * flag change is invisible to STATUS), and the local folder passes the scan
 * marker check (maildir_check_unchanged: the files are exactly the
 * records).  An idle mailbox is left out of the run like a failed one,
 * without the error: its records are not loaded, it is not listed on
 * either side, the plan does not see it, and its state is kept as it is.
 * That is sound because nothing in it changed since its records were
 * written: no message left it (a move out of it would change it) and none
 * arrived (a move into it would change it), and intents were replayed
 * before this check.
 *
 * A marker taken within the directory clock's tick of the folder's last
 * change is not trusted by the stamps alone; that is the case after every
 * run that changed the folder (its own renames come just before the
 * marker), so the first run after a pull would otherwise read the whole
 * folder and load every record.  Such a folder is idle if its names, read
 * once without keeping them, are exactly those the marker's scan read
 * (maildir_confirm_unchanged); the marker of that read replaces the old
 * one at the end of the run.
 */
#include "engine_int.h"

#include <string.h>

/* 1 idle, 0 not (or cannot tell), -1 error (e filled). */
static int mbox_idle(struct eng *g, struct eng_mbox *m, struct err *e)
{
	const struct imap_status_data *st = &m->status;
	const unsigned need = IMAP_STATUS_HAVE_MESSAGES | IMAP_STATUS_HAVE_UIDNEXT |
			      IMAP_STATUS_HAVE_UIDVALIDITY | IMAP_STATUS_HAVE_HIGHESTMODSEQ;
	bool unchanged = false;
	int rc;

	if (m->failed || !m->remote_exists || !m->local_exists || !m->remote_existed ||
	    !m->local_existed || !m->have_prev_scan || m->sm.uidvalidity == 0 ||
	    m->sm.highestmodseq == 0 || (st->have & need) != need)
		return 0;
	if (st->uidvalidity != m->sm.uidvalidity || st->uidnext != m->sm.uidnext ||
	    st->messages != m->sm.msg_count || st->highestmodseq != m->sm.highestmodseq)
		return 0;
	rc = eng_local_folder(g, m, false, e);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (maildir_check_unchanged(&m->f, &m->prev_scan, &unchanged, e) < 0)
		return -1;
	if (!unchanged && !m->prev_scan.trusted) {
		struct maildir_scan_marker now;

		if (maildir_confirm_unchanged(&m->f, &m->prev_scan, &unchanged, &now, e) < 0)
			return -1;
		if (unchanged) {
			m->prev_scan = now;
			m->idle_rescanned = true;
		}
	}
	return unchanged ? 1 : 0;
}

int eng_mark_idle(struct eng *g, struct err *e)
{
	for (size_t i = 0; i < g->nmb; i++) {
		struct eng_mbox *m = &g->mb[i];
		int rc;

		if (g->o->dry_run)
			break;          /* a dry run reports every mailbox in full */
		rc = mbox_idle(g, m, e);
		if (rc < 0) {
			if (eng_err_fatal(e))
				return -1;
			eng_mbox_fail(g, m, e);
			err_clear(e);
			continue;
		}
		if (rc == 1) {
			m->idle = true;
			g->rep->mailboxes[m->rep].local_unchanged = true;
		}
	}
	return 0;
}
