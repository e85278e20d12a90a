/*
 * progress.c - telling opts->progress where message transfers stand
 * (engine.h, struct sync_progress).  The engine only counts; how and how
 * often to show it is the listener's business.
 */
#include "engine_int.h"

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
}

static void tell(struct eng *g, const struct eng_mbox *m, bool upload)
{
	g->prog.mailbox = m->sm.remote_name ? m->sm.remote_name : m->sm.local_name;
	g->prog.upload = upload;
	g->o->progress(g->o->progress_ctx, &g->prog);
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
