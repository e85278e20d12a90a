/*
 * Integration tests of the sync engine API (core/sync/engine.h) against the
 * harness Dovecot and a temporary Maildir: sync_account_run() is called
 * directly; the server is changed behind its back over plain IMAP
 * (harness_imap_raw) and the Maildir as a mail client would (files).
 * After each sync both sides are read completely (the server through the
 * remote adapter: full listing + fingerprints; the Maildir: scan + the
 * fingerprint of every file) and compared: same messages per folder, same
 * flags, no duplicate.
 *
 * The crash test runs the engine in a forked child with
 * FERRY_TEST_CRASH_AT=N for N = 1..steps (the child kills itself with
 * SIGKILL at its N-th step), finishes the sync in the parent, and checks
 * both sides after every N.  Each round first makes a fresh set of changes
 * on both sides (new mail, flags, moves, deletions, a new folder each way),
 * so every phase of the executor is crossed at every N.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lock.h"
#include "sync/engine.h"
#include "sync/fp.h"
#include "xalloc.h"

static struct dovecot dc;
static char mail_root[HARNESS_PATH_MAX], state_dir[HARNESS_PATH_MAX];

static void up(void)
{
	cr_assert_eq(harness_dovecot_start(&dc, NULL), 0, "cannot start Dovecot");
	snprintf(mail_root, sizeof(mail_root), "%s/Mail", dc.tmp);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dc.tmp);
}

static void down(void)
{
	harness_dovecot_stop(&dc);
}

/* ---------------------------------------------------------------- remote */

static int give_secret(void *ctx, enum imap_secret_kind kind, struct buf *out, struct err *e)
{
	return buf_adds(out, dc.pass1, e);
}

static struct sync_remote *remote_open(void)
{
	struct imap_client_opts o;
	struct sync_remote *r;
	struct err e;

	memset(&o, 0, sizeof(o));
	o.conn.host = "127.0.0.1";
	o.conn.port = (unsigned)dc.imap_port;
	o.conn.tls = IMAP_TLS_NONE;
	o.conn.timeout_ms = 30000;
	o.user = dc.user1;
	o.have_password = true;
	o.get_secret = give_secret;
	r = sync_remote_new(&o);
	cr_assert_not_null(r);
	cr_assert_eq(sync_remote_open(r, &e), 0, "%s", e.msg);
	return r;
}

static void remote_close(struct sync_remote *r)
{
	struct err e;

	(void)sync_remote_logout(r, &e);
	sync_remote_free(r);
}

/* ---------------------------------------------------------------- running the engine */

static struct sync_policy default_policy(void)
{
	struct sync_policy p = { SYNC_BOTH, true, false, false, 0, 50 };

	return p;
}

static int run_sync(const struct sync_policy *pol, bool dry, struct sync_report *rep,
		    struct err *e)
{
	struct sync_remote *r = remote_open();
	struct sync_account_opts o;
	int rc;

	memset(&o, 0, sizeof(o));
	o.account = "test";
	o.state_dir = state_dir;
	o.maildir_root = mail_root;
	o.layout = MAILDIR_LAYOUT_VERBATIM;
	o.policy = pol ? *pol : default_policy();
	o.dry_run = dry;
	o.remote = r;
	sync_report_init(rep);
	rc = sync_account_run(&o, rep, e);
	remote_close(r);
	return rc;
}

static void sync_ok(struct sync_report *rep)
{
	struct err e;

	err_clear(&e);
	cr_assert_eq(run_sync(NULL, false, rep, &e), 0, "sync failed: %s", e.msg);
}

static size_t sum(const struct sync_report *rep, size_t off_side, size_t off_field)
{
	size_t n = 0;

	for (size_t i = 0; i < rep->nmailboxes; i++) {
		const char *side = (const char *)&rep->mailboxes[i] + off_side;

		n += *(const size_t *)(side + off_field);
	}
	return n;
}
#define SUM(rep, side, field) \
	sum(rep, offsetof(struct sync_mailbox_report, side), offsetof(struct sync_side_counts, field))

/* ---------------------------------------------------------------- reading both sides */

struct msg {
	char folder[128];
	unsigned char fp[SYNC_FP_BYTES];
	unsigned sys;
	char kw[256];           /* sorted, space separated */
	uint32_t uid;           /* remote */
	char path[HARNESS_PATH_MAX];    /* local */
};

struct side {
	struct msg *m;
	size_t n, cap;
};

static struct msg *side_add(struct side *s)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->m = xrealloc(s->m, s->cap * sizeof(*s->m));
	}
	memset(&s->m[s->n], 0, sizeof(s->m[0]));
	return &s->m[s->n++];
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void kw_join(const char *const *kw, size_t n, char *out, size_t cap)
{
	const char **v = xcalloc(n + 1, sizeof(*v));

	for (size_t i = 0; i < n; i++)
		v[i] = kw[i];
	qsort(v, n, sizeof(*v), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strncat(out, v[i], cap - strlen(out) - 2);
		strncat(out, " ", cap - strlen(out) - 1);
	}
	free(v);
}

struct fp_fill {
	struct side *s;
	size_t from, to;
};

static int fill_fp(void *ctx, uint32_t uid, const struct sync_fp *fp, const char *mid,
		   uint64_t size, struct err *e)
{
	struct fp_fill *f = ctx;

	for (size_t i = f->from; i < f->to; i++)
		if (f->s->m[i].uid == uid)
			memcpy(f->s->m[i].fp, fp->bytes, SYNC_FP_BYTES);
	return 0;
}

static void read_remote_box(struct sync_remote *r, const char *name, struct side *s)
{
	struct arena a;
	struct sync_remote_listing l;
	struct err e;
	struct fp_fill f = { s, s->n, 0 };
	uint32_t *uids;

	arena_init(&a, 65536);
	cr_assert_eq(sync_remote_scan(r, name, NULL, &a, &l, &e), 0, "%s: %s", name, e.msg);
	cr_assert(l.complete);
	uids = xcalloc(l.nmsgs + 1, sizeof(*uids));
	for (size_t i = 0; i < l.nmsgs; i++) {
		struct msg *m = side_add(s);

		snprintf(m->folder, sizeof(m->folder), "%s", name);
		m->uid = l.msgs[i].uid;
		m->sys = l.msgs[i].flags.sys;
		kw_join(l.msgs[i].flags.kw, l.msgs[i].flags.nkw, m->kw, sizeof(m->kw));
		uids[i] = l.msgs[i].uid;
	}
	f.to = s->n;
	if (l.nmsgs > 0)
		cr_assert_eq(sync_remote_fetch_fps(r, name, uids, l.nmsgs, fill_fp, &f, &e), 0,
			     "%s", e.msg);
	free(uids);
	arena_release(&a);
}

static void read_remote(struct side *s)
{
	struct sync_remote *r = remote_open();
	struct imap_mailbox_list bl;
	struct err e;

	imap_mailbox_list_init(&bl);
	cr_assert_eq(imap_client_list(sync_remote_client(r), &bl, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < bl.n; i++)
		if (!(bl.items[i].attrs & (IMAP_MBOX_NOSELECT | IMAP_MBOX_NONEXISTENT)))
			read_remote_box(r, bl.items[i].name, s);
	imap_mailbox_list_release(&bl);
	remote_close(r);
}

static unsigned sys_of_maildir(unsigned f)
{
	unsigned s = 0;

	s |= (f & MAILDIR_FLAG_SEEN) ? SYNC_F_SEEN : 0;
	s |= (f & MAILDIR_FLAG_REPLIED) ? SYNC_F_ANSWERED : 0;
	s |= (f & MAILDIR_FLAG_FLAGGED) ? SYNC_F_FLAGGED : 0;
	s |= (f & MAILDIR_FLAG_DRAFT) ? SYNC_F_DRAFT : 0;
	s |= (f & MAILDIR_FLAG_TRASHED) ? SYNC_F_DELETED : 0;
	return s;
}

static void read_local_box(struct maildir *md, const char *name, struct side *s)
{
	struct maildir_folder f;
	struct maildir_snapshot snap;
	struct err e;
	struct arena a;

	cr_assert_eq(maildir_folder_open(md, name, false, &f, &e), 0, "%s", e.msg);
	cr_assert_eq(maildir_scan(&f, &snap, &e), 0, "%s", e.msg);
	arena_init(&a, 4096);
	for (size_t i = 0; i < snap.count; i++) {
		const struct maildir_entry *ent = &snap.entries[i];
		struct msg *m = side_add(s);
		const char **kw;
		size_t nkw = maildir_entry_keyword_names(&snap, ent, &a, &kw);
		const char **all = arena_alloc(&a, (nkw + 1) * sizeof(*all));
		struct sync_fp_value v;
		int fd;

		for (size_t k = 0; k < nkw; k++)
			all[k] = kw[k];
		if (ent->flags & MAILDIR_FLAG_PASSED)
			all[nkw++] = "$Forwarded";
		snprintf(m->folder, sizeof(m->folder), "%s", name);
		m->sys = sys_of_maildir(ent->flags);
		kw_join(all, nkw, m->kw, sizeof(m->kw));
		snprintf(m->path, sizeof(m->path), "%s/%s/%s", f.path,
			 ent->sub == MAILDIR_SUB_CUR ? "cur" : "new", ent->name);
		cr_assert_eq(maildir_entry_open(&f, ent, &fd, &e), 0, "%s", e.msg);
		cr_assert_eq(sync_fp_fd(fd, &v, &e), 0, "%s", e.msg);
		close(fd);
		memcpy(m->fp, v.bytes, SYNC_FP_BYTES);
	}
	arena_release(&a);
	maildir_snapshot_release(&snap);
	maildir_folder_close(&f);
}

/* Whether the Maildir root has anything in it (maildir_list() trips UBSan
 * on an empty root: qsort of a NULL array). */
static bool root_has_entries(void)
{
	DIR *d = opendir(mail_root);
	struct dirent *de;
	bool any = false;

	if (d == NULL)
		return false;
	while (!any && (de = readdir(d)) != NULL)
		any = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return any;
}

static void read_local(struct side *s)
{
	struct maildir md;
	struct maildir_config mc = { mail_root, NULL, MAILDIR_LAYOUT_VERBATIM, '/', "test" };
	struct maildir_folder_info *fl;
	size_t n;
	struct arena a;
	struct err e;

	if (!root_has_entries())
		return;
	arena_init(&a, 4096);
	cr_assert_eq(maildir_open(&md, &mc, &e), 0, "%s", e.msg);
	cr_assert_eq(maildir_list(&md, &a, &fl, &n, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < n; i++)
		read_local_box(&md, fl[i].name, s);
	maildir_release(&md);
	arena_release(&a);
}

static int cmp_msg(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;
	int c = strcmp(x->folder, y->folder);

	return c ? c : memcmp(x->fp, y->fp, SYNC_FP_BYTES);
}

static void no_duplicates(const struct side *s, const char *what)
{
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = i + 1; j < s->n; j++)
			cr_assert_neq(memcmp(s->m[i].fp, s->m[j].fp, SYNC_FP_BYTES), 0,
				      "%s: duplicate message in \"%s\" and \"%s\"", what,
				      s->m[i].folder, s->m[j].folder);
}

/* Both sides hold the same messages, flags and folders; nothing twice. */
static void assert_equal(struct side *loc, struct side *rem)
{
	read_local(loc);
	read_remote(rem);
	no_duplicates(loc, "local");
	no_duplicates(rem, "server");
	qsort(loc->m, loc->n, sizeof(*loc->m), cmp_msg);
	qsort(rem->m, rem->n, sizeof(*rem->m), cmp_msg);
	cr_assert_eq(loc->n, rem->n, "local has %zu messages, the server %zu", loc->n, rem->n);
	for (size_t i = 0; i < loc->n; i++) {
		cr_assert_eq(cmp_msg(&loc->m[i], &rem->m[i]), 0,
			     "message %zu: local in \"%s\", server in \"%s\"", i,
			     loc->m[i].folder, rem->m[i].folder);
		cr_assert_eq(loc->m[i].sys, rem->m[i].sys, "flags of a message in \"%s\": %x vs %x",
			     loc->m[i].folder, loc->m[i].sys, rem->m[i].sys);
		cr_assert_str_eq(loc->m[i].kw, rem->m[i].kw);
	}
}

static void side_free(struct side *s)
{
	free(s->m);
	memset(s, 0, sizeof(*s));
}

static void check_equal(size_t expect_total)
{
	struct side l = { 0 }, r = { 0 };

	assert_equal(&l, &r);
	if (expect_total != (size_t)-1)
		cr_assert_eq(l.n, expect_total, "expected %zu messages, found %zu", expect_total, l.n);
	side_free(&l);
	side_free(&r);
}

static size_t count_in(const struct side *s, const char *folder)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += strcmp(s->m[i].folder, folder) == 0;
	return n;
}

/* ---------------------------------------------------------------- changing the server */

static void imap(const char *const *cmds)
{
	const char *lines[64];
	char login[256];
	char *reply = NULL;
	size_t n = 0;

	snprintf(login, sizeof(login), "l LOGIN %s %s", dc.user1, dc.pass1);
	lines[n++] = login;
	for (; *cmds && n < 62; cmds++)
		lines[n++] = *cmds;
	lines[n++] = "z LOGOUT";
	lines[n] = NULL;
	cr_assert_eq(harness_imap_raw(dc.imap_port, lines, &reply), 0, "%s", reply ? reply : "");
	cr_assert(strstr(reply, " NO ") == NULL && strstr(reply, " BAD ") == NULL, "%s", reply);
	free(reply);
}

static char *message_text(const char *tag, int n, bool crlf)
{
	const char *nl = crlf ? "\r\n" : "\n";

	return xasprintf("From: test@ferry.test%sTo: alice@ferry.test%sSubject: %s %d%s"
			 "Message-ID: <%s-%d@engine.test>%s%sbody of %s %d%sline two%s",
			 nl, nl, tag, n, nl, tag, n, nl, nl, tag, n, nl, nl);
}

static void server_append(const char *box, const char *tag, int n)
{
	char *text = message_text(tag, n, true);
	char *cmd = xasprintf("a APPEND \"%s\" (\\Seen) {%zu}", box, strlen(text));
	char *body = xasprintf("%s", text);
	const char *cmds[] = { cmd, body, NULL };

	imap(cmds);
	free(text);
	free(cmd);
	free(body);
}

static void server_cmd(const char *box, const char *cmd)
{
	char *sel = xasprintf("s SELECT \"%s\"", box);
	const char *cmds[] = { sel, cmd, NULL };

	imap(cmds);
	free(sel);
}

/* ---------------------------------------------------------------- changing the Maildir */

static void local_write(const char *folder, const char *tag, int n)
{
	char *dir = xasprintf("%s/%s", mail_root, folder);
	char *sub[3] = { xasprintf("%s/cur", dir), xasprintf("%s/new", dir), xasprintf("%s/tmp", dir) };
	char *text = message_text(tag, n, false);
	char *path = xasprintf("%s/new/17000000%02d.M1P1Q%d.engine-test-%s", dir, n % 100, n, tag);

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(harness_mkdirs(sub[i]), 0);
		free(sub[i]);
	}
	cr_assert_eq(harness_write_file(path, text), 0);
	free(dir);
	free(text);
	free(path);
}

/* The local copy of the k-th message (in snapshot-independent sorted order) of a folder. */
static const struct msg *pick(struct side *s, const char *folder, size_t k)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->m[i].folder, folder) == 0 && k-- == 0)
			return &s->m[i];
	cr_assert_fail("no message %zu in \"%s\"", k, folder);
	return NULL;
}

static void local_rename_flags(const struct msg *m, const char *letters)
{
	char *colon = strrchr(m->path, ':');
	char *to;
	char *base = xstrdup(m->path);
	char *slash;

	if (colon != NULL)
		base[colon - m->path] = '\0';
	/* files in new/ move to cur/ */
	slash = strrchr(base, '/');
	if (slash - base >= 4 && strncmp(slash - 4, "/new", 4) == 0)
		memcpy(slash - 3, "cur", 3);
	to = xasprintf("%s:2,%s", base, letters);
	cr_assert_eq(rename(m->path, to), 0, "%s", strerror(errno));
	free(base);
	free(to);
}

static void local_move(const struct msg *m, const char *to_folder)
{
	const char *name = strrchr(m->path, '/') + 1;
	char *to = xasprintf("%s/%s/cur/%s", mail_root, to_folder, name);

	cr_assert_eq(rename(m->path, to), 0, "%s -> %s: %s", m->path, to, strerror(errno));
	free(to);
}

/* ---------------------------------------------------------------- Dovecot's byte counters */

static size_t log_size(void)
{
	char *log = harness_read_file(dc.log_file, 16u << 20);
	size_t n = log ? strlen(log) : 0;

	free(log);
	return n;
}

/*
 * The bytes the server received (in=) and sent (out=) in the sessions that
 * logged out after log offset `from`; waits for `sessions` such lines (the
 * imap process writes its line as it exits).
 */
static void log_bytes(size_t from, int sessions, unsigned long *in, unsigned long *out)
{
	for (int tries = 0; tries < 200; tries++) {
		char *log = harness_read_file(dc.log_file, 16u << 20);
		const char *p = log && strlen(log) >= from ? log + from : "";
		int found = 0;

		*in = *out = 0;
		while ((p = strstr(p, "Logged out in=")) != NULL) {
			unsigned long a = 0, b = 0;

			if (sscanf(p, "Logged out in=%lu out=%lu", &a, &b) == 2) {
				*in += a;
				*out += b;
				found++;
			}
			p++;
		}
		free(log);
		if (found >= sessions)
			return;
		usleep(25000);
	}
	cr_assert_fail("the server logged fewer than %d sessions", sessions);
}

/* The largest local message of a folder (a body transfer would show). */
static const struct msg *largest(struct side *s, const char *folder, off_t *size_out)
{
	const struct msg *best = NULL;
	struct stat st;

	*size_out = 0;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->m[i].folder, folder) == 0 && stat(s->m[i].path, &st) == 0 &&
		    st.st_size > *size_out) {
			*size_out = st.st_size;
			best = &s->m[i];
		}
	cr_assert_not_null(best);
	return best;
}

/* ---------------------------------------------------------------- tests */

TestSuite(engine, .init = up, .fini = down, .timeout = 300);

static void seeded_and_synced(int count, struct sync_report *rep)
{
	cr_assert_eq(harness_seed(&dc, dc.user1, count, NULL), 0);
	sync_ok(rep);
}

Test(engine, first_sync_pulls_seeded_mail_and_a_second_does_nothing)
{
	struct sync_report rep;
	struct side l = { 0 }, r = { 0 };

	seeded_and_synced(30, &rep);
	cr_assert_eq(SUM(&rep, local, added), 30, "downloads: %zu", SUM(&rep, local, added));
	cr_assert_eq(SUM(&rep, remote, added), 0);
	sync_report_release(&rep);
	assert_equal(&l, &r);
	cr_assert_eq(l.n, 30);
	cr_assert_gt(count_in(&l, "Sent Items"), 0, "special-use folder kept its server name");
	side_free(&l);
	side_free(&r);

	sync_ok(&rep);
	cr_assert_eq(rep.nactions, 0, "second sync planned %zu actions", rep.nactions);
	sync_report_release(&rep);
}

static bool inbox_unchanged(const struct sync_report *rep)
{
	for (size_t i = 0; i < rep->nmailboxes; i++)
		if (strcmp(rep->mailboxes[i].remote_name, "INBOX") == 0)
			return rep->mailboxes[i].local_unchanged;
	cr_assert_fail("no INBOX in the report");
	return false;
}

Test(engine, unchanged_local_folder_is_not_read_and_a_change_is_still_seen)
{
	struct sync_report rep;
	struct side l = { 0 };

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	sleep(3);               /* past the directory clock's tick (MAILDIR_MARKER_TICK_NS) */
	sync_ok(&rep);
	sync_report_release(&rep);
	sync_ok(&rep);
	cr_assert(inbox_unchanged(&rep), "INBOX was read although nothing changed");
	cr_assert_eq(rep.nactions, 0);
	sync_report_release(&rep);
	read_local(&l);
	local_rename_flags(pick(&l, "INBOX", 0), "FS");
	side_free(&l);
	sync_ok(&rep);
	cr_assert(!inbox_unchanged(&rep), "a renamed file went unnoticed");
	cr_assert_eq(SUM(&rep, remote, flags), 1);
	sync_report_release(&rep);
	check_equal(10);
}

/* The run right after a pull, within the directory clock's tick of the
 * pull's renames, finds the folder idle from its names alone (no record
 * loaded, the mailbox not selected); a rename right after is still seen. */
Test(engine, run_right_after_a_pull_does_not_read_the_folder)
{
	struct sync_report rep;
	struct side l = { 0 };

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	sync_ok(&rep);
	cr_assert(inbox_unchanged(&rep), "INBOX was read again right after the pull");
	cr_assert_eq(rep.nactions, 0);
	sync_report_release(&rep);
	sync_ok(&rep);
	cr_assert(inbox_unchanged(&rep), "INBOX was read again on the third run");
	sync_report_release(&rep);
	read_local(&l);
	local_rename_flags(pick(&l, "INBOX", 0), "FS");
	side_free(&l);
	sync_ok(&rep);
	cr_assert(!inbox_unchanged(&rep), "a renamed file went unnoticed");
	cr_assert_eq(SUM(&rep, remote, flags), 1);
	sync_report_release(&rep);
	check_equal(10);
}

Test(engine, dry_run_plans_but_changes_nothing)
{
	struct sync_report rep;
	struct err e;
	struct side l = { 0 };

	cr_assert_eq(harness_seed(&dc, dc.user1, 10, NULL), 0);
	cr_assert_eq(run_sync(NULL, true, &rep, &e), 0, "%s", e.msg);
	cr_assert_geq(rep.nactions, 10);
	cr_assert_eq(rep.nplan_lines, rep.nactions);
	cr_assert_eq(rep.done, 0);
	cr_assert_eq(SUM(&rep, local, added), 10, "a dry run counts the downloads it would make");
	sync_report_release(&rep);
	read_local(&l);
	cr_assert_eq(l.n, 0, "a dry run wrote %zu local messages", l.n);
	side_free(&l);
}

Test(engine, local_new_file_is_uploaded)
{
	struct sync_report rep;

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	local_write("INBOX", "upload", 1);
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, remote, added), 1);
	cr_assert_eq(SUM(&rep, local, added), 0);
	sync_report_release(&rep);
	check_equal(11);
	sync_ok(&rep);
	cr_assert_eq(rep.nactions, 0);
	sync_report_release(&rep);
}

Test(engine, pull_leaves_local_changes_pending_until_a_two_way_run)
{
	struct sync_report rep;
	struct sync_policy pull = default_policy();
	struct err e;

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	local_write("INBOX", "pending", 1);
	server_append("INBOX", "pulled", 1);
	pull.direction = SYNC_PULL;
	cr_assert_eq(run_sync(&pull, false, &rep, &e), 0, "%s", e.msg);
	cr_assert_eq(SUM(&rep, remote, added), 0, "a pull uploaded");
	cr_assert_eq(SUM(&rep, local, added), 1);
	sync_report_release(&rep);
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, remote, added), 1, "the pending upload did not happen");
	cr_assert_eq(SUM(&rep, local, added), 0);
	sync_report_release(&rep);
	check_equal(12);
}

Test(engine, local_flag_change_is_stored_on_the_server)
{
	struct sync_report rep;
	struct side l = { 0 }, r = { 0 };

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	read_local(&l);
	local_rename_flags(pick(&l, "INBOX", 0), "FRS");
	side_free(&l);
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, remote, flags), 1);
	cr_assert_eq(SUM(&rep, local, flags), 0);
	sync_report_release(&rep);
	assert_equal(&l, &r);
	size_t flagged = 0;

	for (size_t i = 0; i < r.n; i++)
		flagged += (r.m[i].sys & (SYNC_F_FLAGGED | SYNC_F_ANSWERED)) ==
			   (SYNC_F_FLAGGED | SYNC_F_ANSWERED);
	cr_assert_geq(flagged, 1);
	side_free(&l);
	side_free(&r);
}

Test(engine, server_flag_change_renames_the_local_file)
{
	struct sync_report rep;

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	server_cmd("INBOX", "a UID STORE 1:2 +FLAGS (\\Answered $Work)");
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, local, flags), 2, "local renames: %zu", SUM(&rep, local, flags));
	cr_assert_eq(SUM(&rep, remote, flags), 0);
	sync_report_release(&rep);
	check_equal(10);
}

Test(engine, server_expunge_deletes_the_local_file)
{
	struct sync_report rep;

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	server_cmd("INBOX", "a UID STORE 1 +FLAGS (\\Deleted)");
	server_cmd("INBOX", "b UID EXPUNGE 1");
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, local, deleted), 1);
	sync_report_release(&rep);
	check_equal(9);
}

Test(engine, local_delete_expunges_on_the_server)
{
	struct sync_report rep;
	struct side l = { 0 };

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	read_local(&l);
	cr_assert_eq(unlink(pick(&l, "INBOX", 1)->path), 0);
	side_free(&l);
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, remote, deleted), 1);
	sync_report_release(&rep);
	check_equal(9);
}

Test(engine, local_move_between_folders_moves_on_the_server_without_append)
{
	struct sync_report rep;
	struct side l = { 0 }, r = { 0 };
	size_t work_before;

	seeded_and_synced(20, &rep);
	sync_report_release(&rep);
	off_t size;
	size_t from;
	unsigned long in, out;

	read_local(&l);
	work_before = count_in(&l, "Work");
	local_move(largest(&l, "INBOX", &size), "Work");
	side_free(&l);
	from = log_size();
	sync_ok(&rep);
	log_bytes(from, 1, &in, &out);
	cr_log_info("session bytes in=%lu out=%lu, message %lld", in, out, (long long)size);
	cr_assert_lt(in, (unsigned long)size, "the server received %lu bytes for a move of a "
		     "%lld-byte message", in, (long long)size);
	cr_assert_eq(SUM(&rep, remote, moved), 1);
	cr_assert_eq(SUM(&rep, remote, added), 0, "a local move uploaded a message");
	cr_assert_eq(SUM(&rep, local, added), 0);
	sync_report_release(&rep);
	assert_equal(&l, &r);
	cr_assert_eq(count_in(&r, "Work"), work_before + 1);
	side_free(&l);
	side_free(&r);
}

Test(engine, server_move_moves_the_local_file_without_download)
{
	struct sync_report rep;

	struct side l = { 0 }, r = { 0 };
	size_t k = 0, from;
	off_t size;
	unsigned long in, out;
	char *cmd;

	seeded_and_synced(20, &rep);
	sync_report_release(&rep);
	assert_equal(&l, &r);
	const struct msg *big = largest(&l, "INBOX", &size);

	while (cmp_msg(pick(&r, "INBOX", k), big) != 0)
		k++;
	cmd = xasprintf("a UID MOVE %u Work", pick(&r, "INBOX", k)->uid);
	side_free(&l);
	side_free(&r);
	server_cmd("INBOX", cmd);
	free(cmd);
	from = log_size();
	sync_ok(&rep);
	log_bytes(from, 1, &in, &out);
	cr_log_info("session bytes in=%lu out=%lu, message %lld", in, out, (long long)size);
	cr_assert_lt(out, (unsigned long)size, "the server sent %lu bytes for a move of a "
		     "%lld-byte message", out, (long long)size);
	cr_assert_eq(SUM(&rep, local, moved), 1);
	cr_assert_eq(SUM(&rep, local, added), 0, "a server move downloaded a message");
	sync_report_release(&rep);
	check_equal(20);
}

Test(engine, new_folders_appear_on_the_other_side)
{
	struct sync_report rep;
	struct side l = { 0 }, r = { 0 };

	seeded_and_synced(5, &rep);
	sync_report_release(&rep);
	imap((const char *const[]){ "c CREATE Remote-New", NULL });
	server_append("Remote-New", "rnew", 1);
	local_write("Local-New", "lnew", 1);
	sync_ok(&rep);
	sync_report_release(&rep);
	assert_equal(&l, &r);
	cr_assert_eq(count_in(&r, "Local-New"), 1);
	cr_assert_eq(count_in(&l, "Remote-New"), 1);
	side_free(&l);
	side_free(&r);
}

Test(engine, emptied_local_inbox_is_a_safety_stop_and_nothing_is_expunged)
{
	struct sync_report rep;
	struct side l = { 0 }, r = { 0 };
	struct err e;
	size_t inbox, removed = 0;

	seeded_and_synced(30, &rep);
	sync_report_release(&rep);
	read_local(&l);
	inbox = count_in(&l, "INBOX");
	cr_assert_geq(inbox, 10);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.m[i].folder, "INBOX") == 0)
			removed += unlink(l.m[i].path) == 0;
	cr_assert_eq(removed, inbox);
	side_free(&l);
	cr_assert_eq(run_sync(NULL, false, &rep, &e), -1);
	cr_assert_eq(e.code, ERR_SAFETY, "%s", e.msg);
	cr_assert(rep.safety);
	cr_assert_eq(SUM(&rep, remote, deleted), 0);
	sync_report_release(&rep);
	read_remote(&r);
	cr_assert_eq(count_in(&r, "INBOX"), inbox, "the server lost messages");
	side_free(&r);
}

Test(engine, lost_state_relinks_by_fingerprint_without_transfers)
{
	struct sync_report rep;

	seeded_and_synced(20, &rep);
	sync_report_release(&rep);
	cr_assert_eq(harness_remove_tree(state_dir), 0);
	local_write("INBOX", "after-loss", 1);
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, local, added), 0, "downloaded again after losing the state");
	cr_assert_eq(SUM(&rep, remote, added), 1);
	cr_assert_eq(SUM(&rep, local, deleted) + SUM(&rep, remote, deleted), 0);
	sync_report_release(&rep);
	check_equal(21);
	sync_ok(&rep);
	cr_assert_eq(rep.nactions, 0);
	sync_report_release(&rep);
}

Test(engine, uidvalidity_change_relinks_without_transfers_or_deletions)
{
	struct sync_report rep;
	struct harness_result res;
	const char *args[] = { "mailbox", "update", "-u", dc.user1, "--uid-validity", "4242",
			       "INBOX", NULL };

	seeded_and_synced(15, &rep);
	sync_report_release(&rep);
	cr_assert_eq(harness_doveadm(&dc, args, &res), 0);
	cr_assert_eq(res.status, 0, "%s", res.err);
	harness_result_release(&res);
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, local, added) + SUM(&rep, remote, added), 0, "transfers after the change");
	cr_assert_eq(SUM(&rep, local, deleted) + SUM(&rep, remote, deleted), 0);
	sync_report_release(&rep);
	check_equal(15);
	sync_ok(&rep);
	cr_assert_eq(rep.nactions, 0, "a third sync planned %zu actions", rep.nactions);
	sync_report_release(&rep);
}

Test(engine, second_run_is_refused_while_the_account_is_locked)
{
	struct lock lk = LOCK_INIT;
	struct sync_report rep;
	struct err e;

	cr_assert_eq(lock_acquire(state_dir, false, &lk, &e), 0, "%s", e.msg);
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int rc = run_sync(NULL, false, &rep, &e);

		_exit(rc == -1 && e.code == ERR_LOCKED ? 0 : 1);
	}
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	lock_release(&lk);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the locked run was not refused");
}

/* The same changes against a server cut down to IMAP4rev1 (no UIDPLUS,
 * MOVE, CONDSTORE, QRESYNC, LIST-STATUS). */
static void up_rev1(void)
{
	cr_assert_eq(harness_dovecot_start(&dc, "--caps imap4rev1"), 0, "cannot start Dovecot");
	snprintf(mail_root, sizeof(mail_root), "%s/Mail", dc.tmp);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dc.tmp);
}

TestSuite(engine_rev1, .init = up_rev1, .fini = down, .timeout = 300);

Test(engine_rev1, changes_both_ways_without_extensions)
{
	struct sync_report rep;
	struct side l = { 0 }, r = { 0 };

	seeded_and_synced(20, &rep);
	sync_report_release(&rep);
	check_equal(20);
	read_local(&l);
	local_write("INBOX", "rev1", 1);
	local_move(pick(&l, "INBOX", 0), "Work");
	local_rename_flags(pick(&l, "INBOX", 1), "FS");
	cr_assert_eq(unlink(pick(&l, "INBOX", 2)->path), 0);
	side_free(&l);
	server_cmd("INBOX", "a UID STORE 5 +FLAGS (\\Answered)");
	server_append("Work", "rev1-srv", 1);
	sync_ok(&rep);
	cr_assert_eq(SUM(&rep, remote, added), 1, "uploads: %zu", SUM(&rep, remote, added));
	cr_assert_eq(SUM(&rep, remote, moved), 1);
	cr_assert_eq(SUM(&rep, local, added), 1);
	sync_report_release(&rep);
	assert_equal(&l, &r);
	cr_assert_eq(l.n, 21);
	side_free(&l);
	side_free(&r);
	sync_ok(&rep);
	cr_assert_eq(rep.nactions, 0, "a second sync planned %zu actions", rep.nactions);
	sync_report_release(&rep);
}

Test(engine_rev1, local_delete_spares_the_users_deleted_mark_and_is_not_downloaded_again)
{
	struct sync_report rep;
	struct side l = { 0 }, r = { 0 };
	size_t k = 0, local_before;

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	server_cmd("INBOX", "a UID STORE 1 +FLAGS (\\Deleted)");
	sync_ok(&rep);
	sync_report_release(&rep);
	assert_equal(&l, &r);
	while (pick(&r, "INBOX", k)->uid == 1)
		k++;
	cr_assert_eq(unlink(pick(&l, "INBOX", k)->path), 0);
	local_before = l.n - 1;
	side_free(&l);
	side_free(&r);
	for (int run = 0; run < 2; run++) {
		sync_ok(&rep);
		cr_assert_eq(SUM(&rep, local, added), 0, "run %d downloaded the message again", run);
		sync_report_release(&rep);
	}
	read_local(&l);
	read_remote(&r);
	cr_assert_eq(l.n, local_before);
	/* without UIDPLUS the deleted one is expunged too (the user's mark is
	 * off for the EXPUNGE and back after it): the sides hold the same */
	cr_assert_eq(count_in(&r, "INBOX"), count_in(&l, "INBOX"),
		     "the deleted message is still on the server (or the user's is gone)");
	{
		bool kept = false;

		for (size_t i = 0; i < r.n; i++)
			if (r.m[i].uid == 1 && strcmp(r.m[i].folder, "INBOX") == 0)
				kept = (r.m[i].sys & SYNC_F_DELETED) != 0;
		cr_assert(kept, "the user's \\Deleted message is gone or lost its mark");
	}
	side_free(&l);
	side_free(&r);
}

Test(engine_rev1, local_move_next_to_a_users_deleted_mark_is_not_downloaded_again)
{
	struct sync_report rep;
	struct side l = { 0 }, r = { 0 };
	size_t k = 0;

	seeded_and_synced(10, &rep);
	sync_report_release(&rep);
	server_cmd("INBOX", "a UID STORE 1 +FLAGS (\\Deleted)");
	sync_ok(&rep);
	sync_report_release(&rep);
	assert_equal(&l, &r);
	while (pick(&r, "INBOX", k)->uid == 1)
		k++;
	local_move(pick(&l, "INBOX", k), "Work");
	side_free(&l);
	side_free(&r);
	for (int run = 0; run < 2; run++) {
		sync_ok(&rep);
		cr_assert_eq(SUM(&rep, local, added), 0, "run %d downloaded a message", run);
		cr_assert_eq(SUM(&rep, remote, added), 0, "run %d uploaded a message", run);
		sync_report_release(&rep);
	}
	read_local(&l);
	cr_assert_eq(l.n, 10, "local has %zu messages", l.n);
	side_free(&l);
}

/* ---------------------------------------------------------------- crash safety */

/*
 * One round of changes on both sides, each round with fresh messages:
 * server: 3 new in INBOX, 2 flag changes, 1 move, 1 expunge, a new folder
 * with a message; local: 4 new files, 2 flag changes, 1 move, 1 deletion,
 * a new folder with a file.
 */
static void make_changes(int round)
{
	struct side l = { 0 }, r = { 0 };
	char *cmd, *cmd2;

	/* Both sides are equal and sorted alike: pick(l, F, k) and pick(r, F, k)
	 * are the same message.  The server changes INBOX's messages 4..7, the
	 * Maildir messages 0..3. */
	assert_equal(&l, &r);
	for (int i = 0; i < 3; i++)
		server_append("Work", "srv", round * 10 + i);
	cmd = xasprintf("a UID STORE %u,%u +FLAGS (\\Flagged)", pick(&r, "INBOX", 4)->uid,
			pick(&r, "INBOX", 5)->uid);
	server_cmd("INBOX", cmd);
	free(cmd);
	cmd = xasprintf("a UID MOVE %u Archive", pick(&r, "INBOX", 6)->uid);
	server_cmd("INBOX", cmd);
	free(cmd);
	cmd = xasprintf("a UID STORE %u +FLAGS (\\Deleted)", pick(&r, "INBOX", 7)->uid);
	cmd2 = xasprintf("b UID EXPUNGE %u", pick(&r, "INBOX", 7)->uid);
	imap((const char *const[]){ "s SELECT INBOX", cmd, cmd2, NULL });
	free(cmd);
	free(cmd2);
	cmd = xasprintf("c CREATE R-%d", round);
	imap((const char *const[]){ cmd, NULL });
	free(cmd);
	cmd = xasprintf("R-%d", round);
	server_append(cmd, "srvbox", round);
	free(cmd);

	for (int i = 0; i < 7; i++)
		local_write("INBOX", "loc", round * 10 + i);
	local_rename_flags(pick(&l, "INBOX", 0), "FS");
	local_rename_flags(pick(&l, "INBOX", 1), "RS");
	local_move(pick(&l, "INBOX", 2), "Junk");
	cr_assert_eq(unlink(pick(&l, "INBOX", 3)->path), 0);
	cmd = xasprintf("L-%d", round);
	local_write(cmd, "locbox", round);
	free(cmd);
	side_free(&l);
	side_free(&r);
}

/* Run the engine in a child that kills itself at step n; its exit status. */
static int crash_child(unsigned long n)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char v[32];
		struct sync_report rep;
		struct err e;

		snprintf(v, sizeof(v), "%lu", n);
		setenv("FERRY_TEST_CRASH_AT", v, 1);
		(void)run_sync(NULL, false, &rep, &e);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/*
 * Seed, sync, measure a round's steps, then for every `stride`-th step N:
 * a round of changes, a child killed at step N, the sync finished here,
 * both sides checked, and a further sync that has nothing left to do.
 */
static unsigned long crash_loop(unsigned long stride)
{
	struct sync_report rep;
	unsigned long steps, n, killed = 0;

	cr_assert_eq(harness_seed(&dc, dc.user1, 40, "Work Archive"), 0);
	sync_ok(&rep);
	sync_report_release(&rep);
	/* One round without a crash tells how many steps a round takes. */
	make_changes(0);
	sync_ok(&rep);
	steps = sync_steps_taken();
	sync_report_release(&rep);
	check_equal((size_t)-1);
	cr_log_info("a round takes %lu steps", steps);
	/*
	 * A round makes every kind of side effect (uploads, downloads, moves,
	 * flag changes, expunges, deletions, folders); the runs that group them
	 * (one MULTIAPPEND for the seven uploads, one deletion run ...) keep it
	 * to a few dozen steps.
	 */
	cr_assert_geq(steps, 30, "a round has only %lu crash points", steps);
	for (n = 1; n <= steps; n += stride) {
		int status;

		make_changes((int)n);
		status = crash_child(n);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			killed++;
		sync_ok(&rep);
		sync_report_release(&rep);
		check_equal((size_t)-1);
		sync_ok(&rep);
		cr_assert_eq(rep.nactions, 0, "after the kill at step %lu a third sync planned %zu actions",
			     n, rep.nactions);
		sync_report_release(&rep);
	}
	/* nearly every kill point is reached (a later round may take a step or two less) */
	cr_assert_geq(killed + 4, (steps + stride - 1) / stride, "only %lu of %lu runs were killed",
		      killed, (steps + stride - 1) / stride);
	return killed;
}

Test(engine, killed_at_every_step_then_resumed_leaves_both_sides_equal, .timeout = 1200)
{
	unsigned long killed = crash_loop(1);

	cr_assert_geq(killed, 26, "only %lu runs were killed", killed);
}

Test(engine_rev1, killed_at_every_other_step_then_resumed_leaves_both_sides_equal, .timeout = 1200)
{
	unsigned long killed = crash_loop(2);

	cr_assert_geq(killed, 13, "only %lu runs were killed", killed);
}
