/*
 * test_rename.c - the pure folder-rename finder (core/sync/rename.h):
 * which known pair was renamed into which fresh pair, on which side, and
 * what must be renamed on the other.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sync/rename.h"

/* A small account under construction. */
struct acct {
	struct sync_rename_box box[8];
	size_t nbox;
	struct sync_record rec[16];
	size_t nrec;
	struct sync_remote_msg rmsg[8][8];
	struct sync_local_msg lmsg[8][8];
	struct sync_rename_hint hint[2];
	size_t nhint;
	enum sync_direction dir;
	struct arena a;
	struct sync_rename *out;
	size_t nout;
};

static struct acct A;

static void setup(void)
{
	memset(&A, 0, sizeof(A));
	arena_init(&A.a, 4096);
}

static void teardown(void)
{
	arena_release(&A.a);
}

TestSuite(rename, .init = setup, .fini = teardown);

/* A known pair (synced before: both sides existed) with these sides now. */
static struct sync_rename_box *known(uint32_t id, const char *name, bool remote_now, bool local_now)
{
	struct sync_rename_box *b = &A.box[A.nbox++];

	b->id = id;
	b->remote_name = b->local_name = name;
	b->remote_existed = b->local_existed = true;
	b->remote_exists = remote_now;
	b->local_exists = local_now;
	b->uidvalidity_base = 100 + id;
	b->uidvalidity_now = remote_now ? b->uidvalidity_base : 0;
	b->remote = A.rmsg[A.nbox - 1];
	b->local = A.lmsg[A.nbox - 1];
	return b;
}

/* A fresh pair that appeared on the given sides. */
static struct sync_rename_box *fresh(uint32_t id, const char *name, bool remote_now, bool local_now)
{
	struct sync_rename_box *b = &A.box[A.nbox++];

	b->id = id;
	b->remote_name = b->local_name = name;
	b->remote_exists = remote_now;
	b->local_exists = local_now;
	b->uidvalidity_now = remote_now ? 900 + id : 0;
	b->remote = A.rmsg[A.nbox - 1];
	b->local = A.lmsg[A.nbox - 1];
	return b;
}

static void fp_of(struct sync_fp *fp, int tag)
{
	fp->state = SYNC_FP_KNOWN;
	memset(fp->bytes, tag, SYNC_FP_LEN);
}

/* A record of mailbox `id`: uid, name "m<tag>", fingerprint tag. */
static void rec(uint32_t id, uint32_t uid, int tag)
{
	struct sync_record *r = &A.rec[A.nrec++];
	static char names[16][8];

	snprintf(names[tag], sizeof(names[tag]), "m%d", tag);
	r->mailbox = id;
	r->uid = uid;
	r->name = names[tag];
	r->size = 1000 + (uint64_t)tag;
	fp_of(&r->fp, tag);
}

static void remote_msg(struct sync_rename_box *b, uint32_t uid, int tag, bool with_fp)
{
	struct sync_remote_msg *m = (struct sync_remote_msg *)&b->remote[b->nremote++];

	memset(m, 0, sizeof(*m));
	m->uid = uid;
	m->size = 1000 + (uint64_t)tag;
	if (with_fp)
		fp_of(&m->fp, tag);
}

static void local_msg(struct sync_rename_box *b, const char *name)
{
	struct sync_local_msg *m = (struct sync_local_msg *)&b->local[b->nlocal++];

	memset(m, 0, sizeof(*m));
	m->name = name;
}

static void find(void)
{
	struct sync_rename_input in = {
		.boxes = A.box, .nboxes = A.nbox, .records = A.rec, .nrecords = A.nrec,
		.hints = A.hint, .nhints = A.nhint, .sep = '/', .direction = A.dir,
	};

	sync_renames_find(&in, &A.a, &A.out, &A.nout);
}

Test(rename, server_rename_found_by_uids_renames_the_local_folder)
{
	struct sync_rename_box *q;

	known(1, "A", false, true);
	rec(1, 5, 1);
	rec(1, 6, 2);
	q = fresh(2, "B", true, false);
	q->uidvalidity_now = 101;       /* the server kept UIDVALIDITY and UIDs */
	remote_msg(q, 5, 1, false);
	remote_msg(q, 6, 2, false);
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert_eq(A.out[0].from, 1);
	cr_assert_eq(A.out[0].into_remote, 2);
	cr_assert_eq(A.out[0].into_local, 0);
	cr_assert(A.out[0].rename_local);
	cr_assert(!A.out[0].rename_remote);
	cr_assert_str_eq(A.out[0].local_cur, "A");
	cr_assert_str_eq(A.out[0].local_new, "B");
	cr_assert_str_eq(A.out[0].remote_new, "B");
	cr_assert(!A.out[0].remote_partial && !A.out[0].local_partial && !A.out[0].deferred);
}

Test(rename, same_uids_with_other_sizes_are_not_the_same_messages)
{
	struct sync_rename_box *q;

	known(1, "A", false, true);
	rec(1, 5, 1);
	q = fresh(2, "B", true, false);
	q->uidvalidity_now = 101;
	remote_msg(q, 5, 7, false);     /* size 1007, not 1001 */
	find();
	cr_assert_eq(A.nout, 0);
}

Test(rename, server_rename_with_new_uidvalidity_found_by_fingerprint)
{
	struct sync_rename_box *q;

	known(1, "A", false, true);
	rec(1, 5, 1);
	rec(1, 6, 2);
	q = fresh(2, "B", true, false);
	remote_msg(q, 1, 1, true);
	remote_msg(q, 2, 2, true);
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert_eq(A.out[0].into_remote, 2);
	cr_assert(A.out[0].rename_local);
}

Test(rename, local_rename_found_by_file_names_renames_the_server_mailbox)
{
	struct sync_rename_box *q;

	known(1, "A", true, false);
	rec(1, 5, 1);
	rec(1, 6, 2);
	q = fresh(2, "B", false, true);
	local_msg(q, "m1");
	local_msg(q, "m2");
	local_msg(q, "new-one");
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert_eq(A.out[0].into_local, 2);
	cr_assert(A.out[0].rename_remote);
	cr_assert(!A.out[0].remote_by_parent);
	cr_assert(!A.out[0].rename_local);
	cr_assert_str_eq(A.out[0].remote_cur, "A");
	cr_assert_str_eq(A.out[0].remote_new, "B");
	cr_assert_str_eq(A.out[0].local_new, "B");
}

Test(rename, folder_whose_messages_are_nowhere_is_not_a_rename)
{
	struct sync_rename_box *q;

	known(1, "A", true, false);
	rec(1, 5, 1);
	rec(1, 6, 2);
	q = fresh(2, "B", false, true);
	local_msg(q, "unrelated");
	find();
	cr_assert_eq(A.nout, 0);
}

Test(rename, less_than_half_found_is_not_a_rename_half_is_a_partial_one)
{
	struct sync_rename_box *q;

	known(1, "A", true, false);
	rec(1, 1, 1);
	rec(1, 2, 2);
	rec(1, 3, 3);
	rec(1, 4, 4);
	rec(1, 5, 5);
	q = fresh(2, "B", false, true);
	local_msg(q, "m1");
	local_msg(q, "m2");
	find();
	cr_assert_eq(A.nout, 0, "2 of 5 is no rename");
	local_msg(q, "m3");
	find();
	cr_assert_eq(A.nout, 1, "3 of 5 is a rename");
	cr_assert(A.out[0].local_partial, "the two missing messages must be refilled");
	cr_assert(!A.out[0].remote_partial);
}

Test(rename, empty_folder_needs_evidence)
{
	struct sync_rename_box *q;

	known(1, "E", true, false);
	q = fresh(2, "F", false, true);
	find();
	cr_assert_eq(A.nout, 0, "an empty folder vanished and another appeared: no evidence");
	A.box[0].dir_dev = q->dir_dev = 3;
	A.box[0].dir_ino = q->dir_ino = 77;
	find();
	cr_assert_eq(A.nout, 1, "the same cur/ directory is a rename");
	q->dir_ino = 78;
	A.hint[A.nhint++] = (struct sync_rename_hint){ 1, 0, 2 };
	find();
	cr_assert_eq(A.nout, 1, "a killed run's intent is a rename");
}

Test(rename, empty_server_folder_with_the_same_uidvalidity_is_a_rename)
{
	struct sync_rename_box *q;

	known(1, "E", false, true);
	q = fresh(2, "F", true, false);
	find();
	cr_assert_eq(A.nout, 0);
	q->uidvalidity_now = 101;
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert(A.out[0].rename_local);
}

Test(rename, inbox_is_never_renamed)
{
	struct sync_rename_box *q;

	known(1, "INBOX", true, false);
	rec(1, 5, 1);
	q = fresh(2, "Old inbox", false, true);
	local_msg(q, "m1");
	find();
	cr_assert_eq(A.nout, 0);
}

Test(rename, renamed_on_both_sides_the_servers_name_wins)
{
	struct sync_rename_box *qr, *ql;

	known(1, "A", false, false);
	rec(1, 5, 1);
	qr = fresh(2, "Srv", true, false);
	qr->uidvalidity_now = 101;
	remote_msg(qr, 5, 1, false);
	ql = fresh(3, "Loc", false, true);
	local_msg(ql, "m1");
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert_eq(A.out[0].into_remote, 2);
	cr_assert_eq(A.out[0].into_local, 3);
	cr_assert(A.out[0].rename_local);
	cr_assert(!A.out[0].rename_remote);
	cr_assert_str_eq(A.out[0].local_cur, "Loc");
	cr_assert_str_eq(A.out[0].local_new, "Srv");
}

Test(rename, renamed_alike_on_both_sides_is_only_a_rekey)
{
	struct sync_rename_box *q;

	known(1, "A", false, false);
	rec(1, 5, 1);
	q = fresh(2, "B", true, true);
	q->uidvalidity_now = 101;
	remote_msg(q, 5, 1, false);
	local_msg(q, "m1");
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert_eq(A.out[0].into_remote, 2);
	cr_assert_eq(A.out[0].into_local, 2);
	cr_assert(!A.out[0].rename_local && !A.out[0].rename_remote);
}

Test(rename, fresh_pair_on_both_sides_is_not_taken_by_a_one_sided_match)
{
	struct sync_rename_box *q;

	known(1, "A", false, true);
	rec(1, 5, 1);
	q = fresh(2, "B", true, true);  /* a local B of the user's own */
	q->uidvalidity_now = 101;
	remote_msg(q, 5, 1, false);
	local_msg(q, "mine");
	find();
	cr_assert_eq(A.nout, 0);
}

Test(rename, children_follow_a_server_rename_made_for_a_local_one)
{
	struct sync_rename_box *q;

	known(1, "A", true, false);
	rec(1, 5, 1);
	known(2, "A/x", true, true);    /* maildir++: the child stayed where it was */
	q = fresh(3, "B", false, true);
	local_msg(q, "m1");
	find();
	cr_assert_eq(A.nout, 2);
	cr_assert_eq(A.out[0].from, 1);
	cr_assert(A.out[0].rename_remote && !A.out[0].remote_by_parent);
	cr_assert_eq(A.out[1].from, 2);
	cr_assert(A.out[1].rename_remote && A.out[1].remote_by_parent);
	cr_assert_str_eq(A.out[1].remote_new, "B/x");
	cr_assert(A.out[1].rename_local);
	cr_assert_str_eq(A.out[1].local_new, "B/x");
}

Test(rename, child_moved_with_its_parent_is_renamed_by_the_parents_rename)
{
	struct sync_rename_box *q, *qc;

	known(2, "A/x", true, false);   /* listed first: order must still be parent first */
	known(1, "A", true, false);
	rec(1, 5, 1);
	q = fresh(3, "B", false, true);
	local_msg(q, "m1");
	qc = fresh(4, "B/x", false, true);      /* empty child: found by its parent */
	(void)qc;
	find();
	cr_assert_eq(A.nout, 2);
	cr_assert_eq(A.out[0].from, 1);
	cr_assert_eq(A.out[1].from, 2);
	cr_assert_eq(A.out[1].into_local, 4);
	cr_assert(A.out[1].rename_remote && A.out[1].remote_by_parent);
}

Test(rename, a_rename_the_direction_cannot_write_is_deferred)
{
	struct sync_rename_box *q;

	known(1, "A", true, false);
	rec(1, 5, 1);
	q = fresh(2, "B", false, true);
	local_msg(q, "m1");
	A.dir = SYNC_PULL;
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert(A.out[0].deferred);
	A.dir = SYNC_PUSH;
	find();
	cr_assert(!A.out[0].deferred);
}

Test(rename, taken_target_name_keeps_the_current_one)
{
	struct sync_rename_box *q;

	known(1, "A", true, false);
	rec(1, 5, 1);
	known(9, "B", true, false);     /* the server already has a B of its own (paired) */
	q = fresh(2, "B2", false, true);
	q->remote_name = "B";           /* (an odd pairing: its remote name is taken) */
	local_msg(q, "m1");
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert(!A.out[0].rename_remote);
	cr_assert_str_eq(A.out[0].remote_new, "A");
	cr_assert_str_eq(A.out[0].local_new, "B2");
}

Test(rename, best_match_wins_when_two_fresh_folders_hold_messages)
{
	struct sync_rename_box *q1, *q2;

	known(1, "A", true, false);
	rec(1, 1, 1);
	rec(1, 2, 2);
	rec(1, 3, 3);
	q1 = fresh(2, "B", false, true);
	local_msg(q1, "m1");
	local_msg(q1, "m2");
	q2 = fresh(3, "C", false, true);
	local_msg(q2, "m1");
	local_msg(q2, "m2");
	local_msg(q2, "m3");
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert_eq(A.out[0].into_local, 3);
	cr_assert(!A.out[0].local_partial);
}

Test(rename, a_pair_under_different_names_keeps_the_other_sides_name)
{
	struct sync_rename_box *p, *q;

	p = known(1, "Sent Items", false, true);
	p->local_name = "Sent";
	rec(1, 5, 1);
	q = fresh(2, "Sent Messages", true, false);
	q->uidvalidity_now = 101;
	remote_msg(q, 5, 1, false);
	find();
	cr_assert_eq(A.nout, 1);
	cr_assert(!A.out[0].rename_local, "the local Sent was renamed");
	cr_assert_str_eq(A.out[0].local_new, "Sent");
	cr_assert_str_eq(A.out[0].remote_new, "Sent Messages");
}
