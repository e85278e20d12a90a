/*
 * Integration tests of the sync remote adapter (core/sync/remote.h) against
 * a real Dovecot on loopback (tests/harness): change detection (QRESYNC,
 * CONDSTORE, full listing, the STATUS pre-check), fingerprints, streamed
 * downloads, APPEND, STORE, MOVE, expunge and mailbox creation/deletion,
 * once with every capability and once cut down to IMAP4rev1 (no UIDPLUS,
 * MOVE, CONDSTORE, ESEARCH, LIST-STATUS).
 *
 * Each test starts its own throwaway server in .init and stops it in .fini.
 * Server-side changes behind the adapter's back go through harness_imap_raw().
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"
#include "sync/fp.h"
#include "sync/remote.h"
#include "xalloc.h"

static struct dovecot dc;

static void start_full(void)
{
	cr_assert_eq(harness_dovecot_start(&dc, NULL), 0, "cannot start Dovecot");
}

static void start_rev1(void)
{
	cr_assert_eq(harness_dovecot_start(&dc, "--caps imap4rev1"), 0, "cannot start Dovecot");
}

static void stop_server(void)
{
	harness_dovecot_stop(&dc);
}

TestSuite(remote, .init = start_full, .fini = stop_server, .timeout = 120);
TestSuite(remote_rev1, .init = start_rev1, .fini = stop_server, .timeout = 120);

/* ---- helpers ---------------------------------------------------------------------- */

static int give_password(void *ctx, enum imap_secret_kind kind, struct buf *out, struct err *e)
{
	(void)ctx;
	(void)kind;
	return buf_adds(out, dc.pass1, e);
}

static struct sync_remote *remote_open_with(bool no_enable)
{
	static const enum imap_auth_mech plain = IMAP_AUTH_PLAIN;
	struct imap_client_opts o;
	struct sync_remote *r;
	struct err e;

	memset(&o, 0, sizeof(o));
	o.conn.host = "127.0.0.1";
	o.conn.port = (unsigned)dc.imap_port;
	o.conn.tls = IMAP_TLS_NONE;
	o.conn.timeout_ms = 20000;
	o.user = dc.user1;
	o.have_password = true;
	o.get_secret = give_password;
	o.mechs = &plain;
	o.nmechs = 1;
	o.no_enable = no_enable;
	r = sync_remote_new(&o);
	cr_assert_eq(sync_remote_open(r, &e), 0, "open: %s", e.msg);
	return r;
}

static struct sync_remote *remote_open(void)
{
	return remote_open_with(false);
}

static void remote_close(struct sync_remote *r)
{
	struct err e;

	cr_assert_eq(sync_remote_logout(r, &e), 0, "logout: %s", e.msg);
	sync_remote_free(r);
}

/* Run raw IMAP commands as user1 (after LOGIN, before LOGOUT); returns the reply. */
static char *raw(const char *const cmds[])
{
	const char *lines[32];
	char *login = xasprintf("L LOGIN %s %s", dc.user1, dc.pass1);
	char *reply = NULL;
	size_t i, n = 0;

	lines[n++] = login;
	for (i = 0; cmds[i] && n < 30; i++)
		lines[n++] = cmds[i];
	lines[n++] = "Z LOGOUT";
	lines[n] = NULL;
	cr_assert_eq(harness_imap_raw(dc.imap_port, lines, &reply), 0, "raw IMAP failed: %s",
		     reply ? reply : "");
	free(login);
	return reply;
}

static void raw1(const char *cmd)
{
	const char *cmds[] = { cmd, NULL };

	free(raw(cmds));
}

/* Put a message into `box` over raw IMAP (APPEND with a synchronising literal). */
static void raw_append(const char *box, const char *flags, const char *msg)
{
	char *cmd = xasprintf("A APPEND \"%s\" (%s) {%zu}", box, flags, strlen(msg));
	const char *cmds[] = { cmd, msg, NULL };
	char *reply = raw(cmds);

	cr_assert(strstr(reply, "A OK") != NULL, "APPEND failed: %s", reply);
	free(reply);
	free(cmd);
}

static void scan(struct sync_remote *r, const char *box, const struct sync_remote_known *k,
		 struct arena *a, struct sync_remote_listing *l)
{
	struct err e;

	cr_assert_eq(sync_remote_scan(r, box, k, a, l, &e), 0, "scan %s: %s", box, e.msg);
}

static const struct sync_remote_msg *find_msg(const struct sync_remote_listing *l, uint32_t uid)
{
	size_t i;

	for (i = 0; i < l->nmsgs; i++)
		if (l->msgs[i].uid == uid)
			return &l->msgs[i];
	return NULL;
}

static bool has_kw(const struct sync_flags *f, const char *kw)
{
	size_t i;

	for (i = 0; i < f->nkw; i++)
		if (strcmp(f->kw[i], kw) == 0)
			return true;
	return false;
}

/* known = what a complete listing said. */
static uint32_t *known_from(const struct sync_remote_listing *l, struct sync_remote_known *k)
{
	uint32_t *uids = xcalloc(l->nmsgs + 1, sizeof(*uids));
	size_t i;

	for (i = 0; i < l->nmsgs; i++)
		uids[i] = l->msgs[i].uid;
	memset(k, 0, sizeof(*k));
	k->uidvalidity = l->uidvalidity;
	k->highestmodseq = l->highestmodseq;
	k->uidnext = l->uidnext;
	k->messages = l->messages;
	k->uids = uids;
	k->nuids = l->nmsgs;
	return uids;
}

static const char *const msg_lf =
	"From: Alice <alice@example.org>\n"
	"To: Bob <bob@example.org>\n"
	"Subject: fingerprint test\n"
	"Message-ID: <fp-test-1@example.org>\n"
	"\n"
	"Hello Bob,\n"
	"this is the body.\n";

static char *crlf_of(const char *lf)
{
	size_t n = strlen(lf), i, j = 0;
	char *out = xmalloc(2 * n + 1);

	for (i = 0; i < n; i++) {
		if (lf[i] == '\n')
			out[j++] = '\r';
		out[j++] = lf[i];
	}
	out[j] = '\0';
	return out;
}

static void fp_of_bytes(const char *s, size_t n, struct sync_fp_value *v)
{
	struct sync_fp_ctx c;
	struct err e;

	cr_assert_eq(sync_fp_init(&c, &e), 0, "%s", e.msg);
	sync_fp_update(&c, s, n);
	sync_fp_final(&c, v);
}

/* A temporary file with `text`; returns an fd open for reading. */
static int temp_file(const char *name, const char *text, size_t len)
{
	char *path = xasprintf("%s/%s", dc.tmp, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	free(path);
	return fd;
}

static uint64_t crlf_size(const char *s, size_t n)
{
	uint64_t size = n;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			size++;
	return size;
}

static uint32_t append_text(struct sync_remote *r, const char *box, const char *text,
			    const struct sync_flags *flags, time_t date, const struct sync_fp *fp)
{
	int fd = temp_file("append.eml", text, strlen(text));
	uint32_t uid = 0;
	struct err e;

	cr_assert_eq(sync_remote_append(r, box, fd, crlf_size(text, strlen(text)), flags, date, fp,
					&uid, &e), 0, "append: %s", e.msg);
	close(fd);
	return uid;
}

/* ---- a download sink that keeps what it got ---------------------------------------- */

struct dl_msg {
	uint32_t uid;
	uint64_t size, got;
	size_t pieces, max_piece;
	time_t date;
	unsigned sys;
	bool finished;
	char *data;                 /* NULL when not keeping */
	gnutls_hash_hd_t hash;
};

struct dl_sink {
	bool keep;
	uint64_t fail_after;        /* data() fails once a message passes this many bytes (0: never) */
	struct dl_msg msgs[256];
	size_t n, aborted, gone;
};

static int dl_begin(void *ctx, uint64_t size, void **handle_out, struct err *e)
{
	struct dl_sink *s = ctx;
	struct dl_msg *m;

	if (s->n == 256)
		return err_set(e, ERR_LIMIT, "too many messages for the test sink");
	m = &s->msgs[s->n++];
	memset(m, 0, sizeof(*m));
	m->size = size;
	if (s->keep)
		m->data = xmalloc(size + 1);
	cr_assert_eq(gnutls_hash_init(&m->hash, GNUTLS_DIG_SHA256), 0);
	*handle_out = m;
	return 0;
}

static int dl_data(void *ctx, void *handle, const char *bytes, size_t len, struct err *e)
{
	struct dl_msg *m = handle;

	struct dl_sink *s = ctx;

	if (m->got + len > m->size)
		return err_set(e, ERR_PROTO, "more bytes than announced");
	if (s->fail_after && m->got + len > s->fail_after)
		return err_set(e, ERR_IO, "disk full (test)");
	if (m->data)
		memcpy(m->data + m->got, bytes, len);
	gnutls_hash(m->hash, bytes, len);
	m->got += len;
	m->pieces++;
	if (len > m->max_piece)
		m->max_piece = len;
	return 0;
}

static int dl_finish(void *ctx, void *handle, const struct sync_remote_fetched *f, struct err *e)
{
	struct dl_msg *m = handle;

	(void)ctx;
	(void)e;
	cr_assert(!m->finished, "finish after abort or finish");
	m->uid = f->uid;
	m->date = f->internaldate;
	m->sys = f->flags.sys;
	m->finished = true;
	if (m->data)
		m->data[m->got] = '\0';
	return 0;
}

static void dl_abort(void *ctx, void *handle)
{
	struct dl_sink *s = ctx;
	struct dl_msg *m = handle;

	cr_assert(!m->finished, "abort after finish");
	m->finished = true;         /* a second abort or a finish would now be caught */
	s->aborted++;
}

static int dl_gone(void *ctx, uint32_t uid, struct err *e)
{
	struct dl_sink *s = ctx;

	(void)uid;
	(void)e;
	s->gone++;
	return 0;
}

static void dl_release(struct dl_sink *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->msgs[i].data);
		gnutls_hash_deinit(s->msgs[i].hash, NULL);
	}
}

static void download(struct sync_remote *r, const char *box, const uint32_t *uids, size_t n,
		     struct dl_sink *s)
{
	struct sync_remote_sink k = { s, dl_begin, dl_data, dl_finish, dl_abort, dl_gone };
	struct err e;

	cr_assert_eq(sync_remote_download(r, box, uids, n, &k, &e), 0, "download: %s", e.msg);
}

/* ---- change detection -------------------------------------------------------------------- */

static void flag_and_expunge_behind_the_back(uint32_t flag_uid, uint32_t gone_uid)
{
	char *c1 = xasprintf("B UID STORE %u +FLAGS (\\Flagged $Work)", flag_uid);
	char *c2 = xasprintf("C UID STORE %u +FLAGS (\\Deleted)", gone_uid);
	const char *cmds[] = { "A SELECT INBOX", c1, c2, "D EXPUNGE", NULL };

	free(raw(cmds));
	free(c1);
	free(c2);
}

/* A complete scan, a change on the server, and the delta by `method`. */
static void check_delta(struct sync_remote *r, enum sync_remote_method method)
{
	struct sync_remote_listing l1, l2;
	struct sync_remote_known k;
	const struct sync_remote_msg *m;
	struct arena a;
	uint32_t *uids;

	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	cr_assert(l1.complete);
	cr_assert_eq(l1.method, SYNC_REMOTE_FULL);
	cr_assert_eq(l1.nmsgs, l1.messages);
	cr_assert_gt(l1.nmsgs, 8);
	cr_assert_neq(l1.uidvalidity, 0);
	cr_assert_neq(l1.highestmodseq, 0);
	for (size_t i = 0; i < l1.nmsgs; i++)
		cr_assert_gt(l1.msgs[i].size, 0);
	uids = known_from(&l1, &k);
	cr_assert_eq(find_msg(&l1, uids[2])->flags.sys & SYNC_F_FLAGGED, 0u,
		     "seed pattern changed: message 3 is flagged");

	flag_and_expunge_behind_the_back(uids[2], uids[5]);

	scan(r, "INBOX", &k, &a, &l2);
	cr_assert_eq(l2.method, method);
	cr_assert(!l2.complete);
	cr_assert(!l2.uidvalidity_changed);
	cr_assert_eq(l2.nvanished, 1);
	cr_assert_eq(l2.vanished[0], uids[5]);
	cr_assert_eq(l2.nmsgs, 1, "only the changed message is listed, got %zu", l2.nmsgs);
	m = find_msg(&l2, uids[2]);
	cr_assert_not_null(m);
	cr_assert(m->flags.sys & SYNC_F_FLAGGED);
	cr_assert(has_kw(&m->flags, "$Work"));
	cr_assert_eq(m->size, find_msg(&l1, uids[2])->size);
	cr_assert_gt(l2.highestmodseq, l1.highestmodseq);
	cr_assert_eq(l2.messages, l1.messages - 1);
	free(uids);
	arena_release(&a);
}

Test(remote, qresync_delta_shows_server_flag_change_and_expunge)
{
	struct sync_remote *r;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	cr_assert(sync_remote_caps(r)->qresync);
	check_delta(r, SYNC_REMOTE_QRESYNC);
	remote_close(r);
}

Test(remote, condstore_delta_finds_expunge_by_uid_search)
{
	struct sync_remote *r;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open_with(true);         /* no ENABLE: CONDSTORE without QRESYNC */
	cr_assert(!sync_remote_caps(r)->qresync);
	cr_assert(sync_remote_caps(r)->condstore);
	check_delta(r, SYNC_REMOTE_CONDSTORE);
	remote_close(r);
}

Test(remote, new_message_shows_in_delta_with_its_size)
{
	struct sync_remote_listing l1, l2;
	struct sync_remote_known k;
	struct sync_remote *r;
	struct arena a;
	uint32_t *uids;

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	uids = known_from(&l1, &k);
	raw_append("INBOX", "\\Seen", "Subject: new\r\n\r\nnew body\r\n");
	scan(r, "INBOX", &k, &a, &l2);
	cr_assert_eq(l2.method, SYNC_REMOTE_QRESYNC);
	cr_assert_eq(l2.nmsgs, 1);
	cr_assert_eq(l2.msgs[0].uid, l1.uidnext);
	cr_assert_eq(l2.msgs[0].size, strlen("Subject: new\r\n\r\nnew body\r\n"));
	cr_assert_eq(l2.msgs[0].flags.sys, SYNC_F_SEEN);
	cr_assert_eq(l2.nvanished, 0);
	cr_assert_eq(l2.uidnext, l1.uidnext + 1);
	free(uids);
	arena_release(&a);
	remote_close(r);
}

/*
 * A complete listing with the records' sizes: known UIDs take the recorded
 * size (here a made-up one, to tell it apart), a known UID recorded without
 * a size and a UID above the highest known one get the server's.
 */
Test(remote, complete_listing_takes_known_sizes_from_records)
{
	struct sync_remote_listing l1, l2;
	struct sync_remote_known k;
	struct sync_remote *r;
	struct arena a;
	uint64_t *sizes;
	uint32_t *uids;
	size_t n;

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	n = l1.nmsgs;
	cr_assert_gt(n, 3);
	uids = known_from(&l1, &k);
	sizes = xcalloc(n + 1, sizeof(*sizes));
	for (size_t i = 0; i < n; i++)
		sizes[i] = l1.msgs[i].size + 1000;
	sizes[1] = 0;                   /* recorded without a size */
	k.nuids = n - 1;                /* the last message is new */
	k.highestmodseq = 0;            /* no delta: a complete listing */
	k.sizes = sizes;
	scan(r, "INBOX", &k, &a, &l2);
	cr_assert(l2.complete);
	cr_assert_eq(l2.method, SYNC_REMOTE_FULL);
	cr_assert_eq(l2.nmsgs, n);
	for (size_t i = 0; i < n; i++) {
		uint64_t want = i == 1 || i == n - 1 ? l1.msgs[i].size : l1.msgs[i].size + 1000;

		cr_assert_eq(l2.msgs[i].uid, l1.msgs[i].uid);
		cr_assert_eq(l2.msgs[i].flags.sys, l1.msgs[i].flags.sys, "uid %u", l1.msgs[i].uid);
		cr_assert_eq(l2.msgs[i].size, want, "uid %u: size %llu, want %llu", l1.msgs[i].uid,
			     (unsigned long long)l2.msgs[i].size, (unsigned long long)want);
	}
	free(sizes);
	free(uids);
	arena_release(&a);
	remote_close(r);
}

/*
 * A QRESYNC delta with the records' sizes: the changed known messages take
 * the recorded size (made up here, to tell it apart), one recorded without
 * a size gets the server's.
 */
Test(remote, qresync_delta_takes_known_sizes_from_records)
{
	struct sync_remote_listing l1, l2;
	struct sync_remote_known k;
	const struct sync_remote_msg *m;
	struct sync_remote *r;
	struct arena a;
	uint64_t *sizes;
	uint32_t *uids;

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	r = remote_open();
	cr_assert(sync_remote_caps(r)->qresync);
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	cr_assert_gt(l1.nmsgs, 5);
	uids = known_from(&l1, &k);
	sizes = xcalloc(l1.nmsgs + 1, sizeof(*sizes));
	for (size_t i = 0; i < l1.nmsgs; i++)
		sizes[i] = l1.msgs[i].size + 1000;
	sizes[4] = 0;                   /* recorded without a size */
	k.sizes = sizes;
	flag_and_expunge_behind_the_back(uids[2], uids[5]);
	flag_and_expunge_behind_the_back(uids[4], uids[5]);
	scan(r, "INBOX", &k, &a, &l2);
	cr_assert_eq(l2.method, SYNC_REMOTE_QRESYNC);
	cr_assert_eq(l2.nmsgs, 2, "got %zu", l2.nmsgs);
	m = find_msg(&l2, uids[2]);
	cr_assert_not_null(m);
	cr_assert_eq(m->size, l1.msgs[2].size + 1000, "the recorded size was not used");
	m = find_msg(&l2, uids[4]);
	cr_assert_not_null(m);
	cr_assert_eq(m->size, l1.msgs[4].size, "a size-less record did not get the server's");
	free(sizes);
	free(uids);
	arena_release(&a);
	remote_close(r);
}

Test(remote, uidvalidity_change_gives_complete_listing)
{
	struct sync_remote_listing l1, l2;
	struct sync_remote_known k;
	struct sync_remote *r;
	struct arena a;
	uint32_t *uids;

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	uids = known_from(&l1, &k);
	k.uidvalidity = l1.uidvalidity - 1;     /* as if the server had renumbered */
	scan(r, "INBOX", &k, &a, &l2);
	cr_assert(l2.uidvalidity_changed);
	cr_assert(l2.complete);
	cr_assert_eq(l2.method, SYNC_REMOTE_FULL);
	cr_assert_eq(l2.nmsgs, l1.nmsgs);
	cr_assert_eq(l2.nvanished, 0);
	free(uids);
	arena_release(&a);
	remote_close(r);
}

/* The pre-check sent before the session's LIST: plain STATUS, the same answers. */
Test(remote, status_each_answers_like_status_all)
{
	const char *names[] = { "INBOX", "Drafts", "No Such Box" };
	struct imap_status_data one[3], all[3];
	struct sync_remote *r;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	r = remote_open();
	cr_assert_eq(sync_remote_status_each(r, names, 3, one, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_status_all(r, names, 3, all, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < 2; i++) {
		cr_assert(one[i].have & IMAP_STATUS_HAVE_UIDVALIDITY, "%s", names[i]);
		cr_assert(one[i].have & IMAP_STATUS_HAVE_HIGHESTMODSEQ, "%s", names[i]);
		cr_assert_eq(one[i].uidvalidity, all[i].uidvalidity, "%s", names[i]);
		cr_assert_eq(one[i].uidnext, all[i].uidnext, "%s", names[i]);
		cr_assert_eq(one[i].messages, all[i].messages, "%s", names[i]);
		cr_assert_eq(one[i].highestmodseq, all[i].highestmodseq, "%s", names[i]);
	}
	cr_assert_gt(one[0].messages, 0);
	cr_assert_eq(one[2].have, 0u, "a mailbox that does not exist got a status");
	remote_close(r);
}

Test(remote, unchanged_mailbox_is_not_selected)
{
	const char *names[] = { "INBOX", "Drafts", "No Such Box" };
	struct imap_status_data st[3];
	struct sync_remote_listing l1, l2;
	struct sync_remote_known k;
	struct sync_remote *r;
	unsigned long selects;
	struct arena a;
	uint32_t *uids;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	r = remote_open();
	cr_assert(sync_remote_caps(r)->list_status);
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	uids = known_from(&l1, &k);
	raw1("A NOOP");     /* another session: the server's state does not move */

	/* The protocol trace (debug log on stderr) of the pre-check and the scan. */
	{
		char *trace_path = xasprintf("%s/trace.log", dc.tmp);
		enum log_level level = log_get_level();
		int saved = dup(2), fd = open(trace_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char *trace;

		cr_assert(saved >= 0 && fd >= 0);
		fflush(stderr);
		cr_assert(dup2(fd, 2) >= 0);
		log_set_level(LOG_DEBUG);
		cr_assert_eq(sync_remote_status_all(r, names, 3, st, &e), 0, "%s", e.msg);
		k.status = &st[0];
		selects = sync_remote_selects(r);
		scan(r, "INBOX", &k, &a, &l2);
		fflush(stderr);
		log_set_level(level);
		dup2(saved, 2);
		close(saved);
		close(fd);
		trace = harness_read_file(trace_path, 1u << 20);
		cr_assert_not_null(trace);
		cr_assert(strstr(trace, "STATUS INBOX") != NULL, "no trace captured: %s", trace);
		cr_assert(strstr(trace, "RETURN (STATUS") != NULL, "LIST-STATUS not used: %s", trace);
		cr_assert_null(strstr(trace, "SELECT"), "the unchanged mailbox was selected: %s", trace);
		free(trace);
		free(trace_path);
	}
	cr_assert(st[0].have & IMAP_STATUS_HAVE_HIGHESTMODSEQ);
	cr_assert(st[1].have & IMAP_STATUS_HAVE_UIDNEXT);
	cr_assert_eq(st[2].have, 0u);
	cr_assert(sync_remote_unchanged(&st[0], &k));
	cr_assert_eq(l2.method, SYNC_REMOTE_UNCHANGED);
	cr_assert_eq(l2.nmsgs, 0);
	cr_assert_eq(sync_remote_selects(r), selects, "the unchanged mailbox was selected");

	/* A flag change moves HIGHESTMODSEQ: no longer "unchanged". */
	{
		char *c = xasprintf("B UID STORE %u +FLAGS (\\Answered)", uids[0]);
		const char *cmds[] = { "A SELECT INBOX", c, NULL };

		free(raw(cmds));
		free(c);
	}
	cr_assert_eq(sync_remote_status_all(r, names, 3, st, &e), 0, "%s", e.msg);
	cr_assert(!sync_remote_unchanged(&st[0], &k));
	free(uids);
	arena_release(&a);
	remote_close(r);
}

/* ---- fingerprints -------------------------------------------------------------------------- */

struct fp_got {
	uint32_t uid;
	struct sync_fp fp;
	char msgid[128];
	uint64_t size;
	int calls;
};

static int fp_cb(void *ctx, uint32_t uid, const struct sync_fp *fp, const char *message_id,
		 uint64_t size, struct err *e)
{
	struct fp_got *g = ctx;

	(void)e;
	g->uid = uid;
	g->fp = *fp;
	snprintf(g->msgid, sizeof(g->msgid), "%s", message_id ? message_id : "");
	g->size = size;
	g->calls++;
	return 0;
}

Test(remote, server_fingerprint_equals_fingerprint_of_lf_bytes)
{
	char *crlf = crlf_of(msg_lf);
	struct sync_remote_listing l;
	struct sync_fp_value local;
	struct fp_got got = { 0 };
	struct sync_remote *r;
	struct arena a;
	struct err e;

	raw_append("INBOX", "", crlf);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	cr_assert_eq(l.nmsgs, 1);
	cr_assert_eq(sync_remote_fetch_fps(r, "INBOX", &l.msgs[0].uid, 1, fp_cb, &got, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(got.calls, 1);
	cr_assert_eq(got.uid, l.msgs[0].uid);
	cr_assert_eq(got.fp.state, SYNC_FP_KNOWN);
	cr_assert_eq(got.size, strlen(crlf));
	cr_assert_str_eq(got.msgid, "<fp-test-1@example.org>");
	fp_of_bytes(msg_lf, strlen(msg_lf), &local);
	cr_assert_eq(memcmp(local.bytes, got.fp.bytes, SYNC_FP_LEN), 0,
		     "remote and local fingerprints differ");
	/* A different message has a different fingerprint. */
	fp_of_bytes("Subject: other\n\nx\n", 18, &local);
	cr_assert_neq(memcmp(local.bytes, got.fp.bytes, SYNC_FP_LEN), 0);
	free(crlf);
	arena_release(&a);
	remote_close(r);
}

/* ---- downloads ------------------------------------------------------------------------------ */

static long peak_rss_kb(void)
{
	struct rusage ru;

	cr_assert_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

Test(remote, five_megabyte_download_streams_in_pieces)
{
	const uint64_t target = 5u * 1024u * 1024u;
	char *path = xasprintf("%s/big.eml", dc.tmp);
	char *cmd = xasprintf("doveadm -c '%s' save -u '%s' -m INBOX < '%s'", dc.conf, dc.user1, path);
	const char *argv[] = { "sh", "-c", cmd, NULL };
	unsigned char want[32], got[32];
	gnutls_hash_hd_t h;
	struct sync_remote_listing l;
	struct harness_result res;
	struct dl_sink s = { 0 };
	struct sync_remote *r;
	struct arena a;
	uint64_t size = 0;
	long before, after;
	FILE *f;

	/* Written line by line (LF), hashed in CRLF form; the test never holds it whole. */
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(gnutls_hash_init(&h, GNUTLS_DIG_SHA256), 0);
	fputs("From: a@example.org\nSubject: big\nMessage-ID: <big@example.org>\n\n", f);
	{
		const char *hdr = "From: a@example.org\r\nSubject: big\r\n"
				  "Message-ID: <big@example.org>\r\n\r\n";

		gnutls_hash(h, hdr, strlen(hdr));
		size = strlen(hdr);
	}
	for (unsigned i = 0; size < target; i++) {
		char line[96];
		int n = snprintf(line, sizeof(line), "line %08u of a large body, padded to some length ....\r\n", i);

		fwrite(line, 1, (size_t)n - 2, f);
		fputc('\n', f);
		gnutls_hash(h, line, (size_t)n);
		size += (uint64_t)n;
	}
	gnutls_hash_deinit(h, want);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(harness_run(argv, NULL, &res), 0);
	cr_assert_eq(res.status, 0, "doveadm save: %s", res.err);
	harness_result_release(&res);

	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	cr_assert_eq(l.nmsgs, 1);
	cr_assert_eq(l.msgs[0].size, size);
	before = peak_rss_kb();
	download(r, "INBOX", &l.msgs[0].uid, 1, &s);
	after = peak_rss_kb();
	cr_assert_eq(s.n, 1);
	cr_assert(s.msgs[0].finished);
	cr_assert_eq(s.msgs[0].uid, l.msgs[0].uid);
	cr_assert_eq(s.msgs[0].got, size);
	cr_assert_gt(s.msgs[0].pieces, 20u, "only %zu pieces", s.msgs[0].pieces);
	cr_assert_leq(s.msgs[0].max_piece, 1024u * 1024u);
	gnutls_hash_output(s.msgs[0].hash, got);
	cr_assert_eq(memcmp(want, got, 32), 0, "downloaded bytes differ");
	cr_assert_lt(after - before, 3 * 1024, "peak RSS grew by %ld KiB", after - before);
	cr_assert_eq(s.aborted, 0u);
	cr_assert_eq(s.gone, 0u);

	/* The same file uploaded (LF -> CRLF on the way) is not held in memory either. */
	{
		int fd = open(path, O_RDONLY);
		uint32_t uid = 0;
		struct err e;

		cr_assert(fd >= 0);
		before = peak_rss_kb();
		cr_assert_eq(sync_remote_append(r, "Archive", fd, size, NULL, 0, NULL, &uid, &e), 0,
			     "%s", e.msg);
		after = peak_rss_kb();
		close(fd);
		cr_assert_gt(uid, 0u);
		cr_assert_lt(after - before, 3 * 1024, "peak RSS grew by %ld KiB on upload",
			     after - before);
		scan(r, "Archive", NULL, &a, &l);
		cr_assert_eq(l.nmsgs, 1);
		cr_assert_eq(l.msgs[0].size, size);
	}
	dl_release(&s);
	arena_release(&a);
	remote_close(r);
	free(cmd);
	free(path);
}

Test(remote, download_reports_flags_date_and_gone_uids)
{
	char *crlf = crlf_of(msg_lf);
	struct sync_remote_listing l;
	struct dl_sink s = { .keep = true };
	struct sync_remote *r;
	uint32_t uids[2];
	struct arena a;

	{
		char *cmd = xasprintf("A APPEND INBOX (\\Seen \\Flagged) \"05-Mar-2024 10:20:30 +0100\" {%zu}",
				      strlen(crlf));
		const char *cmds[] = { cmd, crlf, NULL };

		free(raw(cmds));
		free(cmd);
	}
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	cr_assert_eq(l.nmsgs, 1);
	uids[0] = l.msgs[0].uid;
	uids[1] = l.msgs[0].uid + 50;       /* never existed */
	download(r, "INBOX", uids, 2, &s);
	cr_assert_eq(s.n, 1);
	cr_assert(s.msgs[0].finished);
	cr_assert_str_eq(s.msgs[0].data, crlf);
	cr_assert_eq(s.msgs[0].sys, SYNC_F_SEEN | SYNC_F_FLAGGED);
	cr_assert_eq(s.msgs[0].date, (time_t)1709630430);  /* 2024-03-05 09:20:30 UTC */
	cr_assert_eq(s.gone, 1u);
	dl_release(&s);
	arena_release(&a);
	free(crlf);
	remote_close(r);
}

struct fp_count {
	const struct sync_remote_listing *l;
	size_t calls, size_ok;
};

static int fp_count_cb(void *ctx, uint32_t uid, const struct sync_fp *fp, const char *message_id,
		       uint64_t size, struct err *e)
{
	struct fp_count *c = ctx;
	const struct sync_remote_msg *m = find_msg(c->l, uid);

	(void)fp;
	(void)message_id;
	(void)e;
	c->calls++;
	if (m && m->size == size)
		c->size_ok++;
	return 0;
}

Test(remote, many_messages_download_and_fingerprint_in_pipelined_batches)
{
	struct sync_remote_listing l;
	struct dl_sink s = { 0 };
	struct fp_count fc = { 0 };
	struct sync_remote *r;
	struct arena a;
	uint32_t *uids;
	struct err e;
	size_t i;

	cr_assert_eq(harness_seed(&dc, dc.user1, 160, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	cr_assert_gt(l.nmsgs, 64u, "need more than two download batches");
	uids = xcalloc(l.nmsgs, sizeof(*uids));
	for (i = 0; i < l.nmsgs; i++)
		uids[i] = l.msgs[i].uid;
	download(r, "INBOX", uids, l.nmsgs, &s);
	cr_assert_eq(s.n, l.nmsgs);
	for (i = 0; i < s.n; i++) {
		const struct sync_remote_msg *m = find_msg(&l, s.msgs[i].uid);

		cr_assert(s.msgs[i].finished);
		cr_assert_not_null(m);
		cr_assert_eq(s.msgs[i].got, m->size, "UID %u: %llu of %llu bytes", m->uid,
			     (unsigned long long)s.msgs[i].got, (unsigned long long)m->size);
		cr_assert_eq(s.msgs[i].sys, m->flags.sys & ~(unsigned)SYNC_F_DELETED);
		cr_assert_eq(s.msgs[i].date % 86400, 43200, "INTERNALDATE is 12:00 UTC in the seed");
	}
	cr_assert_eq(s.aborted, 0u);
	cr_assert_eq(s.gone, 0u);
	fc.l = &l;
	cr_assert_eq(sync_remote_fetch_fps(r, "INBOX", uids, l.nmsgs, fp_count_cb, &fc, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(fc.calls, l.nmsgs);
	cr_assert_eq(fc.size_ok, l.nmsgs);
	dl_release(&s);
	free(uids);
	arena_release(&a);
	remote_close(r);
}

Test(remote, sink_failure_mid_body_aborts_the_handle_once)
{
	struct sync_remote_listing l;
	struct dl_sink s = { .fail_after = 4000 };
	struct sync_remote_sink k = { &s, dl_begin, dl_data, dl_finish, dl_abort, dl_gone };
	struct sync_remote *r;
	uint32_t *uids;
	struct arena a;
	struct err e;
	size_t i;

	cr_assert_eq(harness_seed(&dc, dc.user1, 40, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	uids = xcalloc(l.nmsgs, sizeof(*uids));
	for (i = 0; i < l.nmsgs; i++)
		uids[i] = l.msgs[i].uid;
	cr_assert_eq(sync_remote_download(r, "INBOX", uids, l.nmsgs, &k, &e), -1);
	cr_assert_eq(e.code, ERR_IO, "%s", e.msg);
	cr_assert(strstr(e.msg, "disk full") != NULL, "%s", e.msg);
	sync_remote_free(r);        /* the connection is dead: no LOGOUT */
	cr_assert_gt(s.n, 0u);
	/* Every begun message was finished or aborted, exactly once (dl_abort/dl_finish check). */
	for (i = 0; i < s.n; i++)
		cr_assert(s.msgs[i].finished, "message %zu neither finished nor aborted", i);
	cr_assert_eq(s.aborted, 1u);
	dl_release(&s);
	free(uids);
	arena_release(&a);
}

/* ---- append / store / move / expunge ---------------------------------------------------------- */

Test(remote, append_returns_uid_and_keeps_flags_and_date)
{
	const char *kw[] = { "$Label1" };
	struct sync_flags fl = { SYNC_F_SEEN | SYNC_F_ANSWERED, 1, kw };
	struct sync_remote_listing l;
	struct dl_sink s = { .keep = true };
	struct sync_remote *r;
	const struct sync_remote_msg *m;
	char *crlf = crlf_of(msg_lf);
	struct arena a;
	uint32_t uid;

	r = remote_open();
	cr_assert(sync_remote_caps(r)->uidplus);
	uid = append_text(r, "INBOX", msg_lf, &fl, (time_t)1700000000, NULL);
	cr_assert_gt(uid, 0u);
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	m = find_msg(&l, uid);
	cr_assert_not_null(m);
	cr_assert_eq(m->flags.sys, SYNC_F_SEEN | SYNC_F_ANSWERED);
	cr_assert(has_kw(&m->flags, "$Label1"));
	cr_assert_eq(m->size, strlen(crlf));
	download(r, "INBOX", &uid, 1, &s);
	cr_assert_str_eq(s.msgs[0].data, crlf, "LF was not converted to CRLF");
	cr_assert_eq(s.msgs[0].date, (time_t)1700000000);
	dl_release(&s);
	arena_release(&a);
	free(crlf);
	remote_close(r);
}

/*
 * MULTIAPPEND: three messages with their own flags and dates in one
 * command; the UIDs come back in order from APPENDUID's set, and each
 * message is on the server with its flags, date and CRLF body.
 */
Test(remote, multiappend_stores_each_message_with_its_flags_and_uid)
{
	static const char *const texts[3] = { "Subject: m1\n\none\n", "Subject: m2\n\ntwo\ntwo\n",
					      "Subject: m3\n\nthree\n" };
	const unsigned sys[3] = { SYNC_F_SEEN, 0, SYNC_F_FLAGGED | SYNC_F_DRAFT };
	struct sync_flags fl[3];
	struct sync_remote_append_msg msgs[3];
	struct sync_remote_append *ap;
	struct sync_remote_listing l;
	struct dl_sink s = { .keep = true };
	struct sync_remote *r;
	struct arena a;
	uint32_t uids[3];
	struct err e;

	r = remote_open();
	cr_assert(sync_remote_can_multiappend(r));
	for (int i = 0; i < 3; i++) {
		fl[i] = (struct sync_flags){ sys[i], 0, NULL };
		msgs[i] = (struct sync_remote_append_msg){
			temp_file(i == 0 ? "m1.eml" : i == 1 ? "m2.eml" : "m3.eml", texts[i], strlen(texts[i])),
			crlf_size(texts[i], strlen(texts[i])), &fl[i], (time_t)1700000000 + i };
	}
	cr_assert_eq(sync_remote_append_many_submit(r, "INBOX", msgs, 3, &ap, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_append_many_wait(r, ap, uids, &e), 0, "%s", e.msg);
	cr_assert_gt(uids[0], 0u);
	cr_assert_eq(uids[1], uids[0] + 1);
	cr_assert_eq(uids[2], uids[0] + 2);
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	for (int i = 0; i < 3; i++) {
		const struct sync_remote_msg *m = find_msg(&l, uids[i]);
		char *crlf = crlf_of(texts[i]);

		cr_assert_not_null(m, "UID %u not on the server", uids[i]);
		cr_assert_eq(m->flags.sys, sys[i], "message %d: flags %x", i, m->flags.sys);
		cr_assert_eq(m->size, strlen(crlf));
		download(r, "INBOX", &uids[i], 1, &s);
		cr_assert_str_eq(s.msgs[i].data, crlf);
		cr_assert_eq(s.msgs[i].date, (time_t)1700000000 + i);
		free(crlf);
		close(msgs[i].fd);
	}
	dl_release(&s);
	arena_release(&a);
	remote_close(r);
}

Test(remote, append_waits_for_continuation_without_literal_plus)
{
	struct sync_remote *r = remote_open();
	struct sync_remote_listing l;
	struct dl_sink s = { .keep = true };
	char *crlf = crlf_of(msg_lf);
	struct arena a;
	uint32_t uid;

	/* As if the server had no LITERAL+: every literal waits for "+". */
	imap_conn_set_literal_mode(imap_client_conn(sync_remote_client(r)), IMAP_LITERAL_SYNC);
	uid = append_text(r, "Drafts", msg_lf, NULL, 0, NULL);
	cr_assert_gt(uid, 0u);
	arena_init(&a, 4096);
	scan(r, "Drafts", NULL, &a, &l);
	cr_assert_eq(l.nmsgs, 1);
	download(r, "Drafts", &uid, 1, &s);
	cr_assert_str_eq(s.msgs[0].data, crlf);
	dl_release(&s);
	arena_release(&a);
	free(crlf);
	remote_close(r);
}

Test(remote, append_refuses_a_file_whose_size_changed)
{
	struct sync_remote *r = remote_open();
	int fd = temp_file("short.eml", msg_lf, strlen(msg_lf));
	uint32_t uid = 7;
	struct err e;

	cr_assert_eq(sync_remote_append(r, "INBOX", fd, crlf_size(msg_lf, strlen(msg_lf)) + 3, NULL,
					0, NULL, &uid, &e), -1);
	cr_assert_eq(e.code, ERR_STATE);
	cr_assert_eq(uid, 0u);
	close(fd);
	remote_close(r);        /* the connection is still usable */
}

static void check_store(struct sync_remote *r)
{
	const char *kw[] = { "$Important", "Work" };
	struct sync_flags add = { SYNC_F_FLAGGED | SYNC_F_SEEN, 2, kw };
	struct sync_flags rm = { SYNC_F_SEEN, 0, NULL };
	struct sync_remote_listing l1, l2;
	struct arena a;
	uint32_t uids[3];
	struct err e;
	size_t i;

	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	cr_assert_gt(l1.nmsgs, 6);
	uids[0] = l1.msgs[1].uid;
	uids[1] = l1.msgs[2].uid;
	uids[2] = l1.msgs[5].uid;
	cr_assert_eq(sync_remote_store(r, "INBOX", uids, 3, &add, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_store(r, "INBOX", uids, 2, NULL, &rm, &e), 0, "%s", e.msg);
	scan(r, "INBOX", NULL, &a, &l2);
	for (i = 0; i < 3; i++) {
		const struct sync_remote_msg *m = find_msg(&l2, uids[i]);

		cr_assert_not_null(m);
		cr_assert(m->flags.sys & SYNC_F_FLAGGED);
		cr_assert_eq(!!(m->flags.sys & SYNC_F_SEEN), i == 2);
		cr_assert(has_kw(&m->flags, "$Important") && has_kw(&m->flags, "Work"));
	}
	/* Others untouched. */
	cr_assert_eq(find_msg(&l2, l1.msgs[3].uid)->flags.sys, l1.msgs[3].flags.sys);
	arena_release(&a);
}

Test(remote, store_adds_and_removes_flags)
{
	struct sync_remote *r;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	check_store(r);
	remote_close(r);
}

/* Move uids[1], uids[3] of INBOX to Archive; `other` (another INBOX message) is \Deleted by the user. */
static void check_move(struct sync_remote *r, bool expect_new_uids, bool user_deleted_other)
{
	struct sync_remote_listing l1, l2, l3;
	struct arena a;
	uint32_t uids[2], nu[2] = { 0, 0 }, other;
	struct err e;

	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	cr_assert_gt(l1.nmsgs, 5);
	uids[0] = l1.msgs[1].uid;
	uids[1] = l1.msgs[3].uid;
	other = l1.msgs[4].uid;
	if (user_deleted_other) {
		char *c = xasprintf("B UID STORE %u +FLAGS (\\Deleted)", other);
		const char *cmds[] = { "A SELECT INBOX", c, NULL };

		free(raw(cmds));
		free(c);
	}
	cr_assert_eq(sync_remote_move(r, "INBOX", uids, 2, "Archive", nu, &e), 0, "%s", e.msg);
	scan(r, "INBOX", NULL, &a, &l2);
	scan(r, "Archive", NULL, &a, &l3);
	cr_assert_eq(l3.nmsgs, 2);
	if (expect_new_uids) {
		cr_assert_not_null(find_msg(&l3, nu[0]));
		cr_assert_not_null(find_msg(&l3, nu[1]));
		cr_assert_eq(find_msg(&l3, nu[0])->size, l1.msgs[1].size);
		cr_assert_eq(find_msg(&l3, nu[1])->size, l1.msgs[3].size);
	} else {
		cr_assert_eq(nu[0], 0u);
		cr_assert_eq(nu[1], 0u);
	}
	/* The moved copies do not carry \Deleted. */
	cr_assert_eq(l3.msgs[0].flags.sys & SYNC_F_DELETED, 0u);
	cr_assert_eq(l3.msgs[1].flags.sys & SYNC_F_DELETED, 0u);
	/* The originals are gone (without UIDPLUS: EXPUNGE with the user's
	 * \Deleted mark off for it); the user's \Deleted message survives,
	 * marked still. */
	cr_assert_null(find_msg(&l2, uids[0]));
	cr_assert_null(find_msg(&l2, uids[1]));
	cr_assert_eq(l2.nmsgs, l1.nmsgs - 2);
	if (user_deleted_other) {
		cr_assert_not_null(find_msg(&l2, other), "the user's \\Deleted message was expunged");
		cr_assert(find_msg(&l2, other)->flags.sys & SYNC_F_DELETED, "its mark was not put back");
	}
	arena_release(&a);
}

Test(remote, move_uses_move_and_reports_new_uids)
{
	struct sync_remote *r;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	cr_assert(sync_remote_caps(r)->move);
	check_move(r, true, false);
	remote_close(r);
}

Test(remote, move_leaves_user_deleted_message_alone)
{
	struct sync_remote_listing l;
	struct sync_remote *r;
	struct arena a;
	uint32_t other;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	other = l.msgs[4].uid;
	{
		char *c = xasprintf("B UID STORE %u +FLAGS (\\Deleted)", other);
		const char *cmds[] = { "A SELECT INBOX", c, NULL };
		struct sync_remote_listing l2;
		uint32_t uids[2] = { l.msgs[1].uid, l.msgs[3].uid }, nu[2];
		struct err e;

		free(raw(cmds));
		free(c);
		cr_assert_eq(sync_remote_move(r, "INBOX", uids, 2, "Archive", nu, &e), 0, "%s", e.msg);
		scan(r, "INBOX", NULL, &a, &l2);
		cr_assert_not_null(find_msg(&l2, other), "UID MOVE removed the user's message");
		cr_assert_null(find_msg(&l2, uids[0]));
	}
	arena_release(&a);
	remote_close(r);
}

Test(remote, expunge_removes_only_the_given_uids)
{
	struct sync_remote_listing l1, l2;
	struct sync_remote *r;
	struct arena a;
	uint32_t uids[2], other;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	uids[0] = l1.msgs[0].uid;
	uids[1] = l1.msgs[2].uid;
	other = l1.msgs[1].uid;
	{
		char *c = xasprintf("B UID STORE %u +FLAGS (\\Deleted)", other);
		const char *cmds[] = { "A SELECT INBOX", c, NULL };

		free(raw(cmds));
		free(c);
	}
	cr_assert_eq(sync_remote_expunge(r, "INBOX", uids, 2, &e), 0, "%s", e.msg);
	scan(r, "INBOX", NULL, &a, &l2);
	cr_assert_eq(l2.nmsgs, l1.nmsgs - 2);
	cr_assert_null(find_msg(&l2, uids[0]));
	cr_assert_null(find_msg(&l2, uids[1]));
	cr_assert_not_null(find_msg(&l2, other));
	arena_release(&a);
	remote_close(r);
}

/* ---- folders -------------------------------------------------------------------------------------- */

static void check_folder_round_trip(struct sync_remote *r)
{
	const char *name = "Projekte/Entw\xc3\xbcrfe \xe2\x9c\x93";     /* "Entwürfe ✓" */
	const char *names[1] = { name };
	struct imap_status_data st;
	struct sync_remote_listing l;
	struct arena a;
	struct err e;
	char *reply;
	uint32_t uid;

	cr_assert_eq(sync_remote_create(r, name, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_create(r, name, NULL, &e), 0, "second create: %s", e.msg);
	{
		const char *cmds[] = { "A LIST \"\" \"Projekte/*\"", "B LSUB \"\" \"Projekte/*\"", NULL };

		reply = raw(cmds);
		/* U+00FC -> &APw-, U+2713 -> &JxM- (RFC 3501 modified UTF-7). */
		cr_assert(strstr(reply, "* LIST (") && strstr(reply, "Projekte/Entw&APw-rfe &JxM-"),
			  "%s", reply);
		cr_assert(strstr(reply, "* LSUB (") != NULL, "not subscribed: %s", reply);
		free(reply);
	}
	cr_assert_eq(sync_remote_status_all(r, names, 1, &st, &e), 0, "%s", e.msg);
	cr_assert(st.have & IMAP_STATUS_HAVE_UIDNEXT);
	{
		/* Decoded back to the same UTF-8 by the client's LIST. */
		struct imap_mailbox_list boxes;
		bool found = false;

		imap_mailbox_list_init(&boxes);
		cr_assert_eq(imap_client_list(sync_remote_client(r), &boxes, &e), 0, "%s", e.msg);
		for (size_t i = 0; i < boxes.n; i++)
			if (strcmp(boxes.items[i].name, name) == 0)
				found = true;
		imap_mailbox_list_release(&boxes);
		cr_assert(found, "the UTF-8 name did not come back from LIST");
	}
	uid = append_text(r, name, msg_lf, NULL, 0, NULL);
	arena_init(&a, 4096);
	scan(r, name, NULL, &a, &l);
	cr_assert_eq(l.nmsgs, 1);
	if (sync_remote_caps(r)->uidplus)
		cr_assert_eq(l.msgs[0].uid, uid);
	arena_release(&a);

	cr_assert_eq(sync_remote_delete(r, name, &e), 0, "%s", e.msg);   /* selected: unselects first */
	cr_assert_eq(sync_remote_status_all(r, names, 1, &st, &e), 0, "%s", e.msg);
	cr_assert_eq(st.have, 0u, "mailbox still there");
	reply = raw((const char *const[]){ "A LIST \"\" \"Projekte/*\"", NULL });
	cr_assert_null(strstr(reply, "Entw&APw-rfe"), "%s", reply);
	free(reply);
}

Test(remote, create_and_delete_non_ascii_mailbox)
{
	struct sync_remote *r = remote_open();

	check_folder_round_trip(r);
	remote_close(r);
}

/* ---- IMAP4rev1 only ---------------------------------------------------------------------------------- */

Test(remote_rev1, full_listing_shows_flag_change_and_expunge)
{
	struct sync_remote_listing l1, l2;
	struct sync_remote_known k;
	const char *names[] = { "INBOX" };
	struct imap_status_data st;
	struct sync_remote *r;
	struct arena a;
	uint32_t *uids;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	cr_assert(!sync_remote_caps(r)->condstore && !sync_remote_caps(r)->uidplus &&
		  !sync_remote_caps(r)->move && !sync_remote_caps(r)->list_status);
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	cr_assert(l1.complete);
	cr_assert_eq(l1.highestmodseq, 0u);
	uids = known_from(&l1, &k);
	/* Pipelined STATUS; without HIGHESTMODSEQ "unchanged" can never be claimed. */
	cr_assert_eq(sync_remote_status_all(r, names, 1, &st, &e), 0, "%s", e.msg);
	cr_assert_eq(st.uidnext, l1.uidnext);
	cr_assert_eq(st.messages, l1.messages);
	cr_assert(!sync_remote_unchanged(&st, &k));
	flag_and_expunge_behind_the_back(uids[2], uids[5]);
	k.status = &st;
	scan(r, "INBOX", &k, &a, &l2);
	cr_assert_eq(l2.method, SYNC_REMOTE_FULL);
	cr_assert(l2.complete);
	cr_assert_eq(l2.nmsgs, l1.nmsgs - 1);
	cr_assert_null(find_msg(&l2, uids[5]));
	cr_assert(find_msg(&l2, uids[2])->flags.sys & SYNC_F_FLAGGED);
	free(uids);
	arena_release(&a);
	remote_close(r);
}

/*
 * Without CONDSTORE the SELECT and the known listing go in one round trip:
 * under the recorded UIDVALIDITY the known sizes are used; under another
 * the pipelined answers are dropped and the mailbox is listed afresh (the
 * recorded sizes, deliberately wrong here, must not show); a failed SELECT
 * is reported as such and leaves the connection usable.
 */
Test(remote_rev1, select_and_known_listing_pipelined_and_a_new_uidvalidity_relisted)
{
	struct sync_remote_listing l1, l2, l3, l4;
	struct sync_remote_known k;
	struct sync_remote *r;
	struct arena a;
	uint64_t *sizes;
	uint32_t *uids;
	struct err e;
	size_t n;

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	n = l1.nmsgs;
	cr_assert_gt(n, 3);
	uids = known_from(&l1, &k);
	sizes = xcalloc(n + 1, sizeof(*sizes));
	for (size_t i = 0; i < n; i++)
		sizes[i] = l1.msgs[i].size + 1000;
	k.sizes = sizes;
	scan(r, "INBOX", &k, &a, &l2);
	cr_assert(l2.complete);
	cr_assert(!l2.uidvalidity_changed);
	cr_assert_eq(l2.uidvalidity, l1.uidvalidity);
	cr_assert_eq(l2.nmsgs, n);
	for (size_t i = 0; i < n; i++) {
		/* The last one too: "max+1:4294967295" does not answer it (as "max+1:*" would). */
		uint64_t want = sizes[i];

		cr_assert_eq(l2.msgs[i].uid, l1.msgs[i].uid);
		cr_assert_eq(l2.msgs[i].size, want, "uid %u: size %llu, want %llu", l1.msgs[i].uid,
			     (unsigned long long)l2.msgs[i].size, (unsigned long long)want);
	}

	k.uidvalidity = l1.uidvalidity - 1;     /* as if the server had renumbered */
	scan(r, "INBOX", &k, &a, &l3);
	cr_assert(l3.uidvalidity_changed);
	cr_assert(l3.complete);
	cr_assert_eq(l3.uidvalidity, l1.uidvalidity);
	cr_assert_eq(l3.nmsgs, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(l3.msgs[i].size, l1.msgs[i].size, "uid %u: a stale size was kept",
			     l1.msgs[i].uid);

	k.uidvalidity = l1.uidvalidity;
	cr_assert_eq(sync_remote_scan(r, "No Such Box", &k, &a, &l4, &e), -1);
	cr_assert(strstr(e.msg, "No Such Box") != NULL, "%s", e.msg);
	scan(r, "INBOX", &k, &a, &l4);
	cr_assert_eq(l4.nmsgs, n);
	free(sizes);
	free(uids);
	arena_release(&a);
	remote_close(r);
}

static int fp_ignore(void *ctx, uint32_t uid, const struct sync_fp *fp, const char *message_id,
		     uint64_t size, struct err *e)
{
	(void)ctx;
	(void)uid;
	(void)fp;
	(void)message_id;
	(void)size;
	(void)e;
	return 0;
}

/* Known UIDs and deliberately wrong sizes (real + 1000) of a listing; arrays to free. */
static void known_with_sizes(const struct sync_remote_listing *l, struct sync_remote_known *k,
			     uint32_t **uids_out, uint64_t **sizes_out)
{
	*uids_out = known_from(l, k);
	*sizes_out = xcalloc(l->nmsgs + 1, sizeof(**sizes_out));
	for (size_t i = 0; i < l->nmsgs; i++)
		(*sizes_out)[i] = l->msgs[i].size + 1000;
	k->sizes = *sizes_out;
}

/* The listing matches `want` by UID and flags; sizes are the recorded ones, or the real ones. */
static void same_listing(const struct sync_remote_listing *got, const struct sync_remote_listing *want,
			 const uint64_t *sizes, bool recorded_sizes)
{
	cr_assert_eq(got->nmsgs, want->nmsgs);
	for (size_t i = 0; i < want->nmsgs; i++) {
		uint64_t size = recorded_sizes ? sizes[i] : want->msgs[i].size;

		cr_assert_eq(got->msgs[i].uid, want->msgs[i].uid);
		cr_assert_eq(got->msgs[i].flags.sys, want->msgs[i].flags.sys);
		cr_assert_eq(got->msgs[i].size, size, "uid %u: size %llu, want %llu", got->msgs[i].uid,
			     (unsigned long long)got->msgs[i].size, (unsigned long long)size);
	}
}

/*
 * Listings started ahead: four in flight at once (every SELECT and FETCH
 * sent before any answer is read), finished in order.  Each gets its own
 * mailbox's messages; a known UID recorded without a size gets its size
 * from its own mailbox, selected again since another was selected after
 * it; the one whose SELECT fails fails alone; the one whose UIDVALIDITY
 * changed is selected again too and listed afresh with its real sizes;
 * the adapter's selection is then that last SELECT's mailbox.
 */
Test(remote_rev1, listings_started_ahead_are_answered_each_to_its_own)
{
	struct sync_remote_listing li, lo, l1, l2, l3, l4;
	struct sync_remote_known ki, ko;
	struct sync_remote_scan_ahead *x[4];
	uint32_t *ui, *uo, mi, mo;
	uint64_t *si, *so;
	unsigned long sel0;
	struct sync_remote *r;
	struct arena a;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	r = remote_open();
	cr_assert_eq(sync_remote_create(r, "Other", NULL, &e), 0, "%s", e.msg);
	for (int i = 0; i < 3; i++)
		append_text(r, "Other", i == 1 ? "Subject: o2\n\nsecond\n" : msg_lf, NULL, 0, NULL);
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &li);
	scan(r, "Other", NULL, &a, &lo);
	cr_assert_gt(li.nmsgs, 3);
	cr_assert_eq(lo.nmsgs, 3);
	known_with_sizes(&li, &ki, &ui, &si);
	known_with_sizes(&lo, &ko, &uo, &so);
	mi = ui[li.nmsgs - 1];
	mo = uo[lo.nmsgs - 1];
	cr_assert(sync_remote_scan_can_start(r));

	sel0 = sync_remote_selects(r);
	cr_assert_eq(sync_remote_scan_start(r, "INBOX", ki.uidvalidity, mi, &a, &x[0], &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_scan_start(r, "No Such Box", 7, 5, &a, &x[1], &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_scan_start(r, "Other", lo.uidvalidity - 1, mo, &a, &x[2], &e), 0,
		     "%s", e.msg);
	cr_assert_eq(sync_remote_scan_start(r, "Other", lo.uidvalidity, mo, &a, &x[3], &e), 0, "%s", e.msg);
	cr_assert_eq(imap_conn_pending(imap_client_conn(sync_remote_client(r))), 12u,
		     "the starts waited for answers");

	si[2] = 0;                      /* recorded without a size: asked of INBOX */
	cr_assert_eq(sync_remote_scan_finish(x[0], &ki, &l1, &e), 0, "%s", e.msg);
	cr_assert(l1.complete && !l1.uidvalidity_changed);
	cr_assert_eq(l1.uidvalidity, li.uidvalidity);
	si[2] = li.msgs[2].size;
	same_listing(&l1, &li, si, true);

	ko.uidvalidity = 7;
	cr_assert_eq(sync_remote_scan_finish(x[1], &ko, &l2, &e), -1);
	cr_assert(strstr(e.msg, "No Such Box") != NULL, "%s", e.msg);
	cr_assert_eq(e.code, ERR_SERVER, "%s", e.msg);

	ko.uidvalidity = lo.uidvalidity - 1;
	cr_assert_eq(sync_remote_scan_finish(x[2], &ko, &l3, &e), 0, "%s", e.msg);
	cr_assert(l3.uidvalidity_changed);
	cr_assert_eq(l3.uidvalidity, lo.uidvalidity);
	same_listing(&l3, &lo, so, false);

	ko.uidvalidity = lo.uidvalidity;
	cr_assert_eq(sync_remote_scan_finish(x[3], &ko, &l4, &e), 0, "%s", e.msg);
	same_listing(&l4, &lo, so, true);
	cr_assert_eq(sync_remote_selects(r) - sel0, 6u, "INBOX and Other were not selected again");

	/* The last SELECT sent (Other, again) is the selection: no SELECT for it now. */
	sel0 = sync_remote_selects(r);
	cr_assert_eq(sync_remote_fetch_fps(r, "Other", uo, 1, fp_ignore, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_selects(r), sel0);
	cr_assert_eq(sync_remote_fetch_fps(r, "INBOX", ui, 1, fp_ignore, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_selects(r), sel0 + 1);

	/* Nothing recorded: the whole listing with sizes, in flight with another. */
	cr_assert_eq(sync_remote_scan_start(r, "Other", 0, 0, &a, &x[0], &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_scan_start(r, "INBOX", ki.uidvalidity, mi, &a, &x[1], &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_scan_finish(x[0], NULL, &l3, &e), 0, "%s", e.msg);
	cr_assert(!l3.uidvalidity_changed);
	same_listing(&l3, &lo, so, false);
	cr_assert_eq(sync_remote_scan_finish(x[1], &ki, &l4, &e), 0, "%s", e.msg);
	same_listing(&l4, &li, si, true);

	/* Abandoned in flight: the connection goes on. */
	cr_assert_eq(sync_remote_scan_start(r, "Other", lo.uidvalidity, mo, &a, &x[0], &e), 0, "%s", e.msg);
	sync_remote_scan_abandon(x[0]);
	scan(r, "Other", &ko, &a, &l3);
	cr_assert_eq(l3.nmsgs, lo.nmsgs);
	free(ui);
	free(uo);
	free(si);
	free(so);
	arena_release(&a);
	remote_close(r);
}

Test(remote_rev1, append_finds_uid_by_fingerprint)
{
	struct sync_fp_value v;
	struct sync_fp fp = { .state = SYNC_FP_KNOWN };
	struct sync_remote_listing l;
	struct sync_remote *r;
	struct arena a;
	uint32_t uid, uid_plain;

	cr_assert_eq(harness_seed(&dc, dc.user1, 5, NULL), 0);
	fp_of_bytes(msg_lf, strlen(msg_lf), &v);
	memcpy(fp.bytes, v.bytes, SYNC_FP_LEN);
	r = remote_open();
	/* Another message after ours, so the search must pick the right one. */
	uid = append_text(r, "INBOX", msg_lf, NULL, 0, &fp);
	raw_append("INBOX", "", "Subject: later\r\n\r\nlater\r\n");
	uid_plain = append_text(r, "INBOX", "Subject: no fp\n\nx\n", NULL, 0, NULL);
	cr_assert_eq(uid_plain, 0u, "no UIDPLUS and no fingerprint: the UID is unknown");
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	cr_assert_gt(uid, 0u);
	cr_assert_eq(l.msgs[l.nmsgs - 3].uid, uid, "found UID %u", uid);
	cr_assert_eq(l.msgs[l.nmsgs - 3].size, crlf_size(msg_lf, strlen(msg_lf)));
	arena_release(&a);
	remote_close(r);
}

Test(remote_rev1, store_adds_and_removes_flags)
{
	struct sync_remote *r;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	check_store(r);
	remote_close(r);
}

Test(remote_rev1, move_by_copy_and_expunge)
{
	struct sync_remote *r;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	check_move(r, false, false);
	remote_close(r);
}

Test(remote_rev1, move_keeps_message_the_user_marked_deleted)
{
	struct sync_remote *r;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	check_move(r, false, true);
	remote_close(r);
}

Test(remote_rev1, create_and_delete_non_ascii_mailbox)
{
	struct sync_remote *r = remote_open();

	check_folder_round_trip(r);
	remote_close(r);
}

Test(remote_rev1, expunge_without_uidplus_spares_user_deleted_message)
{
	struct sync_remote_listing l1, l2;
	struct sync_remote *r;
	struct arena a;
	uint32_t uids[2], other;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	uids[0] = l1.msgs[0].uid;
	uids[1] = l1.msgs[2].uid;
	other = l1.msgs[1].uid;

	/* Nobody else has \Deleted: a plain EXPUNGE removes exactly ours. */
	cr_assert_eq(sync_remote_expunge(r, "INBOX", uids, 1, &e), 0, "%s", e.msg);
	{
		char *c = xasprintf("B UID STORE %u +FLAGS (\\Deleted)", other);
		const char *cmds[] = { "A SELECT INBOX", c, NULL };

		free(raw(cmds));
		free(c);
	}
	/* Now the user's \Deleted message is there: its mark goes off for the
	 * EXPUNGE and comes back; ours is expunged, the user's stays, marked. */
	cr_assert_eq(sync_remote_expunge(r, "INBOX", uids + 1, 1, &e), 0, "%s", e.msg);
	scan(r, "INBOX", NULL, &a, &l2);
	cr_assert_eq(l2.nmsgs, l1.nmsgs - 2);
	cr_assert_null(find_msg(&l2, uids[0]));
	cr_assert_null(find_msg(&l2, uids[1]));
	cr_assert_not_null(find_msg(&l2, other), "the user's \\Deleted message was expunged");
	cr_assert(find_msg(&l2, other)->flags.sys & SYNC_F_DELETED, "its mark was not put back");
	arena_release(&a);
	remote_close(r);
}

/* ---- fallbacks on the full server, with capabilities turned off ----------------------------------- */

Test(remote, move_by_copy_with_uidplus_reports_new_uids_and_spares_user_deleted)
{
	const struct sync_remote_caps off = { .move = true };
	struct sync_remote_listing l1, l2, l3;
	struct sync_remote *r;
	struct arena a;
	uint32_t uids[2], nu[2] = { 0, 0 }, other;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open();
	sync_remote_disable(r, &off);
	cr_assert(!sync_remote_caps(r)->move && sync_remote_caps(r)->uidplus);
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l1);
	uids[0] = l1.msgs[1].uid;
	uids[1] = l1.msgs[3].uid;
	other = l1.msgs[4].uid;
	{
		char *c = xasprintf("B UID STORE %u +FLAGS (\\Deleted)", other);
		const char *cmds[] = { "A SELECT INBOX", c, NULL };

		free(raw(cmds));
		free(c);
	}
	/* COPY (COPYUID), STORE \Deleted, UID EXPUNGE of exactly ours. */
	cr_assert_eq(sync_remote_move(r, "INBOX", uids, 2, "Archive", nu, &e), 0, "%s", e.msg);
	scan(r, "INBOX", NULL, &a, &l2);
	scan(r, "Archive", NULL, &a, &l3);
	cr_assert_null(find_msg(&l2, uids[0]));
	cr_assert_null(find_msg(&l2, uids[1]));
	cr_assert_not_null(find_msg(&l2, other), "UID EXPUNGE removed the user's message");
	cr_assert_eq(l3.nmsgs, 2);
	cr_assert_not_null(find_msg(&l3, nu[0]));
	cr_assert_not_null(find_msg(&l3, nu[1]));
	cr_assert_eq(find_msg(&l3, nu[1])->size, l1.msgs[3].size);
	cr_assert_eq(find_msg(&l3, nu[0])->flags.sys & SYNC_F_DELETED, 0u);
	arena_release(&a);
	remote_close(r);
}

Test(remote, condstore_without_esearch_or_list_status)
{
	const struct sync_remote_caps off = { .qresync = true, .esearch = true, .list_status = true };
	const char *names[] = { "INBOX" };
	struct imap_status_data st;
	struct sync_remote *r;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 20, NULL), 0);
	r = remote_open_with(true);
	sync_remote_disable(r, &off);
	check_delta(r, SYNC_REMOTE_CONDSTORE);     /* expunge check by plain UID SEARCH */
	/* Pipelined STATUS still carries HIGHESTMODSEQ. */
	cr_assert_eq(sync_remote_status_all(r, names, 1, &st, &e), 0, "%s", e.msg);
	cr_assert(st.have & IMAP_STATUS_HAVE_HIGHESTMODSEQ);
	cr_assert(st.have & IMAP_STATUS_HAVE_MESSAGES);
	remote_close(r);
}

/* ---- deltas and fingerprints of several mailboxes in flight ------------------------ */

#define AHEAD_BOXES 4

/* In `box` (raw IMAP): flag flag_uid with \Flagged and keyword kw, expunge gone_uid, add one message. */
static void change_box_behind_the_back(const char *box, uint32_t flag_uid, const char *kw,
				       uint32_t gone_uid, const char *new_msg)
{
	char *sel = xasprintf("A SELECT \"%s\"", box);
	char *c1 = xasprintf("B UID STORE %u +FLAGS (\\Flagged %s)", flag_uid, kw);
	char *c2 = xasprintf("C UID STORE %u +FLAGS (\\Deleted)", gone_uid);
	const char *cmds[] = { sel, c1, c2, "D EXPUNGE", NULL };

	free(raw(cmds));
	raw_append(box, "\\Seen", new_msg);
	free(sel);
	free(c1);
	free(c2);
}

/* Two listings are the same in every field, message by message. */
static void same_delta(const struct sync_remote_listing *got, const struct sync_remote_listing *want,
		       const char *box)
{
	cr_assert_eq(got->method, want->method, "%s", box);
	cr_assert_eq(got->complete, want->complete, "%s", box);
	cr_assert_eq(got->uidvalidity_changed, want->uidvalidity_changed, "%s", box);
	cr_assert_eq(got->uidvalidity, want->uidvalidity, "%s", box);
	cr_assert_eq(got->uidnext, want->uidnext, "%s", box);
	cr_assert_eq(got->messages, want->messages, "%s", box);
	cr_assert_eq(got->highestmodseq, want->highestmodseq, "%s", box);
	cr_assert_eq(got->nmsgs, want->nmsgs, "%s: %zu messages, want %zu", box, got->nmsgs, want->nmsgs);
	for (size_t i = 0; i < want->nmsgs; i++) {
		const struct sync_remote_msg *g = &got->msgs[i], *w = &want->msgs[i];

		cr_assert_eq(g->uid, w->uid, "%s", box);
		cr_assert_eq(g->size, w->size, "%s uid %u", box, w->uid);
		cr_assert_eq(g->flags.sys, w->flags.sys, "%s uid %u", box, w->uid);
		cr_assert_eq(g->flags.nkw, w->flags.nkw, "%s uid %u", box, w->uid);
		for (size_t k = 0; k < w->flags.nkw; k++)
			cr_assert_str_eq(g->flags.kw[k], w->flags.kw[k]);
	}
	cr_assert_eq(got->nvanished, want->nvanished, "%s", box);
	for (size_t i = 0; i < want->nvanished; i++)
		cr_assert_eq(got->vanished[i], want->vanished[i], "%s", box);
}

/*
 * Deltas started ahead (sync_remote_scan_start_known) in AHEAD_BOXES
 * mailboxes plus one that does not exist, all sent before any answer is
 * read: each mailbox had a flag change (its own keyword), an expunge and a
 * new message (its own size); the third is scanned with a wrong recorded
 * UIDVALIDITY (a complete listing), the second with a known message
 * recorded without a size.  Each listing has exactly its own mailbox's
 * changes, the same as a serial sync_remote_scan() gives, and the missing
 * mailbox fails alone.
 */
static void check_deltas_ahead(struct sync_remote *r, enum sync_remote_method method)
{
	static const char *const boxes[AHEAD_BOXES] = { "D0", "D1", "D2", "D3" };
	struct sync_remote_listing l0[AHEAD_BOXES], la[AHEAD_BOXES], ls[AHEAD_BOXES], lx;
	struct sync_remote_known k[AHEAD_BOXES], kx;
	struct sync_remote_scan_ahead *x[AHEAD_BOXES + 1];
	uint32_t *uids[AHEAD_BOXES];
	uint64_t *sizes[AHEAD_BOXES];
	size_t want_pending = 0;
	struct arena a;
	struct err e;

	arena_init(&a, 4096);
	for (size_t b = 0; b < AHEAD_BOXES; b++) {
		cr_assert_eq(sync_remote_create(r, boxes[b], NULL, &e), 0, "%s", e.msg);
		for (size_t i = 0; i < 6; i++) {
			char *msg = xasprintf("Subject: %s %zu\n\n%0*d\n", boxes[b], i, (int)(10 + 7 * b), 0);

			append_text(r, boxes[b], msg, NULL, 0, NULL);
			free(msg);
		}
		scan(r, boxes[b], NULL, &a, &l0[b]);
		cr_assert_eq(l0[b].nmsgs, 6);
		uids[b] = known_from(&l0[b], &k[b]);
		sizes[b] = xcalloc(7, sizeof(uint64_t));
		for (size_t i = 0; i < 6; i++)
			sizes[b][i] = l0[b].msgs[i].size;
		k[b].sizes = sizes[b];
	}
	sizes[1][2] = 0;        /* D1: recorded without a size (flagged below: its size is asked) */
	for (size_t b = 0; b < AHEAD_BOXES; b++) {
		char kw[16], *msg = xasprintf("Subject: new in %s\r\n\r\n%0*d\r\n", boxes[b],
					      (int)(100 + 13 * b), 0);

		snprintf(kw, sizeof(kw), "$Box%zu", b);
		change_box_behind_the_back(boxes[b], uids[b][1 + b % 2], kw, uids[b][3 + b % 2], msg);
		free(msg);
	}
	k[2].uidvalidity = l0[2].uidvalidity - 1;       /* as if D2 had been renumbered */
	kx = k[0];

	for (size_t b = 0; b < AHEAD_BOXES; b++) {
		cr_assert_eq(sync_remote_scan_start_known(r, boxes[b], &k[b], &a, &x[b], &e), 0, "%s",
			     e.msg);
		cr_assert_not_null(x[b]);
		want_pending += method == SYNC_REMOTE_QRESYNC ? 2 : 3;
		if (b == 1) {
			cr_assert_eq(sync_remote_scan_start_known(r, "No Such Box", &kx, &a, &x[AHEAD_BOXES],
								  &e), 0, "%s", e.msg);
			want_pending += method == SYNC_REMOTE_QRESYNC ? 2 : 3;
		}
	}
	cr_assert_eq(imap_conn_pending(imap_client_conn(sync_remote_client(r))), want_pending,
		     "the starts waited for answers");
	for (size_t b = 0; b < AHEAD_BOXES; b++) {
		cr_assert_eq(sync_remote_scan_finish(x[b], &k[b], &la[b], &e), 0, "%s: %s", boxes[b],
			     e.msg);
		if (b == 1) {
			cr_assert_eq(sync_remote_scan_finish(x[AHEAD_BOXES], &kx, &lx, &e), -1);
			cr_assert(strstr(e.msg, "No Such Box") != NULL, "%s", e.msg);
			cr_assert_eq(e.code, ERR_SERVER, "%s", e.msg);
		}
	}
	for (size_t b = 0; b < AHEAD_BOXES; b++) {
		uint32_t flagged = uids[b][1 + b % 2], gone = uids[b][3 + b % 2];
		const struct sync_remote_msg *m;
		char kw[16];

		snprintf(kw, sizeof(kw), "$Box%zu", b);
		scan(r, boxes[b], &k[b], &a, &ls[b]);
		same_delta(&la[b], &ls[b], boxes[b]);
		if (b == 2) {
			cr_assert(la[b].uidvalidity_changed && la[b].complete);
			cr_assert_eq(la[b].method, SYNC_REMOTE_FULL);
			cr_assert_eq(la[b].nmsgs, 6);
		} else {
			cr_assert_eq(la[b].method, method, "%s", boxes[b]);
			cr_assert(!la[b].complete);
			cr_assert_eq(la[b].nvanished, 1, "%s", boxes[b]);
			cr_assert_eq(la[b].vanished[0], gone, "%s", boxes[b]);
			cr_assert_eq(la[b].nmsgs, 2, "%s: %zu messages", boxes[b], la[b].nmsgs);
		}
		cr_assert_null(find_msg(&la[b], gone), "%s", boxes[b]);
		m = find_msg(&la[b], flagged);
		cr_assert_not_null(m, "%s", boxes[b]);
		cr_assert(m->flags.sys & SYNC_F_FLAGGED);
		cr_assert_eq(m->flags.nkw, 1, "%s", boxes[b]);
		cr_assert_str_eq(m->flags.kw[0], kw);
		cr_assert_eq(m->size, l0[b].msgs[1 + b % 2].size, "%s", boxes[b]);
		m = find_msg(&la[b], l0[b].uidnext);
		cr_assert_not_null(m, "%s: no new message", boxes[b]);
		cr_assert_eq(m->size, strlen("Subject: new in D0\r\n\r\n\r\n") + 100 + 13 * b);
		cr_assert_eq(m->flags.sys, SYNC_F_SEEN);
		cr_assert_eq(la[b].uidnext, l0[b].uidnext + 1);
		cr_assert_eq(la[b].messages, 6);
	}
	for (size_t b = 0; b < AHEAD_BOXES; b++) {
		free(uids[b]);
		free(sizes[b]);
	}
	arena_release(&a);
}

Test(remote, qresync_deltas_started_ahead_are_answered_each_to_its_own)
{
	struct sync_remote *r = remote_open();

	cr_assert(sync_remote_caps(r)->qresync);
	cr_assert(!sync_remote_scan_can_start(r));
	check_deltas_ahead(r, SYNC_REMOTE_QRESYNC);
	remote_close(r);
}

Test(remote, condstore_deltas_started_ahead_are_answered_each_to_its_own)
{
	struct sync_remote *r = remote_open_with(true);     /* no ENABLE: CONDSTORE only */

	cr_assert(!sync_remote_caps(r)->qresync);
	cr_assert(sync_remote_caps(r)->condstore);
	check_deltas_ahead(r, SYNC_REMOTE_CONDSTORE);
	remote_close(r);
}

/* A start whose pre-check says unchanged sends nothing. */
Test(remote, delta_start_of_an_unchanged_mailbox_sends_nothing)
{
	struct sync_remote_listing l;
	struct sync_remote_known k;
	struct sync_remote_scan_ahead *x = (void *)1;
	struct imap_status_data st;
	struct sync_remote *r;
	const char *name = "INBOX";
	unsigned long sel0;
	struct arena a;
	uint32_t *uids;
	struct err e;

	cr_assert_eq(harness_seed(&dc, dc.user1, 5, NULL), 0);
	r = remote_open();
	arena_init(&a, 4096);
	scan(r, "INBOX", NULL, &a, &l);
	uids = known_from(&l, &k);
	cr_assert_eq(sync_remote_status_all(r, &name, 1, &st, &e), 0, "%s", e.msg);
	k.status = &st;
	sel0 = sync_remote_selects(r);
	cr_assert_eq(sync_remote_scan_start_known(r, "INBOX", &k, &a, &x, &e), 0, "%s", e.msg);
	cr_assert_null(x);
	cr_assert_eq(sync_remote_selects(r), sel0);
	cr_assert_eq(imap_conn_pending(imap_client_conn(sync_remote_client(r))), 0u);
	free(uids);
	arena_release(&a);
	remote_close(r);
}

struct fp_seen {
	uint32_t uid[16];
	struct sync_fp fp[16];
	uint64_t size[16];
	size_t n;
	size_t *pending_min;            /* the fewest commands in flight at a callback of job 0 */
	struct sync_remote *r;
};

static int fp_keep(void *ctx, uint32_t uid, const struct sync_fp *fp, const char *message_id,
		   uint64_t size, struct err *e)
{
	struct fp_seen *s = ctx;

	(void)message_id;
	if (s->n == 16)
		return err_set(e, ERR_LIMIT, "too many fingerprints for the test");
	if (s->pending_min) {
		size_t p = imap_conn_pending(imap_client_conn(sync_remote_client(s->r)));

		if (p < *s->pending_min)
			*s->pending_min = p;
	}
	s->uid[s->n] = uid;
	s->fp[s->n] = *fp;
	s->size[s->n++] = size;
	return 0;
}

/*
 * Fingerprints of four mailboxes (and one that does not exist) in one
 * pipelined pass: while the first mailbox's answers are read, the other
 * mailboxes' SELECT and FETCH are in flight already; each job gets exactly
 * what sync_remote_fetch_fps() of its own mailbox gives (its own UIDs,
 * sizes and fingerprints, an expunged UID left out), the missing mailbox
 * fails alone.
 */
static void check_fps_many(struct sync_remote *r)
{
	static const char *const boxes[] = { "F0", "F1", "No Such Box", "F2", "F3" };
	struct sync_remote_fp_job jobs[5];
	struct fp_seen got[5], want[5];
	uint32_t uids[5][4];
	size_t pending_min = SIZE_MAX;
	struct err e;

	memset(got, 0, sizeof(got));
	memset(want, 0, sizeof(want));
	for (size_t b = 0; b < 5; b++) {
		struct sync_remote_listing l;
		struct arena a;

		if (b == 2) {
			uids[b][0] = 1;
			uids[b][1] = 2;
			continue;
		}
		arena_init(&a, 4096);
		cr_assert_eq(sync_remote_create(r, boxes[b], NULL, &e), 0, "%s", e.msg);
		for (size_t i = 0; i < 4; i++) {
			char *msg = xasprintf("Subject: %s %zu\nMessage-ID: <%s-%zu@t>\n\n%0*d\n", boxes[b],
					      i, boxes[b], i, (int)(5 + 11 * b + i), 0);

			append_text(r, boxes[b], msg, NULL, 0, NULL);
			free(msg);
		}
		scan(r, boxes[b], NULL, &a, &l);
		cr_assert_eq(l.nmsgs, 4);
		for (size_t i = 0; i < 4; i++)
			uids[b][i] = l.msgs[i].uid;
		arena_release(&a);
	}
	/* F1's second asked UID is expunged: no call for it */
	{
		char *c1 = xasprintf("B UID STORE %u +FLAGS (\\Deleted)", uids[1][1]);
		const char *cmds[] = { "A SELECT F1", c1, "C EXPUNGE", NULL };

		free(raw(cmds));
		free(c1);
	}
	for (size_t b = 0; b < 5; b++) {
		want[b].r = got[b].r = r;
		if (b != 2)
			cr_assert_eq(sync_remote_fetch_fps(r, boxes[b], uids[b], b == 3 ? 4 : 2,
							   fp_keep, &want[b], &e), 0, "%s", e.msg);
		jobs[b] = (struct sync_remote_fp_job){ .name = boxes[b], .uids = uids[b],
						       .n = b == 3 ? 4 : 2, .fn = fp_keep,
						       .ctx = &got[b] };
	}
	got[0].pending_min = &pending_min;
	sync_remote_fetch_fps_many(r, jobs, 5);
	cr_assert_geq(pending_min, 8u, "the other mailboxes were not in flight (%zu commands)",
		      pending_min);
	for (size_t b = 0; b < 5; b++) {
		if (b == 2) {
			cr_assert_eq(jobs[b].rc, -1);
			cr_assert_eq(jobs[b].err.code, ERR_SERVER, "%s", jobs[b].err.msg);
			cr_assert(strstr(jobs[b].err.msg, "No Such Box") != NULL, "%s", jobs[b].err.msg);
			cr_assert_eq(got[b].n, 0);
			continue;
		}
		cr_assert_eq(jobs[b].rc, 0, "%s: %s", boxes[b], jobs[b].err.msg);
		cr_assert_eq(got[b].n, b == 1 ? 1 : b == 3 ? 4 : 2, "%s: %zu", boxes[b], got[b].n);
		cr_assert_eq(got[b].n, want[b].n, "%s", boxes[b]);
		for (size_t i = 0; i < got[b].n; i++) {
			cr_assert_eq(got[b].uid[i], want[b].uid[i]);
			cr_assert_eq(got[b].uid[i], uids[b][i]);
			cr_assert_eq(got[b].size[i], want[b].size[i]);
			cr_assert_eq(memcmp(got[b].fp[i].bytes, want[b].fp[i].bytes, SYNC_FP_LEN), 0,
				     "%s uid %u: another mailbox's fingerprint", boxes[b], got[b].uid[i]);
		}
	}
}

Test(remote, fingerprints_of_several_mailboxes_are_pipelined_each_to_its_own)
{
	struct sync_remote *r = remote_open();

	check_fps_many(r);
	remote_close(r);
}

Test(remote_rev1, fingerprints_of_several_mailboxes_are_pipelined_each_to_its_own)
{
	struct sync_remote *r = remote_open();

	check_fps_many(r);
	remote_close(r);
}
