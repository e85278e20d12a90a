/* Unit tests for store/lock.c: the account lock (SPEC 4.9). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "lock.h"

static char tmp[64];
static char dir[128];

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
	strcpy(tmp, "/tmp/ferry-lock-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/state/acct", tmp);
}

static void teardown(void)
{
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(lock, .init = setup, .fini = teardown);

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Fork a child that takes the lock, reports on `ready`, then waits for a
 * byte on `go` and releases after `hold_ms`.  Returns the child's pid. */
static pid_t child_holding_lock(int *ready_rd, int *go_wr, int hold_ms)
{
	int ready[2], go[2];
	pid_t pid;

	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct lock l;
		struct err e;
		char c = 'k';

		close(ready[0]);
		close(go[1]);
		if (lock_acquire(dir, false, &l, &e) < 0)
			c = 'f';
		if (write(ready[1], &c, 1) != 1)
			_exit(3);
		if (read(go[0], &c, 1) != 1)
			_exit(4);
		usleep((useconds_t)hold_ms * 1000);
		lock_release(&l);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	*ready_rd = ready[0];
	*go_wr = go[1];
	return pid;
}

Test(lock, lock_file_is_private_and_names_the_holder)
{
	struct lock l;
	struct err e;
	struct stat sb;
	char path[256], text[32] = { 0 }, want[32];
	int fd;

	cr_assert_eq(lock_acquire(dir, false, &l, &e), 0, "%s", e.msg);
	cr_assert_eq(stat(dir, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/state", tmp);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700, "parents are made 0700 too");
	snprintf(path, sizeof(path), "%s/lock", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_gt(read(fd, text, sizeof(text) - 1), 0);
	close(fd);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	cr_assert_str_eq(text, want);
	lock_release(&l);
	cr_assert_eq(l.fd, -1);
	cr_assert_null(l.path);
}

Test(lock, release_then_acquire_again)
{
	struct lock l;
	struct err e;

	cr_assert_eq(lock_acquire(dir, false, &l, &e), 0, "%s", e.msg);
	lock_release(&l);
	cr_assert_eq(lock_acquire(dir, false, &l, &e), 0, "%s", e.msg);
	lock_release(&l);
	lock_release(&l);       /* harmless on a released lock */
}

Test(lock, lock_held_by_child_is_refused_with_exit_code_6)
{
	int ready, go, status;
	struct lock l;
	struct err e;
	char c, want[64];
	pid_t pid = child_holding_lock(&ready, &go, 0);

	cr_assert_eq(read(ready, &c, 1), 1);
	cr_assert_eq(c, 'k', "child could not take the lock");
	cr_assert_eq(lock_acquire(dir, false, &l, &e), -1);
	cr_assert_eq(e.code, ERR_LOCKED);
	cr_assert_eq(err_exit_code(&e), 6);
	cr_assert(e.retry);
	snprintf(want, sizeof(want), "(pid %ld)", (long)pid);
	cr_assert_not_null(strstr(e.msg, want), "message: %s", e.msg);
	cr_assert_not_null(strstr(e.msg, "--wait"), "message: %s", e.msg);
	cr_assert_eq(l.fd, -1);
	cr_assert_eq(write(go, "x", 1), 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready);
	close(go);
}

Test(lock, wait_acquires_after_the_child_releases)
{
	int ready, go, status;
	struct lock l;
	struct err e;
	char c;
	double start;
	pid_t pid = child_holding_lock(&ready, &go, 300);

	cr_assert_eq(read(ready, &c, 1), 1);
	cr_assert_eq(c, 'k');
	start = now_ms();
	cr_assert_eq(write(go, "x", 1), 1);     /* child releases in 300 ms */
	cr_assert_eq(lock_acquire(dir, true, &l, &e), 0, "%s", e.msg);
	cr_assert_geq(now_ms() - start, 250.0, "acquired while still held");
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	lock_release(&l);
	close(ready);
	close(go);
}

Test(lock, lock_of_a_killed_holder_is_free)
{
	int ready, go, status;
	struct lock l;
	struct err e;
	char c;
	pid_t pid = child_holding_lock(&ready, &go, 0);

	cr_assert_eq(read(ready, &c, 1), 1);
	cr_assert_eq(c, 'k');
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status));
	cr_assert_eq(lock_acquire(dir, false, &l, &e), 0, "%s", e.msg);
	lock_release(&l);
	close(ready);
	close(go);
}

Test(lock, unwritable_folder_is_an_io_error)
{
	struct lock l;
	struct err e;
	char path[256];
	int fd;

	/* A file where the folder should be. */
	snprintf(path, sizeof(path), "%s/file", tmp);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/file/acct", tmp);
	cr_assert_eq(lock_acquire(path, false, &l, &e), -1);
	cr_assert_eq(e.code, ERR_IO);
	cr_assert_not_null(strstr(e.msg, tmp), "message: %s", e.msg);
}
