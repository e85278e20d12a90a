/*
 * progress.c - telling opts->progress where message transfers stand
 * (engine.h, struct sync_progress).  The engine only counts; how and how
 * often to show it is the listener's business.
 */
#include "engine_int.h"

/* An APPEND's data being read: the mailbox is the one the upload announced. */
static void upload_chunk(void *ctx, uint64_t n)
{
	struct eng *g = ctx;

	g->prog.bytes_done += n;
	g->o->progress(g->o->progress_ctx, &g->prog);
}

void eng_progress_start(struct eng *g)
{
	struct sync_progress *p = &g->prog;

	p->msgs_done = p->msgs_total = 0;
	p->bytes_done = p->bytes_total = 0;
	for (size_t i = 0; i < g->plan.nactions; i++) {
		const struct sync_action *a = &g->plan.actions[i];

		if (a->kind != SYNC_ACT_DOWNLOAD && a->kind != SYNC_ACT_UPLOAD)
			continue;
		p->msgs_total++;
		if (!a->placeholder)
			p->bytes_total += a->size;
	}
	if (g->o->progress)
		sync_remote_set_upload_progress(g->r, upload_chunk, g);
}

void eng_progress_end(struct eng *g)
{
	if (g->o->progress)
		sync_remote_set_upload_progress(g->r, NULL, NULL);
}

static void tell(struct eng *g, const struct eng_mbox *m, bool upload)
{
	g->prog.mailbox = m->sm.remote_name ? m->sm.remote_name : m->sm.local_name;
	g->prog.upload = upload;
	g->o->progress(g->o->progress_ctx, &g->prog);
}

void eng_progress_upload(struct eng *g, const struct sync_action *act, const struct eng_mbox *m,
			 uint64_t size)
{
	if (g->o->progress == NULL)
		return;
	if (act->size == 0)
		g->prog.bytes_total += size;
	tell(g, m, true);
}

void eng_progress_bytes(struct eng *g, const struct eng_mbox *m, bool upload, uint64_t n)
{
	if (g->o->progress == NULL)
		return;
	g->prog.bytes_done += n;
	tell(g, m, upload);
}

void eng_progress_msg(struct eng *g, const struct eng_mbox *m, bool upload, uint64_t bytes)
{
	if (g->o->progress == NULL)
		return;
	g->prog.bytes_done += bytes;
	if (g->prog.msgs_done < g->prog.msgs_total)
		g->prog.msgs_done++;
	tell(g, m, upload);
}
