/*
 * test_sync_disk.c - a full disk (standards: "a failure leaves both sides
 * as they were or completes on the next run").  The local Maildir, or the
 * state, lives on a small tmpfs mounted in a mount namespace of the test's
 * own (unshare + mount: needs root, as CI runs; skipped otherwise).  The run
 * that fills it must fail with exit 1 and an error that says the disk is
 * full; once there is room, the next run must finish the job, with every
 * message once on each side.
 */
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define SYNC_SUITE sync_disk
#define SYNC_TIMEOUT 300
#include "sync_common.h"

/* Mount a tmpfs of `size` on `dir`, seen only by this process and its
 * children (ferry).  0, or -1 with errno when not allowed. */
static int private_tmpfs(const char *dir, const char *size)
{
	char *opts = xasprintf("size=%s,mode=0700", size);
	int r = -1;

	if (unshare(CLONE_NEWNS) < 0)
		goto out;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		goto out;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto out;
	r = mount("ferry-test", dir, "tmpfs", 0, opts);
out:
	free(opts);
	return r;
}

static void grow_tmpfs(const char *dir)
{
	cr_assert_eq(mount(NULL, dir, NULL, MS_REMOUNT, "size=64m"), 0, "remount %s: %s", dir,
		     strerror(errno));
}

static size_t files_in(const char *dir)
{
	const char *argv[] = { "sh", "-c", "find \"$0\" -type f | wc -l", dir, NULL };
	struct harness_result res;
	size_t n;

	cr_assert_eq(harness_run(argv, NULL, &res), 0);
	n = strtoul(res.out, NULL, 10);
	harness_result_release(&res);
	return n;
}

static void need_tmpfs(const char *dir, const char *size)
{
	if (private_tmpfs(dir, size) < 0)
		cr_skip_test("cannot mount a private tmpfs here (%s): needs root", strerror(errno));
}

/* The Maildir's file system fills during the pull. */
SYNC_TEST(full_maildir_fails_the_mailbox_and_the_next_run_completes)
{
	struct harness_result res;
	char *inbox_tmp;

	need_tmpfs(c->root, "256k");
	for (int i = 0; i < 40; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "big%d", i);
		put_remote(c, "INBOX", tag, 20000, i % 3 ? NULL : "\\Seen");
	}
	cr_assert_eq(run_keep(c, &res, "sync", NULL), 1, "stdout:\n%s\nstderr:\n%s", res.out, res.err);
	cr_assert(strstr(res.err, "mailbox \"INBOX\" failed"), "%s", res.err);
	cr_assert(strstr(res.err, "No space left on device"), "%s", res.err);
	cr_assert(strstr(res.err, "free disk space"), "no hint:\n%s", res.err);
	harness_result_release(&res);
	inbox_tmp = xasprintf("%s/INBOX/tmp", c->root);
	cr_assert_eq(files_in(inbox_tmp), 0, "a partial file stays in INBOX/tmp");

	grow_tmpfs(c->root);
	sync_ok(c);
	assert_sides_equal(c);
	{
		struct sl_list l;

		cr_assert_eq(sl_local_list(c, "INBOX", &l), 0);
		cr_assert_eq(l.n, 40, "%zu messages in INBOX, not 40", l.n);
		sl_list_release(&l);
	}
	run_expect(c, 0, "sync", NULL);
	assert_sides_equal(c);
	free(inbox_tmp);
	cr_assert_eq(umount2(c->root, MNT_DETACH), 0);
}

/*
 * The state's file system fills.  LMDB reports a short write as EIO: the
 * error must still say the disk is full, not "Input/output error".
 */
SYNC_TEST(full_state_disk_says_so_and_the_next_run_completes)
{
	struct harness_result res;

	need_tmpfs(c->state, "52k");
	cr_assert_eq(harness_seed(&c->d, c->user, 120, NULL), 0);
	cr_assert_eq(run_keep(c, &res, "sync", NULL), 1, "stdout:\n%s\nstderr:\n%s", res.out, res.err);
	cr_assert(strstr(res.err, "No space left on device"), "%s", res.err);
	cr_assert(strstr(res.err, "free some space there"), "%s", res.err);
	cr_assert_null(strstr(res.err, "Input/output error"), "%s", res.err);
	harness_result_release(&res);

	grow_tmpfs(c->state);
	sync_ok(c);
	assert_sides_equal(c);
	run_expect(c, 0, "sync", NULL);
	cr_assert_eq(umount2(c->state, MNT_DETACH), 0);
}
