/*
 * test_fwriter.c - the Maildir writer thread (store/fwriter.h): jobs run in
 * the order asked, a sync handed on covers what was asked before it, the
 * queue's byte bound holds the caller back without losing anything, and a
 * failure marks its file only.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwriter.h"
#include "xalloc.h"

static char dir[] = "/tmp/ferry-fwriter-XXXXXX";
static int tmp_fd = -1, cur_fd = -1;

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	tmp_fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(tmp_fd, 0);
	cr_assert_eq(mkdirat(tmp_fd, "cur", 0700), 0);
	cur_fd = openat(tmp_fd, "cur", O_RDONLY | O_DIRECTORY);
	cr_assert_geq(cur_fd, 0);
}

static void teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(cmd);
	close(cur_fd);
	close(tmp_fd);
}

TestSuite(fwriter, .init = setup, .fini = teardown, .timeout = 60);

static char *piece(char c, size_t n)
{
	char *p = xmalloc(n);

	memset(p, c, n);
	return p;
}

static off_t size_at(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, 0) < 0)
		return -1;
	return st.st_size;
}

/*
 * Three times the queue's bound written in 64 KiB pieces (the caller is
 * held back, nothing is lost), dated, closed and renamed: a sync handed on
 * after the rename runs only once the file is whole in cur/ with its date.
 */
Test(fwriter, jobs_run_in_order_and_a_sync_covers_what_came_before)
{
	struct fwriter *w = fwriter_new();
	struct fsync_pool *pool = fsync_pool_new(1);
	struct fwriter_file f;
	struct fsync_job job = { .fd = -1 };
	const size_t chunk = 65536, n = 3 * FWRITER_QUEUED_MAX / chunk;
	struct stat st;
	char *data;
	int fd;

	cr_assert_not_null(w);
	cr_assert_not_null(pool);
	fwriter_file_init(&f, tmp_fd, "m1");
	for (size_t i = 0; i < n; i++)
		fwriter_write(w, &f, piece((char)('a' + i % 26), chunk), chunk);
	fwriter_close(w, &f, 1700000000);
	fwriter_rename(w, &f, cur_fd, "m1:2,S");
	job.fd = tmp_fd;
	job.whole_fs = true;
	fwriter_then_sync(w, pool, &job);
	cr_assert_eq(fsync_pool_wait(pool, &job), 0);
	/* the sync is done, so every job before it is: no drain needed */
	cr_assert_eq(f.err, 0, "%s: %s", f.failed ? f.failed : "?", strerror(f.err));
	cr_assert_eq(f.fd, -1, "the file was left open");
	cr_assert_eq(size_at(tmp_fd, "m1"), -1, "still in tmp/");
	cr_assert_eq(size_at(cur_fd, "m1:2,S"), (off_t)(n * chunk));
	cr_assert_eq(fstatat(cur_fd, "m1:2,S", &st, 0), 0);
	cr_assert_eq(st.st_mtime, 1700000000);
	fd = openat(cur_fd, "m1:2,S", O_RDONLY);
	cr_assert_geq(fd, 0);
	data = xmalloc(chunk);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(read(fd, data, chunk), (ssize_t)chunk);
		cr_assert_eq(data[0], (char)('a' + i % 26), "piece %zu out of order", i);
		cr_assert_eq(data[chunk - 1], (char)('a' + i % 26));
	}
	free(data);
	close(fd);
	fwriter_free(w);
	fsync_pool_free(pool);
}

/*
 * A file whose name is taken in tmp/ cannot be created (O_EXCL): it is
 * marked with what failed, its later jobs do nothing (no rename), and the
 * other file of the same queue is written and renamed as usual.
 */
Test(fwriter, a_failure_marks_its_own_file_only)
{
	struct fwriter *w = fwriter_new();
	struct fwriter_file bad, good;
	int fd = openat(tmp_fd, "taken", O_WRONLY | O_CREAT | O_EXCL, 0600);

	cr_assert_geq(fd, 0);
	close(fd);
	fwriter_file_init(&bad, tmp_fd, "taken");
	fwriter_file_init(&good, tmp_fd, "free");
	fwriter_write(w, &bad, piece('x', 10), 10);
	fwriter_write(w, &good, piece('y', 20), 20);
	fwriter_close(w, &bad, 0);
	fwriter_close(w, &good, 0);
	fwriter_rename(w, &bad, cur_fd, "taken:2,");
	fwriter_rename(w, &good, cur_fd, "free:2,");
	fwriter_drain(w);
	cr_assert_eq(bad.err, EEXIST, "err %d", bad.err);
	cr_assert_str_eq(bad.failed, "create a message file in");
	cr_assert_eq(size_at(tmp_fd, "taken"), 0, "someone else's file was written to");
	cr_assert_eq(size_at(cur_fd, "taken:2,"), -1, "a failed file was renamed");
	cr_assert_eq(good.err, 0);
	cr_assert_eq(size_at(cur_fd, "free:2,"), 20);
	fwriter_free(w);
}

/* An unlink after writes removes the file; a file never written is created by its close. */
Test(fwriter, unlink_removes_and_close_creates)
{
	struct fwriter *w = fwriter_new();
	struct fwriter_file gone, empty;

	fwriter_file_init(&gone, tmp_fd, "gone");
	fwriter_file_init(&empty, tmp_fd, "empty");
	fwriter_write(w, &gone, piece('z', 100), 100);
	fwriter_unlink(w, &gone);
	fwriter_close(w, &empty, 0);
	fwriter_drain(w);
	cr_assert_eq(size_at(tmp_fd, "gone"), -1);
	cr_assert_eq(gone.fd, -1);
	cr_assert_eq(size_at(tmp_fd, "empty"), 0);
	cr_assert_eq(empty.err, 0);
	/* freeing finishes what is still queued */
	fwriter_file_init(&gone, tmp_fd, "late");
	fwriter_write(w, &gone, piece('q', 5), 5);
	fwriter_close(w, &gone, 0);
	fwriter_free(w);
	cr_assert_eq(size_at(tmp_fd, "late"), 5);
}
