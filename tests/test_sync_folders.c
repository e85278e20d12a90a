/*
 * test_sync_folders.c - `ferry sync` black-box tests of SPEC §4.5 (folders
 * created on either side appear on the other; deletions only with
 * delete_folders and only for empty folders; names that cannot live on disk
 * as they are get the reversible escape) and special-use pairing, against
 * Dovecot with all capabilities and IMAP4rev1.
 */
#include <sys/stat.h>

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
