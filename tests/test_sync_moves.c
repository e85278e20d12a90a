/*
 * test_sync_moves.c - `ferry sync` black-box tests of SPEC §4.4 (moves are
 * recognised, not re-transferred; a move beats a deletion; the server's
 * placement wins), against Dovecot with all capabilities and IMAP4rev1.
 * "Not re-transferred" is measured with Dovecot's per-session byte counters
 * (`in=` for uploads, `out=` for downloads) and the local file's inode.
 */
#include <sys/stat.h>

#define SYNC_SUITE sync_moves
#include "sync_common.h"

#define BIG 400000

static ino_t inode_of(struct sl_ctx *c, const char *folder, const char *msgid)
{
	char *path = sl_local_find(c, folder, msgid);
	struct stat st;

	cr_assert_not_null(path, "%s is not in local %s", msgid, folder);
	cr_assert_eq(stat(path, &st), 0);
	free(path);
	return st.st_ino;
}

/* A local `mv` (same file name) and a client's move (new file, old one
 * removed) between folders become server moves: no body is uploaded. */
SYNC_TEST(local_move_becomes_server_move_without_upload)
{
	uint64_t in, out;
	long mark;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "big1", BIG, "\\Seen");
	put_remote(c, "INBOX", "big2", BIG, "\\Flagged");
	put_remote(c, "INBOX", "stay", 300, NULL);
	put_remote(c, "Work", "w0", 300, NULL);
	sync_ok(c);
	/* big1: plain mv keeping its name */
	cr_assert_eq(sl_local_move(c, "INBOX", MID("big1"), "Work"), 0);
	/* big2: a mail client writes the copy under a new name and drops the old file */
	{
		char *m = sl_message("big2", BIG);

		cr_assert_eq(sl_local_deliver(c, "Work", m, "F"), 0);
		cr_assert_eq(sl_local_delete(c, "INBOX", MID("big2")), 0);
		free(m);
	}
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(in, BIG / 4, "a moved message was uploaded again: in=%llu", (unsigned long long)in);
	cr_assert_lt(out, BIG / 4, "a moved message was downloaded again: out=%llu", (unsigned long long)out);
	expect_both(c, "INBOX", LIST(MID("stay")));
	expect_both(c, "Work", LIST(MID("w0"), MID("big1") " \\Seen", MID("big2") " \\Flagged"));
	assert_sides_equal(c);
}

/* A local move together with a flag change: both reach the server. */
SYNC_TEST(local_move_with_flag_change_moves_and_flags)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "mf", 5000, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_move(c, "INBOX", MID("mf"), "Work"), 0);
	cr_assert_eq(sl_local_set_flags(c, "Work", MID("mf"), "RS"), 0);
	sync_ok(c);
	expect_both(c, "INBOX", NONE);
	expect_both(c, "Work", LIST(MID("mf") " \\Answered \\Seen"));
	assert_sides_equal(c);
}

/* A server move becomes a local rename: no body is downloaded, the file
 * keeps its inode. */
SYNC_TEST(server_move_becomes_local_rename_without_download)
{
	uint64_t in, out;
	long mark;
	ino_t ino;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "big", BIG, "\\Seen");
	put_remote(c, "INBOX", "stay", 300, NULL);
	sync_ok(c);
	ino = inode_of(c, "INBOX", MID("big"));
	cr_assert_eq(sl_remote_move(c, "INBOX", MID("big"), "Work"), 0);
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(out, BIG / 4, "the moved message was downloaded again: out=%llu", (unsigned long long)out);
	cr_assert_lt(in, BIG / 4, "the moved message was uploaded: in=%llu", (unsigned long long)in);
	expect_both(c, "INBOX", LIST(MID("stay")));
	expect_both(c, "Work", LIST(MID("big") " \\Seen"));
	cr_assert_eq(inode_of(c, "Work", MID("big")), ino, "the local file was not renamed but rewritten");
	assert_sides_equal(c);
}

/* §4.2 with §4.4: a keyword moves with its message.  A server move of a
 * message with a keyword (a letter of INBOX's dovecot-keywords) renames the
 * local file into Work with Work's letter for it; the keyword stays on the
 * server, and a later keyword of Work is not read into the moved file. */
SYNC_TEST(server_move_keeps_the_keyword_under_the_new_folders_letter)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "Work", "w1", 300, "other");
	put_remote(c, "INBOX", "kw", 300, "\\Seen project");
	sync_ok(c);
	cr_assert_eq(sl_remote_move(c, "INBOX", MID("kw"), "Work"), 0);
	sync_ok(c);
	expect_local(c, "Work", LIST(MID("w1") " other", MID("kw") " \\Seen project"));
	sync_ok(c);
	expect_both(c, "Work", LIST(MID("w1") " other", MID("kw") " \\Seen project"));
	assert_sides_equal(c);
}

/* A move beats a deletion on the other side, both ways. */
SYNC_TEST(move_beats_deletion_on_other_side)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "lm", 3000, "\\Seen");
	put_remote(c, "INBOX", "sm", 3000, "\\Flagged");
	put_remote(c, "INBOX", "stay", 300, NULL);
	sync_ok(c);
	/* lm: moved locally, expunged on the server */
	cr_assert_eq(sl_local_move(c, "INBOX", MID("lm"), "Work"), 0);
	cr_assert_eq(sl_remote_expunge(c, "INBOX", MID("lm")), 0);
	/* sm: moved on the server, deleted locally */
	cr_assert_eq(sl_remote_move(c, "INBOX", MID("sm"), "Work"), 0);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("sm")), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("stay")));
	expect_both(c, "Work", LIST(MID("lm") " \\Seen", MID("sm") " \\Flagged"));
	assert_sides_equal(c);
}

/* Moved to different folders on both sides: the server's placement wins,
 * the message exists once, nothing is lost. */
SYNC_TEST(moved_to_different_folders_on_both_sides_server_wins)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "mm", 3000, "\\Seen");
	put_remote(c, "INBOX", "stay", 300, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_move(c, "INBOX", MID("mm"), "Work"), 0);
	cr_assert_eq(sl_remote_move(c, "INBOX", MID("mm"), "Archive"), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("stay")));
	expect_both(c, "Work", NONE);
	expect_both(c, "Archive", LIST(MID("mm") " \\Seen"));
	assert_sides_equal(c);
}

/* A move between folders on one side while the other side changed the
 * message's flags: the message moves and the flags merge. */
SYNC_TEST(server_move_with_local_flag_change_keeps_both)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "mv", 3000, "\\Seen");
	sync_ok(c);
	cr_assert_eq(sl_remote_move(c, "INBOX", MID("mv"), "Work"), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("mv"), "FS"), 0);
	sync_ok(c);
	expect_both(c, "INBOX", NONE);
	expect_both(c, "Work", LIST(MID("mv") " \\Seen \\Flagged"));
	assert_sides_equal(c);
}
