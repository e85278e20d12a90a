/*
 * remote_xfer.c - fingerprints (BODY.PEEK[HEADER] streamed into the
 * fingerprint context), streamed downloads (BODY.PEEK[] into the caller's
 * sink) and uploads (APPEND, the UID from APPENDUID or by fingerprint).
 */
#include "remote_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imap/cmd.h"
#include "fp.h"
#include "xalloc.h"

#define DOWNLOAD_BATCH 32u      /* UIDs per UID FETCH of bodies */
#define FP_BATCH 256u           /* UIDs per UID FETCH of headers */
#define READ_CHUNK 65536u

/* ---- fingerprints -------------------------------------------------------------- */

struct fp_run {
	struct sync_remote *r;
	sync_remote_fp_fn fn;
	void *ctx;
	uint32_t uid_min;               /* lower bound (find_fp); 0: any */
	/* Pipelined behind a SELECT: nothing is taken before the server reached
	 * it, nor after it showed another UIDVALIDITY (remote_selecting_check). */
	const struct remote_selecting *gate;
	const char *name;               /* the mailbox (UTF-8) */
	bool gate_checked;              /* the gate's UIDVALIDITY was checked (and matched) */
	int failed;                     /* the callback's return, once non-zero */
	struct err err;
};

/* The fingerprint of a header that came as a string (not streamed). */
static int fp_of_string(const char *s, size_t len, uint64_t size, struct sync_fp_value *v,
			struct err *e)
{
	struct sync_fp_ctx c;

	if (sync_fp_init(&c, e) < 0)
		return -1;
	sync_fp_update(&c, s, len);
	sync_fp_final_size(&c, size, v);
	return 0;
}

static int fp_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	struct fp_run *fr = ctx;
	const struct imap_arg *list, *hdr, *size;
	struct remote_lit *l = NULL;
	struct sync_fp_value v;
	struct sync_fp fp;
	uint64_t sz = 0;
	uint32_t uid;
	const char *s;
	size_t len;
	int rc;

	if (resp->kind != IMAP_RESP_UNTAGGED || resp->name == NULL ||
	    strcmp(resp->name, "FETCH") != 0 || resp->nargs != 1 ||
	    resp->args[0].type != IMAP_ARG_LIST ||
	    (fr->gate != NULL && !remote_selecting_reached(fr->gate)))
		return 0;
	list = &resp->args[0];
	hdr = imap_fetch_item(list, "BODY[HEADER]");
	if (hdr == NULL)
		return 1;           /* a flag update: not for us */
	if (hdr->type == IMAP_ARG_LITERAL_STREAMED) {
		l = hdr->handle;
		remote_lit_claim(fr->r, l);
		if (l->mode != REMOTE_SINK_HEADER) {
			remote_lit_release(fr->r, l);   /* detached: not ours any more */
			return 1;
		}
	}
	uid = remote_fetch_uid(resp);
	size = imap_fetch_item(list, "RFC822.SIZE");
	if (uid == 0 || size == NULL || !imap_arg_u64(size, &sz)) {
		if (l)
			remote_lit_release(fr->r, l);
		return err_set(e, ERR_PROTO, "server sent a FETCH without UID or RFC822.SIZE");
	}
	if (l) {
		sync_fp_final_size(l->fp, sz, &v);
		free(l->fp);
		l->fp = NULL;
		remote_lit_release(fr->r, l);
	} else {
		s = imap_arg_str(hdr, &len);
		if (fp_of_string(s ? s : "", s ? len : 0, sz, &v, e) < 0)
			return -1;
	}
	if (fr->failed || uid < fr->uid_min)
		return 1;
	/* (once: the SELECT's untagged data all came before its FETCHes' answers) */
	if (fr->gate != NULL && !fr->gate_checked) {
		if (remote_selecting_check(fr->gate, fr->name, &fr->err) < 0)
			return 1;       /* another mailbox's UIDs: the SELECT's wait fails the job */
		fr->gate_checked = true;
	}
	memset(&fp, 0, sizeof(fp));
	fp.state = SYNC_FP_KNOWN;
	memcpy(fp.bytes, v.bytes, SYNC_FP_LEN);
	err_clear(&fr->err);
	rc = fr->fn(fr->ctx, uid, &fp, v.message_id[0] ? v.message_id : NULL, sz, &fr->err);
	if (rc != 0)
		fr->failed = rc;
	return 1;
}

static int fps_run(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
		   const char *range, struct fp_run *fr, struct err *e)
{
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);
	int rc;

	if (remote_select(r, name, e) < 0)
		return -1;
	r->sink_mode = REMOTE_SINK_HEADER;
	if (range)
		rc = buf_addf(&b, e, "UID FETCH %s (UID RFC822.SIZE BODY.PEEK[HEADER])", range) < 0
			? -1 : remote_run(r, &b, fp_untagged, fr, NULL, e);
	else
		rc = remote_run_uid_sets(r, "UID FETCH ", " (UID RFC822.SIZE BODY.PEEK[HEADER])",
					 uids, n, FP_BATCH, fp_untagged, fr, e);
	r->sink_mode = REMOTE_SINK_OFF;
	remote_lits_abort_all(r);
	buf_release(&b);
	if (rc == 0 && fr->failed) {
		*e = fr->err;
		return fr->failed;
	}
	return rc < 0 ? err_prefix(e, "fingerprints in mailbox \"%s\"", name) : 0;
}

int sync_remote_fetch_fps(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
			  sync_remote_fp_fn fn, void *ctx, struct err *e)
{
	struct fp_run fr = { .r = r, .fn = fn, .ctx = ctx };

	if (n == 0)
		return 0;
	return fps_run(r, name, uids, n, NULL, &fr, e);
}

/*
 * Several mailboxes' fingerprints in flight (sync_remote_fetch_fps_many):
 * each one's SELECT (left out for the first when its mailbox is selected)
 * and UID FETCH commands are sent without waiting, up to FP_AHEAD mailboxes
 * ahead of the one whose answers are read.  Handlers are gated by their
 * SELECT, as the scans ahead are (remote_scan.c).  A SELECT that fails
 * fails its job alone: the server then has no mailbox selected, so the
 * FETCHes behind it fail too and run in no other mailbox.
 */
#define FP_AHEAD 16u

struct fp_ahead {
	struct sync_remote_fp_job *job;
	struct fp_run fr;
	struct remote_selecting s;
	bool selecting;                 /* s was sent */
	struct remote_cmds q;           /* the FETCHes */
	int submit_rc;                  /* -1: a submit failed (submit_err) */
	struct err submit_err;
};

static void fp_ahead_start(struct sync_remote *r, struct fp_ahead *w, struct sync_remote_fp_job *job,
			   bool first)
{
	struct err *e = &w->submit_err;

	memset(w, 0, sizeof(*w));
	w->job = job;
	w->fr = (struct fp_run){ .r = r, .fn = job->fn, .ctx = job->ctx, .name = job->name };
	if (job->n == 0)
		return;
	if (!first || r->selected == NULL || strcmp(r->selected, job->name) != 0) {
		if (remote_select_submit(r, job->name, NULL, NULL, NULL, &w->s, e) < 0) {
			w->submit_rc = -1;
			return;
		}
		w->selecting = true;
		w->fr.gate = &w->s;
	}
	if (remote_submit_uid_sets(r, "UID FETCH ", " (UID RFC822.SIZE BODY.PEEK[HEADER])",
				   job->uids, job->n, FP_BATCH, fp_untagged, &w->fr, &w->q, e) < 0)
		w->submit_rc = -1;
}

/* Wait for w's answers; the job's result (the SELECT's error first). */
static void fp_ahead_finish(struct sync_remote *r, struct fp_ahead *w)
{
	struct sync_remote_fp_job *job = w->job;
	struct err e2;
	int rc = 0;

	err_clear(&job->err);
	if (w->selecting && remote_select_wait(&w->s, job->name, &job->err) < 0)
		rc = -1;
	err_clear(&e2);
	if (remote_cmds_wait(r, &w->q, NULL, NULL, &e2) < 0 && rc == 0) {
		job->err = e2;
		rc = -1;
	}
	if (rc == 0 && w->submit_rc < 0) {
		job->err = w->submit_err;
		rc = -1;
	}
	if (rc == 0 && w->fr.failed) {
		job->err = w->fr.err;
		job->rc = w->fr.failed;
		return;
	}
	if (rc < 0)
		err_prefix(&job->err, "fingerprints in mailbox \"%s\"", job->name);
	job->rc = rc;
}

void sync_remote_fetch_fps_many(struct sync_remote *r, struct sync_remote_fp_job *jobs, size_t n)
{
	struct fp_ahead *w;
	size_t next = 0, done = 0;

	if (n == 0)
		return;
	w = xcalloc(FP_AHEAD, sizeof(*w));
	r->sink_mode = REMOTE_SINK_HEADER;
	while (done < n) {
		for (; next < n && next - done < FP_AHEAD; next++)
			fp_ahead_start(r, &w[next % FP_AHEAD], &jobs[next], next == done);
		fp_ahead_finish(r, &w[done % FP_AHEAD]);
		done++;
	}
	r->sink_mode = REMOTE_SINK_OFF;
	remote_lits_abort_all(r);
	free(w);
}

struct find_ctx {
	const struct sync_fp *want;
	uint32_t found;
};

static int find_cb(void *ctx, uint32_t uid, const struct sync_fp *fp, const char *message_id,
		   uint64_t size, struct err *e)
{
	struct find_ctx *fc = ctx;

	(void)message_id;
	(void)size;
	(void)e;
	if (memcmp(fp->bytes, fc->want->bytes, SYNC_FP_LEN) == 0 && (fc->found == 0 || uid < fc->found))
		fc->found = uid;
	return 0;
}

int sync_remote_find_fp(struct sync_remote *r, const char *name, uint32_t uid_min,
			const struct sync_fp *fp, uint32_t *uid_out, struct err *e)
{
	struct find_ctx fc = { fp, 0 };
	struct fp_run fr = { .r = r, .fn = find_cb, .ctx = &fc, .uid_min = uid_min ? uid_min : 1 };
	char range[32];

	*uid_out = 0;
	/* Re-select: the selected state's view may predate the message. */
	if (r->selected && strcmp(r->selected, name) == 0) {
		struct buf b = BUF_INIT(16);
		int rc = buf_adds(&b, "NOOP", e) < 0 ? -1 : remote_run(r, &b, NULL, NULL, NULL, e);

		buf_release(&b);
		if (rc < 0)
			return -1;
	}
	/* "n:*" also returns the highest message when every UID is below n: filtered. */
	snprintf(range, sizeof(range), "%u:*", fr.uid_min);
	if (fps_run(r, name, NULL, 0, range, &fr, e) != 0)
		return -1;
	*uid_out = fc.found;
	return 0;
}

/* ---- downloads -------------------------------------------------------------------- */

struct dl_run {
	struct sync_remote *r;
	const struct sync_remote_sink *sink;
	const char *item;               /* "BODY[]" or "BODY[HEADER]" */
	const uint32_t *uids;
	size_t n;
	bool *got;                      /* [n] */
	const struct remote_selecting *gate;    /* the SELECT sent with the FETCHes, or NULL */
	const char *name;               /* the mailbox (UTF-8) */
	bool gate_checked;              /* the gate's UIDVALIDITY was checked */
	bool failed;
	struct err err;
	struct arena a;                 /* flags of one response, reset after each */
};

static int month_index(const char *m)
{
	static const char *const names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int i;

	for (i = 0; i < 12; i++)
		if (strncasecmp(m, names[i], 3) == 0)
			return i;
	return -1;
}

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be space-padded) -> time_t; 0 if malformed. */
static time_t parse_internaldate(const char *s)
{
	struct tm tm;
	int day, year, hh, mm, ss, zone, mon, n = 0;
	char mname[4] = { 0 }, sign;
	time_t t;

	if (s == NULL)
		return 0;
	while (*s == ' ')
		s++;
	if (sscanf(s, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &day, mname, &year, &hh, &mm, &ss, &sign,
		   &zone, &n) != 8 || n == 0 || (sign != '+' && sign != '-'))
		return 0;
	mon = month_index(mname);
	if (mon < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970)
		return 0;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = timegm(&tm);
	zone = (zone / 100) * 3600 + (zone % 100) * 60;
	return sign == '+' ? t - zone : t + zone;
}

static size_t uid_pos(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uids[mid] == uid)
			return mid;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

/* A body that came as a string (tiny messages): through the sink all the same. */
static int dl_body_string(struct dl_run *dr, const struct imap_arg *body, void **handle_out,
			  struct err *e)
{
	const struct sync_remote_sink *k = dr->sink;
	size_t len = 0;
	const char *s = imap_arg_str(body, &len);

	if (k->begin(k->ctx, len, handle_out, e) < 0)
		return -1;
	if (len && k->data(k->ctx, *handle_out, s, len, e) < 0) {
		if (k->abort)
			k->abort(k->ctx, *handle_out);
		return -1;
	}
	return 0;
}

static int dl_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	struct dl_run *dr = ctx;
	const struct sync_remote_sink *k = dr->sink;
	const struct imap_arg *list, *body, *flags, *date, *size;
	struct sync_remote_fetched m;
	struct remote_lit *l = NULL;
	void *handle = NULL;
	size_t pos;
	uint64_t got;
	const char *ds;

	if (resp->kind != IMAP_RESP_UNTAGGED || resp->name == NULL ||
	    strcmp(resp->name, "FETCH") != 0 || resp->nargs != 1 || resp->args[0].type != IMAP_ARG_LIST)
		return 0;
	if (dr->gate != NULL && !remote_selecting_done(dr->gate))
		return 0;       /* before the mailbox is selected: not an answer to these FETCHes */
	/* a SELECT that showed another UIDVALIDITY: its messages are not the
	 * ones asked for (dropped below; the SELECT's wait fails the download) */
	if (dr->gate != NULL && !dr->gate_checked) {
		dr->gate_checked = true;        /* once: the SELECT is answered */
		if (remote_selecting_check(dr->gate, dr->name, &dr->err) < 0)
			dr->failed = true;
	}
	list = &resp->args[0];
	body = imap_fetch_item(list, dr->item);
	if (body == NULL)
		return 1;
	if (body->type == IMAP_ARG_LITERAL_STREAMED) {
		l = body->handle;
		remote_lit_claim(dr->r, l);
		if (l->mode != REMOTE_SINK_BODY) {
			remote_lit_release(dr->r, l);   /* detached: not ours any more */
			return 1;
		}
		handle = l->user;
		l->user = NULL;
		free(l);
	} else if (dl_body_string(dr, body, &handle, e) < 0) {
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.uid = remote_fetch_uid(resp);
	pos = m.uid ? uid_pos(dr->uids, dr->n, m.uid) : SIZE_MAX;
	flags = imap_fetch_item(list, "FLAGS");
	date = imap_fetch_item(list, "INTERNALDATE");
	size = imap_fetch_item(list, "RFC822.SIZE");
	arena_reset(&dr->a);
	if (pos == SIZE_MAX || dr->got[pos] || dr->failed || flags == NULL ||
	    remote_parse_flags(flags, &dr->a, &m.flags, e) < 0) {
		if (k->abort)
			k->abort(k->ctx, handle);
		if (dr->failed || pos == SIZE_MAX || dr->got[pos])
			return 1;       /* not asked for (or after a failure): dropped */
		return flags ? -1 : err_set(e, ERR_PROTO, "server sent no FLAGS for UID %u", m.uid);
	}
	ds = imap_arg_str(date, NULL);
	m.internaldate = parse_internaldate(ds);
	got = body->type == IMAP_ARG_LITERAL_STREAMED ? body->size : body->len;
	m.size = got;
	if (size && !imap_arg_u64(size, &m.size))
		m.size = body->size;
	if (strcmp(dr->item, "BODY[]") == 0 && m.size > 0 && (body->type == IMAP_ARG_NIL || got == 0)) {
		/* No text for a message the server sizes above 0: nothing to
		 * store (an empty file would be recorded for good). */
		if (k->abort)
			k->abort(k->ctx, handle);
		err_set(&dr->err, ERR_SERVER, "the server sent no text for UID %u, which it sizes at "
			"%llu bytes; the next run asks again", m.uid, (unsigned long long)m.size);
		dr->failed = true;
		return 1;
	}
	dr->got[pos] = true;
	err_clear(&dr->err);
	if (k->finish(k->ctx, handle, &m, &dr->err) < 0)
		dr->failed = true;
	return 1;
}

/*
 * A download in flight (sync_remote_download_start): what its FETCH
 * handler needs, the SELECT sent with it, its commands.  Lives on the
 * heap because its handlers run whenever the connection is driven, until
 * sync_remote_download_finish().
 */
struct sync_remote_dl {
	struct dl_run dr;
	struct sync_remote_sink sink;   /* the caller's, copied */
	struct remote_selecting sel;
	bool selecting;                 /* sel was sent (dr.gate points to it) */
	struct remote_cmds q;
	char *name;
	uint32_t *uids;                 /* copied */
	int rc;                         /* the submission's outcome */
	struct err err;
};

/* A download of `item` ("BODY[]" or "BODY[HEADER]"), asked for as `suffix`. */
static int download_start(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
			  const struct sync_remote_sink *sink, bool headers,
			  struct sync_remote_dl **out, struct err *e)
{
	struct sync_remote_dl *d;
	const char *suffix = headers ? " (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])"
				     : " (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])";

	*out = NULL;
	if (remote_check_uids(uids, n, e) < 0)
		return -1;
	if (r->user_sink != NULL)
		return err_set(e, ERR_INTERNAL, "a download is already in flight on this connection");
	d = xcalloc(1, sizeof(*d));
	d->sink = *sink;
	d->name = xstrdup(name);
	d->uids = xcalloc(n + 1, sizeof(*d->uids));
	if (n > 0)
		memcpy(d->uids, uids, n * sizeof(*uids));
	d->dr = (struct dl_run){ .r = r, .sink = &d->sink, .item = headers ? "BODY[HEADER]" : "BODY[]",
				 .uids = d->uids, .n = n, .name = d->name };
	d->dr.got = xcalloc(n + 1, sizeof(bool));
	arena_init(&d->dr.a, 4096);
	*out = d;
	if (n == 0)
		return 0;
	/* A SELECT needed goes out with the FETCHes, not a round trip ahead of them. */
	if (r->selected == NULL || strcmp(r->selected, name) != 0) {
		if (remote_select_submit(r, name, NULL, NULL, NULL, &d->sel, &d->err) < 0) {
			d->rc = -1;
			return 0;
		}
		d->selecting = true;
		d->dr.gate = &d->sel;
	}
	r->user_sink = &d->sink;
	r->body_item = d->dr.item;
	r->sink_mode = REMOTE_SINK_BODY;
	d->rc = remote_submit_uid_sets(r, "UID FETCH ", suffix, d->uids, n, DOWNLOAD_BATCH,
				       dl_untagged, &d->dr, &d->q, &d->err);
	return 0;
}

bool sync_remote_download_ready(const struct sync_remote_dl *d)
{
	if (d->selecting && !remote_selecting_done(&d->sel))
		return false;
	for (size_t i = 0; i < d->q.n; i++)
		if (!imap_cmd_is_done(d->q.v[i]))
			return false;
	return true;
}

int sync_remote_download_wait_any(struct sync_remote_dl *const *ds, size_t n, struct err *e)
{
	struct pollfd pfd[SYNC_REMOTE_DL_MAX];
	struct imap_conn *conn[SYNC_REMOTE_DL_MAX];

	if (n == 0 || n > SYNC_REMOTE_DL_MAX)
		return err_set(e, ERR_INTERNAL, "waiting for %zu downloads", n);
	for (;;) {
		size_t np = 0;
		int timeout = -1, rc;
		struct err ignored;

		/* what is buffered first: a response may already be complete */
		for (size_t i = 0; i < n; i++) {
			err_clear(&ignored);
			/* a connection that fails completes its commands with the error */
			(void)imap_conn_process(imap_client_conn(ds[i]->dr.r->cl), 0, &ignored);
		}
		for (size_t i = 0; i < n; i++)
			if (sync_remote_download_ready(ds[i]))
				return 0;
		for (size_t i = 0; i < n; i++) {
			struct imap_conn *c = imap_client_conn(ds[i]->dr.r->cl);
			int t = imap_conn_poll_timeout(c);
			short ev = imap_conn_events(c);

			if (ev == 0 && t < 0)
				continue;
			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
			conn[np] = c;
			pfd[np++] = (struct pollfd){ .fd = imap_conn_fd(c), .events = ev };
		}
		if (np == 0)
			return err_set(e, ERR_INTERNAL, "downloads wait on no connection");
		rc = poll(pfd, (nfds_t)np, timeout);
		if (rc < 0 && errno != EINTR)
			return err_sys(e, ERR_NET, errno, "poll");
		for (size_t k = 0; rc > 0 && k < np; k++) {
			if (pfd[k].revents == 0)
				continue;
			err_clear(&ignored);
			(void)imap_conn_process(conn[k], pfd[k].revents, &ignored);
		}
	}
}

int sync_remote_download_finish(struct sync_remote_dl *d, struct err *e)
{
	struct sync_remote *r = d->dr.r;
	const struct sync_remote_sink *sink = &d->sink;
	struct err e2;
	int rc = d->rc;

	if (rc < 0)
		*e = d->err;
	err_clear(&e2);
	if (d->selecting && remote_select_wait(&d->sel, d->name, &e2) < 0 && rc == 0) {
		*e = e2;
		rc = -1;
	}
	err_clear(&e2);
	if (remote_cmds_wait(r, &d->q, NULL, NULL, rc == 0 ? e : &e2) < 0)
		rc = -1;
	if (r->user_sink == &d->sink) {
		r->sink_mode = REMOTE_SINK_OFF;
		r->body_item = NULL;
		remote_lits_abort_all(r);
		r->user_sink = NULL;
	}
	if (rc == 0 && d->dr.failed) {
		*e = d->dr.err;
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < d->dr.n; i++)
		if (!d->dr.got[i] && sink->gone && sink->gone(sink->ctx, d->uids[i], e) < 0)
			rc = -1;
	if (rc < 0)
		err_prefix(e, "downloading from mailbox \"%s\"", d->name);
	arena_release(&d->dr.a);
	free(d->dr.got);
	free(d->uids);
	free(d->name);
	free(d);
	return rc;
}

int sync_remote_download_start(struct sync_remote *r, const char *name, const uint32_t *uids,
			       size_t n, const struct sync_remote_sink *sink, bool headers,
			       struct sync_remote_dl **out, struct err *e)
{
	if (download_start(r, name, uids, n, sink, headers, out, e) < 0)
		return err_prefix(e, "downloading from mailbox \"%s\"", name);
	return 0;
}

/* Start and finish one download on its own. */
static int download_now(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
			const struct sync_remote_sink *sink, bool headers, struct err *e)
{
	struct sync_remote_dl *d;

	if (n == 0)
		return 0;
	if (sync_remote_download_start(r, name, uids, n, sink, headers, &d, e) < 0)
		return -1;
	return sync_remote_download_finish(d, e);
}

int sync_remote_download(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
			 const struct sync_remote_sink *sink, struct err *e)
{
	return download_now(r, name, uids, n, sink, false, e);
}

int sync_remote_download_headers(struct sync_remote *r, const char *name, const uint32_t *uids,
				 size_t n, const struct sync_remote_sink *sink, struct err *e)
{
	return download_now(r, name, uids, n, sink, true, e);
}

/* ---- uploads ------------------------------------------------------------------------ */

/*
 * The upload literal: the file from offset 0 with bare LF -> CRLF, read as
 * the socket takes it (never whole in memory).
 */
struct crlf_src {
	int fd;
	off_t off;
	bool prev_cr;                   /* the last input byte was CR */
	bool pending_lf;                /* a CR was produced for a bare LF; its LF is due */
	uint64_t produced, size;
	const struct sync_remote *r;    /* for r->upload_progress */
	size_t in_len, in_pos;
	char *in;                       /* READ_CHUNK bytes while the file is read, else NULL */
};

static void crlf_src_release(struct crlf_src *s)
{
	free(s->in);
	s->in = NULL;
}

static ssize_t crlf_fill(struct crlf_src *s, struct err *e)
{
	ssize_t k;

	if (s->in == NULL)
		s->in = xmalloc(READ_CHUNK);
	do
		k = pread(s->fd, s->in, READ_CHUNK, s->off);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return err_sys(e, ERR_IO, errno, "cannot read the message to upload");
	s->off += k;
	s->in_len = (size_t)k;
	s->in_pos = 0;
	return k;
}

static ssize_t crlf_read(void *ctx, char *buf, size_t n, struct err *e)
{
	struct crlf_src *s = ctx;
	size_t out = 0;

	while (out < n) {
		char c;

		if (s->pending_lf) {
			buf[out++] = '\n';
			s->pending_lf = false;
			continue;
		}
		if (s->in_pos == s->in_len) {
			ssize_t k = crlf_fill(s, e);

			if (k < 0)
				return -1;
			if (k == 0)
				break;
		}
		c = s->in[s->in_pos++];
		if (c == '\n' && !s->prev_cr) {
			buf[out++] = '\r';
			s->pending_lf = true;
		} else {
			buf[out++] = c;
		}
		s->prev_cr = c == '\r';
	}
	s->produced += out;
	if (out == 0 || s->produced > s->size)
		return err_set(e, ERR_STATE, "message changed while it was uploaded");
	if (s->produced == s->size)
		crlf_src_release(s);    /* all sent: the next literal of a MULTIAPPEND gets it */
	if (s->r->upload_progress)
		s->r->upload_progress(s->r->upload_progress_ctx, out);
	return (ssize_t)out;
}

void sync_remote_set_upload_progress(struct sync_remote *r, void (*fn)(void *ctx, uint64_t n),
				     void *ctx)
{
	r->upload_progress = fn;
	r->upload_progress_ctx = ctx;
}

/* The size of the file in CRLF form (bytes plus bare LFs), by one streaming pass. */
static int crlf_count(int fd, uint64_t *size_out, struct err *e)
{
	struct crlf_src s = { .fd = fd };
	uint64_t size = 0;
	ssize_t k;
	size_t i;

	while ((k = crlf_fill(&s, e)) > 0) {
		for (i = 0; i < (size_t)k; i++) {
			if (s.in[i] == '\n' && !s.prev_cr)
				size++;
			s.prev_cr = s.in[i] == '\r';
		}
		size += (uint64_t)k;
	}
	crlf_src_release(&s);
	if (k < 0)
		return -1;
	*size_out = size;
	return 0;
}

static int add_date(struct buf *b, time_t t, struct err *e)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1970)
		return 0;       /* out of IMAP's range: the server picks the date */
	return buf_addf(b, e, " \"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, mon[tm.tm_mon],
			tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * An APPEND in flight: its command and its literals' sources (which the
 * connection reads), one per message.
 */
struct sync_remote_append {
	struct imap_cmd *cmd;
	uint32_t uidvalidity;           /* the target's, as the session saw it (0: unknown) */
	size_t n;
	struct crlf_src src[];
};

static void append_free(struct sync_remote_append *ap)
{
	for (size_t i = 0; i < ap->n; i++)
		crlf_src_release(&ap->src[i]);
	imap_cmd_free(ap->cmd);
	free(ap);
}

/* " (flags) date " of one message: what precedes its literal. */
static int add_msg_head(struct buf *b, const struct sync_remote_append_msg *m, struct err *e)
{
	struct sync_flags none = { 0, 0, NULL };

	return buf_addc(b, ' ', e) < 0 || remote_add_flag_list(b, m->flags ? m->flags : &none, e) < 0 ||
	       (m->internaldate > 0 && add_date(b, m->internaldate, e) < 0) ||
	       buf_addc(b, ' ', e) < 0 ? -1 : 0;
}

/*
 * Check each file's CRLF size against its size_crlf, then submit "APPEND
 * name (flags) date {size}" with the file as its streamed literal, and, for
 * n > 1 (MULTIAPPEND), the next messages' " (flags) date {size}" and files
 * in the same command.  On success *ap_out is in flight (to wait for); on
 * failure NULL.
 */
static int append_submit(struct sync_remote *r, const char *name,
			 const struct sync_remote_append_msg *msgs, size_t n,
			 struct sync_remote_append **ap_out, struct err *e)
{
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);
	struct sync_remote_append *ap;
	struct imap_literal_source *ls = xcalloc(n, sizeof(*ls));
	char **between = xcalloc(n, sizeof(*between));
	struct imap_cmd_req req;
	struct imap_conn *c;
	int rc = 0;

	*ap_out = NULL;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t size = 0;

		if (crlf_count(msgs[i].fd, &size, e) < 0)
			rc = -1;
		else if (size != msgs[i].size_crlf)
			rc = err_set(e, ERR_STATE, "message changed since it was scanned (%llu bytes, "
				     "expected %llu)", (unsigned long long)size,
				     (unsigned long long)msgs[i].size_crlf);
	}
	if (rc == 0 && remote_conn(r, &c, e) < 0)
		rc = -1;
	if (rc == 0)
		rc = buf_adds(&b, "APPEND ", e) < 0 || remote_add_mailbox(r, &b, name, e) < 0 ||
		     add_msg_head(&b, &msgs[0], e) < 0 ? -1 : 0;
	for (size_t i = 1; rc == 0 && i < n; i++) {
		struct buf h = BUF_INIT(REMOTE_CMD_MAX);

		rc = add_msg_head(&h, &msgs[i], e);
		between[i - 1] = buf_detach(&h, NULL);
	}
	if (rc < 0) {
		buf_release(&b);
		for (size_t i = 0; i < n; i++)
			free(between[i]);
		free(between);
		free(ls);
		return -1;
	}
	ap = xcalloc(1, sizeof(*ap) + n * sizeof(ap->src[0]));
	ap->n = n;
	ap->uidvalidity = remote_known_uidvalidity(r, name);
	for (size_t i = 0; i < n; i++) {
		ap->src[i].fd = msgs[i].fd;
		ap->src[i].size = msgs[i].size_crlf;
		ap->src[i].r = r;
		ls[i].size = msgs[i].size_crlf;
		ls[i].read = crlf_read;
		ls[i].ctx = &ap->src[i];
	}
	memset(&req, 0, sizeof(req));
	req.text = buf_cstr(&b);
	req.len = b.len;
	req.source = ls;
	req.nsources = n;
	req.between = (const char *const *)between;
	/* LITERAL+ (the connection's literal mode) sends it at once, else after "+". */
	ap->cmd = imap_conn_submit(c, &req, e);
	buf_release(&b);
	for (size_t i = 0; i < n; i++)
		free(between[i]);
	free(between);
	free(ls);
	if (ap->cmd == NULL) {
		append_free(ap);
		return -1;
	}
	*ap_out = ap;
	return 0;
}

/*
 * APPENDUID's UID set, expanded in order into uids[0..n) (RFC 4315: the
 * messages' UIDs in the order they were appended).  0 when it does not name
 * exactly n UIDs, or names them under another UIDVALIDITY than `uv_want`
 * (when known): the target was made again, and those UIDs are not the
 * ones the caller's records speak of (found by fingerprint instead).
 */
static int appenduid_set(const struct imap_resp *resp, uint32_t uv_want, uint32_t *uids,
			 size_t n)
{
	uint32_t uv, *got = NULL;
	const char *set;
	size_t len, k = 0;
	struct err e;

	if (resp == NULL || resp->code == NULL || strcmp(resp->code, "APPENDUID") != 0 ||
	    resp->ncode_args != 2 || !imap_arg_u32(&resp->code_args[0], &uv) ||
	    (uv_want != 0 && uv != uv_want) ||
	    (set = imap_arg_str(&resp->code_args[1], &len)) == NULL ||
	    imap_seqset_expand(set, len, 0, n, &got, &k, &e) < 0 || k != n) {
		free(got);
		return 0;
	}
	memcpy(uids, got, n * sizeof(*uids));
	free(got);
	return 1;
}

/* Wait for ap, free it; *uid_out from APPENDUID when UIDPLUS is offered, else 0. */
static int append_wait(struct sync_remote *r, struct sync_remote_append *ap, uint32_t *uid_out,
		       struct err *e)
{
	struct imap_conn *c;
	int rc;

	*uid_out = 0;
	rc = remote_conn(r, &c, e) < 0 ? -1 : imap_conn_wait(c, ap->cmd, e);
	/* APPENDUID only when UIDPLUS is offered (a cut-down server may still send it). */
	if (rc == 0 && r->caps.uidplus)
		(void)appenduid_set(imap_cmd_response(ap->cmd), ap->uidvalidity, uid_out, 1);
	append_free(ap);
	return rc;
}

int sync_remote_append(struct sync_remote *r, const char *name, int fd, uint64_t size_crlf,
		       const struct sync_flags *flags, time_t internaldate,
		       const struct sync_fp *fp, uint32_t *uid_out, struct err *e)
{
	const struct sync_remote_append_msg m = { fd, size_crlf, flags, internaldate };
	struct sync_remote_append *ap = NULL;
	uint32_t uidnext = 0;
	int rc;

	*uid_out = 0;
	rc = !r->caps.uidplus && fp && fp->state == SYNC_FP_KNOWN ?
	     sync_remote_uidnext(r, name, &uidnext, e) : 0;
	if (rc == 0)
		rc = append_submit(r, name, &m, 1, &ap, e);
	if (rc == 0)
		rc = append_wait(r, ap, uid_out, e);
	if (rc == 0 && *uid_out == 0 && uidnext > 0)
		rc = sync_remote_find_fp(r, name, uidnext, fp, uid_out, e);
	if (rc < 0)
		return err_prefix(e, "uploading to mailbox \"%s\"", name);
	return 0;
}

bool sync_remote_can_pipeline_appends(const struct sync_remote *r)
{
	return r->caps.literal_plus && r->caps.uidplus;
}

int sync_remote_append_submit(struct sync_remote *r, const char *name, int fd, uint64_t size_crlf,
			      const struct sync_flags *flags, time_t internaldate,
			      struct sync_remote_append **ap_out, struct err *e)
{
	const struct sync_remote_append_msg m = { fd, size_crlf, flags, internaldate };

	*ap_out = NULL;
	if (!sync_remote_can_pipeline_appends(r))
		return err_set(e, ERR_INTERNAL, "pipelined APPEND without LITERAL+ and UIDPLUS");
	if (append_submit(r, name, &m, 1, ap_out, e) < 0)
		return err_prefix(e, "uploading to mailbox \"%s\"", name);
	return 0;
}

int sync_remote_append_wait(struct sync_remote *r, struct sync_remote_append *ap,
			    uint32_t *uid_out, struct err *e)
{
	if (append_wait(r, ap, uid_out, e) < 0)
		return err_prefix(e, "uploading");
	return 0;
}

bool sync_remote_can_multiappend(const struct sync_remote *r)
{
	return sync_remote_can_pipeline_appends(r) && r->caps.multiappend;
}

int sync_remote_append_many_submit(struct sync_remote *r, const char *name,
				   const struct sync_remote_append_msg *msgs, size_t n,
				   struct sync_remote_append **ap_out, struct err *e)
{
	*ap_out = NULL;
	if (n == 0 || (n > 1 ? !sync_remote_can_multiappend(r) : !sync_remote_can_pipeline_appends(r)))
		return err_set(e, ERR_INTERNAL, "MULTIAPPEND of %zu messages not offered", n);
	if (append_submit(r, name, msgs, n, ap_out, e) < 0)
		return err_prefix(e, "uploading to mailbox \"%s\"", name);
	return 0;
}

int sync_remote_append_many_wait(struct sync_remote *r, struct sync_remote_append *ap,
				 uint32_t *uids_out, struct err *e)
{
	struct imap_conn *c;
	size_t n = ap->n;
	int rc;

	memset(uids_out, 0, n * sizeof(*uids_out));
	rc = remote_conn(r, &c, e) < 0 ? -1 : imap_conn_wait(c, ap->cmd, e);
	if (rc == 0 && !appenduid_set(imap_cmd_response(ap->cmd), ap->uidvalidity, uids_out, n))
		memset(uids_out, 0, n * sizeof(*uids_out));
	append_free(ap);
	if (rc < 0)
		return err_prefix(e, "uploading");
	return 0;
}
