/*
 * Unit tests for store/state*.c: the LMDB sync state.  Round trips of every
 * field, the three indexes, the journal across a crash, map growth, schema
 * and damage checks, file modes, and a reader in another process.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "err.h"
#include "state.h"
#include "state_int.h"
#include "xalloc.h"

static char tmp[64];
static char dir[128];
static struct arena A;

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	strcpy(tmp, "/tmp/ferry-state-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/st/acct", tmp);
	arena_init(&A, 4096);
}

static void teardown(void)
{
	arena_release(&A);
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(state, .init = setup, .fini = teardown);

/* ---- helpers --------------------------------------------------------- */

static struct state *open_rw(void)
{
	struct state *st;
	struct err e;

	cr_assert_eq(state_open(dir, NULL, &st, &e), 0, "%s", e.msg);
	return st;
}

static struct state_txn *begin(struct state *st, bool write)
{
	struct state_txn *t;
	struct err e;

	cr_assert_eq(state_txn_begin(st, write, &t, &e), 0, "%s", e.msg);
	return t;
}

static void commit(struct state_txn *t)
{
	struct err e;

	cr_assert_eq(state_txn_commit(t, &e), 0, "%s", e.msg);
}

static uint32_t add_mailbox(struct state_txn *t, const char *remote,
			    const char *local)
{
	struct state_mailbox mb = { 0 };
	struct err e;

	mb.remote_name = remote;
	mb.local_name = local;
	mb.uidvalidity = 1000;
	mb.uidnext = 1;
	cr_assert_eq(state_mailbox_add(t, &mb, &e), 0, "%s", e.msg);
	cr_assert_geq(mb.id, 1);
	return mb.id;
}

static void hash_of(uint8_t *h, unsigned seed)
{
	unsigned i;

	for (i = 0; i < STATE_HASH_LEN; i++)
		h[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

static uint64_t add_msg(struct state_txn *t, uint32_t mbox, uint32_t uid,
			const char *name, const char *msgid, unsigned hseed)
{
	struct state_msg m = { 0 };
	struct err e;

	m.mailbox = mbox;
	m.uid = uid;
	m.name = name;
	m.message_id = msgid;
	m.size = 100 + uid;
	if (hseed)
		hash_of(m.body_hash, hseed);
	cr_assert_eq(state_msg_add(t, &m, &e), 0, "%s", e.msg);
	cr_assert_geq(m.id, 1);
	return m.id;
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	cr_assert_eq(stat(path, &sb), 0, "stat %s", path);
	return sb.st_mode & 0777;
}

/* ---- creation and modes ---------------------------------------------- */

Test(state, new_state_is_private)
{
	struct state *st = open_rw();
	char path[256];

	cr_assert_str_eq(state_path(st), dir);
	cr_assert_eq(state_schema_on_disk(st), STATE_SCHEMA_VERSION);
	state_close(st);
	cr_assert_eq(mode_of(dir), 0700);
	snprintf(path, sizeof(path), "%s/st", tmp);
	cr_assert_eq(mode_of(path), 0700);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	cr_assert_eq(mode_of(path), 0600);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	cr_assert_eq(mode_of(path), 0600);
}

Test(state, read_only_open_of_missing_state_is_no_state)
{
	struct state_options ro = { .read_only = true };
	struct state *st = (struct state *)&st;
	struct err e;

	cr_assert_eq(state_open(dir, &ro, &st, &e), 1);
	cr_assert_null(st);
	cr_assert_eq(access(dir, F_OK), -1, "read-only open creates nothing");
}

/* ---- mailboxes ------------------------------------------------------- */

Test(state, mailbox_round_trips_every_field)
{
	static const uint8_t marker[] = { 0, 1, 2, 0xff, 0, 'x' };
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_mailbox mb = { 0 }, got, *list;
	size_t n;
	struct err e;

	mb.remote_name = "Entw\xc3\xbcrfe";
	mb.local_name = "Drafts";
	mb.uidvalidity = 0xfedcba98;
	mb.uidnext = 4242;
	mb.highestmodseq = 0x123456789abcdefULL;
	mb.msg_count = 77;
	mb.last_sync = -5;      /* any int64 survives */
	mb.role = STATE_ROLE_DRAFTS;
	mb.marker = marker;
	mb.marker_len = sizeof(marker);
	cr_assert_eq(state_mailbox_add(t, &mb, &e), 0, "%s", e.msg);
	add_mailbox(t, "INBOX", "");
	commit(t);
	state_close(st);

	st = open_rw();
	t = begin(st, false);
	cr_assert_eq(state_mailbox_get(t, mb.id, &A, &got, &e), 1);
	cr_assert_eq(got.id, mb.id);
	cr_assert_str_eq(got.remote_name, mb.remote_name);
	cr_assert_str_eq(got.local_name, "Drafts");
	cr_assert_eq(got.uidvalidity, 0xfedcba98);
	cr_assert_eq(got.uidnext, 4242);
	cr_assert_eq(got.highestmodseq, 0x123456789abcdefULL);
	cr_assert_eq(got.msg_count, 77);
	cr_assert_eq(got.last_sync, -5);
	cr_assert_eq(got.role, STATE_ROLE_DRAFTS);
	cr_assert_eq(got.marker_len, sizeof(marker));
	cr_assert_arr_eq(got.marker, marker, sizeof(marker));
	cr_assert_eq(state_mailbox_find_remote(t, "Entw\xc3\xbcrfe", &A, &got, &e), 1);
	cr_assert_eq(got.id, mb.id);
	cr_assert_eq(state_mailbox_find_local(t, "Drafts", &A, &got, &e), 1);
	cr_assert_eq(got.id, mb.id);
	cr_assert_eq(state_mailbox_find_local(t, "INBOX", &A, &got, &e), 0,
		     "an empty local name is not indexed");
	cr_assert_eq(state_mailbox_find_remote(t, "Nope", &A, &got, &e), 0);
	cr_assert_eq(state_mailbox_get(t, 999, &A, &got, &e), 0);
	cr_assert_eq(state_mailbox_list(t, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(list[0].id, mb.id);
	cr_assert_str_eq(list[1].remote_name, "INBOX");
	cr_assert_str_eq(list[1].local_name, "");
	state_txn_abort(t);
	state_close(st);
}

Test(state, mailbox_rename_keeps_id_and_records)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_mailbox got;
	struct state_msg m;
	struct err e;
	uint32_t id = add_mailbox(t, "Old", "old");
	uint32_t other = add_mailbox(t, "Other", "other");

	add_msg(t, id, 5, "1.a.host", "<a@x>", 1);
	commit(t);

	t = begin(st, true);
	cr_assert_eq(state_mailbox_get(t, id, &A, &got, &e), 1);
	got.remote_name = "New";
	cr_assert_eq(state_mailbox_update(t, &got, &e), 0, "%s", e.msg);
	got.local_name = "other";       /* taken by another mailbox */
	cr_assert_eq(state_mailbox_update(t, &got, &e), -1);
	cr_assert_eq(e.code, ERR_INTERNAL);
	state_txn_abort(t);

	t = begin(st, true);
	cr_assert_eq(state_mailbox_get(t, id, &A, &got, &e), 1);
	got.remote_name = "New";
	got.local_name = "new";
	cr_assert_eq(state_mailbox_update(t, &got, &e), 0, "%s", e.msg);
	commit(t);

	t = begin(st, false);
	cr_assert_eq(state_mailbox_find_remote(t, "Old", &A, &got, &e), 0);
	cr_assert_eq(state_mailbox_find_local(t, "old", &A, &got, &e), 0);
	cr_assert_eq(state_mailbox_find_remote(t, "New", &A, &got, &e), 1);
	cr_assert_eq(got.id, id);
	cr_assert_eq(state_mailbox_find_local(t, "new", &A, &got, &e), 1);
	cr_assert_eq(got.id, id);
	cr_assert_eq(state_mailbox_find_local(t, "other", &A, &got, &e), 1);
	cr_assert_eq(got.id, other);
	cr_assert_eq(state_msg_find_uid(t, id, 5, &A, &m, &e), 1);
	state_txn_abort(t);
	state_close(st);
}

Test(state, duplicate_mailbox_name_is_refused)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_mailbox mb = { .remote_name = "INBOX" };
	struct err e;

	add_mailbox(t, "INBOX", "INBOX");
	cr_assert_eq(state_mailbox_add(t, &mb, &e), -1);
	cr_assert_eq(e.code, ERR_INTERNAL);
	state_txn_abort(t);
	state_close(st);
}

Test(state, over_long_names_are_limits)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	char *big = xmalloc(STATE_MAILBOX_NAME_MAX + 2);
	struct state_mailbox mb = { 0 };
	struct state_msg m = { 0 };
	struct err e;
	uint32_t id = add_mailbox(t, "INBOX", "INBOX");

	memset(big, 'a', STATE_MAILBOX_NAME_MAX + 1);
	big[STATE_MAILBOX_NAME_MAX + 1] = '\0';
	mb.remote_name = big;
	cr_assert_eq(state_mailbox_add(t, &mb, &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	big[STATE_NAME_MAX + 1] = '\0';
	m.mailbox = id;
	m.name = big;
	cr_assert_eq(state_msg_add(t, &m, &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	free(big);
	state_txn_abort(t);
	state_close(st);
}

/* ---- messages -------------------------------------------------------- */

Test(state, message_round_trips_every_field_with_40_keywords)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	char kwbuf[40][16];
	const char *kw[40];
	struct state_msg m = { 0 }, got;
	struct err e;
	uint32_t mbox;
	int i;

	for (i = 0; i < 40; i++) {
		snprintf(kwbuf[i], sizeof(kwbuf[i]), "$Label%02d", i);
		kw[i] = kwbuf[i];
	}
	mbox = add_mailbox(t, "INBOX", "INBOX");
	m.mailbox = mbox;
	m.uid = 0xfffffffe;
	m.name = "1700000000.M1P2Q3.host,U=9";
	m.flags = STATE_FLAG_SEEN | STATE_FLAG_ANSWERED | STATE_FLAG_FLAGGED |
		  STATE_FLAG_DRAFT | STATE_FLAG_DELETED | STATE_FLAG_FORWARDED;
	m.keywords = kw;
	m.nkeywords = 40;
	m.size = 0x1122334455ULL;
	m.message_id = "<unique.1@example.org>";
	hash_of(m.body_hash, 3);
	m.placeholder = true;
	cr_assert_eq(state_msg_add(t, &m, &e), 0, "%s", e.msg);
	commit(t);
	state_close(st);

	st = open_rw();
	t = begin(st, false);
	cr_assert_eq(state_msg_get(t, m.id, &A, &got, &e), 1, "%s", e.msg);
	cr_assert_eq(got.id, m.id);
	cr_assert_eq(got.mailbox, mbox);
	cr_assert_eq(got.uid, 0xfffffffe);
	cr_assert_str_eq(got.name, m.name);
	cr_assert_eq(got.flags, m.flags);
	cr_assert_eq(got.nkeywords, 40);
	for (i = 0; i < 40; i++)
		cr_assert_str_eq(got.keywords[i], kw[i]);
	cr_assert_eq(got.size, 0x1122334455ULL);
	cr_assert_str_eq(got.message_id, m.message_id);
	cr_assert_arr_eq(got.body_hash, m.body_hash, STATE_HASH_LEN);
	cr_assert(got.placeholder);
	state_txn_abort(t);
	state_close(st);
}

Test(state, lookups_by_uid_name_and_fingerprint)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_msg m, *list;
	uint8_t h[STATE_HASH_LEN];
	size_t n;
	struct err e;
	uint32_t inbox = add_mailbox(t, "INBOX", "INBOX");
	uint32_t arch = add_mailbox(t, "Archive", "Archive");
	uint64_t a = add_msg(t, inbox, 10, "n.a", "<dup@x>", 7);
	uint64_t b = add_msg(t, inbox, 11, "n.b", "<dup@x>", 7);
	uint64_t c = add_msg(t, arch, 3, "n.a", "<dup@x>", 7);
	uint64_t d = add_msg(t, inbox, 12, "n.d", "<other@x>", 7);
	uint64_t f = add_msg(t, inbox, 0, "", "", 0);

	commit(t);
	t = begin(st, false);
	cr_assert_eq(state_msg_find_uid(t, inbox, 11, &A, &m, &e), 1);
	cr_assert_eq(m.id, b);
	cr_assert_eq(state_msg_find_uid(t, arch, 3, &A, &m, &e), 1);
	cr_assert_eq(m.id, c);
	cr_assert_eq(state_msg_find_uid(t, arch, 10, &A, &m, &e), 0);
	cr_assert_eq(state_msg_find_uid(t, inbox, 13, &A, &m, &e), 0);
	cr_assert_eq(state_msg_find_uid(t, inbox, 0, &A, &m, &e), 0);

	cr_assert_eq(state_msg_find_name(t, inbox, "n.a", &A, &m, &e), 1);
	cr_assert_eq(m.id, a);
	cr_assert_eq(state_msg_find_name(t, arch, "n.a", &A, &m, &e), 1);
	cr_assert_eq(m.id, c);
	cr_assert_eq(state_msg_find_name(t, arch, "n.b", &A, &m, &e), 0);
	cr_assert_eq(state_msg_find_name(t, inbox, "", &A, &m, &e), 0);
	cr_assert_eq(state_msg_find_name_all(t, "n.a", &A, &list, &n, &e), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(list[0].id, a);
	cr_assert_eq(list[1].id, c);
	cr_assert_eq(state_msg_find_name_all(t, "zzz", &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);

	hash_of(h, 7);
	cr_assert_eq(state_msg_find_fp(t, 0, "<dup@x>", h, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 3, "three records share the fingerprint");
	cr_assert_eq(list[0].id, a);
	cr_assert_eq(list[1].id, b);
	cr_assert_eq(list[2].id, c);
	cr_assert_eq(state_msg_find_fp(t, arch, "<dup@x>", h, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(list[0].id, c);
	cr_assert_eq(state_msg_find_fp(t, inbox, "<other@x>", h, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(list[0].id, d);
	cr_assert_eq(state_msg_find_fp(t, 0, NULL, h, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0, "same body, different message-id is no match");
	memset(h, 0, sizeof(h));
	cr_assert_eq(state_msg_find_fp(t, 0, "", h, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0, "an unknown hash matches nothing");
	cr_assert_eq(state_msg_get(t, f, &A, &m, &e), 1);
	state_txn_abort(t);
	state_close(st);
}

Test(state, update_and_delete_keep_indexes_consistent)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_msg m, *list;
	uint8_t h1[STATE_HASH_LEN], h2[STATE_HASH_LEN];
	size_t n;
	struct err e;
	uint32_t inbox = add_mailbox(t, "INBOX", "INBOX");
	uint32_t arch = add_mailbox(t, "Archive", "Archive");
	uint64_t id = add_msg(t, inbox, 0, "", "<m@x>", 1);

	commit(t);
	hash_of(h1, 1);
	hash_of(h2, 2);

	/* The upload completed: it gains a uid; then it moves, renamed. */
	t = begin(st, true);
	cr_assert_eq(state_msg_get(t, id, &A, &m, &e), 1);
	m.uid = 40;
	m.name = "local.1";
	cr_assert_eq(state_msg_update(t, &m, &e), 0, "%s", e.msg);
	commit(t);
	t = begin(st, true);
	cr_assert_eq(state_msg_find_uid(t, inbox, 40, &A, &m, &e), 1);
	m.mailbox = arch;
	m.uid = 7;
	m.name = "local.2";
	memcpy(m.body_hash, h2, STATE_HASH_LEN);
	m.message_id = "<m2@x>";
	cr_assert_eq(state_msg_update(t, &m, &e), 0, "%s", e.msg);
	commit(t);

	t = begin(st, false);
	cr_assert_eq(state_msg_find_uid(t, inbox, 40, &A, &m, &e), 0);
	cr_assert_eq(state_msg_find_name(t, inbox, "local.1", &A, &m, &e), 0);
	cr_assert_eq(state_msg_find_name_all(t, "local.1", &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_msg_find_fp(t, 0, "<m@x>", h1, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_msg_list(t, inbox, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_msg_find_uid(t, arch, 7, &A, &m, &e), 1);
	cr_assert_eq(m.id, id, "the record id survives the move");
	cr_assert_eq(state_msg_find_name(t, arch, "local.2", &A, &m, &e), 1);
	cr_assert_eq(state_msg_find_fp(t, arch, "<m2@x>", h2, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 1);
	state_txn_abort(t);

	t = begin(st, true);
	cr_assert_eq(state_msg_del(t, id, &e), 0, "%s", e.msg);
	cr_assert_eq(state_msg_del(t, id, &e), 1);
	commit(t);
	t = begin(st, false);
	cr_assert_eq(state_msg_get(t, id, &A, &m, &e), 0);
	cr_assert_eq(state_msg_find_uid(t, arch, 7, &A, &m, &e), 0);
	cr_assert_eq(state_msg_find_name_all(t, "local.2", &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_msg_find_fp(t, 0, "<m2@x>", h2, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_msg_list(t, arch, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	state_txn_abort(t);
	state_close(st);
}

/* The highest UID of each mailbox from the index, whatever the mailbox order. */
Test(state, max_uid_is_the_mailboxs_highest_uid)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	uint32_t a = add_mailbox(t, "A", "A");
	uint32_t b = add_mailbox(t, "B", "B");
	uint32_t c = add_mailbox(t, "C", "C");
	uint32_t d = add_mailbox(t, "D", "D");
	uint32_t uid;
	struct err e;

	add_msg(t, a, 7, "a.7", "", 1);
	add_msg(t, a, 300, "a.300", "", 2);
	add_msg(t, a, 0, "a.new", "", 3);       /* no UID yet: sorts first */
	add_msg(t, b, 0, "b.new", "", 4);       /* only a record without a UID */
	add_msg(t, d, 5, "d.5", "", 5);         /* the last mailbox in the index */
	add_msg(t, d, 9, "d.9", "", 6);
	commit(t);

	t = begin(st, false);
	cr_assert_eq(state_msg_max_uid(t, a, &uid, &e), 0, "%s", e.msg);
	cr_assert_eq(uid, 300u);
	cr_assert_eq(state_msg_max_uid(t, b, &uid, &e), 0, "%s", e.msg);
	cr_assert_eq(uid, 0u);
	cr_assert_eq(state_msg_max_uid(t, c, &uid, &e), 0, "%s", e.msg);
	cr_assert_eq(uid, 0u, "no records");
	cr_assert_eq(state_msg_max_uid(t, d, &uid, &e), 0, "%s", e.msg);
	cr_assert_eq(uid, 9u);
	cr_assert_eq(state_msg_max_uid(t, d + 100, &uid, &e), 0, "%s", e.msg);
	cr_assert_eq(uid, 0u, "a mailbox after the last one");
	cr_assert_eq(state_msg_max_uid(t, UINT32_MAX, &uid, &e), 0, "%s", e.msg);
	cr_assert_eq(uid, 0u);
	state_txn_abort(t);
	state_close(st);
}

Test(state, uid_and_name_are_unique_per_mailbox)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_msg m = { 0 };
	struct err e;
	uint32_t inbox = add_mailbox(t, "INBOX", "INBOX");
	uint32_t arch = add_mailbox(t, "Archive", "Archive");

	add_msg(t, inbox, 1, "same", "", 0);
	m.mailbox = inbox;
	m.uid = 1;
	cr_assert_eq(state_msg_add(t, &m, &e), -1);
	cr_assert_eq(e.code, ERR_INTERNAL);
	m.uid = 2;
	m.name = "same";
	cr_assert_eq(state_msg_add(t, &m, &e), -1);
	cr_assert_eq(e.code, ERR_INTERNAL);
	m.mailbox = arch;       /* a copy keeping its name in another folder */
	m.uid = 1;
	cr_assert_eq(state_msg_add(t, &m, &e), 0, "%s", e.msg);
	m.mailbox = 99;
	m.uid = 0;
	m.name = "";
	cr_assert_eq(state_msg_add(t, &m, &e), -1, "no such mailbox");
	cr_assert_eq(e.code, ERR_INTERNAL);
	state_txn_abort(t);
	state_close(st);
}

Test(state, records_list_in_uid_order_with_unsent_first)
{
	static const uint32_t uids[] = { 50, 3, 0, 700, 9, 0, 1, 65536, 256 };
	static const uint32_t sorted[] = { 0, 0, 1, 3, 9, 50, 256, 700, 65536 };
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_msg *list, m;
	struct state_iter it;
	size_t n, i;
	struct err e;
	uint32_t other = add_mailbox(t, "A", "A");
	uint32_t inbox = add_mailbox(t, "INBOX", "INBOX");
	uint32_t after = add_mailbox(t, "Z", "Z");

	add_msg(t, other, 5, "", "", 0);
	add_msg(t, after, 0, "", "", 0);
	for (i = 0; i < sizeof(uids) / sizeof(uids[0]); i++)
		add_msg(t, inbox, uids[i], "", "", 0);
	commit(t);
	t = begin(st, false);
	cr_assert_eq(state_msg_list(t, inbox, &A, &list, &n, &e), 0);
	cr_assert_eq(n, sizeof(sorted) / sizeof(sorted[0]));
	for (i = 0; i < n; i++) {
		cr_assert_eq(list[i].uid, sorted[i]);
		cr_assert_eq(list[i].mailbox, inbox);
	}
	cr_assert_lt(list[0].id, list[1].id, "unsent records by record id");
	cr_assert_eq(state_msg_iter_init(&it, t, inbox, 10, &e), 0);
	for (i = 5; state_msg_iter_next(&it, &A, &m, &e) == 1; i++)
		cr_assert_eq(m.uid, sorted[i]);
	cr_assert_eq(i, n);
	cr_assert_eq(state_msg_iter_next(&it, &A, &m, &e), 0);
	state_msg_iter_release(&it);
	state_txn_abort(t);
	state_close(st);
}

Test(state, mailbox_delete_removes_its_records)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_msg *list;
	struct state_mailbox mb;
	uint8_t h[STATE_HASH_LEN];
	size_t n;
	struct err e;
	uint32_t inbox = add_mailbox(t, "INBOX", "INBOX");
	uint32_t gone = add_mailbox(t, "Gone", "Gone");

	add_msg(t, inbox, 1, "keep", "<k@x>", 4);
	add_msg(t, gone, 1, "drop", "<k@x>", 4);
	add_msg(t, gone, 2, "drop2", "", 0);
	commit(t);
	t = begin(st, true);
	cr_assert_eq(state_mailbox_del(t, gone, &e), 0, "%s", e.msg);
	cr_assert_eq(state_mailbox_del(t, gone, &e), 1);
	commit(t);
	t = begin(st, false);
	cr_assert_eq(state_mailbox_find_remote(t, "Gone", &A, &mb, &e), 0);
	cr_assert_eq(state_mailbox_find_local(t, "Gone", &A, &mb, &e), 0);
	cr_assert_eq(state_msg_list(t, gone, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_msg_find_name_all(t, "drop", &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	hash_of(h, 4);
	cr_assert_eq(state_msg_find_fp(t, 0, "<k@x>", h, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(list[0].name, "keep");
	state_txn_abort(t);
	state_close(st);
}

/* ---- journal --------------------------------------------------------- */

static struct state_intent sample_intent(uint32_t mbox, uint32_t target)
{
	struct state_intent in = { 0 };

	in.kind = STATE_INTENT_MOVE_REMOTE;
	in.mailbox = mbox;
	in.target = target;
	in.uid = 77;
	in.uidnext = 4000;
	in.msg = 12345;
	in.created = 1700000000;
	in.name = "1700.x.host";
	in.message_id = "<move@x>";
	hash_of(in.body_hash, 9);
	return in;
}

static void check_intent(const struct state_intent *got,
			 const struct state_intent *want)
{
	cr_assert_eq(got->id, want->id);
	cr_assert_eq(got->kind, want->kind);
	cr_assert_eq(got->mailbox, want->mailbox);
	cr_assert_eq(got->target, want->target);
	cr_assert_eq(got->uid, want->uid);
	cr_assert_eq(got->uidnext, want->uidnext);
	cr_assert_eq(got->msg, want->msg);
	cr_assert_eq(got->created, want->created);
	cr_assert_str_eq(got->name, want->name);
	cr_assert_str_eq(got->message_id, want->message_id);
	cr_assert_arr_eq(got->body_hash, want->body_hash, STATE_HASH_LEN);
}

Test(state, journal_add_list_clear_in_order)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_intent in[3], *list;
	size_t n;
	struct err e;
	int i;

	for (i = 0; i < 3; i++) {
		in[i] = sample_intent(1, 2);
		in[i].kind = (enum state_intent_kind)(STATE_INTENT_DOWNLOAD + i);
		cr_assert_eq(state_intent_add(t, &in[i], &e), 0, "%s", e.msg);
	}
	cr_assert_lt(in[0].id, in[1].id);
	cr_assert_lt(in[1].id, in[2].id);
	cr_assert_eq(state_intent_list(t, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 3);
	for (i = 0; i < 3; i++)
		check_intent(&list[i], &in[i]);
	cr_assert_eq(state_intent_clear(t, in[1].id, &e), 0);
	cr_assert_eq(state_intent_clear(t, in[1].id, &e), 1);
	cr_assert_eq(state_intent_list(t, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 2);
	check_intent(&list[0], &in[0]);
	check_intent(&list[1], &in[2]);
	in[0].kind = (enum state_intent_kind)0;
	cr_assert_eq(state_intent_add(t, &in[0], &e), -1);
	cr_assert_eq(e.code, ERR_INTERNAL);
	state_txn_abort(t);
	state_close(st);
}

Test(state, intent_left_by_a_killed_run_is_listed_for_replay)
{
	struct state_intent want = sample_intent(1, 2), *list;
	struct state *st;
	struct state_txn *t;
	size_t n;
	struct err e;
	int status;
	pid_t pid;

	want.kind = STATE_INTENT_UPLOAD;
	want.id = 1;
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		/* The crashing run: record the intent, commit, die before the
		 * side effect's outcome is recorded. */
		struct state_intent in = want;

		if (state_open(dir, NULL, &st, &e) < 0 ||
		    state_txn_begin(st, true, &t, &e) < 0 ||
		    state_intent_add(t, &in, &e) < 0 ||
		    state_txn_commit(t, &e) < 0 || in.id != 1)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "child status %d", status);

	st = open_rw();
	t = begin(st, false);
	cr_assert_eq(state_intent_list(t, &A, &list, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 1);
	check_intent(&list[0], &want);
	state_txn_abort(t);
	t = begin(st, true);
	cr_assert_eq(state_intent_clear(t, list[0].id, &e), 0);
	commit(t);
	state_close(st);

	st = open_rw();
	t = begin(st, false);
	cr_assert_eq(state_intent_list(t, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	state_txn_abort(t);
	state_close(st);
}

Test(state, aborted_transaction_leaves_nothing)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_intent in = sample_intent(1, 0), *list;
	struct state_mailbox *mbs;
	size_t n;
	struct err e;

	add_mailbox(t, "INBOX", "INBOX");
	cr_assert_eq(state_intent_add(t, &in, &e), 0);
	state_txn_abort(t);
	t = begin(st, false);
	cr_assert_eq(state_intent_list(t, &A, &list, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_mailbox_list(t, &A, &mbs, &n, &e), 0);
	cr_assert_eq(n, 0);
	state_txn_abort(t);
	state_close(st);
}

/* A relaxed commit (no meta flush) is a commit like any other short of a
 * system crash, and the commits after it are ordinary ones. */
Test(state, relaxed_commit_is_kept_and_the_next_commit_is_ordinary)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_mailbox mb;
	struct err e;
	uint32_t id = add_mailbox(t, "INBOX", "INBOX");

	commit(t);
	t = begin(st, true);
	cr_assert_eq(state_mailbox_get(t, id, &A, &mb, &e), 1, "%s", e.msg);
	mb.last_sync = 1700000001;
	cr_assert_eq(state_mailbox_update(t, &mb, &e), 0, "%s", e.msg);
	state_txn_relax(t);
	commit(t);
	t = begin(st, true);
	cr_assert_eq(state_mailbox_get(t, id, &A, &mb, &e), 1, "%s", e.msg);
	cr_assert_eq(mb.last_sync, 1700000001);
	mb.uidnext = 7;
	cr_assert_eq(state_mailbox_update(t, &mb, &e), 0, "%s", e.msg);
	commit(t);
	state_close(st);

	st = open_rw();
	t = begin(st, false);
	cr_assert_eq(state_mailbox_get(t, id, &A, &mb, &e), 1, "%s", e.msg);
	cr_assert_eq(mb.last_sync, 1700000001);
	cr_assert_eq(mb.uidnext, 7);
	state_txn_abort(t);
	state_close(st);
}

/* ---- map growth ------------------------------------------------------ */

#define GROW_BATCH 250
#define GROW_BATCHES 12

struct grow_ctx {
	uint32_t mbox;
	unsigned batch;
	int calls;
};

static int grow_batch(struct state_txn *t, void *arg, struct err *e)
{
	struct grow_ctx *c = arg;
	char name[64], msgid[64];
	const char *kw[2] = { "$Important", "work" };
	unsigned i;

	c->calls++;
	for (i = 0; i < GROW_BATCH; i++) {
		struct state_msg m = { 0 };
		unsigned k = c->batch * GROW_BATCH + i;

		snprintf(name, sizeof(name), "1700000000.M%uP1.host.example", k);
		snprintf(msgid, sizeof(msgid), "<%u.grow@example.org>", k);
		m.mailbox = c->mbox;
		m.uid = k + 1;
		m.name = name;
		m.message_id = msgid;
		m.keywords = kw;
		m.nkeywords = 2;
		hash_of(m.body_hash, k + 1);
		if (state_msg_add(t, &m, e) < 0)
			return -1;
	}
	return 0;
}

Test(state, map_grows_on_demand_from_a_tiny_map)
{
	struct state_options opts = { .map_size = 64 * 1024 };
	struct grow_ctx c = { 0 };
	struct state *st;
	struct state_txn *t;
	struct state_msg m, *list;
	size_t n, first;
	int redone = 0;
	struct err e;

	cr_assert_eq(state_open(dir, &opts, &st, &e), 0, "%s", e.msg);
	first = state_map_size(st);
	t = begin(st, true);
	c.mbox = add_mailbox(t, "INBOX", "INBOX");
	commit(t);
	/* Half the batches by hand, the way a caller retries ... */
	for (c.batch = 0; c.batch < GROW_BATCHES / 2; c.batch++) {
		for (;;) {
			t = begin(st, true);
			if (grow_batch(t, &c, &e) < 0)
				state_txn_abort(t);     /* grows the map */
			else if (state_txn_commit(t, &e) == 0)
				break;                  /* commit ended t either way */
			cr_assert(state_err_map_full(&e), "%s", e.msg);
			cr_assert(e.retry, "map full must be retryable");
			redone++;
		}
	}
	/* ... and half through state_write(). */
	for (; c.batch < GROW_BATCHES; c.batch++)
		cr_assert_eq(state_write(st, grow_batch, &c, &e), 0, "%s", e.msg);
	cr_assert_gt(state_map_size(st), first, "the map grew");
	cr_assert_gt(redone, 0, "a batch ran the map full and was redone");
	cr_log_info("map %zu -> %zu bytes, %d batches redone by hand, %d calls",
		    first, state_map_size(st), redone, c.calls);
	state_close(st);

	cr_assert_eq(state_open(dir, &opts, &st, &e), 0, "%s", e.msg);
	t = begin(st, false);
	cr_assert_eq(state_msg_list(t, c.mbox, &A, &list, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, GROW_BATCH * GROW_BATCHES);
	cr_assert_eq(state_msg_find_name(t, c.mbox, "1700000000.M2999P1.host.example",
					 &A, &m, &e), 1);
	cr_assert_eq(m.uid, 3000);
	state_txn_abort(t);
	state_close(st);
}

static int failing_batch(struct state_txn *t, void *arg, struct err *e)
{
	int *calls = arg;
	struct state_mailbox mb = { .remote_name = "Half" };

	(*calls)++;
	if (state_mailbox_add(t, &mb, e) < 0)
		return -1;
	return err_set(e, ERR_IO, "the batch failed");
}

Test(state, write_helper_aborts_a_failed_batch_without_retrying)
{
	struct state *st = open_rw();
	struct state_txn *t;
	struct state_mailbox mb;
	struct err e;
	int calls = 0;

	cr_assert_eq(state_write(st, failing_batch, &calls, &e), -1);
	cr_assert_eq(e.code, ERR_IO);
	cr_assert_eq(calls, 1);
	cr_assert_not(state_err_map_full(&e));
	t = begin(st, false);
	cr_assert_eq(state_mailbox_find_remote(t, "Half", &A, &mb, &e), 0,
		     "the failed batch left nothing");
	state_txn_abort(t);
	state_close(st);
}

/* ---- refusing bad state ---------------------------------------------- */

/* Open the environment with LMDB directly and put `key` = `val` in `db`
 * (NULL: the main DB). */
static void raw_put(const char *db, const void *key, size_t klen,
		    const void *val, size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };

	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 16), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, db, db ? 0 : MDB_CREATE, &dbi), 0);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void make_dir(void)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/st", tmp);
	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_eq(mkdir(dir, 0700), 0);
}

static void expect_refused(const char *needle)
{
	struct state_options ro = { .read_only = true };
	struct state *st = NULL;
	struct err e;

	cr_assert_eq(state_open(dir, NULL, &st, &e), -1);
	cr_assert_null(st);
	cr_assert_eq(e.code, ERR_STATE);
	cr_assert_not_null(strstr(e.msg, dir), "path missing: %s", e.msg);
	cr_assert_not_null(strstr(e.msg, needle), "message: %s", e.msg);
	cr_assert_eq(state_open(dir, &ro, &st, &e), -1, "read-only too");
	cr_assert_eq(e.code, ERR_STATE);
	cr_assert_not_null(strstr(e.msg, needle), "message: %s", e.msg);
}

Test(state, newer_schema_is_refused)
{
	uint8_t v[4] = { 2, 0, 0, 0 };
	char want[128];

	state_close(open_rw());
	raw_put("meta", "schema", 6, v, 4);
	snprintf(want, sizeof(want),
		 "was written by a newer ferry (schema 2, this ferry knows %d)",
		 STATE_SCHEMA_VERSION);
	expect_refused(want);
}

Test(state, garbage_file_is_refused_naming_the_path)
{
	char path[256], junk[16384];
	size_t i;
	int fd;

	make_dir();
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 131 + 17);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	expect_refused("move the folder aside");
}

Test(state, foreign_lmdb_database_is_refused)
{
	make_dir();
	raw_put(NULL, "hello", 5, "world", 5);
	expect_refused("not a ferry state");
}

Test(state, wrong_magic_is_refused)
{
	state_close(open_rw());
	raw_put("meta", "magic", 5, "other program", 13);
	expect_refused("not a ferry state");
}

Test(state, damaged_record_is_a_state_error)
{
	struct state *st = open_rw();
	struct state_txn *t = begin(st, true);
	struct state_msg m;
	uint8_t key[8];
	struct err e;
	uint32_t inbox = add_mailbox(t, "INBOX", "INBOX");
	uint64_t id = add_msg(t, inbox, 5, "x", "<x@y>", 1);

	commit(t);
	state_close(st);
	state_be64(key, id);
	raw_put("msg", key, 8, "\x01\x00\x01", 3);
	st = open_rw();
	t = begin(st, false);
	cr_assert_eq(state_msg_get(t, id, &A, &m, &e), -1);
	cr_assert_eq(e.code, ERR_STATE);
	cr_assert_not_null(strstr(e.msg, dir), "message: %s", e.msg);
	cr_assert_eq(state_msg_find_uid(t, inbox, 5, &A, &m, &e), -1);
	cr_assert_eq(e.code, ERR_STATE);
	state_txn_abort(t);
	state_close(st);
}

/* Every truncation and every single-byte corruption of valid records
 * decodes to ERR_STATE or a valid record, never past the value (ASan). */
Test(state, decoders_never_read_past_a_damaged_value)
{
	struct state fake = { .path = "/fake/state" };
	const char *kw[3] = { "a", "$Junk", "longer-keyword" };
	struct state_msg m = { 0 }, mo;
	struct state_mailbox mb = { 0 }, mbo;
	struct state_intent in = sample_intent(3, 4), ino;
	struct buf b[3] = { BUF_INIT(STATE_RECORD_MAX), BUF_INIT(STATE_RECORD_MAX),
			    BUF_INIT(STATE_RECORD_MAX) };
	struct err e;
	size_t r, len, pos;
	unsigned bit;

	m.mailbox = 1;
	m.uid = 2;
	m.name = "name";
	m.message_id = "<id>";
	m.keywords = kw;
	m.nkeywords = 3;
	mb.remote_name = "R";
	mb.local_name = "L";
	mb.marker = "marker";
	mb.marker_len = 6;
	cr_assert_eq(state_msg_encode(&m, &b[0], &e), 0);
	cr_assert_eq(state_mailbox_encode(&mb, &b[1], &e), 0);
	cr_assert_eq(state_intent_encode(&in, &b[2], &e), 0);
	for (r = 0; r < 3; r++) {
		for (len = 0; len <= b[r].len; len++) {
			for (pos = 0; pos <= len; pos++) {
				for (bit = 0; bit < (pos < len ? 8u : 1u); bit++) {
					char *copy = xmemdup(b[r].data, len ? len : 1);
					MDB_val v = { len, copy };
					int rc;

					if (pos < len)
						copy[pos] = (char)(copy[pos] ^ (1 << bit));
					if (r == 0)
						rc = state_msg_decode(&fake, 1, &v, &A, &mo, &e);
					else if (r == 1)
						rc = state_mailbox_decode(&fake, 1, &v, &A, &mbo, &e);
					else
						rc = state_intent_decode(&fake, 1, &v, &A, &ino, &e);
					if (len < b[r].len && pos == len)
						cr_assert_eq(rc, -1, "record %zu cut at %zu decoded", r, len);
					if (rc < 0) {
						cr_assert_eq(e.code, ERR_STATE);
						cr_assert_not_null(strstr(e.msg, "/fake/state"));
					}
					free(copy);
				}
			}
			arena_reset(&A);
		}
		buf_release(&b[r]);
	}
}

/* ---- a reader in another process ------------------------------------- */

static int count_records(struct state *st, uint32_t mbox)
{
	struct state_txn *t;
	struct state_msg *list;
	struct arena a;
	size_t n = 0;
	struct err e;
	int rc;

	arena_init(&a, 4096);
	rc = state_txn_begin(st, false, &t, &e);
	if (rc == 0) {
		rc = state_msg_list(t, mbox, &a, &list, &n, &e);
		state_txn_abort(t);
	}
	arena_release(&a);
	return rc < 0 ? -1 : (int)n;
}

static void sync_write(int fd, char c)
{
	cr_assert_eq(write(fd, &c, 1), 1);
}

static char sync_read(int fd)
{
	char c = 0;

	cr_assert_eq(read(fd, &c, 1), 1);
	return c;
}

/*
 * The child opens the state read-only (as `ferry status` does) while the
 * parent writes: an open read transaction keeps its snapshot across the
 * writer's commits, including commits that grow the map; a new one sees
 * the new data.
 */
static int reader_child(int rd, int wr, uint32_t mbox)
{
	/* A tiny map: the writer's growth shows up as MDB_MAP_RESIZED. */
	struct state_options ro = { .read_only = true, .map_size = 64 * 1024 };
	struct state *st;
	struct state_txn *snap;
	struct state_msg *list;
	struct arena a;
	size_t n;
	struct err e;
	char c;
	int bad = 0;

	if (read(rd, &c, 1) != 1)
		return 10;
	if (state_open(dir, &ro, &st, &e) != 0)
		return 11;
	if (count_records(st, mbox) != 10)
		bad = 12;
	arena_init(&a, 4096);
	if (state_txn_begin(st, false, &snap, &e) < 0)
		bad = 13;
	c = 'r';
	if (write(wr, &c, 1) != 1)
		return 14;
	if (read(rd, &c, 1) != 1)       /* parent committed more */
		return 15;
	if (!bad && (state_msg_list(snap, mbox, &a, &list, &n, &e) < 0 || n != 10))
		bad = 16;               /* the snapshot did not move */
	if (!bad)
		state_txn_abort(snap);
	if (!bad && count_records(st, mbox) != 10 + GROW_BATCH * 4)
		bad = 17;
	arena_release(&a);
	state_close(st);
	return bad;
}

Test(state, reader_in_child_keeps_its_snapshot_while_writer_commits)
{
	struct state_options small = { .map_size = 64 * 1024 };
	int to_child[2], to_parent[2], status;
	struct grow_ctx c = { 0 };
	struct state *st;
	struct state_txn *t;
	size_t before;
	struct err e;
	pid_t pid;
	int i;

	cr_assert_eq(pipe(to_child), 0);
	cr_assert_eq(pipe(to_parent), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		close(to_child[1]);
		close(to_parent[0]);
		_exit(reader_child(to_child[0], to_parent[1], 1));
	}
	close(to_child[0]);
	close(to_parent[1]);

	cr_assert_eq(state_open(dir, &small, &st, &e), 0, "%s", e.msg);
	t = begin(st, true);
	c.mbox = add_mailbox(t, "INBOX", "INBOX");
	cr_assert_eq(c.mbox, 1);
	for (i = 0; i < 10; i++)
		add_msg(t, c.mbox, 100000 + (uint32_t)i, "", "", 0);
	commit(t);
	sync_write(to_child[1], 'g');
	cr_assert_eq(sync_read(to_parent[0]), 'r');
	/* The reader holds a snapshot; write (and grow) under it. */
	before = state_map_size(st);
	for (c.batch = 0; c.batch < 4; c.batch++)
		cr_assert_eq(state_write(st, grow_batch, &c, &e), 0, "%s", e.msg);
	cr_assert_gt(state_map_size(st), before);
	sync_write(to_child[1], 'g');
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died: %d", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "reader failed at step %d",
		     WEXITSTATUS(status));
	state_close(st);
	close(to_child[1]);
	close(to_parent[0]);
}

/* The fuzzer's seed records were written by hand from doc/state.md: they
 * must decode, so the document and the code agree. */
Test(state, documented_encodings_decode)
{
	static const char *const names[] = { "msg", "mailbox", "intent" };
	struct state fake = { .path = "/doc/state" };
	const char *root = getenv("FERRY_SOURCE_ROOT");
	char path[512], data[4096];
	struct state_msg m;
	struct state_mailbox mb;
	struct state_intent in;
	struct err e;
	size_t i;

	cr_assert_not_null(root, "FERRY_SOURCE_ROOT is not set");
	for (i = 0; i < 3; i++) {
		MDB_val v;
		ssize_t n;
		int fd;

		snprintf(path, sizeof(path), "%s/fuzz/corpus/state_record/%s",
			 root, names[i]);
		fd = open(path, O_RDONLY);
		cr_assert_geq(fd, 0, "cannot open %s", path);
		n = read(fd, data, sizeof(data));
		close(fd);
		cr_assert_gt(n, 1);
		cr_assert_eq(data[0], (char)i);
		v.mv_size = (size_t)n - 1;
		v.mv_data = data + 1;
		if (i == 0) {
			cr_assert_eq(state_msg_decode(&fake, 1, &v, &A, &m, &e), 0, "%s", e.msg);
			cr_assert_eq(m.uid, 42);
			cr_assert_eq(m.nkeywords, 2);
			cr_assert_str_eq(m.keywords[1], "work");
			cr_assert(m.placeholder);
		} else if (i == 1) {
			cr_assert_eq(state_mailbox_decode(&fake, 1, &v, &A, &mb, &e), 0, "%s", e.msg);
			cr_assert_eq(mb.role, STATE_ROLE_SENT);
			cr_assert_eq(mb.marker_len, 4);
			cr_assert_eq(mb.last_sync, 1700000000);
		} else {
			cr_assert_eq(state_intent_decode(&fake, 1, &v, &A, &in, &e), 0, "%s", e.msg);
			cr_assert_eq(in.kind, STATE_INTENT_UPLOAD);
			cr_assert_eq(in.uidnext, 4000);
			cr_assert_str_eq(in.message_id, "<id@x>");
		}
	}
}
