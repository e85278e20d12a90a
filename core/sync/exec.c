/*
 * exec.c - running a plan: each action's side effect, framed by intents and
 * record commits as engine.h describes; and resolving intents a killed run
 * left behind.
 */
#include "engine_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cmp.h"
#include "crlf.h"
#include "fp.h"
#include "log.h"
#include "xalloc.h"

/*
 * Downloads from one mailbox are fetched as one stream of pipelined UID
 * FETCH commands (up to EXEC_DOWNLOAD_BATCH messages), and made durable
 * and recorded at checkpoints inside that stream, every
 * EXEC_DOWNLOAD_CHECKPOINT messages or EXEC_DOWNLOAD_CHECKPOINT_BYTES
 * bytes: while a checkpoint syncs, renames and commits, the server goes
 * on sending the next messages into the socket.  When a stream ends its
 * last messages are not waited for: the batch becomes a tail
 * (g->dl_tails) that the next streams' checkpoints move on, so the next
 * mailbox's messages arrive while the disk catches up with this one's; a
 * tail is settled at once only before an action of another kind, before a
 * new stream of its own mailbox, at the end of the run, or when more than
 * EXEC_DOWNLOAD_TAILS are waiting.
 */
#define EXEC_DOWNLOAD_BATCH 2048
#define EXEC_DOWNLOAD_TAILS 8
#define EXEC_DOWNLOAD_RECORD_EVERY 4    /* checkpoints' worth of messages per record commit */
#define EXEC_DOWNLOAD_CHECKPOINT 256u   /* <= MAILDIR_PENDING_MAX */
#define EXEC_DOWNLOAD_CHECKPOINT_BYTES (64u << 20)
#define EXEC_MOVE_BATCH 256
#define EXEC_FLAGS_BATCH 256    /* local flag changes in one folder: renames, one sync, one commit */

/* ---------------------------------------------------------------- commits */

/* A commit: intents to add (ids come back), records to write, intents to clear. */
struct commit_batch {
	struct eng *g;
	struct state_intent *add;
	size_t nadd;
	struct sync_action **acts;
	const char **msgids;            /* per act, or NULL */
	size_t nacts;
	const uint64_t *clear;
	size_t nclear;
	bool relaxed;                   /* state_txn_relax: intents cover a lost commit */
};

static int commit_fn(struct state_txn *txn, void *ctx, struct err *e)
{
	struct commit_batch *b = ctx;

	if (b->relaxed)
		state_txn_relax(txn);

	for (size_t i = 0; i < b->nadd; i++) {
		b->add[i].id = 0;
		if (state_intent_add(txn, &b->add[i], e) < 0)
			return -1;
	}
	for (size_t i = 0; i < b->nacts; i++)
		if (eng_rec_effect(b->g, txn, b->acts[i], b->msgids ? b->msgids[i] : NULL, e) < 0)
			return -1;
	for (size_t i = 0; i < b->nclear; i++)
		if (state_intent_clear(txn, b->clear[i], e) < 0)
			return -1;
	return 0;
}

/* Write intents; their ids go to ids_out. */
static int add_intents(struct eng *g, struct state_intent *in, size_t n, uint64_t *ids_out,
		       struct err *e)
{
	struct commit_batch b = { .g = g, .add = in, .nadd = n };

	if (eng_commit(g, commit_fn, &b, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		ids_out[i] = in[i].id;
	return 0;
}

static int finish(struct eng *g, struct sync_action **acts, const char **msgids, size_t n,
		  const uint64_t *clear, size_t nclear, struct err *e)
{
	struct commit_batch b = { .g = g, .acts = acts, .msgids = msgids, .nacts = n,
				  .clear = clear, .nclear = nclear };

	return eng_commit(g, commit_fn, &b, e);
}

/*
 * finish() for records whose intents were committed in full earlier: a
 * system crash may take this commit back (state_txn_relax), leaving the
 * intents, which the next run resolves as if killed just before it; the
 * next ordinary commit makes it durable with its own flush.
 */
static int finish_relaxed(struct eng *g, struct sync_action **acts, const char **msgids,
			  size_t n, const uint64_t *clear, size_t nclear, struct err *e)
{
	struct commit_batch b = { .g = g, .acts = acts, .msgids = msgids, .nacts = n,
				  .clear = clear, .nclear = nclear, .relaxed = true };

	return eng_commit(g, commit_fn, &b, e);
}

static int finish_one(struct eng *g, struct sync_action *act, const char *msgid, uint64_t intent,
		      struct err *e)
{
	return finish(g, &act, &msgid, act->rec_op != SYNC_REC_NONE, &intent, intent != 0, e);
}

static void intent_init(struct state_intent *in, enum state_intent_kind kind,
			const struct eng *g, const struct sync_action *act)
{
	memset(in, 0, sizeof(*in));
	in->kind = kind;
	in->mailbox = act->mailbox;
	in->target = act->to_mailbox != act->mailbox ? act->to_mailbox : 0;
	in->uid = act->uid;
	in->msg = act->base >= 0 ? g->rec_ids[act->base] : 0;
	in->created = (int64_t)time(NULL);
	in->name = act->name;
}

static struct sync_mailbox_report *rep_of(struct eng *g, struct eng_mbox *m)
{
	return &g->rep->mailboxes[m->rep];
}

/* ---------------------------------------------------------------- folders */

static int remove_local_folder(struct eng *g, struct eng_mbox *m, struct err *e)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	static const char *const files[] = { "maildirfolder", "dovecot-keywords" };
	char *path;

	if (maildir_name_to_path(&g->md, m->sm.local_name, &path, e) < 0)
		return -1;
	if (m->f_open) {
		maildir_folder_close(&m->f);
		m->f_open = false;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = xasprintf("%s/%s", path, files[i]);

		(void)unlink(p);
		free(p);
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		char *p = xasprintf("%s/%s", path, subs[i]);

		if (rmdir(p) < 0 && errno != ENOENT) {
			err_sys(e, ERR_IO, errno, "cannot remove folder \"%s\"", p);
			free(p);
			free(path);
			return -1;
		}
		free(p);
	}
	if (rmdir(path) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST) {
		err_sys(e, ERR_IO, errno, "cannot remove folder \"%s\"", path);
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

static int exec_folder(struct eng *g, struct sync_action *act, struct eng_mbox *m, struct err *e)
{
	bool create = act->kind == SYNC_ACT_CREATE_FOLDER;

	sync_step(create ? "create-folder" : "delete-folder");
	if (act->side == SYNC_LOCAL) {
		if (create ? eng_local_folder(g, m, true, e) != 0 : remove_local_folder(g, m, e) < 0)
			return -1;
		m->local_exists = create;
		rep_of(g, m)->local.folders++;
	} else {
		bool existed = false;

		if ((create ? sync_remote_create(g->r, m->sm.remote_name, &existed, e)
			    : sync_remote_delete(g->r, m->sm.remote_name, e)) < 0)
			return -1;
		if (existed && m->sm.uidvalidity != 0) {
			/*
			 * Paired before, missing from this run's LIST, and yet
			 * there: a LIST that left it out (a server glitch), not a
			 * deletion.  Filling it again would put every message in
			 * twice; it waits for a run that lists it.
			 */
			err_set(e, ERR_SERVER, "the server did not list it, yet it exists (CREATE: "
				"ALREADYEXISTS); left alone this run, the next run looks again");
			e->scope = ERR_SCOPE_MAILBOX;
			return -1;
		}
		m->remote_exists = create;
		rep_of(g, m)->remote.folders++;
	}
	return 0;
}

struct mbox_state_ctx {
	struct eng_mbox *m;
	const struct sync_action *act;
	uint32_t uidvalidity;
};

static int mbox_state_put(struct state_txn *txn, const struct mbox_state_ctx *c, struct err *e)
{
	struct state_mailbox cur;
	struct eng_marker mk = { .magic = ENG_MARKER_MAGIC };
	struct arena a;
	int rc;

	arena_init(&a, 1024);
	rc = state_mailbox_get(txn, c->m->sm.id, &a, &cur, e);
	if (rc <= 0) {
		arena_release(&a);
		return rc < 0 ? -1 : err_set(e, ERR_INTERNAL, "mailbox %u is not in the state",
					      (unsigned)c->m->sm.id);
	}
	mk.local_existed = c->act->local_existed;
	mk.remote_existed = c->act->remote_existed;
	if (cur.uidvalidity != c->uidvalidity) {
		cur.highestmodseq = 0;
		cur.uidnext = 0;
	}
	cur.uidvalidity = c->uidvalidity;
	cur.marker = &mk;
	cur.marker_len = sizeof(mk);
	rc = state_mailbox_update(txn, &cur, e);
	arena_release(&a);
	return rc;
}

struct mbox_states {
	struct mbox_state_ctx *v;
	size_t n;
};

static int mbox_states_fn(struct state_txn *txn, void *ctx, struct err *e)
{
	const struct mbox_states *ms = ctx;

	for (size_t i = 0; i < ms->n; i++)
		if (mbox_state_put(txn, &ms->v[i], e) < 0)
			return -1;
	return 0;
}

/*
 * The mailbox-state actions that follow one another (one per mailbox at
 * the end of a plan), in one commit.  A mailbox whose UIDVALIDITY cannot
 * be read fails alone; the others are recorded.
 */
static int exec_mailbox_states(struct eng *g, struct sync_action **acts, size_t n, struct err *e)
{
	struct mbox_states ms = { xcalloc(n, sizeof(*ms.v)), 0 };
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		struct eng_mbox *m = eng_mbox_by_id(g, acts[i]->mailbox);
		struct mbox_state_ctx c = { m, acts[i], acts[i]->uidvalidity };

		if (m == NULL || m->failed)
			continue;
		if (c.uidvalidity == 0 && acts[i]->remote_existed) {
			struct imap_status_data st = { 0 };
			const char *name = m->sm.remote_name;

			if (sync_remote_status_all(g->r, &name, 1, &st, e) < 0) {
				if (eng_err_fatal(e) || n == 1) {
					rc = -1;
					goto out;
				}
				eng_mbox_fail(g, m, e);
				err_clear(e);
				continue;
			}
			c.uidvalidity = st.uidvalidity;
		}
		ms.v[ms.n++] = c;
	}
	if (ms.n > 0 && eng_commit(g, mbox_states_fn, &ms, e) < 0) {
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < ms.n; i++) {
		struct eng_mbox *m = ms.v[i].m;

		m->sm.uidvalidity = ms.v[i].uidvalidity;
		m->local_existed = ms.v[i].act->local_existed;
		m->remote_existed = ms.v[i].act->remote_existed;
	}
out:
	free(ms.v);
	return rc;
}

/* ---------------------------------------------------------------- downloads */

struct dl_msg {
	struct maildir_delivery d;
	struct sync_fp_ctx fp;          /* the header's hash (the size comes from below) */
	bool pending_cr;
	uint64_t in, bare;              /* bytes and bare LFs seen: the CRLF size is in + bare */
};

struct dl_pos {
	uint32_t uid;
	size_t i;                       /* index in dl_batch.acts */
};

struct dl_batch {
	struct eng *g;
	struct eng_mbox *m;
	struct sync_action **acts;
	size_t n;
	struct dl_pos *by_uid;          /* acts' UIDs, ascending, for dl_find */
	char **names;                   /* per act: delivered unique name, or NULL */
	bool *settled;                  /* per act: durable and recorded (a checkpoint) */
	uint64_t *ids;                  /* per act: its DOWNLOAD intent */
	uint64_t *gens;                 /* per act: the folder generation it was queued in */
	uint64_t *replace_ids;          /* per act: its REPLACE_LOCAL intent, or 0 */
	struct sync_fp_value *fps;
	bool headers;                   /* this fetch: placeholders (headers + a note) */
	size_t every;                   /* messages per checkpoint */
	size_t unsettled;               /* delivered since the last checkpoint */
	uint64_t unsettled_bytes;
	struct dl_batch *next;          /* g->dl_tails */
};

static int dl_checkpoint(struct dl_batch *b, bool last, struct err *e);
static int dl_tails_advance(struct eng *g, struct err *e);
static bool action_blocked(struct eng *g, const struct sync_action *a);
static void log_action(struct eng *g, const struct sync_action *a);

static int dl_begin(void *ctx, uint64_t size, void **handle_out, struct err *e)
{
	struct dl_batch *b = ctx;
	struct dl_msg *h = xcalloc(1, sizeof(*h));

	if (maildir_deliver_begin(&b->m->f, &h->d, e) < 0) {
		free(h);
		return -1;
	}
	if (sync_fp_init(&h->fp, e) < 0) {
		maildir_deliver_abort(&h->d);
		free(h);
		return -1;
	}
	*handle_out = h;
	return 0;
}

/* The server's CRLF become LF in the file (the Maildir convention). */
static int dl_data(void *ctx, void *handle, const char *bytes, size_t len, struct err *e)
{
	struct dl_msg *h = handle;
	struct dl_batch *b = ctx;

	eng_progress_bytes(b->g, b->m, false, len);
	/* the fingerprint hashes the header; the size is counted below */
	if (!h->fp.header_done)
		sync_fp_update_header(&h->fp, bytes, len);
	while (len > 0) {
		size_t piece = len < MAILDIR_DELIVERY_ROOM - 1 ? len : MAILDIR_DELIVERY_ROOM - 1;
		char *out = maildir_deliver_room(&h->d, piece + 1, e);

		if (out == NULL)
			return -1;
		maildir_deliver_wrote(&h->d, crlf_to_lf_counting(bytes, piece, out, &h->pending_cr,
								 &h->bare));
		h->in += piece;
		bytes += piece;
		len -= piece;
	}
	return 0;
}

static size_t dl_find(const struct dl_batch *b, uint32_t uid)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->by_uid[mid].uid == uid)
			return b->by_uid[mid].i;
		if (b->by_uid[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return b->n;
}

static int cmp_dl_pos(const void *x, const void *y)
{
	const struct dl_pos *a = x, *b = y;

	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

/*
 * The whole copy of a placeholder is about to enter cur/: first commit an
 * intent naming it (its unique name before delivery; the delivered one
 * adds ",S=SIZE"), so that a run killed before the placeholder is removed
 * and the record moved finishes the replacement instead of reading the
 * whole copy as a new local message (eng_replay_intents).
 */
static int replace_intent(struct dl_batch *b, size_t i, const struct maildir_delivery *d,
			  struct err *e)
{
	const struct sync_action *act = b->acts[i];
	struct state_intent in;

	intent_init(&in, STATE_INTENT_REPLACE_LOCAL, b->g, act);
	in.name = d->uniq;
	if (add_intents(b->g, &in, 1, &b->replace_ids[i], e) < 0)
		return -1;
	sync_step("deliver-whole");
	return 0;
}

static int dl_finish(void *ctx, void *handle, const struct sync_remote_fetched *msg, struct err *e)
{
	struct dl_batch *b = ctx;
	struct dl_msg *h = handle;
	size_t i = dl_find(b, msg->uid);
	uint32_t mflags, kw;
	char *name = NULL;
	int rc = -1;

	if (i == b->n || b->names[i] != NULL) {
		maildir_deliver_abort(&h->d);
		sync_fp_abort(&h->fp);
		free(h);
		return 0;       /* not asked for: dropped */
	}
	if (h->pending_cr && maildir_deliver_write(&h->d, "\r", 1, e) < 0)
		goto out;
	eng_flags_to_maildir(&b->acts[i]->flags, &mflags);
	if (eng_flags_keywords(&b->m->f, &b->acts[i]->flags, &kw, e) < 0)
		goto out;
	if (b->acts[i]->replace != NULL && replace_intent(b, i, &h->d, e) < 0)
		goto out;
	if (b->headers) {
		/* a placeholder: the header section, then a note; the fingerprint is
		 * the whole message's (header hash and RFC822.SIZE) */
		char note[ENG_PLACEHOLDER_NOTE_MAX];
		size_t len = eng_placeholder_note(note, sizeof(note), msg->size);

		if (maildir_deliver_write(&h->d, note, len, e) < 0)
			goto out;
		sync_fp_final_size(&h->fp, msg->size, &b->fps[i]);
	} else {
		sync_fp_final_size(&h->fp, h->in + h->bare, &b->fps[i]);
	}
	b->gens[i] = maildir_folder_generation(&b->m->f);
	if (maildir_deliver_queue(&h->d, mflags, kw, msg->internaldate, false, &name, e) < 0) {
		free(h);
		return -1;
	}
	b->names[i] = arena_strndup(&b->g->a, name, strcspn(name, ":"));
	free(name);
	free(h);
	eng_progress_msg(b->g, b->m, false, 0);
	b->unsettled++;
	b->unsettled_bytes += b->fps[i].size;
	if (b->unsettled >= b->every ||
	    b->unsettled_bytes >= EXEC_DOWNLOAD_CHECKPOINT_BYTES)
		return dl_checkpoint(b, false, e) < 0 ? -1 : dl_tails_advance(b->g, e);
	return 0;
out:
	maildir_deliver_abort(&h->d);
	sync_fp_abort(&h->fp);
	free(h);
	return rc;
}

static void dl_abort(void *ctx, void *handle)
{
	struct dl_msg *h = handle;

	maildir_deliver_abort(&h->d);
	sync_fp_abort(&h->fp);
	free(h);
}

/*
 * Start fetching the whole messages of the batch, or (headers) its
 * placeholders, on remote r: *out is NULL when there is none to fetch.
 */
static int dl_fetch_start(struct dl_batch *b, struct sync_remote *r, bool headers,
			  struct sync_remote_dl **out, struct err *e)
{
	struct sync_remote_sink sink = { b, dl_begin, dl_data, dl_finish, dl_abort, NULL };
	uint32_t *uids = xcalloc(b->n + 1, sizeof(*uids));
	size_t n = 0;
	int rc;

	*out = NULL;
	for (size_t i = 0; i < b->n; i++)
		if (b->acts[i]->placeholder == headers)
			uids[n++] = b->acts[i]->uid;
	if (n == 0) {
		free(uids);
		return 0;
	}
	qsort(uids, n, sizeof(*uids), cmp_u32);
	b->headers = headers;
	sync_step("download");
	rc = sync_remote_download_start(r, b->m->sm.remote_name, uids, n, &sink, headers, out, e);
	free(uids);
	return rc;
}

/* Fetch the whole messages of the batch, or (headers) its placeholders. */
static int dl_fetch(struct dl_batch *b, bool headers, struct err *e)
{
	struct sync_remote_dl *d;

	if (dl_fetch_start(b, b->g->r, headers, &d, e) < 0)
		return -1;
	return d != NULL ? sync_remote_download_finish(d, e) : 0;
}

/*
 * A whole message fetched in place of a placeholder: remove the
 * placeholder file, after the whole one is durable and before the record
 * moves to it.  A run killed anywhere from the delivery of the whole copy
 * to the commit that moves the record leaves the REPLACE_LOCAL intent
 * (replace_intent()), and the next run finishes the replacement
 * (replay_replace()).
 */
static int dl_drop_replaced(struct dl_batch *b, uint64_t durable, struct err *e)
{
	bool any = false;

	for (size_t i = 0; i < b->n; i++) {
		const struct maildir_entry *ent;
		int rc;

		if (b->acts[i]->replace == NULL || b->names[i] == NULL || b->settled[i] ||
		    b->gens[i] >= durable)
			continue;
		ent = eng_local_entry(b->g, b->m, b->acts[i]->replace);
		if (ent == NULL)
			continue;       /* gone already */
		sync_step("replace-placeholder");
		rc = maildir_entry_remove(&b->m->f, ent, e);
		if (rc < 0)
			return -1;
		any = true;
	}
	return any ? maildir_folder_sync(&b->m->f, e) : 0;
}

/* A delivered message, not yet recorded, durable (generation below `durable`). */
static bool dl_durable(const struct dl_batch *b, size_t i, uint64_t durable)
{
	return b->names[i] != NULL && !b->settled[i] && b->gens[i] < durable;
}

/* Fill the records of the durable delivered messages; returns how many. */
static size_t dl_records(struct dl_batch *b, uint64_t durable, struct sync_action **done,
			 const char **msgids)
{
	size_t k = 0;
	struct sync_mailbox_report *r = rep_of(b->g, b->m);

	for (size_t i = 0; i < b->n; i++) {
		struct sync_action *act = b->acts[i];

		if (!dl_durable(b, i, durable))
			continue;
		b->settled[i] = true;
		r->local.added++;
		r->local.bytes += b->fps[i].size;
		if (act->rec_op == SYNC_REC_PUT) {
			if (act->rec.name == NULL)
				act->rec.name = b->names[i];
			if (act->rec.fp.state != SYNC_FP_KNOWN) {
				act->rec.fp.state = SYNC_FP_KNOWN;
				memcpy(act->rec.fp.bytes, b->fps[i].bytes, SYNC_FP_LEN);
			}
			if (act->rec.size == 0)
				act->rec.size = b->fps[i].size;
		}
		msgids[k] = arena_strdup(&b->g->a, b->fps[i].message_id);
		done[k++] = act;
	}
	return k;
}

/*
 * A checkpoint.  Inside the stream (from dl_finish) the folder advances
 * (maildir_folder_advance: the disk catches up in the background while
 * the server goes on sending), and the messages it reports durable are
 * recorded; `last` (the stream is over) makes everything durable
 * (maildir_folder_sync) and records it, and also clears the intents of
 * messages that never came (expunged meanwhile: the next run sees them
 * gone).  A whole copy replacing a placeholder: once it is durable the
 * placeholder file goes, and a full sync follows before the record moves.
 * Sends no command.
 */
/*
 * Inside a stream, durable messages wait for their record until
 * EXEC_DOWNLOAD_RECORD_EVERY checkpoints' worth (or the byte bound) have
 * gathered: each record commit flushes the state file while the disk is
 * busy with the messages.  A batch replacing placeholders records at once.
 */
static bool dl_record_now(const struct dl_batch *b, uint64_t durable)
{
	size_t k = 0;
	uint64_t bytes = 0;

	for (size_t i = 0; i < b->n; i++) {
		if (b->acts[i]->replace != NULL && b->names[i] != NULL && !b->settled[i])
			return true;
		if (dl_durable(b, i, durable)) {
			k++;
			bytes += b->fps[i].size;
		}
	}
	return k >= b->every * EXEC_DOWNLOAD_RECORD_EVERY || bytes >= EXEC_DOWNLOAD_CHECKPOINT_BYTES;
}

static int dl_settle(struct dl_batch *b, uint64_t durable, bool last, struct err *e)
{
	struct sync_action **done = NULL;
	const char **msgids = NULL;
	uint64_t *clear = NULL;
	size_t k, nclear = 0;
	int rc = -1;

	if (!last && !dl_record_now(b, durable)) {
		sync_step("advanced");
		b->unsettled = 0;
		b->unsettled_bytes = 0;
		return 0;
	}
	if (dl_drop_replaced(b, durable, e) < 0)
		return -1;
	sync_step("downloaded");
	done = xcalloc(b->n + 1, sizeof(*done));
	msgids = xcalloc(b->n + 1, sizeof(*msgids));
	clear = xcalloc(2 * b->n + 1, sizeof(*clear));
	for (size_t i = 0; i < b->n; i++) {
		if (b->settled[i] || (!last && !dl_durable(b, i, durable)))
			continue;
		clear[nclear++] = b->ids[i];
		if (b->replace_ids[i] != 0)
			clear[nclear++] = b->replace_ids[i];
	}
	k = dl_records(b, durable, done, msgids);
	if (last)
		for (size_t i = 0; i < b->n; i++)
			b->settled[i] = true;
	b->unsettled = 0;
	b->unsettled_bytes = 0;
	rc = k + nclear > 0 ? finish_relaxed(b->g, done, msgids, k, clear, nclear, e) : 0;
	free(done);
	free(msgids);
	free(clear);
	return rc;
}

static int dl_checkpoint(struct dl_batch *b, bool last, struct err *e)
{
	uint64_t durable = UINT64_MAX;

	if (last ? maildir_folder_sync(&b->m->f, e) < 0
		 : maildir_folder_advance(&b->m->f, &durable, e) < 0)
		return -1;
	return dl_settle(b, durable, last, e);
}

/* Every message that came is durable (below generation `durable`) or recorded. */
static bool dl_all_durable(const struct dl_batch *b, uint64_t durable)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->names[i] != NULL && !b->settled[i] && b->gens[i] >= durable)
			return false;
	return true;
}

static void dl_batch_free(struct dl_batch *b)
{
	if (b == NULL)
		return;
	free(b->acts);
	free(b->ids);
	free(b->gens);
	free(b->settled);
	free(b->replace_ids);
	free(b->names);
	free(b->fps);
	free(b->by_uid);
	free(b);
}

/*
 * One step of a tail (a stream that has ended): `all` settles it at once
 * (maildir_folder_sync; so does every step with fdatasync per file, where
 * an advance is a full sync anyway).  Else the folder advances and the
 * messages it reports durable are recorded when enough have gathered
 * (dl_record_now); once every message that came is durable, they are all
 * recorded and the intents of those that never came are cleared.
 * *done_out: the tail has nothing left to do.
 */
static int dl_tail_step(struct dl_batch *t, bool all, bool *done_out, struct err *e)
{
	uint64_t durable = UINT64_MAX;

	*done_out = false;
	if (all || t->g->md.sync_method != MAILDIR_SYNC_FS) {
		if (dl_checkpoint(t, true, e) < 0)
			return -1;
		*done_out = true;
		return 0;
	}
	if (maildir_folder_advance(&t->m->f, &durable, e) < 0)
		return -1;
	if (!dl_all_durable(t, durable))
		return dl_settle(t, durable, false, e);
	*done_out = true;
	return dl_settle(t, durable, true, e);
}

/*
 * Step the tails (all: settle them), or only those of mailbox `only`.  A
 * tail that fails fails its own mailbox, not the stream that moved it on;
 * -1 only for an error that ends the run.
 */
static int dl_tails_run(struct eng *g, bool all, const struct eng_mbox *only, struct err *e)
{
	struct dl_batch **pp = &g->dl_tails;

	while (*pp != NULL) {
		struct dl_batch *t = *pp;
		bool done = false;

		if (only != NULL && t->m != only) {
			pp = &t->next;
			continue;
		}
		if (dl_tail_step(t, all, &done, e) < 0) {
			if (eng_err_fatal(e))
				return -1;
			eng_mbox_fail(g, t->m, e);
			err_clear(e);
			done = true;
		}
		if (done) {
			*pp = t->next;
			dl_batch_free(t);
		} else {
			pp = &t->next;
		}
	}
	return 0;
}

static int dl_tails_advance(struct eng *g, struct err *e)
{
	return dl_tails_run(g, false, NULL, e);
}

/* Settle every tail (all mailboxes), before anything but a download runs. */
static int dl_tails_settle(struct eng *g, struct err *e)
{
	return dl_tails_run(g, true, NULL, e);
}

/* A run that stops: the tails' intents stay for the next run to resolve. */
static void dl_tails_drop(struct eng *g)
{
	while (g->dl_tails != NULL) {
		struct dl_batch *t = g->dl_tails;

		g->dl_tails = t->next;
		dl_batch_free(t);
	}
}

/* The stream has ended: `b` joins the tails; the oldest settles when too many wait. */
static int dl_tails_add(struct eng *g, struct dl_batch *b, struct err *e)
{
	struct dl_batch **pp = &g->dl_tails;
	size_t n = 0;

	while (*pp != NULL) {
		pp = &(*pp)->next;
		n++;
	}
	*pp = b;
	if (n + 1 <= EXEC_DOWNLOAD_TAILS)
		return 0;
	return dl_tails_run(g, true, g->dl_tails->m, e);
}

/*
 * Messages per checkpoint: EXEC_DOWNLOAD_CHECKPOINT, or the test knob
 * FERRY_TEST_DOWNLOAD_CHECKPOINT (1 to EXEC_DOWNLOAD_CHECKPOINT), which
 * puts several checkpoints into a test's small stream.
 */
static size_t dl_checkpoint_every(void)
{
	const char *v = getenv("FERRY_TEST_DOWNLOAD_CHECKPOINT");
	char *end = NULL;
	unsigned long k;

	if (v == NULL || *v == '\0')
		return EXEC_DOWNLOAD_CHECKPOINT;
	k = strtoul(v, &end, 10);
	if (*end != '\0' || k == 0 || k > EXEC_DOWNLOAD_CHECKPOINT)
		return EXEC_DOWNLOAD_CHECKPOINT;
	return k;
}

/*
 * The DOWNLOAD intents of every download from plan action `from` on, up to
 * the first action of another kind, in one commit: the streams of the
 * mailboxes that follow then start without a commit of their own.
 */
static int dl_intents_ahead(struct eng *g, size_t from, struct err *e)
{
	struct state_intent *in = xcalloc(g->plan.nactions - from, sizeof(*in));
	uint64_t *ids = xcalloc(g->plan.nactions - from, sizeof(*ids));
	size_t *at = xcalloc(g->plan.nactions - from, sizeof(*at));
	size_t n = 0;
	int rc;

	if (g->dl_ids == NULL)
		g->dl_ids = xcalloc(g->plan.nactions, sizeof(*g->dl_ids));
	for (size_t j = from; j < g->plan.nactions; j++) {
		const struct sync_action *a = &g->plan.actions[j];

		if (a->kind != SYNC_ACT_DOWNLOAD)
			break;
		if (action_blocked(g, a) || g->dl_ids[j] != 0)
			continue;
		intent_init(&in[n], STATE_INTENT_DOWNLOAD, g, a);
		at[n++] = j;
	}
	rc = n > 0 ? add_intents(g, in, n, ids, e) : 0;
	if (rc == 0)
		for (size_t k = 0; k < n; k++)
			g->dl_ids[at[k]] = ids[k];
	free(in);
	free(ids);
	free(at);
	return rc;
}

/*
 * The batch's intents, committed ahead (dl_intents_ahead from the batch's
 * first action on covers every action of the batch).
 */
static int dl_take_intents(struct eng *g, struct dl_batch *b, struct err *e)
{
	size_t j0 = (size_t)(b->acts[0] - g->plan.actions);

	if ((g->dl_ids == NULL || g->dl_ids[j0] == 0) && dl_intents_ahead(g, j0, e) < 0)
		return -1;
	for (size_t i = 0; i < b->n; i++) {
		size_t j = (size_t)(b->acts[i] - g->plan.actions);

		if (g->dl_ids[j] == 0 || g->dl_ids[j] == UINT64_MAX)
			return err_set(e, ERR_INTERNAL, "download of UID %u has no intent",
				       (unsigned)b->acts[i]->uid);
		b->ids[i] = g->dl_ids[j];
		g->dl_ids[j] = UINT64_MAX;
	}
	return 0;
}

/*
 * The end of the run's actions: intents committed ahead for downloads that
 * never ran (their mailbox failed first) are cleared.
 */
static int dl_intents_unused(struct eng *g, struct err *e)
{
	uint64_t *clear;
	size_t n = 0;
	int rc;

	if (g->dl_ids == NULL)
		return 0;
	clear = xcalloc(g->plan.nactions, sizeof(*clear));
	for (size_t j = 0; j < g->plan.nactions; j++)
		if (g->dl_ids[j] != 0 && g->dl_ids[j] != UINT64_MAX)
			clear[n++] = g->dl_ids[j];
	rc = n > 0 ? finish(g, NULL, NULL, 0, clear, n, e) : 0;
	free(clear);
	return rc;
}

/*
 * A new stream of mailbox m's downloads acts[0..n): the folder's older
 * stream settled, the batch made, the folder opened, the intents taken.
 */
static int dl_batch_open(struct eng *g, struct eng_mbox *m, struct sync_action **acts, size_t n,
			 struct dl_batch **out, struct err *e)
{
	struct dl_batch *b;
	int rc;

	*out = NULL;
	/* one stream at a time per folder: its generations follow that stream */
	if (dl_tails_run(g, true, m, e) < 0)
		return -1;
	if (m->failed)
		return err_set(e, ERR_IO, "local folder \"%s\" failed to settle", m->sm.local_name);
	b = xcalloc(1, sizeof(*b));
	*b = (struct dl_batch){ .g = g, .m = m, .n = n, .every = dl_checkpoint_every() };
	b->acts = xcalloc(n, sizeof(*b->acts));
	memcpy(b->acts, acts, n * sizeof(*acts));
	b->names = xcalloc(n, sizeof(*b->names));
	b->settled = xcalloc(n, sizeof(*b->settled));
	b->ids = xcalloc(n, sizeof(*b->ids));
	b->gens = xcalloc(n, sizeof(*b->gens));
	b->replace_ids = xcalloc(n, sizeof(*b->replace_ids));
	b->fps = xcalloc(n, sizeof(*b->fps));
	b->by_uid = xcalloc(n, sizeof(*b->by_uid));
	for (size_t i = 0; i < n; i++)
		b->by_uid[i] = (struct dl_pos){ acts[i]->uid, i };
	qsort(b->by_uid, n, sizeof(*b->by_uid), cmp_dl_pos);
	rc = eng_local_folder(g, m, false, e);
	if (rc != 0) {
		if (rc == 1)
			err_set(e, ERR_IO, "local folder \"%s\" is missing", m->sm.local_name);
		dl_batch_free(b);
		return -1;
	}
	if (dl_take_intents(g, b, e) < 0) {
		dl_batch_free(b);
		return -1;
	}
	*out = b;
	return 0;
}

/* The stream has ended: the older tails move on; this one settles during the next streams. */
static int dl_batch_close(struct dl_batch *b, struct err *e)
{
	if (dl_tails_advance(b->g, e) < 0) {
		dl_batch_free(b);
		return -1;
	}
	return dl_tails_add(b->g, b, e);
}

static int exec_downloads(struct eng *g, struct eng_mbox *m, struct sync_action **acts, size_t n,
			  struct err *e)
{
	struct dl_batch *b;

	if (dl_batch_open(g, m, acts, n, &b, e) < 0)
		return -1;
	if (dl_fetch(b, false, e) < 0 || dl_fetch(b, true, e) < 0) {
		dl_batch_free(b);
		return -1;
	}
	return dl_batch_close(b, e);
}

/* ---------------------------------------------------------------- downloads on several connections */

/*
 * `connections:` above 1: a run of downloads (the plan's consecutive
 * DOWNLOAD actions) that spans several mailboxes streams up to that many
 * of them at once, each on its own connection (a lane), all driven by one
 * poll() loop (sync_remote_download_wait_any).  Everything else is as
 * with one connection: a mailbox's downloads go as streams of at most
 * EXEC_DOWNLOAD_BATCH messages, one after the other on one lane (the
 * folder's older stream settled first), with the same checkpoints and
 * tails.  It all runs on this thread, so while one stream's callback
 * makes a checkpoint the others wait (their bytes wait in the sockets).
 *
 * The further connections are opened once per run, each on a thread of
 * its own (opts->open_remote), as soon as the plan shows a download run
 * worth it (at least two mailboxes and EXEC_DL_LANES_MIN_BYTES); a lane
 * joins the run of downloads once its connection is logged in.  Before it
 * joins, it learns the UIDVALIDITYs the main connection saw, so a mailbox
 * made again since its scan is refused on it too.  One that does not
 * open is left out (logged).  A lane whose
 * connection fails fails the mailbox it was streaming (what came is kept:
 * the next run links it, as after any failed stream) and is dropped; the
 * other lanes take the mailboxes left.  An error that ends the run (the
 * main connection, the state) starts no new stream, lets those in flight
 * end and be recorded, and is then returned.
 */
#define EXEC_DL_LANES_MIN_BYTES (1u << 20)

struct dl_group {
	struct eng_mbox *m;
	size_t next, to;                /* plan actions [next, to) not streamed yet, all from m */
};

struct dl_lane {
	struct sync_remote *r;
	size_t num;                     /* connection number, for messages: 1 is g->r */
	bool main;                      /* g->r: its failure ends the run */
	bool dead;
	struct dl_group *gr;            /* the group it streams, or NULL */
	struct dl_batch *b;             /* the stream's batch */
	struct sync_remote_dl *d;       /* b's fetch in flight */
	bool headers;                   /* d fetches b's placeholders */
};

struct dl_lanes {
	struct eng *g;
	struct dl_group *gr;
	size_t ngr;
	struct dl_lane lane[SYNC_REMOTE_DL_MAX];
	size_t nlanes;
	bool stop;                      /* an error that ends the run: no new stream */
	struct err err;
};

/*
 * Bytes below which one connection does it all.  The test knob
 * FERRY_TEST_LANES_MIN_BYTES sets it, and also lifts dl_lanes_cpu_cap()
 * (the tests' server is on loopback; *knob_out says it is set).
 */
static uint64_t dl_lanes_min_bytes(bool *knob_out)
{
	const char *v = getenv("FERRY_TEST_LANES_MIN_BYTES");
	char *end = NULL;
	unsigned long long k;

	*knob_out = false;
	if (v == NULL || *v == '\0')
		return EXEC_DL_LANES_MIN_BYTES;
	k = strtoull(v, &end, 10);
	if (*end != '\0')
		return EXEC_DL_LANES_MIN_BYTES;
	*knob_out = true;
	return (uint64_t)k;
}

/*
 * A server on this machine shares its CPUs with us: each connection is
 * one more server process, and ferry's one reading thread needs a CPU of
 * its own.  On the two-core machine measured (bench/README.md), four
 * connections to a loopback Dovecot were slower than one: for the initial
 * pull and for the incremental sync.  So at most half the online CPUs, at
 * least 1.
 */
static size_t dl_lanes_cpu_cap(struct eng *g)
{
	long n;

	if (!sync_remote_peer_is_local(g->r))
		return SIZE_MAX;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n >= 4 ? (size_t)n / 2 : 1;
}

/*
 * A further connection being opened: connect, TLS, login take round trips
 * (and, over TLS, CPU) that need not hold the run, so each is opened on a
 * thread of its own as soon as the plan shows a download run worth it,
 * and a lane starts streaming once its connection is there.  The thread
 * touches nothing of the run but opts->open_remote and its own slot.
 */
struct eng_lane_open {
	pthread_t th;
	struct eng *g;
	struct sync_remote *r;          /* opened (NULL: it failed, see err) */
	struct err err;
	atomic_bool done;               /* the thread has finished with r and err */
	bool seen;                      /* done, and taken as a lane or its failure logged */
};

static void *lane_open_main(void *arg)
{
	struct eng_lane_open *x = arg;

	err_clear(&x->err);
	x->r = x->g->o->open_remote(x->g->o->open_remote_ctx, &x->err);
	atomic_store(&x->done, true);
	return NULL;
}

/* Start opening want - 1 further connections (once per run). */
static void dl_lanes_open(struct eng *g, size_t want)
{
	if (g->xo != NULL || want < 2)
		return;
	if (want > SYNC_REMOTE_DL_MAX)
		want = SYNC_REMOTE_DL_MAX;
	g->xo = xcalloc(want - 1, sizeof(*g->xo));
	for (size_t k = 0; k + 1 < want; k++) {
		struct eng_lane_open *x = &g->xo[k];

		x->g = g;
		atomic_init(&x->done, false);
		if (pthread_create(&x->th, NULL, lane_open_main, x) != 0) {
			log_msg(LOG_INFO, LOG_CAT_SYNC, "account \"%s\": no thread to open connection "
				"%zu: %s", g->o->account ? g->o->account : "", k + 2, strerror(errno));
			break;
		}
		g->nxo++;
	}
}

static void dl_lanes_reap(struct eng *g);

/*
 * Add a lane for each further connection that is open and not a lane of
 * this run yet, up to `want` lanes; log those that failed to open.
 */
static void dl_lanes_join(struct dl_lanes *L, size_t want)
{
	struct eng *g = L->g;

	dl_lanes_reap(g);
	for (size_t k = 0; k < g->nxo && L->nlanes < want; k++) {
		struct eng_lane_open *x = &g->xo[k];
		bool have = false;

		if (!atomic_load(&x->done) || x->r == NULL)
			continue;
		for (size_t i = 0; i < L->nlanes; i++)
			have |= L->lane[i].r == x->r;
		if (have || !sync_remote_connected(x->r))
			continue;
		/* what the main connection saw, as of now: its scans and selects */
		sync_remote_adopt_uidvalidities(x->r, g->r);
		L->lane[L->nlanes++] = (struct dl_lane){ .r = x->r, .num = k + 2 };
	}
}

/* Log the further connections that failed to open (once each). */
static void dl_lanes_reap(struct eng *g)
{
	for (size_t k = 0; k < g->nxo; k++) {
		struct eng_lane_open *x = &g->xo[k];

		if (x->seen || !atomic_load(&x->done) || x->r != NULL)
			continue;
		x->seen = true;
		log_msg(LOG_INFO, LOG_CAT_SYNC, "account \"%s\": connection %zu did not open (%s); "
			"downloading without it", g->o->account ? g->o->account : "", k + 2,
			x->err.msg);
	}
}

/* Every further connection failed to open: one is all there is. */
static bool dl_lanes_none(const struct eng *g)
{
	if (g->xo == NULL)
		return false;
	for (size_t k = 0; k < g->nxo; k++)
		if (!atomic_load(&g->xo[k].done) || g->xo[k].r != NULL)
			return false;
	return true;
}

void eng_close_lanes(struct eng *g)
{
	for (size_t k = 0; k < g->nxo; k++) {
		struct eng_lane_open *x = &g->xo[k];
		struct err ignored;

		pthread_join(x->th, NULL);
		if (x->r == NULL) {
			if (!x->seen)
				log_msg(LOG_INFO, LOG_CAT_SYNC, "account \"%s\": connection %zu did "
					"not open (%s)", g->o->account ? g->o->account : "", k + 2,
					x->err.msg);
			continue;
		}
		err_clear(&ignored);
		if (sync_remote_connected(x->r))
			(void)sync_remote_logout(x->r, &ignored);
		sync_remote_free(x->r);
	}
	free(g->xo);
	g->xo = NULL;
	g->nxo = 0;
}

/* The end of the run of downloads that starts at plan action i. */
static size_t dl_run_end(struct eng *g, size_t i)
{
	size_t j = i;

	while (j < g->plan.nactions && g->plan.actions[j].kind == SYNC_ACT_DOWNLOAD)
		j++;
	return j;
}

/* How many lanes the run [i, j) could use: its mailboxes (1 when not worth more). */
static size_t dl_lanes_wanted(struct eng *g, size_t i, size_t j)
{
	uint64_t bytes = 0, min_bytes;
	size_t nm = 0, cap;
	uint32_t last = 0;
	bool knob;

	dl_lanes_reap(g);
	if (g->o->connections < 2 || g->o->open_remote == NULL || dl_lanes_none(g))
		return 1;
	for (size_t k = i; k < j; k++) {
		const struct sync_action *a = &g->plan.actions[k];

		if (action_blocked(g, a))
			continue;
		bytes += a->size;
		if (nm == 0 || a->mailbox != last)
			nm++;
		last = a->mailbox;
	}
	min_bytes = dl_lanes_min_bytes(&knob);
	if (nm < 2 || bytes < min_bytes)
		return 1;
	cap = knob ? SIZE_MAX : dl_lanes_cpu_cap(g);
	cap = cap < g->o->connections ? cap : g->o->connections;
	return nm < cap ? nm : cap;
}

/*
 * A stream that failed on lane l, in mailbox m: the mailbox fails; a dead
 * further connection drops its lane; an error that ends the run stops new
 * streams (kept for the caller).
 */
static void dl_lane_failed(struct dl_lanes *L, struct dl_lane *l, struct eng_mbox *m,
			   struct err *e)
{
	bool conn_err = e->code == ERR_NET || e->code == ERR_TLS || e->code == ERR_TIMEOUT ||
			e->code == ERR_PROTO || e->code == ERR_LIMIT;

	if (conn_err && !l->main && !sync_remote_connected(l->r)) {
		l->dead = true;
		l->gr = NULL;
		err_prefix(e, "connection %zu", l->num);
	} else if (eng_err_fatal(e) || m == NULL) {
		if (!L->stop) {
			L->stop = true;
			L->err = *e;
		}
		err_clear(e);
		return;
	}
	eng_mbox_fail(L->g, m, e);
	err_clear(e);
}

/* Whether another lane streams mailbox m now. */
static bool dl_mbox_busy(const struct dl_lanes *L, const struct eng_mbox *m)
{
	for (size_t k = 0; k < L->nlanes; k++)
		if (L->lane[k].gr != NULL && L->lane[k].gr->m == m)
			return true;
	return false;
}

/* The batch's fetch of its whole messages, then of its placeholders; -1: failed (e). */
static int dl_lane_fetch(struct dl_lane *l, struct err *e)
{
	if (!l->headers) {
		if (dl_fetch_start(l->b, l->r, false, &l->d, e) < 0)
			return -1;
		if (l->d != NULL)
			return 0;
		l->headers = true;
	}
	return dl_fetch_start(l->b, l->r, true, &l->d, e);
}

/* Lane l's stream is over (its fetches done): the batch becomes a tail. */
static void dl_lane_close(struct dl_lanes *L, struct dl_lane *l)
{
	struct eng_mbox *m = l->b->m;
	size_t n = l->b->n;             /* b belongs to the tails from here on */
	struct err e;

	err_clear(&e);
	if (dl_batch_close(l->b, &e) < 0)
		dl_lane_failed(L, l, m, &e);
	else
		L->g->rep->done += n;
	l->b = NULL;
}

/* Start lane l's next stream: the rest of its group, or the next group free. */
static void dl_lane_next(struct dl_lanes *L, struct dl_lane *l)
{
	struct eng *g = L->g;

	while (!L->stop && !l->dead) {
		struct sync_action *acts[EXEC_DOWNLOAD_BATCH];
		struct err e;
		size_t n = 0;

		if (!l->main && !sync_remote_connected(l->r)) {
			/* it died between streams: nothing of a mailbox was lost with it */
			log_msg(LOG_INFO, LOG_CAT_SYNC, "account \"%s\": connection %zu was lost; "
				"downloading without it", g->o->account ? g->o->account : "", l->num);
			l->dead = true;
			l->gr = NULL;
			return;
		}
		if (l->gr != NULL && (l->gr->next == l->gr->to || l->gr->m->failed)) {
			l->gr->next = l->gr->to;
			l->gr = NULL;
		}
		for (size_t k = 0; l->gr == NULL && k < L->ngr; k++)
			if (L->gr[k].next < L->gr[k].to && !dl_mbox_busy(L, L->gr[k].m))
				l->gr = &L->gr[k];
		if (l->gr == NULL)
			return;
		while (l->gr->next < l->gr->to && n < EXEC_DOWNLOAD_BATCH) {
			struct sync_action *a = &g->plan.actions[l->gr->next++];

			if (action_blocked(g, a))
				continue;
			log_action(g, a);
			acts[n++] = a;
		}
		if (n == 0)
			continue;
		err_clear(&e);
		l->headers = false;
		if (dl_batch_open(g, l->gr->m, acts, n, &l->b, &e) < 0) {
			dl_lane_failed(L, l, l->gr->m, &e);
			continue;
		}
		if (dl_lane_fetch(l, &e) < 0) {
			dl_batch_free(l->b);
			l->b = NULL;
			dl_lane_failed(L, l, l->gr->m, &e);
			continue;
		}
		if (l->d != NULL)
			return;
		dl_lane_close(L, l);
	}
}

/* Lane l's fetch is answered: finish it, then the placeholders' or the stream. */
static void dl_lane_done(struct dl_lanes *L, struct dl_lane *l)
{
	struct eng_mbox *m = l->b->m;
	struct err e;
	int rc;

	err_clear(&e);
	rc = sync_remote_download_finish(l->d, &e);
	l->d = NULL;
	if (rc == 0 && !l->headers) {
		l->headers = true;
		rc = dl_lane_fetch(l, &e);      /* the placeholders, if any */
		if (rc == 0 && l->d != NULL)
			return;
	}
	if (rc < 0) {
		dl_batch_free(l->b);
		l->b = NULL;
		dl_lane_failed(L, l, m, &e);
		return;
	}
	dl_lane_close(L, l);
}

/*
 * The run of downloads [i, j) over up to `want` connections.  -1 only for
 * an error that ends the run (after the streams in flight ended).
 */
static int exec_download_lanes(struct eng *g, size_t i, size_t j, size_t want, struct err *e)
{
	struct dl_lanes L = { .g = g };
	int rc = 0;

	dl_lanes_open(g, want);
	L.gr = xcalloc(j - i + 1, sizeof(*L.gr));
	for (size_t k = i; k < j; k++) {
		const struct sync_action *a = &g->plan.actions[k];
		struct eng_mbox *m = eng_mbox_by_id(g, a->mailbox);

		if (m == NULL)
			continue;
		if (L.ngr > 0 && L.gr[L.ngr - 1].m == m && L.gr[L.ngr - 1].to == k) {
			L.gr[L.ngr - 1].to = k + 1;
			continue;
		}
		L.gr[L.ngr++] = (struct dl_group){ .m = m, .next = k, .to = k + 1 };
	}
	L.lane[L.nlanes++] = (struct dl_lane){ .r = g->r, .main = true, .num = 1 };
	for (;;) {
		struct sync_remote_dl *ds[SYNC_REMOTE_DL_MAX];
		struct dl_lane *ls[SYNC_REMOTE_DL_MAX];
		size_t nd = 0;

		if (!L.stop)
			dl_lanes_join(&L, want);
		for (size_t k = 0; k < L.nlanes; k++)
			if (L.lane[k].d == NULL)
				dl_lane_next(&L, &L.lane[k]);
		for (size_t k = 0; k < L.nlanes; k++)
			if (L.lane[k].d != NULL) {
				ls[nd] = &L.lane[k];
				ds[nd++] = L.lane[k].d;
			}
		if (nd == 0)
			break;
		if (sync_remote_download_wait_any(ds, nd, e) < 0) {
			/* poll() itself failed: end the streams one by one */
			if (!L.stop) {
				L.stop = true;
				L.err = *e;
			}
			err_clear(e);
		}
		for (size_t k = 0; k < nd; k++)
			if (L.stop || sync_remote_download_ready(ds[k]))
				dl_lane_done(&L, ls[k]);
	}
	free(L.gr);
	if (L.stop) {
		*e = L.err;
		rc = -1;
	}
	return rc;
}

/*
 * Start opening the further connections that the plan's largest download
 * run can use, before the first action: they log in while the run does
 * what comes before its downloads (renames, uploads).
 */
static void dl_lanes_early(struct eng *g)
{
	size_t want = 1;

	for (size_t i = 0; i < g->plan.nactions;) {
		size_t j, w;

		if (g->plan.actions[i].kind != SYNC_ACT_DOWNLOAD) {
			i++;
			continue;
		}
		j = dl_run_end(g, i);
		w = dl_lanes_wanted(g, i, j);
		want = w > want ? w : want;
		i = j;
	}
	dl_lanes_open(g, want);
}

/* ---------------------------------------------------------------- uploads */

/*
 * A run of uploads: the consecutive UPLOAD actions of the plan, from any
 * folders to any mailboxes (at most EXEC_UPLOAD_RUN: each holds its file
 * open until its outcome is committed).  One round of STATUS for the
 * UIDNEXT of every target mailbox (the intents' lower bound for the search
 * by fingerprint after a crash), one intent commit, the APPENDs, one
 * outcome commit.  The APPENDs are pipelined across the run's mailboxes
 * when the server allows it (LITERAL+ and UIDPLUS: at most
 * EXEC_UPLOAD_WINDOW in flight, the answers read in order), else they go
 * one after another.  Either way every intent is committed before the
 * first APPEND, so a run killed with APPENDs in flight leaves intents for
 * all of them, resolved by the next run.
 *
 * A failure that concerns one mailbox (a local file that cannot be read,
 * an APPEND the server refuses, a target without UIDNEXT) fails the
 * upload's source mailbox (eng_mbox_fail): none of its uploads is started
 * after that, those of the other mailboxes go on, and what succeeded is
 * recorded.  A failed upload's intent stays for the next run to resolve.
 * A fatal error (the connection, the state) stops new APPENDs; those in
 * flight are waited for and the successful ones recorded before the error
 * is returned.
 */
#define EXEC_UPLOAD_RUN 256
#define EXEC_UPLOAD_WINDOW 16

struct up_item {
	struct sync_action *act;
	struct eng_mbox *m;             /* the folder it comes from */
	struct eng_mbox *to;            /* the mailbox it goes to */
	int fd;
	struct sync_fp_value v;
	struct sync_fp fp;
	time_t mtime;
	uint32_t uidnext;               /* the target's, before the first APPEND */
	uint64_t intent;
	uint32_t uid;                   /* the server's, once appended */
	bool ok;                        /* appended */
};

struct up_run {
	struct eng *g;
	struct up_item *it;
	size_t n;
};

/*
 * A failure of item u's source mailbox: fail it and go on (0), or, for an
 * error that ends the run, -1 with *e kept.
 */
static int up_fail(struct up_run *ur, struct up_item *u, struct err *e)
{
	if (eng_err_fatal(e))
		return -1;
	err_prefix(e, "local message \"%s\"", u->act->name);
	eng_mbox_fail(ur->g, u->m, e);
	err_clear(e);
	return 0;
}

static bool up_blocked(const struct up_item *u)
{
	return u->m->failed || u->to->failed;
}

/* Open and fingerprint the run's local files; a vanished one is skipped. */
static int up_open(struct up_run *ur, struct sync_action **acts, size_t n, struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		struct eng_mbox *m = eng_mbox_by_id(ur->g, acts[i]->mailbox);
		struct eng_mbox *to = eng_mbox_by_id(ur->g, acts[i]->to_mailbox);
		const struct maildir_entry *ent;
		struct up_item *u = &ur->it[ur->n];
		struct stat stt;
		int r;

		if (m == NULL)
			return err_set(e, ERR_INTERNAL, "upload from an unknown mailbox %u",
				       (unsigned)acts[i]->mailbox);
		u->m = m;
		u->to = to != NULL ? to : m;
		u->act = acts[i];
		u->fd = -1;
		if (up_blocked(u))
			continue;
		ent = eng_local_entry(ur->g, m, acts[i]->name);
		if (ent == NULL)
			continue;       /* gone: the next run sees what became of it */
		r = maildir_entry_open(&m->f, ent, &u->fd, e);
		if (r > 0)
			continue;
		if (r == 0 && (sync_fp_fd(u->fd, &u->v, e) < 0 || fstat(u->fd, &stt) < 0 ||
			       lseek(u->fd, 0, SEEK_SET) < 0)) {
			if (e->code == ERR_NONE)
				err_sys(e, ERR_IO, errno, "cannot read \"%s\"", acts[i]->name);
			r = -1;
		}
		if (r < 0) {
			if (u->fd >= 0)
				close(u->fd);
			u->fd = -1;
			if (up_fail(ur, u, e) < 0)
				return -1;
			continue;
		}
		if (u->v.size == 0) {
			/* No server stores an empty message (Dovecot drops the
			 * connection for an empty APPEND): left alone, each run. */
			log_msg(LOG_WARN, LOG_CAT_SYNC, "account \"%s\": mailbox \"%s\": local "
				"message \"%s\" is an empty file and is not uploaded; remove it, or put "
				"the message in it", ur->g->o->account, u->to->sm.remote_name,
				acts[i]->name);
			close(u->fd);
			u->fd = -1;
			continue;
		}
		u->mtime = stt.st_mtime;
		u->fp.state = SYNC_FP_KNOWN;
		memcpy(u->fp.bytes, u->v.bytes, SYNC_FP_LEN);
		ur->n++;
	}
	return 0;
}

/* UIDNEXT of every target mailbox, in one round of pipelined STATUS. */
static int up_uidnexts(struct up_run *ur, struct err *e)
{
	const char **names = xcalloc(ur->n + 1, sizeof(*names));
	struct eng_mbox **tos = xcalloc(ur->n + 1, sizeof(*tos));
	struct imap_status_data *st;
	size_t nt = 0;
	int rc = 0;

	for (size_t i = 0; i < ur->n; i++) {
		size_t t = 0;

		while (t < nt && tos[t] != ur->it[i].to)
			t++;
		if (t == nt) {
			tos[nt] = ur->it[i].to;
			names[nt++] = ur->it[i].to->sm.remote_name;
		}
	}
	st = xcalloc(nt + 1, sizeof(*st));
	if (sync_remote_status_each(ur->g->r, names, nt, st, e) < 0)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < ur->n; i++) {
		struct up_item *u = &ur->it[i];
		size_t t = 0;

		while (tos[t] != u->to)
			t++;
		if (st[t].have & IMAP_STATUS_HAVE_UIDNEXT) {
			u->uidnext = st[t].uidnext;
			continue;
		}
		if (up_blocked(u))
			continue;
		err_set(e, ERR_SERVER, "mailbox \"%s\" has no UIDNEXT (does it exist?)", names[t]);
		rc = up_fail(ur, u, e);
	}
	free(names);
	free(tos);
	free(st);
	return rc;
}

/* One intent per upload still to do, in one commit. */
static int up_intents(struct up_run *ur, struct err *e)
{
	struct state_intent *in = xcalloc(ur->n + 1, sizeof(*in));
	uint64_t *ids = xcalloc(ur->n + 1, sizeof(*ids));
	size_t k = 0;
	int rc;

	for (size_t i = 0; i < ur->n; i++) {
		struct up_item *u = &ur->it[i];

		if (up_blocked(u))
			continue;
		intent_init(&in[k], STATE_INTENT_UPLOAD, ur->g, u->act);
		in[k].mailbox = u->to->sm.id;
		in[k].uidnext = u->uidnext;
		in[k].message_id = u->v.message_id;
		memcpy(in[k].body_hash, u->v.bytes, STATE_HASH_LEN);
		k++;
	}
	rc = k > 0 ? add_intents(ur->g, in, k, ids, e) : 0;
	for (size_t i = 0, j = 0; rc == 0 && i < ur->n; i++)
		if (!up_blocked(&ur->it[i]))
			ur->it[i].intent = ids[j++];
	free(in);
	free(ids);
	return rc;
}

/* One APPEND after another. */
static int uploads_serial(struct up_run *ur, struct err *e)
{
	for (size_t i = 0; i < ur->n; i++) {
		struct up_item *u = &ur->it[i];

		if (up_blocked(u) || u->intent == 0)
			continue;
		sync_step("upload");
		eng_progress_upload(ur->g, u->act, u->to, u->v.size);
		if (sync_remote_append(ur->g->r, u->to->sm.remote_name, u->fd, u->v.size,
				       &u->act->flags, u->mtime, &u->fp, &u->uid, e) < 0) {
			if (up_fail(ur, u, e) < 0)
				return -1;
			continue;
		}
		sync_step("uploaded");
		eng_progress_msg(ur->g, u->to, true, 0);
		u->ok = true;
	}
	return 0;
}

/*
 * Pipelined APPENDs, in chunks: consecutive uploads from one folder to one
 * mailbox go in one MULTIAPPEND command (at most EXEC_UPLOAD_MULTI messages
 * or EXEC_UPLOAD_MULTI_BYTES) when the server offers it, else one message
 * per command; at most EXEC_UPLOAD_WINDOW commands in flight.  The server
 * stores a chunk all or none, so a refused chunk fails its folder's
 * mailbox as a refused message would.  A chunk is submitted only while its
 * mailboxes have not failed; after a fatal error none is, and those in
 * flight are waited for.
 */
#define EXEC_UPLOAD_MULTI 16
#define EXEC_UPLOAD_MULTI_BYTES (16u << 20)

struct up_chunk {
	size_t first, n;                /* items it->[first, first + n) */
	struct sync_remote_append *ap;  /* in flight, or NULL */
};

/* Cut the items to upload into chunks (*nchunks_out of them, in order). */
static struct up_chunk *up_chunks(struct up_run *ur, size_t *nchunks_out)
{
	struct up_chunk *ch = xcalloc(ur->n + 1, sizeof(*ch));
	size_t max = sync_remote_can_multiappend(ur->g->r) ? EXEC_UPLOAD_MULTI : 1;
	size_t nc = 0;
	uint64_t bytes = 0;

	for (size_t i = 0; i < ur->n; i++) {
		const struct up_item *u = &ur->it[i], *f;
		struct up_chunk *c = nc > 0 ? &ch[nc - 1] : NULL;

		if (up_blocked(u) || u->intent == 0)
			continue;
		f = c != NULL ? &ur->it[c->first] : NULL;
		if (c == NULL || c->n == max || f->m != u->m || f->to != u->to ||
		    c->first + c->n != i || bytes + u->v.size > EXEC_UPLOAD_MULTI_BYTES) {
			c = &ch[nc++];
			c->first = i;
			bytes = 0;
		}
		c->n++;
		bytes += u->v.size;
	}
	*nchunks_out = nc;
	return ch;
}

static int up_submit(struct up_run *ur, struct up_chunk *c, struct err *e)
{
	struct sync_remote_append_msg *msgs = xcalloc(c->n, sizeof(*msgs));
	struct up_item *f = &ur->it[c->first];
	int rc;

	for (size_t k = 0; k < c->n; k++) {
		struct up_item *u = &ur->it[c->first + k];

		msgs[k] = (struct sync_remote_append_msg){ u->fd, u->v.size, &u->act->flags, u->mtime };
		eng_progress_upload(ur->g, u->act, u->to, u->v.size);
	}
	sync_step("upload");
	rc = sync_remote_append_many_submit(ur->g->r, f->to->sm.remote_name, msgs, c->n, &c->ap, e);
	free(msgs);
	if (rc < 0)
		return up_fail(ur, f, e);
	return 0;
}

/* One message alone, submitted and waited for: 0, or up_fail()'s result. */
static int up_one(struct up_run *ur, struct up_item *u, struct err *e)
{
	struct sync_remote_append_msg m = { u->fd, u->v.size, &u->act->flags, u->mtime };
	struct sync_remote_append *ap;

	sync_step("upload");
	if (sync_remote_append_many_submit(ur->g->r, u->to->sm.remote_name, &m, 1, &ap, e) < 0 ||
	    sync_remote_append_many_wait(ur->g->r, ap, &u->uid, e) < 0)
		return up_fail(ur, u, e);
	sync_step("uploaded");
	u->ok = true;
	eng_progress_msg(ur->g, u->to, true, 0);
	return 0;
}

/*
 * Wait for chunk c; 0 or the result of up_fail() for its folder.  A
 * MULTIAPPEND the server refused stored nothing: its messages are tried
 * one by one, so that one message the server will not take does not hold
 * back the others.
 */
static int up_wait(struct up_run *ur, struct up_chunk *c, bool fatal_seen, struct err *e)
{
	uint32_t *uids = xcalloc(c->n, sizeof(*uids));
	struct up_item *f = &ur->it[c->first];
	struct err e2;
	int rc = 0;

	err_clear(&e2);
	if (sync_remote_append_many_wait(ur->g->r, c->ap, uids, &e2) < 0) {
		if (fatal_seen || eng_err_fatal(&e2)) {
			if (!fatal_seen) {
				*e = e2;
				rc = -1;
			}
		} else if (c->n == 1) {
			rc = up_fail(ur, f, &e2);
		} else {
			log_msg(LOG_INFO, LOG_CAT_SYNC, "mailbox \"%s\": MULTIAPPEND refused (%s); "
				"uploading its %zu messages one by one", f->to->sm.remote_name, e2.msg, c->n);
			for (size_t k = 0; rc == 0 && k < c->n; k++)
				rc = up_one(ur, &ur->it[c->first + k], e);
		}
	} else {
		sync_step("uploaded");
		for (size_t k = 0; k < c->n; k++) {
			struct up_item *u = &ur->it[c->first + k];

			u->uid = uids[k];
			u->ok = true;
			eng_progress_msg(ur->g, u->to, true, 0);
		}
	}
	c->ap = NULL;
	free(uids);
	return rc;
}

static int uploads_pipelined(struct up_run *ur, struct err *e)
{
	size_t nc, sub = 0;
	struct up_chunk *ch = up_chunks(ur, &nc);
	int rc = 0;

	for (size_t i = 0; i < nc; i++) {
		for (; rc == 0 && sub < nc && sub < i + EXEC_UPLOAD_WINDOW; sub++)
			if (!up_blocked(&ur->it[ch[sub].first]))
				rc = up_submit(ur, &ch[sub], e);
		if (ch[i].ap != NULL && up_wait(ur, &ch[i], rc < 0, e) < 0)
			rc = -1;
	}
	free(ch);
	return rc;
}

/* Records and reports of the uploads that succeeded, in one commit. */
static int up_finish(struct up_run *ur, struct err *e)
{
	struct sync_action **done = xcalloc(ur->n + 1, sizeof(*done));
	const char **msgids = xcalloc(ur->n + 1, sizeof(*msgids));
	uint64_t *clear = xcalloc(ur->n + 1, sizeof(*clear));
	size_t nd = 0, nc = 0;
	int rc;

	for (size_t i = 0; i < ur->n; i++) {
		struct up_item *u = &ur->it[i];
		struct sync_action *act = u->act;

		if (!u->ok)
			continue;
		if (act->rec.uid == 0)
			act->rec.uid = u->uid;
		if (act->rec.fp.state != SYNC_FP_KNOWN)
			act->rec.fp = u->fp;
		if (act->rec.size == 0)
			act->rec.size = u->v.size;
		rep_of(ur->g, u->to)->remote.added++;
		rep_of(ur->g, u->to)->remote.bytes += u->v.size;
		clear[nc++] = u->intent;
		if (act->rec_op != SYNC_REC_NONE) {
			msgids[nd] = u->v.message_id;
			done[nd++] = act;
		}
	}
	rc = nc > 0 ? finish(ur->g, done, msgids, nd, clear, nc, e) : 0;
	free(done);
	free(msgids);
	free(clear);
	return rc;
}

static int exec_uploads(struct eng *g, struct sync_action **acts, size_t n, struct err *e)
{
	struct up_run ur = { .g = g, .it = xcalloc(n + 1, sizeof(*ur.it)) };
	int rc = -1, up;

	if (up_open(&ur, acts, n, e) < 0)
		goto out;
	rc = 0;
	if (ur.n == 0)
		goto out;
	if (up_uidnexts(&ur, e) < 0 || up_intents(&ur, e) < 0) {
		rc = -1;
		goto out;
	}
	up = sync_remote_can_pipeline_appends(g->r) ? uploads_pipelined(&ur, e)
						    : uploads_serial(&ur, e);
	if (up < 0) {   /* fatal: record what is done, keep the error */
		struct err e2;

		err_clear(&e2);
		(void)up_finish(&ur, &e2);
		rc = -1;
		goto out;
	}
	rc = up_finish(&ur, e);
out:
	for (size_t i = 0; i < n; i++)
		if (ur.it[i].fd >= 0 && ur.it[i].act != NULL)
			close(ur.it[i].fd);
	free(ur.it);
	return rc;
}

/* ---------------------------------------------------------------- flags */

/*
 * A flag-store run: the FLAGS_REMOTE actions that follow one another in
 * the plan (one action per mailbox and flag set; any mailboxes), carried
 * out together: each mailbox's SELECT and UID STOREs submitted (at most
 * EXEC_FLAGS_WINDOW mailboxes unanswered, sync_remote_store_submit), the
 * answers read mailbox by mailbox, then one commit of the records of the
 * mailboxes that went well.  A mailbox whose stores fail fails alone.  A
 * run killed before the commit leaves server flags equal to the local
 * ones: the next run finds them so and records them.
 */
#define EXEC_FLAGS_RUN 4096             /* actions of one flag-store run */
#define EXEC_FLAGS_WINDOW 16            /* mailboxes with stores unanswered at once */
#define EXEC_FLAGS_LOCAL_RUN 16384      /* local flag changes done while they are answered */

/* Consecutive actions of one mailbox in a flag-store run. */
struct fl_seg {
	struct eng_mbox *m;
	size_t first, n;                        /* in fl_run.ops / acts */
	struct sync_remote_pending *p;          /* in flight */
	bool ok;                                /* every store answered OK */
};

struct fl_run {
	struct eng *g;
	struct sync_action **acts;              /* the run's unblocked actions */
	struct sync_remote_store_op *ops;       /* parallel */
	size_t n;
	struct fl_seg *segs;
	size_t nsegs, next_submit, inflight;
	bool fatal;
	struct err fatal_err;
};

/*
 * The FLAGS_REMOTE actions from i on, and the FLAGS_LOCAL actions that
 * follow them: the local renames are done while the server works on the
 * stores (exec_flags_remote_run()).
 */
static size_t flags_run_len(struct eng *g, size_t i)
{
	size_t j = i + 1, k;

	while (j < g->plan.nactions && j - i < EXEC_FLAGS_RUN &&
	       g->plan.actions[j].kind == SYNC_ACT_FLAGS_REMOTE)
		j++;
	k = j;
	while (j < g->plan.nactions && j - k < EXEC_FLAGS_LOCAL_RUN &&
	       g->plan.actions[j].kind == SYNC_ACT_FLAGS_LOCAL)
		j++;
	return j - i;
}

static void fl_fail(struct fl_run *f, struct fl_seg *sg, const struct err *why)
{
	if (eng_err_fatal(why)) {
		if (!f->fatal)
			f->fatal_err = *why;
		f->fatal = true;
	} else {
		eng_mbox_fail(f->g, sg->m, why);
	}
}

/* Submit the next segment's stores, if the window allows: false if none went. */
static bool fl_submit_next(struct fl_run *f)
{
	while (f->next_submit < f->nsegs && f->inflight < EXEC_FLAGS_WINDOW && !f->fatal) {
		struct fl_seg *sg = &f->segs[f->next_submit++];
		struct err e2;

		if (sg->m->failed)
			continue;       /* an earlier segment of it failed */
		err_clear(&e2);
		if (sync_remote_store_submit(f->g->r, sg->m->sm.remote_name, f->ops + sg->first, sg->n,
					     &sg->p, &e2) < 0) {
			fl_fail(f, sg, &e2);
			continue;
		}
		f->inflight++;
		return true;
	}
	return false;
}

static void fl_submit_more(struct fl_run *f)
{
	while (fl_submit_next(f))
		;
}

struct del_run;
static void fused_submit_more(struct fl_run *f, struct del_run *d);

/* The run's unblocked actions, cut into segments of one mailbox each. */
static void fl_run_init(struct fl_run *f, struct eng *g, struct sync_action **acts, size_t n)
{
	memset(f, 0, sizeof(*f));
	f->g = g;
	f->acts = xcalloc(n + 1, sizeof(*f->acts));
	f->ops = xcalloc(n + 1, sizeof(*f->ops));
	f->segs = xcalloc(n + 1, sizeof(*f->segs));
	for (size_t i = 0; i < n; i++) {
		struct sync_action *a = acts[i];
		struct eng_mbox *m;

		if (action_blocked(g, a))
			continue;
		m = eng_mbox_by_id(g, a->mailbox);
		if (f->nsegs == 0 || f->segs[f->nsegs - 1].m != m)
			f->segs[f->nsegs++] = (struct fl_seg){ .m = m, .first = f->n };
		f->segs[f->nsegs - 1].n++;
		f->ops[f->n] = (struct sync_remote_store_op){ a->uids, a->nuids, &a->add, &a->remove };
		f->acts[f->n++] = a;
	}
}

static void fl_run_release(struct fl_run *f)
{
	free(f->acts);
	free(f->ops);
	free(f->segs);
}

/*
 * Every segment's stores submitted (as the window allows) and answered;
 * with d (a fused run) each mailbox's expunge goes out behind its stores.
 */
static void fl_run_stores(struct fl_run *f, struct del_run *d)
{
	for (size_t k = 0; k < f->nsegs; k++) {
		struct fl_seg *sg = &f->segs[k];
		struct err e2;

		if (d != NULL)
			fused_submit_more(f, d);
		else
			fl_submit_more(f);
		if (sg->p == NULL)
			continue;
		err_clear(&e2);
		if (sync_remote_pending_wait(f->g->r, sg->p, &e2) < 0)
			fl_fail(f, sg, &e2);
		else
			sg->ok = true;
		sg->p = NULL;
		f->inflight--;
	}
}

/* One commit of the records of the mailboxes whose stores all succeeded. */
static int fl_run_outcome(struct fl_run *f, struct err *e)
{
	struct sync_action **done = xcalloc(f->n + 1, sizeof(*done));
	size_t nd = 0;
	int rc = 0;

	for (size_t k = 0; k < f->nsegs; k++) {
		const struct fl_seg *sg = &f->segs[k];

		for (size_t i = sg->first; sg->ok && !sg->m->failed && i < sg->first + sg->n; i++) {
			rep_of(f->g, sg->m)->remote.flags += f->acts[i]->nuids;
			if (f->acts[i]->rec_op != SYNC_REC_NONE)
				done[nd++] = f->acts[i];
		}
	}
	if (nd > 0 && finish(f->g, done, NULL, nd, NULL, 0, e) < 0) {
		if (eng_err_fatal(e)) {
			rc = -1;
		} else {                /* every mailbox it was to record fails */
			for (size_t k = 0; k < f->nsegs; k++)
				if (f->segs[k].ok && !f->segs[k].m->failed)
					eng_mbox_fail(f->g, f->segs[k].m, e);
			err_clear(e);
		}
	}
	free(done);
	return rc;
}

static int exec_flags_local(struct eng *g, struct eng_mbox *m, struct sync_action **acts,
			    size_t n, struct err *e);

/*
 * Make what was renamed or unlinked in the folders ms[k] with need[k]
 * durable: a maildir_folder_sync() of each, or with the syncfs method one
 * per file system (its syncfs covers the others there; a folder with
 * queued deliveries still completes them itself).  ok[k]: durable;
 * otherwise why[k] says why (a failed sync also fails the folders it was
 * to cover).
 */
static void sync_folders(struct eng *g, struct eng_mbox **ms, const bool *need, size_t n,
			 bool *ok, struct err *why)
{
	dev_t *devs = xcalloc(n + 1, sizeof(*devs));
	size_t *by = xcalloc(n + 1, sizeof(*by));      /* k's coverer, or k */

	for (size_t k = 0; k < n; k++) {
		struct stat st;

		ok[k] = false;
		err_clear(&why[k]);
		by[k] = k;
		if (need[k] && stat(ms[k]->f.path, &st) == 0)
			devs[k] = st.st_dev;
	}
	for (size_t k = 0; k < n; k++) {
		if (!need[k])
			continue;
		if (g->md.sync_method == MAILDIR_SYNC_FS && ms[k]->f.npending == 0 && devs[k] != 0)
			for (size_t j = 0; j < k && by[k] == k; j++)
				if (need[j] && by[j] == j && devs[j] == devs[k] &&
				    ms[j]->f.npending == 0)
					by[k] = j;
		if (by[k] != k) {
			ok[k] = ok[by[k]];
			if (!ok[k])
				why[k] = why[by[k]];
			continue;
		}
		ok[k] = maildir_folder_sync(&ms[k]->f, &why[k]) == 0;
	}
	free(devs);
	free(by);
}

static int fl_local_renames(struct eng *g, struct eng_mbox *m, struct sync_action **acts,
			    size_t n, struct sync_action **done, size_t *k, struct err *e);

/*
 * The local flag changes acts[0..n) (FLAGS_LOCAL, consecutive per folder),
 * in every folder: all the renames, then what they did made durable
 * together (sync_folders: one syncfs per file system with the syncfs
 * method), then one commit of the records.  A folder whose renames or sync
 * fail fails its mailbox alone and none of its records is committed (its
 * files then carry flags the records do not: the next run reads that as a
 * local change, and the server already has those flags).  -1 only for a
 * fatal error (e).
 */
static int fl_locals(struct eng *g, struct sync_action **acts, size_t n, struct err *e)
{
	struct eng_mbox **ms = xcalloc(n + 1, sizeof(*ms));
	size_t *from = xcalloc(n + 2, sizeof(*from));   /* segment s: done[from[s] .. from[s + 1]) */
	bool *need = xcalloc(n + 1, sizeof(*need));
	bool *ok = xcalloc(n + 1, sizeof(*ok));
	struct err *why = xcalloc(n + 1, sizeof(*why));
	struct sync_action **done = xcalloc(n + 1, sizeof(*done));
	size_t nseg = 0, nd = 0, keep = 0;
	int rc = 0;

	for (size_t i = 0, j; i < n; i = j) {
		struct eng_mbox *m = eng_mbox_by_id(g, acts[i]->mailbox);
		size_t before = nd;

		for (j = i + 1; j < n && acts[j]->mailbox == acts[i]->mailbox &&
				j - i < EXEC_FLAGS_BATCH; j++)
			;
		if (m == NULL || action_blocked(g, acts[i]))
			continue;
		if (fl_local_renames(g, m, acts + i, j - i, done, &nd, e) < 0) {
			if (eng_err_fatal(e)) {
				rc = -1;
				goto out;
			}
			eng_mbox_fail(g, m, e);
			err_clear(e);
			nd = before;    /* its renames stay unrecorded */
			continue;
		}
		ms[nseg] = m;
		from[nseg] = before;
		need[nseg] = nd > before;
		from[++nseg] = nd;
	}
	sync_folders(g, ms, need, nseg, ok, why);
	/* keep the records of the folders made durable, in order */
	for (size_t s2 = 0; s2 < nseg; s2++) {
		if (need[s2] && !ok[s2]) {
			eng_mbox_fail(g, ms[s2], &why[s2]);
			continue;
		}
		for (size_t d = from[s2]; d < from[s2 + 1]; d++)
			done[keep++] = done[d];
	}
	if (keep > 0) {
		sync_step("flags-local-synced");
		rc = finish(g, done, NULL, keep, NULL, 0, e);
	}
out:
	free(ms);
	free(from);
	free(need);
	free(ok);
	free(why);
	free(done);
	return rc;
}

/*
 * Carry out a flag-store run (flags_run_len()): the stores submitted and
 * put on the wire, the local flag changes that follow them in the plan
 * done while the server answers, then the answers and one commit.
 * Returns -1 only for a fatal error (e), after recording the mailboxes
 * done; a mailbox that fails is failed here and the run goes on.
 */
static int exec_flags_remote_run(struct eng *g, struct sync_action **acts, size_t n,
				 struct err *e)
{
	size_t nr = 0;
	struct fl_run f;
	struct err le;
	int rc, lrc;

	while (nr < n && acts[nr]->kind == SYNC_ACT_FLAGS_REMOTE)
		nr++;
	fl_run_init(&f, g, acts, nr);
	if (f.nsegs > 0) {
		sync_step("flags-remote");
		fl_submit_more(&f);
		sync_remote_send(g->r);
	}
	err_clear(&le);
	lrc = fl_locals(g, acts + nr, n - nr, &le);
	fl_run_stores(&f, NULL);
	rc = fl_run_outcome(&f, e);
	if (f.fatal) {
		*e = f.fatal_err;
		rc = -1;
	} else if (lrc < 0 && rc == 0) {
		*e = le;
		rc = -1;
	}
	fl_run_release(&f);
	return rc;
}

/*
 * The renames of local flag changes in one folder (m's); the actions done
 * are appended to done[*k].  -1: e (the folder fails).
 */
static int fl_local_renames(struct eng *g, struct eng_mbox *m, struct sync_action **acts,
			    size_t n, struct sync_action **done, size_t *k, struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		struct sync_action *act = acts[i];
		struct maildir_entry *ent = (struct maildir_entry *)eng_local_entry(g, m, act->name);
		uint32_t mflags, kw;
		char *name = NULL;
		int r;

		if (ent == NULL)
			continue;
		eng_flags_to_maildir(&act->flags, &mflags);
		if (eng_flags_keywords(&m->f, &act->flags, &kw, e) < 0)
			return -1;
		sync_step("flags-local");
		r = maildir_entry_set_flags(&m->f, ent, mflags, kw, &name, e);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;       /* gone: the next run sees what became of it */
		ent->name = arena_strdup(&m->snap.arena, name);
		ent->sub = MAILDIR_SUB_CUR;
		ent->flags = (uint8_t)mflags;
		free(name);
		rep_of(g, m)->local.flags++;
		done[(*k)++] = act;
	}
	return 0;
}

/*
 * Local flag changes in one folder: every rename, one sync of the folder
 * (the new names durable), then one commit of the records.  A run killed
 * before the commit leaves files whose flags already equal the server's:
 * the next run records them.
 */
static int exec_flags_local(struct eng *g, struct eng_mbox *m, struct sync_action **acts,
			    size_t n, struct err *e)
{
	struct sync_action **done = xcalloc(n + 1, sizeof(*done));
	size_t k = 0;
	int rc = -1;

	if (fl_local_renames(g, m, acts, n, done, &k, e) < 0)
		goto out;
	if (k == 0) {
		rc = 0;
		goto out;
	}
	if (maildir_folder_sync(&m->f, e) < 0)
		goto out;
	sync_step("flags-local-synced");
	rc = finish(g, done, NULL, k, NULL, 0, e);
out:
	free(done);
	return rc;
}

/* ---------------------------------------------------------------- moves */

struct uid_pair {
	uint32_t uid;
	size_t act;
};

static int cmp_pair(const void *a, const void *b)
{
	return cmp_u32(&((const struct uid_pair *)a)->uid, &((const struct uid_pair *)b)->uid);
}

/*
 * Without COPYUID (no UIDPLUS) the new UID of a moved message is looked for
 * by fingerprint among the UIDs the target gave out since `uidnext`.  Not
 * found: it stays 0 and the next plan relinks it.
 */
static int find_new_uid(struct eng *g, struct eng_mbox *to, uint32_t uidnext,
			struct sync_action *act, struct err *e)
{
	uint32_t uid = 0;

	if (act->rec_op != SYNC_REC_PUT || act->rec.fp.state != SYNC_FP_KNOWN || uidnext == 0)
		return 0;
	if (sync_remote_find_fp(g->r, to->sm.remote_name, uidnext, &act->rec.fp, &uid, e) < 0)
		return -1;
	act->rec.uid = uid;
	return 0;
}

/* The records of a batch of remote moves, clearing their intents. */
static int finish_moves(struct eng *g, struct sync_action **acts, size_t n, const uint64_t *ids,
			struct err *e)
{
	struct commit_batch b = { .g = g, .acts = acts, .nacts = n, .clear = ids, .nclear = n };

	return eng_commit(g, commit_fn, &b, e);
}

static int exec_moves_remote(struct eng *g, struct eng_mbox *m, struct sync_action **acts,
			     size_t n, struct err *e)
{
	struct eng_mbox *to = eng_mbox_by_id(g, acts[0]->to_mailbox);
	struct state_intent *in = xcalloc(n, sizeof(*in));
	uint64_t *ids = xcalloc(n, sizeof(*ids));
	struct uid_pair *pr = xcalloc(n, sizeof(*pr));
	uint32_t *uids = xcalloc(n, sizeof(*uids)), *nu = xcalloc(n, sizeof(*nu));
	int rc = -1;

	for (size_t i = 0; i < n; i++) {
		intent_init(&in[i], STATE_INTENT_MOVE_REMOTE, g, acts[i]);
		pr[i].uid = acts[i]->uid;
		pr[i].act = i;
	}
	qsort(pr, n, sizeof(*pr), cmp_pair);
	for (size_t i = 0; i < n; i++)
		uids[i] = pr[i].uid;
	if (to == NULL) {
		err_set(e, ERR_INTERNAL, "move to an unknown mailbox");
		goto out;
	}
	if (sync_remote_uidnext(g->r, to->sm.remote_name, &in[0].uidnext, e) < 0)
		goto out;
	for (size_t i = 1; i < n; i++)
		in[i].uidnext = in[0].uidnext;
	if (add_intents(g, in, n, ids, e) < 0)
		goto out;
	sync_step("move-remote");
	if (sync_remote_move(g->r, m->sm.remote_name, uids, n, to->sm.remote_name, nu, e) < 0)
		goto out;
	sync_step("moved-remote");
	for (size_t i = 0; i < n; i++) {
		struct sync_action *act = acts[pr[i].act];

		if (act->rec.uid == 0)
			act->rec.uid = nu[i];
		if (act->rec.uid == 0 && find_new_uid(g, to, in[0].uidnext, act, e) < 0)
			goto out;
	}
	rep_of(g, to)->remote.moved += n;
	rc = finish_moves(g, acts, n, ids, e);
out:
	free(in);
	free(ids);
	free(pr);
	free(uids);
	free(nu);
	return rc;
}

static int exec_move_local(struct eng *g, struct sync_action *act, struct eng_mbox *m,
			   struct err *e)
{
	const struct maildir_entry *ent = eng_local_entry(g, m, act->name);
	struct eng_mbox *to = eng_mbox_by_id(g, act->to_mailbox);
	struct state_intent in;
	uint64_t id;
	int rc;

	if (to == NULL)
		return err_set(e, ERR_INTERNAL, "move to an unknown mailbox");
	if (ent == NULL)
		return 0;
	if (eng_local_folder(g, to, true, e) != 0)
		return -1;
	intent_init(&in, STATE_INTENT_MOVE_LOCAL, g, act);
	if (add_intents(g, &in, 1, &id, e) < 0)
		return -1;
	sync_step("move-local");
	rc = maildir_entry_move(&m->f, ent, &to->f, e);
	if (rc < 0)
		return -1;
	if (rc == 0 && maildir_folder_sync(&to->f, e) < 0)
		return -1;
	sync_step("moved-local");
	if (rc == 0)
		rep_of(g, to)->local.moved++;
	if (rc == 1)
		return finish(g, NULL, NULL, 0, &id, 1, e);
	return finish_one(g, act, NULL, id, e);
}

/* ---------------------------------------------------------------- deletions */

/*
 * A deletion run: the EXPUNGE_REMOTE and DELETE_LOCAL actions that follow
 * one another in the plan (any mailboxes; with the record-only actions
 * between them, which forget the expunged messages), carried out together:
 *
 *   1. one commit of every intent (one per expunged UID, one per file);
 *   2. with UIDPLUS, each mailbox's SELECT + UID STORE \Deleted + UID
 *      EXPUNGE submitted (at most EXEC_DELETE_WINDOW mailboxes unanswered),
 *      so the server works while
 *   3. the files of every folder are unlinked, and
 *   4. the folders made durable (with the syncfs method one syncfs per file
 *      system covers every folder on it);
 *   5. the server's answers read, mailbox by mailbox (without UIDPLUS:
 *      sync_remote_expunge() now, one mailbox after the other);
 *   6. one commit of the records of every mailbox that went well, clearing
 *      their intents.
 *
 * A mailbox whose part fails (a NO, a SELECT of a mailbox deleted
 * meanwhile, an unlink or a folder sync that fails) fails alone
 * (eng_mbox_fail): none of its records change and its intents stay, for
 * the next run's eng_replay_intents() to clear; that run's plan finds each
 * message still recorded, gone where this run removed it, and either
 * forgets it or deletes it again.  Records are dropped only after the
 * removal is durable (server answered, folder synced), so a message can
 * never come back as new.  A connection error ends the run (fatal) after
 * the mailboxes already done are recorded.
 */
#define EXEC_DELETE_RUN_INTENTS 8192    /* intents of one deletion run (at least one action) */
#define EXEC_DELETE_WINDOW 16           /* mailboxes with an expunge unanswered at once */

/* One mailbox of a deletion run. */
struct del_mbox {
	struct eng_mbox *m;
	struct sync_action *expunge;            /* its EXPUNGE_REMOTE, or NULL */
	struct sync_remote_pending *p;          /* that expunge in flight */
	bool removed;                           /* a file of it was unlinked: sync its folder */
	bool synced;                            /* ... and that is durable */
	bool remote_ok;                         /* its expunge answered OK */
	bool bad;                               /* failed: nothing recorded, intents kept */
};

struct del_run {
	struct eng *g;
	struct sync_action **acts;              /* the run, blocked actions included */
	size_t n;
	size_t *mbox_of;                        /* per act: index in mb, SIZE_MAX if blocked */
	struct del_mbox *mb;                    /* in the order of first appearance */
	size_t nmb;
	struct state_intent *in;                /* every intent of the run */
	uint64_t *ids;
	size_t *in_mbox;                        /* per intent: index in mb */
	size_t nin;
	size_t next_submit, inflight;           /* pipelined expunges */
	bool fatal;                             /* fatal_err ends the run */
	struct err fatal_err;
};

static bool del_run_kind(enum sync_action_kind k)
{
	return k == SYNC_ACT_EXPUNGE_REMOTE || k == SYNC_ACT_DELETE_LOCAL;
}

/* How many actions from i on (a deletion) form one deletion run. */
static size_t del_run_len(struct eng *g, size_t i)
{
	size_t j = i + 1, intents = 0;

	while (j < g->plan.nactions) {
		const struct sync_action *b = &g->plan.actions[j];
		size_t cost = b->kind == SYNC_ACT_EXPUNGE_REMOTE ? b->nuids
			    : b->kind == SYNC_ACT_DELETE_LOCAL ? 1 : 0;

		if (!del_run_kind(b->kind) && b->kind != SYNC_ACT_RECORD)
			break;
		if (!action_blocked(g, b)) {
			if (intents + cost > EXEC_DELETE_RUN_INTENTS)
				break;
			intents += cost;
		}
		j++;
	}
	return j - i;
}

static size_t del_mbox_index(struct del_run *d, struct eng_mbox *m)
{
	for (size_t k = 0; k < d->nmb; k++)
		if (d->mb[k].m == m)
			return k;
	d->mb[d->nmb].m = m;
	return d->nmb++;
}

/* Group the run by mailbox and build its intents. */
static void del_run_init(struct del_run *d, struct eng *g, struct sync_action **acts, size_t n)
{
	size_t nin = 0;

	memset(d, 0, sizeof(*d));
	d->g = g;
	d->acts = acts;
	d->n = n;
	d->mbox_of = xcalloc(n, sizeof(*d->mbox_of));
	d->mb = xcalloc(n, sizeof(*d->mb));
	for (size_t i = 0; i < n; i++) {
		d->mbox_of[i] = SIZE_MAX;
		if (action_blocked(g, acts[i]))
			continue;
		d->mbox_of[i] = del_mbox_index(d, eng_mbox_by_id(g, acts[i]->mailbox));
		nin += acts[i]->kind == SYNC_ACT_EXPUNGE_REMOTE ? acts[i]->nuids
		     : acts[i]->kind == SYNC_ACT_DELETE_LOCAL ? 1 : 0;
		if (acts[i]->kind == SYNC_ACT_EXPUNGE_REMOTE)
			d->mb[d->mbox_of[i]].expunge = acts[i];
	}
	d->in = xcalloc(nin + 1, sizeof(*d->in));
	d->ids = xcalloc(nin + 1, sizeof(*d->ids));
	d->in_mbox = xcalloc(nin + 1, sizeof(*d->in_mbox));
	for (size_t i = 0; i < n; i++) {
		const struct sync_action *act = acts[i];

		if (d->mbox_of[i] == SIZE_MAX)
			continue;
		if (act->kind == SYNC_ACT_DELETE_LOCAL) {
			intent_init(&d->in[d->nin], STATE_INTENT_DELETE_LOCAL, g, act);
			d->in_mbox[d->nin++] = d->mbox_of[i];
		}
		for (size_t u = 0; act->kind == SYNC_ACT_EXPUNGE_REMOTE && u < act->nuids; u++) {
			intent_init(&d->in[d->nin], STATE_INTENT_EXPUNGE_REMOTE, g, act);
			d->in[d->nin].uid = act->uids[u];
			d->in[d->nin].msg = 0;
			d->in_mbox[d->nin++] = d->mbox_of[i];
		}
	}
}

static void del_run_release(struct del_run *d)
{
	free(d->mbox_of);
	free(d->mb);
	free(d->in);
	free(d->ids);
	free(d->in_mbox);
}

/*
 * Mailbox k failed with why: left out of the outcome.  A fatal error
 * (the connection's, the state's) is kept to end the run with, and fails
 * no mailbox by itself, as in eng_execute().
 */
static void del_fail(struct del_run *d, size_t k, const struct err *why)
{
	if (eng_err_fatal(why)) {
		if (!d->fatal)
			d->fatal_err = *why;
		d->fatal = true;
	} else if (!d->mb[k].bad) {
		eng_mbox_fail(d->g, d->mb[k].m, why);
	}
	d->mb[k].bad = true;
}

/* Whether x has an expunge to send (none, or failed: a fused run's flag part may fail it). */
static bool del_to_send(const struct del_mbox *x)
{
	return x->expunge != NULL && !x->bad && !x->m->failed;
}

/* Submit the next mailbox's expunge, if the window allows: false if none went. */
static bool del_submit_next(struct del_run *d)
{
	while (d->next_submit < d->nmb && d->inflight < EXEC_DELETE_WINDOW && !d->fatal) {
		struct del_mbox *x = &d->mb[d->next_submit++];
		struct err e2;

		if (!del_to_send(x))
			continue;
		err_clear(&e2);
		if (sync_remote_expunge_submit(d->g->r, x->m->sm.remote_name, x->expunge->uids,
					       x->expunge->nuids, &x->p, &e2) < 0) {
			del_fail(d, (size_t)(x - d->mb), &e2);
			continue;
		}
		d->inflight++;
		return true;
	}
	return false;
}

/* Submit the next mailboxes' expunges, up to the window. */
static void del_submit_more(struct del_run *d)
{
	while (del_submit_next(d))
		;
}

/* Step 3: every file of the run unlinked. */
static void del_unlink_all(struct del_run *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct sync_action *act = d->acts[i];
		struct del_mbox *x;
		const struct maildir_entry *ent;
		struct err e2;
		int r;

		if (act->kind != SYNC_ACT_DELETE_LOCAL || d->mbox_of[i] == SIZE_MAX)
			continue;
		x = &d->mb[d->mbox_of[i]];
		/* (failed: a mailbox of a fused run whose flag part failed, as if blocked) */
		if (x->bad || x->m->failed || (ent = eng_local_entry(d->g, x->m, act->name)) == NULL)
			continue;
		err_clear(&e2);
		sync_step("delete-local");
		r = maildir_entry_remove(&x->m->f, ent, &e2);
		if (r < 0) {
			del_fail(d, d->mbox_of[i], &e2);
		} else if (r == 0) {
			rep_of(d->g, x->m)->local.deleted++;
			x->removed = true;
		}
	}
}

/*
 * Step 4: the folders with unlinked files made durable.  With the syncfs
 * method one maildir_folder_sync() per file system covers the unlinks of
 * every folder on it (they all came before it); a folder with queued
 * deliveries of its own still gets its own (it completes them).  A failed
 * sync fails every folder it was to cover.
 */
static void del_sync_folders(struct del_run *d)
{
	struct eng_mbox **ms = xcalloc(d->nmb + 1, sizeof(*ms));
	bool *need = xcalloc(d->nmb + 1, sizeof(*need));
	bool *ok = xcalloc(d->nmb + 1, sizeof(*ok));
	struct err *why = xcalloc(d->nmb + 1, sizeof(*why));
	bool any = false;

	for (size_t k = 0; k < d->nmb; k++) {
		ms[k] = d->mb[k].m;
		need[k] = d->mb[k].removed;
		any |= need[k];
	}
	sync_folders(d->g, ms, need, d->nmb, ok, why);
	for (size_t k = 0; k < d->nmb; k++) {
		if (!need[k])
			continue;
		if (ok[k])
			d->mb[k].synced = true;
		else
			del_fail(d, k, &why[k]);
	}
	if (any)
		sync_step("deleted-local");
	free(ms);
	free(need);
	free(ok);
	free(why);
}

/* Step 5, pipelined: every answer read (submitting the rest as the window frees). */
static void del_remote_wait(struct del_run *d)
{
	for (size_t k = 0; k < d->nmb; k++) {
		struct del_mbox *x = &d->mb[k];
		struct err e2;

		del_submit_more(d);
		if (x->p == NULL)
			continue;
		err_clear(&e2);
		if (sync_remote_pending_wait(d->g->r, x->p, &e2) < 0) {
			del_fail(d, k, &e2);
		} else {
			x->remote_ok = true;
			rep_of(d->g, x->m)->remote.deleted += x->expunge->nuids;
		}
		x->p = NULL;
		d->inflight--;
	}
}

/* Step 5 without UIDPLUS: sync_remote_expunge(), one mailbox after the other. */
static void del_remote_serial(struct del_run *d)
{
	for (size_t k = 0; k < d->nmb && !d->fatal; k++) {
		struct del_mbox *x = &d->mb[k];
		struct err e2;

		if (x->expunge == NULL || x->bad)
			continue;
		err_clear(&e2);
		if (sync_remote_expunge(d->g->r, x->m->sm.remote_name, x->expunge->uids,
					x->expunge->nuids, &e2) < 0) {
			del_fail(d, k, &e2);
			continue;
		}
		x->remote_ok = true;
		rep_of(d->g, x->m)->remote.deleted += x->expunge->nuids;
	}
}

/*
 * Whether mailbox k went well: not failed, and everything of it done and
 * durable (a fatal error may have stopped the run before its expunge).
 */
static bool del_good(const struct del_run *d, size_t k)
{
	const struct del_mbox *x = &d->mb[k];

	return !x->bad && !x->m->failed && (x->expunge == NULL || x->remote_ok) &&
	       (!x->removed || x->synced);
}

/* Step 6: the records of the mailboxes that went well, their intents cleared. */
static int del_outcome(struct del_run *d, struct err *e)
{
	struct sync_action **done = xcalloc(d->n + 1, sizeof(*done));
	uint64_t *clear = xcalloc(d->nin + 1, sizeof(*clear));
	size_t nd = 0, nc = 0;
	int rc = 0;

	for (size_t i = 0; i < d->n; i++)
		if (d->mbox_of[i] != SIZE_MAX && del_good(d, d->mbox_of[i]) &&
		    d->acts[i]->rec_op != SYNC_REC_NONE)
			done[nd++] = d->acts[i];
	for (size_t i = 0; i < d->nin; i++)
		if (del_good(d, d->in_mbox[i]))
			clear[nc++] = d->ids[i];
	if (nd + nc > 0)
		rc = finish(d->g, done, NULL, nd, clear, nc, e);
	free(done);
	free(clear);
	return rc;
}

/* A commit of the run failed with e: fatal, or every mailbox of the run fails. */
static int del_fail_all(struct del_run *d, struct err *e)
{
	if (eng_err_fatal(e))
		return -1;
	for (size_t k = 0; k < d->nmb; k++)
		del_fail(d, k, e);
	err_clear(e);
	return 0;
}

/*
 * Carry out a deletion run (del_run_len()).  Returns -1 only for a fatal
 * error (e); a mailbox that fails is failed here and the run goes on.
 */
static int exec_deletion_run(struct eng *g, struct sync_action **acts, size_t n, struct err *e)
{
	bool pipelined = sync_remote_can_pipeline_expunges(g->r);
	bool remote = false;
	struct del_run d;
	int rc = 0;

	del_run_init(&d, g, acts, n);
	for (size_t k = 0; k < d.nmb; k++)
		remote |= d.mb[k].expunge != NULL;
	if (d.nin > 0 && add_intents(g, d.in, d.nin, d.ids, e) < 0) {
		rc = del_fail_all(&d, e);
		goto out;
	}
	if (remote)
		sync_step("expunge-remote");
	if (remote && pipelined) {
		del_submit_more(&d);
		sync_remote_send(g->r);
	}
	del_unlink_all(&d);
	del_sync_folders(&d);
	if (remote && pipelined)
		del_remote_wait(&d);
	else if (remote)
		del_remote_serial(&d);
	if (remote && !d.fatal)
		sync_step("expunged-remote");
	if (del_outcome(&d, e) < 0)
		rc = del_fail_all(&d, e);
	else if (d.fatal)
		rc = -1;
	if (d.fatal)
		*e = d.fatal_err;
out:
	del_run_release(&d);
	return rc;
}

/*
 * A flag-store run (flags_run_len) followed at once in the plan by a
 * deletion run, the expunges pipelined (UIDPLUS): carried out as one
 * ("fused").  Each mailbox's expunge goes out right behind its stores,
 * under the same SELECT (one round trip per mailbox where the two runs
 * one after the other took two), and the server works through both while
 * the local flag renames and the unlinks are done.  Each part keeps its
 * own order and outcome: the deletion intents are committed before the
 * first expunge or unlink goes out; the flag renames' records once their
 * folders are synced; the stores' records once answered; the deletions'
 * once answered and synced.  A mailbox that fails in either part fails,
 * and the deletion part then records nothing of it (del_good): its
 * intents stay for the next run (eng_replay_intents), as when its own
 * part fails.
 */
static void fused_submit_more(struct fl_run *f, struct del_run *d)
{
	bool sent = true;

	while (sent && !f->fatal && !d->fatal) {
		const struct eng_mbox *last = f->next_submit > 0 ? f->segs[f->next_submit - 1].m : NULL;

		/* the expunge of the mailbox whose stores just went: selected already */
		if (d->next_submit < d->nmb && d->mb[d->next_submit].m == last) {
			if (del_to_send(&d->mb[d->next_submit]))
				sent = del_submit_next(d);
			else
				d->next_submit++;       /* nothing to send for it */
			continue;
		}
		sent = fl_submit_next(f);
		/* the other expunges once every store is out (each selects again) */
		if (!sent && f->next_submit >= f->nsegs)
			sent = del_submit_next(d);
	}
}

static int exec_flags_and_deletions(struct eng *g, struct sync_action **acts, size_t n,
				    struct err *e)
{
	size_t nr = 0, nf;
	bool remote = false;
	struct fl_run f;
	struct del_run d;
	struct err le, de;
	int lrc, frc, drc = 0;

	while (nr < n && acts[nr]->kind == SYNC_ACT_FLAGS_REMOTE)
		nr++;
	for (nf = nr; nf < n && acts[nf]->kind == SYNC_ACT_FLAGS_LOCAL; nf++)
		;
	fl_run_init(&f, g, acts, nr);
	del_run_init(&d, g, acts + nf, n - nf);
	err_clear(&de);
	if (d.nin > 0 && add_intents(g, d.in, d.nin, d.ids, &de) < 0) {
		if (del_fail_all(&d, &de) < 0) {
			fl_run_release(&f);
			del_run_release(&d);
			*e = de;
			return -1;      /* fatal, before anything was done */
		}
	}
	for (size_t k = 0; k < d.nmb; k++)
		remote |= del_to_send(&d.mb[k]);
	if (f.nsegs > 0)
		sync_step("flags-remote");
	if (remote)
		sync_step("expunge-remote");
	fused_submit_more(&f, &d);
	sync_remote_send(g->r);
	err_clear(&le);
	lrc = fl_locals(g, acts + nr, nf - nr, &le);
	del_unlink_all(&d);
	del_sync_folders(&d);
	fl_run_stores(&f, &d);
	frc = fl_run_outcome(&f, e);
	del_remote_wait(&d);
	if (remote && !d.fatal && !f.fatal)
		sync_step("expunged-remote");
	if (del_outcome(&d, &de) < 0)
		drc = del_fail_all(&d, &de);
	/* the first fatal error ends the run; the rest was recorded above */
	if (f.fatal) {
		*e = f.fatal_err;
		frc = -1;
	} else if (frc == 0 && lrc < 0) {
		*e = le;
		frc = -1;
	}
	if (frc == 0 && (d.fatal || drc < 0)) {
		*e = d.fatal ? d.fatal_err : de;
		frc = -1;
	}
	fl_run_release(&f);
	del_run_release(&d);
	return frc;
}

/* ---------------------------------------------------------------- dispatch */

static bool action_blocked(struct eng *g, const struct sync_action *a)
{
	struct eng_mbox *m = eng_mbox_by_id(g, a->mailbox);
	struct eng_mbox *t = eng_mbox_by_id(g, a->to_mailbox);

	return m == NULL || m->failed || (t != NULL && t->failed);
}

/* How many actions from i on form one batch with actions[i]. */
static size_t batch_len(struct eng *g, size_t i)
{
	const struct sync_action *a = &g->plan.actions[i];
	size_t cap = a->kind == SYNC_ACT_DOWNLOAD ? EXEC_DOWNLOAD_BATCH
		   : a->kind == SYNC_ACT_MOVE_REMOTE ? EXEC_MOVE_BATCH
		   : a->kind == SYNC_ACT_UPLOAD ? EXEC_UPLOAD_RUN
		   : a->kind == SYNC_ACT_FLAGS_LOCAL ? EXEC_FLAGS_BATCH
		   : a->kind == SYNC_ACT_RECORD || a->kind == SYNC_ACT_MAILBOX_STATE ? SIZE_MAX : 1;
	size_t j = i + 1;

	if (del_run_kind(a->kind))
		return del_run_len(g, i);
	if (a->kind == SYNC_ACT_FLAGS_REMOTE) {
		size_t n = flags_run_len(g, i), k = i + n;

		/* a deletion run right behind (the plan puts its record-only
		 * actions between): carried out with it, exec_flags_and_deletions() */
		while (k < g->plan.nactions && g->plan.actions[k].kind == SYNC_ACT_RECORD)
			k++;
		if (k < g->plan.nactions && del_run_kind(g->plan.actions[k].kind) &&
		    sync_remote_can_pipeline_expunges(g->r) &&
		    getenv("FERRY_TEST_NO_FUSE") == NULL)
			n += del_run_len(g, i + n);
		return n;
	}
	while (j < g->plan.nactions && j - i < cap) {
		const struct sync_action *b = &g->plan.actions[j];

		if (b->kind != a->kind || action_blocked(g, b))
			break;
		if (a->kind != SYNC_ACT_RECORD && a->kind != SYNC_ACT_MAILBOX_STATE &&
		    a->kind != SYNC_ACT_UPLOAD &&
		    (b->mailbox != a->mailbox || b->to_mailbox != a->to_mailbox))
			break;
		if (a->kind == SYNC_ACT_MOVE_REMOTE) {
			bool dup = false;

			for (size_t k = i; k < j; k++)
				dup |= g->plan.actions[k].uid == b->uid;
			if (dup)
				break;
		}
		j++;
	}
	return j - i;
}

static int exec_records(struct eng *g, struct sync_action **acts, size_t n, struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		struct eng_mbox *m = eng_mbox_by_id(g, acts[i]->mailbox);

		if (m != NULL)
			rep_of(g, m)->records++;
	}
	return finish(g, acts, NULL, n, NULL, 0, e);
}

static int exec_batch(struct eng *g, struct sync_action **acts, size_t n, struct err *e)
{
	struct sync_action *act = acts[0];
	struct eng_mbox *m = eng_mbox_by_id(g, act->mailbox);

	switch (act->kind) {
	case SYNC_ACT_CREATE_FOLDER:
	case SYNC_ACT_DELETE_FOLDER:
		return exec_folder(g, act, m, e);
	case SYNC_ACT_MAILBOX_STATE:
		return exec_mailbox_states(g, acts, n, e);
	case SYNC_ACT_DOWNLOAD:
		return exec_downloads(g, m, acts, n, e);
	case SYNC_ACT_UPLOAD:
		return exec_uploads(g, acts, n, e);
	case SYNC_ACT_FLAGS_REMOTE:
		/* batch_len() made it a flag-store run, or one with a deletion run behind */
		if (acts[n - 1]->kind != SYNC_ACT_FLAGS_REMOTE &&
		    acts[n - 1]->kind != SYNC_ACT_FLAGS_LOCAL)
			return exec_flags_and_deletions(g, acts, n, e);
		return exec_flags_remote_run(g, acts, n, e);
	case SYNC_ACT_FLAGS_LOCAL:
		return exec_flags_local(g, m, acts, n, e);
	case SYNC_ACT_MOVE_REMOTE:
		return exec_moves_remote(g, m, acts, n, e);
	case SYNC_ACT_MOVE_LOCAL:
		return exec_move_local(g, act, m, e);
	case SYNC_ACT_RECORD:
		return exec_records(g, acts, n, e);
	case SYNC_ACT_EXPUNGE_REMOTE:
	case SYNC_ACT_DELETE_LOCAL:
		return exec_deletion_run(g, acts, n, e);
	default:
		return err_set(e, ERR_INTERNAL, "unknown action kind %d", (int)act->kind);
	}
}

static void log_action(struct eng *g, const struct sync_action *a)
{
	char *line;

	if (!log_enabled(LOG_DEBUG))
		return;
	line = eng_describe(g, a);
	log_msg(LOG_DEBUG, LOG_CAT_SYNC, "account \"%s\": %s", g->o->account ? g->o->account : "",
		line);
	free(line);
}

int eng_execute(struct eng *g, struct err *e)
{
	struct sync_action **acts = xcalloc(g->plan.nactions + 1, sizeof(*acts));
	size_t i = 0;

	eng_progress_start(g);
	dl_lanes_early(g);
	while (i < g->plan.nactions) {
		size_t n;

		if (action_blocked(g, &g->plan.actions[i])) {
			i++;
			continue;
		}
		if (g->plan.actions[i].kind != SYNC_ACT_DOWNLOAD && dl_tails_settle(g, e) < 0)
			goto fatal;
		if (action_blocked(g, &g->plan.actions[i]))
			continue;       /* its mailbox failed to settle */
		if (g->plan.actions[i].kind == SYNC_ACT_DOWNLOAD) {
			size_t j = dl_run_end(g, i), want = dl_lanes_wanted(g, i, j);

			if (want > 1) {
				if (exec_download_lanes(g, i, j, want, e) < 0)
					goto fatal;
				i = j;
				continue;
			}
		}
		n = batch_len(g, i);
		for (size_t k = 0; k < n; k++) {
			acts[k] = &g->plan.actions[i + k];
			log_action(g, acts[k]);
		}
		if (exec_batch(g, acts, n, e) < 0) {
			struct eng_mbox *m = eng_mbox_by_id(g, acts[0]->mailbox);

			if (eng_err_fatal(e) || m == NULL)
				goto fatal;
			eng_mbox_fail(g, m, e);
			err_clear(e);
		} else {
			g->rep->done += n;
		}
		i += n;
	}
	if (dl_tails_settle(g, e) < 0 || dl_intents_unused(g, e) < 0)
		goto fatal;
	eng_progress_end(g);
	free(acts);
	free(g->dl_ids);
	g->dl_ids = NULL;
	return 0;
fatal:
	dl_tails_drop(g);
	eng_progress_end(g);
	free(acts);
	free(g->dl_ids);
	g->dl_ids = NULL;
	return -1;
}

/* ---------------------------------------------------------------- intents left by a killed run */

struct replay_ctx {
	struct eng *g;
	struct state_intent *list;
	size_t n;
	uint32_t *found;                /* per intent: the upload's UID, or 0 */
	const char **whole;             /* per intent: a replacement's whole copy, or NULL */
};

static int replay_fn(struct state_txn *txn, void *ctx, struct err *e)
{
	struct replay_ctx *c = ctx;
	struct arena a;
	int rc = 0;

	arena_init(&a, 4096);
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		struct state_msg msg;

		if (c->found[i] != 0 && c->list[i].msg != 0) {
			int got = state_msg_get(txn, c->list[i].msg, &a, &msg, e);

			if (got < 0)
				rc = -1;
			else if (got == 1 && msg.uid == 0 && msg.mailbox == c->list[i].mailbox) {
				msg.uid = c->found[i];
				rc = state_msg_update(txn, &msg, e);
			}
		}
		if (rc == 0 && c->whole[i] != NULL) {
			int got = state_msg_get(txn, c->list[i].msg, &a, &msg, e);

			if (got < 0)
				rc = -1;
			else if (got == 1 && msg.placeholder && msg.mailbox == c->list[i].mailbox) {
				msg.name = c->whole[i];
				msg.placeholder = false;
				rc = state_msg_update(txn, &msg, e);
			}
		}
		if (rc == 0 && state_intent_clear(txn, c->list[i].id, e) < 0)
			rc = -1;
	}
	arena_release(&a);
	return rc;
}

/* The entry whose unique name is `uniq`, or `uniq` plus ",...": a delivery's
 * name before and after commit added ",S=SIZE". */
static const struct maildir_entry *find_delivered(const struct maildir_snapshot *snap,
						  const char *uniq)
{
	size_t n = strlen(uniq);

	for (size_t i = 0; n > 0 && i < snap->count; i++) {
		const char *u = snap->entries[i].uniq;

		if (strncmp(u, uniq, n) == 0 && (u[n] == '\0' || u[n] == ','))
			return &snap->entries[i];
	}
	return NULL;
}

/*
 * An interrupted placeholder replacement (replace_intent()).  The whole
 * copy is in the folder: make it durable, remove the placeholder file of
 * the record (if still there), and have replay_fn move the record to the
 * whole copy (*whole_out).  It is not: it never left tmp/; nothing to do
 * (the next plan fetches it whole again).
 */
static int replay_replace(struct eng *g, const struct state_intent *in, const char **whole_out,
			  struct err *e)
{
	struct eng_mbox *m = eng_mbox_by_id(g, in->mailbox);
	const struct maildir_entry *whole, *ph;
	struct maildir_snapshot snap;
	struct state_txn *txn;
	struct state_msg rec;
	struct arena a;
	int rc;

	*whole_out = NULL;
	if (m == NULL || in->msg == 0 || in->name == NULL || in->name[0] == '\0')
		return 0;
	arena_init(&a, 1024);
	rc = state_txn_begin(g->st, false, &txn, e);
	if (rc == 0) {
		rc = state_msg_get(txn, in->msg, &a, &rec, e);
		state_txn_abort(txn);
	}
	if (rc <= 0 || !rec.placeholder || rec.mailbox != in->mailbox || rec.name == NULL) {
		arena_release(&a);
		return rc < 0 ? -1 : 0;
	}
	rc = eng_local_folder(g, m, false, e);
	if (rc != 0 || maildir_scan(&m->f, &snap, e) < 0) {
		arena_release(&a);
		return rc == 1 ? 0 : -1;
	}
	whole = find_delivered(&snap, in->name);
	ph = maildir_snapshot_find(&snap, rec.name);
	rc = 0;
	if (whole != NULL && maildir_folder_sync(&m->f, e) < 0)
		rc = -1;
	if (rc == 0 && whole != NULL && ph != NULL && ph != whole) {
		sync_step("replace-placeholder");
		rc = maildir_entry_remove(&m->f, ph, e) < 0 || maildir_folder_sync(&m->f, e) < 0 ? -1 : 0;
	}
	if (rc == 0 && whole != NULL)
		*whole_out = arena_strdup(&g->a, whole->uniq);
	maildir_snapshot_release(&snap);
	arena_release(&a);
	return rc;
}

/* An interrupted upload: did the message reach the server? */
static int replay_upload(struct eng *g, const struct state_intent *in, uint32_t *uid_out,
			 struct err *e)
{
	struct eng_mbox *m = eng_mbox_by_id(g, in->mailbox);
	struct sync_fp fp = { SYNC_FP_KNOWN, { 0 } };

	*uid_out = 0;
	if (m == NULL || !m->remote_exists || in->uidnext == 0 || in->msg == 0)
		return 0;
	memcpy(fp.bytes, in->body_hash, SYNC_FP_LEN);
	return sync_remote_find_fp(g->r, m->sm.remote_name, in->uidnext, &fp, uid_out, e);
}

/*
 * Rename intents stay pending: they are hints for the rename phase
 * (engine_rename.c), which clears them.  They leave the list replayed here.
 */
static void keep_rename_hints(struct eng *g, struct replay_ctx *c)
{
	size_t k = 0;

	g->hints = arena_zalloc(&g->a, (c->n + 1) * sizeof(*g->hints));
	g->hint_ids = arena_zalloc(&g->a, (c->n + 1) * sizeof(*g->hint_ids));
	for (size_t i = 0; i < c->n; i++) {
		const struct state_intent *in = &c->list[i];

		if (in->kind != STATE_INTENT_RENAME_FOLDER) {
			c->list[k++] = *in;
			continue;
		}
		g->hints[g->nhints].from = in->mailbox;
		g->hints[g->nhints].into_remote = in->target;
		g->hints[g->nhints].into_local = in->uid;
		g->hint_ids[g->nhints++] = in->id;
	}
	c->n = k;
}

/*
 * A run killed while its APPENDs (or a MOVE) were on the wire leaves the
 * server carrying out what it had already received, after the client is
 * gone, for as long as that takes.  A message it appends after this run
 * looked for it would be uploaded again: a duplicate (and downloaded back
 * as one).  So when an upload or remote-move intent is recent (younger
 * than SETTLE_AGE s), wait first until each of its target mailboxes stops
 * growing: UIDNEXT unchanged for SETTLE_QUIET_MS, asked every
 * SETTLE_STEP_MS, for at most SETTLE_MAX_MS.  Only a run that follows a
 * killed one soon pays for it.
 */
#define SETTLE_AGE 300
#define SETTLE_STEP_MS 200
#define SETTLE_QUIET_MS 1000
#define SETTLE_MAX_MS 15000

static int settle_targets(struct eng *g, const struct replay_ctx *c, struct err *e)
{
	const char **names = xcalloc(c->n + 1, sizeof(*names));
	struct imap_status_data *st = xcalloc(c->n + 1, sizeof(*st));
	uint32_t *last = xcalloc(c->n + 1, sizeof(*last));
	int64_t now = (int64_t)time(NULL), t0, quiet_since;
	size_t nn = 0;
	int rc = 0;

	for (size_t i = 0; i < c->n; i++) {
		const struct state_intent *in = &c->list[i];
		struct eng_mbox *m;
		size_t k = 0;

		if (in->kind != STATE_INTENT_UPLOAD && in->kind != STATE_INTENT_MOVE_REMOTE)
			continue;
		if (in->created < now - SETTLE_AGE || in->created > now + SETTLE_AGE)
			continue;
		m = eng_mbox_by_id(g, in->kind == STATE_INTENT_UPLOAD ? in->mailbox : in->target);
		if (m == NULL || !m->remote_exists || m->sm.remote_name == NULL)
			continue;
		while (k < nn && strcmp(names[k], m->sm.remote_name) != 0)
			k++;
		if (k == nn)
			names[nn++] = m->sm.remote_name;
	}
	t0 = quiet_since = clock_now_ms();
	for (bool first = true; nn > 0; first = false) {
		struct timespec step = { 0, SETTLE_STEP_MS * 1000000L };

		if (sync_remote_status_each(g->r, names, nn, st, e) < 0) {
			rc = -1;
			break;
		}
		for (size_t k = 0; k < nn; k++)
			if (first || st[k].uidnext != last[k]) {
				last[k] = st[k].uidnext;
				quiet_since = clock_now_ms();
			}
		if (clock_now_ms() - quiet_since >= SETTLE_QUIET_MS || clock_now_ms() - t0 >= SETTLE_MAX_MS)
			break;
		nanosleep(&step, NULL);
	}
	if (nn > 0)
		log_msg(LOG_DEBUG, LOG_CAT_SYNC, "waited %lld ms for %zu mailbox(es) to settle after a killed run",
			  (long long)(clock_now_ms() - t0), nn);
	free(last);
	free(st);
	free(names);
	return rc;
}

int eng_replay_intents(struct eng *g, struct err *e)
{
	struct replay_ctx c = { .g = g };
	struct state_txn *txn;
	struct arena a;
	int rc = -1;

	arena_init(&a, 4096);
	if (state_txn_begin(g->st, false, &txn, e) < 0)
		goto out;
	rc = state_intent_list(txn, &a, &c.list, &c.n, e);
	state_txn_abort(txn);
	if (rc < 0 || c.n == 0)
		goto out;
	c.found = xcalloc(c.n, sizeof(*c.found));
	c.whole = xcalloc(c.n, sizeof(*c.whole));
	keep_rename_hints(g, &c);
	if ((rc = settle_targets(g, &c, e)) < 0)
		goto out;
	for (size_t i = 0; i < c.n; i++) {
		if (c.list[i].kind == STATE_INTENT_UPLOAD &&
		    (rc = replay_upload(g, &c.list[i], &c.found[i], e)) < 0)
			goto out;
		if (c.list[i].kind == STATE_INTENT_REPLACE_LOCAL &&
		    (rc = replay_replace(g, &c.list[i], &c.whole[i], e)) < 0)
			goto out;
	}
	rc = c.n ? eng_commit(g, replay_fn, &c, e) : 0;
out:
	free(c.found);
	free(c.whole);
	arena_release(&a);
	return rc;
}
