/*
 * test_sync_folders.c - `ferry sync` black-box tests of SPEC §4.5 (folders
 * created on either side appear on the other; deletions only with
 * delete_folders and only for empty folders; names that cannot live on disk
 * as they are get the reversible escape) and special-use pairing, against
 * Dovecot with all capabilities and IMAP4rev1.
 */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNC_SUITE sync_folders
#include "sync_common.h"

static bool local_dir_exists(struct sl_ctx *c, const char *rel)
{
	char *p = xasprintf("%s/%s", c->root, rel);
	struct stat st;
	bool ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);

	free(p);
	return ok;
}

static bool remote_has_mailbox(struct sl_ctx *c, const char *name)
{
	char **v = sl_remote_mailboxes(c);
	bool found = false;

	cr_assert_not_null(v);
	for (size_t i = 0; v[i]; i++)
		found |= strcmp(v[i], name) == 0;
	sl_strv_free(v);
	return found;
}

/* Folders made on either side (with or without messages, nested) appear on the other. */
SYNC_TEST(folders_created_on_each_side_appear_on_the_other)
{
	sync_ok(c);
	cr_assert_eq(sl_remote_create(c, "Projects"), 0);
	cr_assert_eq(sl_remote_create(c, "Projects/2024"), 0);
	put_remote(c, "Projects/2024", "p24", 1000, "\\Seen");
	cr_assert_eq(sl_remote_create(c, "Empty on server"), 0);
	cr_assert_eq(sl_local_mkfolder(c, "Lists"), 0);
	cr_assert_eq(sl_local_mkfolder(c, "Lists/ferry"), 0);
	put_local(c, "Lists/ferry", "lf", 1000, "S");
	cr_assert_eq(sl_local_mkfolder(c, "Empty locally"), 0);
	sync_ok(c);
	cr_assert(remote_has_mailbox(c, "Lists/ferry"));
	cr_assert(remote_has_mailbox(c, "Empty locally"));
	cr_assert(local_dir_exists(c, "Projects/2024/cur"));
	cr_assert(local_dir_exists(c, "Empty on server/cur"));
	expect_both(c, "Projects/2024", LIST(MID("p24") " \\Seen"));
	expect_both(c, "Lists/ferry", LIST(MID("lf") " \\Seen"));
	expect_both(c, "Empty locally", NONE);
	expect_both(c, "Empty on server", NONE);
	assert_sides_equal(c);
}

/* Without delete_folders a folder deleted on one side is not deleted on
 * the other; a local folder that vanished is made again (§4.6). */
SYNC_TEST(folder_deletion_not_propagated_without_delete_folders)
{
	cr_assert_eq(sl_remote_create(c, "Gone here"), 0);
	cr_assert_eq(sl_remote_create(c, "Gone there"), 0);
	put_remote(c, "INBOX", "keep", 300, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_rmtree(c, "Gone here"), 0);
	cr_assert_eq(sl_remote_delete(c, "Gone there"), 0);
	sync_ok(c);
	cr_assert(remote_has_mailbox(c, "Gone here"), "the server folder was deleted without delete_folders");
	cr_assert(local_dir_exists(c, "Gone there/cur"), "the local folder was deleted without delete_folders");
	cr_assert(local_dir_exists(c, "Gone here/cur"), "the vanished local folder was not made again");
	expect_both(c, "INBOX", LIST(MID("keep")));
}

/* With delete_folders: true, an empty folder deleted on one side is
 * deleted on the other; a folder that still holds messages on the other
 * side is kept there with its messages. */
SYNC_TEST(delete_folders_deletes_only_empty_folders)
{
	cr_assert_eq(sl_write_config(c, "    sync:\n      delete_folders: true\n"), 0);
	cr_assert_eq(sl_remote_create(c, "E1"), 0);
	cr_assert_eq(sl_remote_create(c, "E2"), 0);
	cr_assert_eq(sl_remote_create(c, "F1"), 0);
	cr_assert_eq(sl_remote_create(c, "F2"), 0);
	put_remote(c, "F1", "f1", 500, "\\Seen");
	put_remote(c, "F2", "f2", 500, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_rmtree(c, "E1"), 0);   /* empty on the server */
	cr_assert_eq(sl_remote_delete(c, "E2"), 0);  /* empty locally */
	cr_assert_eq(sl_remote_delete(c, "F1"), 0);  /* the local F1 still holds f1 */
	cr_assert_eq(sl_local_rmtree(c, "F2"), 0);   /* the server's F2 still holds f2 */
	sync_ok(c);
	cr_assert(!remote_has_mailbox(c, "E1"), "empty E1 deleted locally is still on the server");
	cr_assert(!local_dir_exists(c, "E2"), "empty E2 deleted on the server is still local");
	cr_assert(remote_has_mailbox(c, "F2"), "F2 with a message was deleted on the server");
	expect_remote(c, "F2", LIST(MID("f2")));
	cr_assert(local_dir_exists(c, "F1/cur"), "F1 with a message was deleted locally");
	expect_local(c, "F1", LIST(MID("f1") " \\Seen"));
	/* a further run deletes nothing more */
	sync_ok(c);
	cr_assert(!remote_has_mailbox(c, "E1"));
	cr_assert(!local_dir_exists(c, "E2"));
	expect_remote(c, "F2", LIST(MID("f2")));
	expect_local(c, "F1", LIST(MID("f1") " \\Seen"));
}

/* Server folders named cur/new/tmp (children of a folder) and names with
 * '%' map to escaped local folders, never merged into another folder, and
 * local changes in them go back to the right server folder. */
SYNC_TEST(odd_server_folder_names_stay_separate_on_disk)
{
	static const char *const names[] = { "Odd", "Odd/cur", "Odd/new", "Odd/tmp", "50%", "Odd/%63ur" };
	static const char *const tags[] = { "odd", "oddcur", "oddnew", "oddtmp", "pct", "oddesc" };

	for (size_t i = 0; i < 6; i++) {
		cr_assert_eq(sl_remote_create(c, names[i]), 0, "CREATE %s", names[i]);
		put_remote(c, names[i], tags[i], 400, NULL);
	}
	sync_ok(c);
	cr_assert(local_dir_exists(c, "Odd/cur"));
	cr_assert(local_dir_exists(c, "Odd/%63ur/cur"));
	cr_assert(local_dir_exists(c, "Odd/%6Eew/cur"));
	cr_assert(local_dir_exists(c, "Odd/%74mp/cur"));
	cr_assert(local_dir_exists(c, "50%25/cur"));
	cr_assert(local_dir_exists(c, "Odd/%2563ur/cur"));
	expect_local(c, "Odd", LIST(MID("odd")));
	expect_local(c, "Odd/cur", LIST(MID("oddcur")));
	expect_local(c, "Odd/new", LIST(MID("oddnew")));
	expect_local(c, "Odd/tmp", LIST(MID("oddtmp")));
	expect_local(c, "50%", LIST(MID("pct")));
	expect_local(c, "Odd/%63ur", LIST(MID("oddesc")));
	assert_sides_equal(c);
	/* a message delivered into the escaped folder goes to "Odd/cur" */
	put_local(c, "Odd/cur", "back", 400, "S");
	sync_ok(c);
	expect_both(c, "Odd/cur", LIST(MID("oddcur"), MID("back") " \\Seen"));
	expect_both(c, "Odd", LIST(MID("odd")));
	assert_sides_equal(c);
}

/* A server folder whose name the disk cannot hold (100 '%', 300 bytes
 * escaped) fails alone, with exit 1 and the reason; the other mailboxes
 * sync. */
SYNC_TEST(server_folder_too_long_for_the_disk_fails_alone)
{
	char name[101];
	struct harness_result res;
	int st;

	memset(name, '%', 100);
	name[100] = '\0';
	sync_ok(c);
	cr_assert_eq(sl_remote_create(c, name), 0);
	put_remote(c, "INBOX", "still", 300, NULL);
	put_local(c, "INBOX", "up", 300, NULL);
	st = run_keep(c, &res, "sync", NULL);
	cr_assert_eq(st, 1, "exit %d\n%s", st, res.err);
	cr_assert_not_null(strstr(res.err, "cannot be a folder on disk"), "%s", res.err);
	harness_result_release(&res);
	expect_both(c, "INBOX", LIST(MID("still"), MID("up")));
}

/*
 * Symbolic links inside the Maildir are not followed: a link in cur/ to a
 * file outside is not uploaded, and a synced folder replaced by a link to
 * a directory outside fails alone, with nothing written through the link
 * (it used to get the folder's mail again on every run).
 */
SYNC_TEST(links_inside_the_maildir_are_never_followed)
{
	char *outside = xasprintf("%s/outside", c->d.tmp);
	char *secret = xasprintf("%s/secret", c->d.tmp);
	char *work = sl_local_path(c, "Work");
	char *inbox = sl_local_path(c, "INBOX");
	char *inbox_cur = xasprintf("%s/cur/1700000000.M1P1.elsewhere:2,S", inbox);
	struct harness_result res;
	int st;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "Work", "w1", 300, NULL);
	sync_ok(c);
	cr_assert_eq(harness_write_file(secret, "Message-ID: <secret@ferry.test>\nSubject: s\n\nnot mail\n"), 0);
	cr_assert_eq(symlink(secret, inbox_cur), 0);
	{
		char *cmd = xasprintf("mv '%s' '%s' && ln -s '%s' '%s'", work, outside, outside, work);
		const char *argv[] = { "sh", "-c", cmd, NULL };

		cr_assert_eq(harness_run(argv, NULL, &res), 0);
		cr_assert_eq(res.status, 0, "%s", res.err);
		harness_result_release(&res);
		free(cmd);
	}
	put_remote(c, "INBOX", "i1", 300, NULL);
	for (int run = 0; run < 2; run++) {
		st = run_keep(c, &res, "sync", NULL);
		cr_assert_eq(st, 1, "exit %d\nstdout:\n%s\nstderr:\n%s", st, res.out, res.err);
		cr_assert(strstr(res.err, "mailbox \"Work\" failed"), "%s", res.err);
		cr_assert(strstr(res.err, "symbolic link"), "%s", res.err);
		cr_assert(strstr(res.err, "skipping folder"), "the listing did not say:\n%s", res.err);
		harness_result_release(&res);
	}
	expect_remote(c, "INBOX", LIST(MID("i1")));
	{
		struct sl_list l;

		cr_assert_eq(sl_local_list_path(outside, &l), 0);
		cr_assert_eq(l.n, 1, "%zu messages in the folder behind the link, not 1", l.n);
		sl_list_release(&l);
	}
	expect_remote(c, "Work", LIST(MID("w1")));
	free(inbox_cur);
	free(inbox);
	free(work);
	free(secret);
	free(outside);
}

/* A server mailbox with a special-use role pairs with the local folder of
 * that role's name when the Maildir already has one (design decision in
 * SYNC-DESIGN.md): local "Sent" with the server's "Sent Items" (\Sent). */
SYNC_TEST(special_use_mailbox_pairs_with_existing_local_role_folder)
{
	if (c->rev1)
		cr_skip_test("the IMAP4rev1 server does not offer SPECIAL-USE (SPEC 3: used when offered)");
	put_remote(c, "Sent Items", "sent-srv", 600, "\\Seen");
	cr_assert_eq(sl_local_mkfolder(c, "INBOX"), 0);
	cr_assert_eq(sl_local_mkfolder(c, "Sent"), 0);
	put_local(c, "Sent", "sent-loc", 600, "S");
	sync_ok(c);
	cr_assert(!local_dir_exists(c, "Sent Items"), "a second local Sent folder was made");
	cr_assert(!remote_has_mailbox(c, "Sent"), "a second server Sent mailbox was made");
	expect_remote(c, "Sent Items", LIST(MID("sent-srv") " \\Seen", MID("sent-loc") " \\Seen"));
	expect_local(c, "Sent", LIST(MID("sent-srv") " \\Seen", MID("sent-loc") " \\Seen"));
	/* and it stays paired */
	put_remote(c, "Sent Items", "sent-2", 600, NULL);
	sync_ok(c);
	expect_local(c, "Sent", LIST(MID("sent-srv") " \\Seen", MID("sent-loc") " \\Seen", MID("sent-2")));
	cr_assert(!local_dir_exists(c, "Sent Items"));
}

/* ---------------------------------------------------------------- folder renames (SPEC 4.4) */

/* File name -> inode of every message file of a local folder (cur/ and new/). */
struct inodes {
	char *names[64];
	ino_t ino[64];
	size_t n;
};

static void inodes_of(struct sl_ctx *c, const char *folder, struct inodes *out)
{
	static const char *const subs[] = { "cur", "new" };
	char *dir = sl_local_path(c, folder);

	memset(out, 0, sizeof(*out));
	for (size_t s = 0; s < 2; s++) {
		char *p = xasprintf("%s/%s", dir, subs[s]);
		DIR *d = opendir(p);
		struct dirent *de;

		cr_assert_not_null(d, "cannot open %s", p);
		while ((de = readdir(d)) != NULL) {
			struct stat st;
			char *f;

			if (de->d_name[0] == '.')
				continue;
			f = xasprintf("%s/%s", p, de->d_name);
			cr_assert_eq(stat(f, &st), 0);
			cr_assert_lt(out->n, 64);
			out->names[out->n] = xasprintf("%s/%s", subs[s], de->d_name);
			out->ino[out->n++] = st.st_ino;
			free(f);
		}
		closedir(d);
		free(p);
	}
	free(dir);
}

/* The folder holds exactly the files of `before`: same names, same inodes. */
static void assert_same_files(struct sl_ctx *c, const char *folder, const struct inodes *before)
{
	struct inodes now;

	inodes_of(c, folder, &now);
	cr_assert_eq(now.n, before->n, "%s holds %zu files, expected %zu", folder, now.n, before->n);
	for (size_t i = 0; i < before->n; i++) {
		bool found = false;

		for (size_t j = 0; j < now.n && !found; j++)
			found = strcmp(now.names[j], before->names[i]) == 0 && now.ino[j] == before->ino[i];
		cr_assert(found, "%s: file %s (inode %lu) was not kept", folder, before->names[i],
			  (unsigned long)before->ino[i]);
	}
	for (size_t i = 0; i < now.n; i++)
		free(now.names[i]);
}

static void inodes_release(struct inodes *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->names[i]);
	v->n = 0;
}

static void local_mv(struct sl_ctx *c, const char *from, const char *to)
{
	char *a = sl_local_path(c, from), *b = sl_local_path(c, to);

	cr_assert_eq(rename(a, b), 0, "mv %s %s", a, b);
	free(a);
	free(b);
}

/* A second run finds nothing to do on either side. */
#define BIG 40000       /* a body no rename may transfer: the byte counters stay far below it */

/* Renamed on the server: the local folder is renamed (same files, same
 * inodes), nothing is downloaded, the old name is gone on both sides. */
SYNC_TEST(folder_renamed_on_server_is_renamed_locally_without_download)
{
	struct inodes before;
	uint64_t in, out;
	long mark;

	cr_assert_eq(sl_remote_create(c, "Projects"), 0);
	put_remote(c, "Projects", "r1", BIG, "\\Seen");
	put_remote(c, "Projects", "r2", BIG, NULL);
	put_remote(c, "Projects", "r3", 500, "\\Flagged");
	sync_ok(c);
	inodes_of(c, "Projects", &before);
	cr_assert_eq(before.n, 3);
	cr_assert_eq(sl_remote_rename(c, "Projects", "Archive 2024"), 0);
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(out, BIG, "the server sent %llu bytes: a message was downloaded again",
		     (unsigned long long)out);
	cr_assert(!local_dir_exists(c, "Projects"), "the old local folder is still there");
	cr_assert(!remote_has_mailbox(c, "Projects"), "the old server mailbox came back");
	assert_same_files(c, "Archive 2024", &before);
	expect_both(c, "Archive 2024", LIST(MID("r1") " \\Seen", MID("r2"), MID("r3") " \\Flagged"));
	assert_sides_equal(c);
	assert_settled(c);
	inodes_release(&before);
}

/* Renamed locally (mv): the server's mailbox is renamed (same UIDs),
 * nothing is uploaded, the old name is gone on both sides. */
SYNC_TEST(folder_renamed_locally_is_renamed_on_server_without_upload)
{
	uint32_t uid1, uid2;
	uint64_t in, out;
	long mark;

	cr_assert_eq(sl_local_mkfolder(c, "Lists"), 0);
	put_local(c, "Lists", "l1", BIG, "S");
	put_local(c, "Lists", "l2", BIG, NULL);
	sync_ok(c);
	uid1 = sl_remote_uid(c, "Lists", MID("l1"));
	uid2 = sl_remote_uid(c, "Lists", MID("l2"));
	cr_assert(uid1 != 0 && uid2 != 0);
	local_mv(c, "Lists", "Mailing lists");
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(in, BIG, "ferry sent %llu bytes: a message was uploaded again", (unsigned long long)in);
	cr_assert_lt(out, BIG, "the server sent %llu bytes: a message was downloaded", (unsigned long long)out);
	cr_assert(!remote_has_mailbox(c, "Lists"), "the old server mailbox is still there");
	cr_assert(!local_dir_exists(c, "Lists"), "the old local folder came back");
	cr_assert_eq(sl_remote_uid(c, "Mailing lists", MID("l1")), uid1, "the message was not renamed with its mailbox");
	cr_assert_eq(sl_remote_uid(c, "Mailing lists", MID("l2")), uid2);
	expect_both(c, "Mailing lists", LIST(MID("l1") " \\Seen", MID("l2")));
	assert_sides_equal(c);
	assert_settled(c);
}

/* A folder renamed with a child folder below it: the child follows on the
 * other side too, in both directions, and keeps its files. */
SYNC_TEST(nested_folder_is_renamed_with_its_parent_both_ways)
{
	struct inodes top, sub;
	uint32_t uid;
	uint64_t in, out;
	long mark;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	cr_assert_eq(sl_remote_create(c, "Work/2024"), 0);
	cr_assert_eq(sl_remote_create(c, "Work/2024/Empty"), 0);
	put_remote(c, "Work", "w1", BIG, "\\Seen");
	put_remote(c, "Work/2024", "w2", BIG, NULL);
	sync_ok(c);
	inodes_of(c, "Work", &top);
	inodes_of(c, "Work/2024", &sub);
	/* on the server */
	cr_assert_eq(sl_remote_rename(c, "Work", "Job"), 0);
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(out, BIG, "the server sent %llu bytes", (unsigned long long)out);
	cr_assert(!local_dir_exists(c, "Work"), "the old local folder is still there");
	cr_assert(local_dir_exists(c, "Job/2024/Empty/cur"), "the empty grandchild did not follow");
	assert_same_files(c, "Job", &top);
	assert_same_files(c, "Job/2024", &sub);
	expect_both(c, "Job", LIST(MID("w1") " \\Seen"));
	expect_both(c, "Job/2024", LIST(MID("w2")));
	expect_both(c, "Job/2024/Empty", NONE);
	assert_sides_equal(c);
	/* locally */
	uid = sl_remote_uid(c, "Job/2024", MID("w2"));
	local_mv(c, "Job", "Work again");
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(in, BIG, "ferry sent %llu bytes", (unsigned long long)in);
	cr_assert(!remote_has_mailbox(c, "Job"), "the old server mailbox is still there");
	cr_assert(!remote_has_mailbox(c, "Job/2024"), "the old server child is still there");
	cr_assert(!local_dir_exists(c, "Job"), "the old local folder came back");
	cr_assert_eq(sl_remote_uid(c, "Work again/2024", MID("w2")), uid);
	expect_both(c, "Work again", LIST(MID("w1") " \\Seen"));
	expect_both(c, "Work again/2024", LIST(MID("w2")));
	expect_both(c, "Work again/2024/Empty", NONE);
	assert_sides_equal(c);
	assert_settled(c);
	inodes_release(&top);
	inodes_release(&sub);
}

/* Renamed on both sides to different names: the server's name wins, the
 * local folder is renamed to it, nothing is lost or transferred. */
SYNC_TEST(folder_renamed_on_both_sides_takes_the_servers_name)
{
	struct inodes before;
	uint64_t in, out;
	long mark;

	cr_assert_eq(sl_remote_create(c, "Trips"), 0);
	put_remote(c, "Trips", "t1", BIG, "\\Seen");
	put_remote(c, "Trips", "t2", 600, NULL);
	sync_ok(c);
	inodes_of(c, "Trips", &before);
	cr_assert_eq(sl_remote_rename(c, "Trips", "Travel"), 0);
	local_mv(c, "Trips", "Voyages");
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(in, BIG);
	cr_assert_lt(out, BIG);
	cr_assert(!local_dir_exists(c, "Voyages"), "the local name won");
	cr_assert(!local_dir_exists(c, "Trips"));
	cr_assert(!remote_has_mailbox(c, "Voyages"), "the local name was created on the server");
	cr_assert(!remote_has_mailbox(c, "Trips"));
	assert_same_files(c, "Travel", &before);
	expect_both(c, "Travel", LIST(MID("t1") " \\Seen", MID("t2")));
	assert_sides_equal(c);
	assert_settled(c);
	inodes_release(&before);
}

/* Renamed on one side while messages changed on the other (and on the
 * same side): a rename plus the message-level sync. */
SYNC_TEST(renamed_folder_with_changes_on_both_sides_syncs_them)
{
	cr_assert_eq(sl_remote_create(c, "Club"), 0);
	put_remote(c, "Club", "c1", 700, NULL);
	put_remote(c, "Club", "c2", 700, NULL);
	put_remote(c, "Club", "c3", 700, NULL);
	sync_ok(c);
	cr_assert_eq(sl_remote_rename(c, "Club", "Society"), 0);
	put_remote(c, "Society", "new-srv", 700, "\\Flagged");
	cr_assert_eq(sl_remote_store(c, "Society", MID("c1"), "+FLAGS", "\\Answered"), 0);
	put_local(c, "Club", "new-loc", 700, "S");              /* still under the old name locally */
	cr_assert_eq(sl_local_set_flags(c, "Club", MID("c2"), "S"), 0);
	cr_assert_eq(sl_local_delete(c, "Club", MID("c3")), 0);
	sync_ok(c);
	cr_assert(!local_dir_exists(c, "Club"));
	cr_assert(!remote_has_mailbox(c, "Club"));
	expect_both(c, "Society", LIST(MID("c1") " \\Answered", MID("c2") " \\Seen", MID("new-srv") " \\Flagged",
				       MID("new-loc") " \\Seen"));
	assert_sides_equal(c);
	/* and the other way round */
	local_mv(c, "Society", "Guild");
	put_local(c, "Guild", "new-loc2", 700, NULL);
	put_remote(c, "Society", "new-srv2", 700, NULL);
	sync_ok(c);
	cr_assert(!local_dir_exists(c, "Society"));
	cr_assert(!remote_has_mailbox(c, "Society"));
	expect_both(c, "Guild", LIST(MID("c1") " \\Answered", MID("c2") " \\Seen", MID("new-srv") " \\Flagged",
				     MID("new-loc") " \\Seen", MID("new-loc2"), MID("new-srv2")));
	assert_sides_equal(c);
	assert_settled(c);
}

/* A folder that reappeared elsewhere with only some of its files is still
 * a rename, and the missing messages are refilled, never deleted on the
 * server; a folder whose messages turned up nowhere is no rename at all
 * (it is made again and refilled, SPEC 4.6). */
SYNC_TEST(partial_or_unmatched_vanished_folder_loses_nothing)
{
	char *p;

	cr_assert_eq(sl_remote_create(c, "Half"), 0);
	cr_assert_eq(sl_remote_create(c, "Gone"), 0);
	put_remote(c, "Half", "h1", 500, NULL);
	put_remote(c, "Half", "h2", 500, NULL);
	put_remote(c, "Half", "h3", 500, "\\Seen");
	put_remote(c, "Gone", "g1", 500, NULL);
	sync_ok(c);
	local_mv(c, "Half", "Halved");
	p = sl_local_find(c, "Halved", MID("h3"));
	cr_assert_not_null(p);
	cr_assert_eq(unlink(p), 0);
	free(p);
	cr_assert_eq(sl_local_rmtree(c, "Gone"), 0);
	cr_assert_eq(sl_local_mkfolder(c, "Other"), 0);
	put_local(c, "Other", "o1", 500, NULL);
	sync_ok(c);
	cr_assert(!remote_has_mailbox(c, "Half"));
	expect_both(c, "Halved", LIST(MID("h1"), MID("h2"), MID("h3") " \\Seen"));
	expect_both(c, "Gone", LIST(MID("g1")));
	expect_both(c, "Other", LIST(MID("o1")));
	assert_sides_equal(c);
	assert_settled(c);
}

/* INBOX is never renamed: a local folder holding INBOX's files under
 * another name is moves, and INBOX stays. */
SYNC_TEST(inbox_is_never_renamed)
{
	put_remote(c, "INBOX", "i1", 500, NULL);
	sync_ok(c);
	local_mv(c, "INBOX", "Inbox old");
	sync_ok(c);
	cr_assert(remote_has_mailbox(c, "INBOX"));
	cr_assert(local_dir_exists(c, "INBOX/cur"), "INBOX was not made again");
	assert_sides_equal(c);
}

/* --dry-run names the rename and changes nothing; --pull leaves a local
 * rename waiting (the server is not renamed, the old folder not refilled)
 * until a two-way run makes it. */
SYNC_TEST(local_rename_waits_for_a_two_way_run_and_dry_run_shows_it)
{
	struct harness_result res;
	struct sl_snap r, l;
	int st;

	cr_assert_eq(sl_remote_create(c, "Notes"), 0);
	put_remote(c, "Notes", "n1", 800, NULL);
	sync_ok(c);
	local_mv(c, "Notes", "Jottings");
	snap_both(c, &r, &l);
	st = run_keep(c, &res, "sync", "--dry-run", NULL);
	cr_assert_eq(st, 0, "%s\n%s", res.out, res.err);
	cr_assert_not_null(strstr(res.out, "rename-remote Notes -> Jottings"), "dry run output:\n%s", res.out);
	harness_result_release(&res);
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, true);
	run_expect(c, 0, "sync", "--pull", NULL);
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, true);
	sync_ok(c);
	cr_assert(!remote_has_mailbox(c, "Notes"));
	cr_assert(!local_dir_exists(c, "Notes"));
	expect_both(c, "Jottings", LIST(MID("n1")));
	assert_sides_equal(c);
	sl_snap_release(&r);
	sl_snap_release(&l);
}

/* The account's config with the maildir++ layout. */
static void use_maildirpp(struct sl_ctx *c)
{
	char *y = harness_read_file(c->config, 1 << 16), *at, *out;

	cr_assert_not_null(y);
	at = strstr(y, "    state:");
	cr_assert_not_null(at);
	*at = '\0';
	out = xasprintf("%s      layout: maildir++\n    state:%s", y, at + strlen("    state:"));
	cr_assert_eq(harness_write_file(c->config, out), 0);
	free(out);
	free(y);
}

static void expect_pp(struct sl_ctx *c, const char *disk, const char *const expect[])
{
	char *p = xasprintf("%s/%s", c->root, disk);
	struct sl_list l;
	char *report = NULL;
	size_t d;

	cr_assert_eq(sl_local_list_path(p, &l), 0, "cannot list %s", p);
	d = sl_expect_diff(&l, expect, &report);
	cr_assert_eq(d, 0, "local %s is not as expected:\n%s", disk, report);
	free(report);
	sl_list_release(&l);
	free(p);
}

static ino_t cur_inode(struct sl_ctx *c, const char *disk)
{
	char *p = xasprintf("%s/%s/cur", c->root, disk);
	struct stat st;

	cr_assert_eq(stat(p, &st), 0, "no %s", p);
	free(p);
	return st.st_ino;
}

/* Maildir++: a folder's children are folders of their own (.A.x).  Renamed
 * on the server, parent and child are renamed one by one; renamed locally
 * (only .A moves), the server's RENAME takes the child along and the local
 * child is renamed to match. */
SYNC_TEST(maildirpp_rename_moves_children_both_ways)
{
	ino_t top, sub;
	char *a, *b;

	use_maildirpp(c);
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	cr_assert_eq(sl_remote_create(c, "Work/2024"), 0);
	put_remote(c, "Work", "w1", 900, "\\Seen");
	put_remote(c, "Work/2024", "w2", 900, NULL);
	sync_ok(c);
	top = cur_inode(c, ".Work");
	sub = cur_inode(c, ".Work.2024");
	cr_assert_eq(sl_remote_rename(c, "Work", "Job"), 0);
	sync_ok(c);
	cr_assert(!local_dir_exists(c, ".Work") && !local_dir_exists(c, ".Work.2024"));
	cr_assert_eq(cur_inode(c, ".Job"), top, "the folder was not renamed");
	cr_assert_eq(cur_inode(c, ".Job.2024"), sub, "the child was not renamed");
	expect_pp(c, ".Job", LIST(MID("w1") " \\Seen"));
	expect_pp(c, ".Job.2024", LIST(MID("w2")));
	a = xasprintf("%s/.Job", c->root);
	b = xasprintf("%s/.Jobs", c->root);
	cr_assert_eq(rename(a, b), 0);
	free(a);
	free(b);
	sync_ok(c);
	cr_assert(!remote_has_mailbox(c, "Job") && !remote_has_mailbox(c, "Job/2024"));
	cr_assert(remote_has_mailbox(c, "Jobs") && remote_has_mailbox(c, "Jobs/2024"));
	cr_assert(!local_dir_exists(c, ".Job.2024"), "the local child was not renamed with its parent");
	cr_assert_eq(cur_inode(c, ".Jobs"), top);
	cr_assert_eq(cur_inode(c, ".Jobs.2024"), sub);
	expect_remote(c, "Jobs", LIST(MID("w1") " \\Seen"));
	expect_remote(c, "Jobs/2024", LIST(MID("w2")));
	expect_pp(c, ".Jobs", LIST(MID("w1") " \\Seen"));
	expect_pp(c, ".Jobs.2024", LIST(MID("w2")));
	/* settled */
	sync_ok(c);
	cr_assert(!local_dir_exists(c, ".Job") && !local_dir_exists(c, ".Job.2024"));
	cr_assert(!remote_has_mailbox(c, "Job"));
	expect_remote(c, "Jobs/2024", LIST(MID("w2")));
	expect_pp(c, ".Jobs.2024", LIST(MID("w2")));
}

/* A local rename to a non-ASCII name reaches the server in modified UTF-7. */
SYNC_TEST(local_rename_to_non_ascii_name_is_encoded_for_the_server)
{
	cr_assert_eq(sl_local_mkfolder(c, "Lists"), 0);
	put_local(c, "Lists", "u1", 700, "S");
	sync_ok(c);
	local_mv(c, "Lists", "Listes diffus\xc3\xa9""es");
	sync_ok(c);
	cr_assert(!remote_has_mailbox(c, "Lists"));
	cr_assert(remote_has_mailbox(c, "Listes diffus&AOk-es"), "the server has no \"Listes diffus&AOk-es\"");
	expect_remote(c, "Listes diffus&AOk-es", LIST(MID("u1") " \\Seen"));
	expect_local(c, "Listes diffus\xc3\xa9""es", LIST(MID("u1") " \\Seen"));
	assert_settled(c);
}
