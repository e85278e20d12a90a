/* lock.c - the account lock (see lock.h). */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

int lock_mkdirs(const char *path, struct err *e)
{
	char *p = xstrdup(path);
	size_t len = strlen(p);
	size_t i;

	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	/* Create each prefix in turn; EEXIST on a prefix is fine. */
	for (i = 1; i <= len; i++) {
		char saved;

		if (i < len && p[i] != '/')
			continue;
		saved = p[i];
		p[i] = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			int errnum = errno;
			struct stat sb;

			/* EACCES on an existing parent is not an error. */
			if (!(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))) {
				err_sys(e, ERR_IO, errnum,
					"cannot create folder \"%s\"", p);
				free(p);
				return -1;
			}
		}
		p[i] = saved;
	}
	free(p);
	return 0;
}

/* Read the holder's pid from the lock file; 0 if unknown. */
static long lock_read_pid(int fd)
{
	char text[32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	char *end;
	long pid;

	if (n <= 0)
		return 0;
	text[n] = '\0';
	errno = 0;
	pid = strtol(text, &end, 10);
	if (errno != 0 || end == text || pid <= 0)
		return 0;
	return pid;
}

static int lock_write_pid(int fd, const char *path, struct err *e)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0)
		return err_sys(e, ERR_IO, errno, "cannot write \"%s\"", path);
	if (pwrite(fd, text, (size_t)n, 0) != n)
		return err_sys(e, ERR_IO, errno ? errno : EIO,
			       "cannot write \"%s\"", path);
	return 0;
}

int lock_acquire(const char *state_dir, bool wait, struct lock *out,
		 struct err *e)
{
	char *path;
	int fd;

	out->fd = -1;
	out->path = NULL;
	if (lock_mkdirs(state_dir, e) < 0)
		return -1;
	path = xasprintf("%s/lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_sys(e, ERR_IO, errno, "cannot open lock file \"%s\"", path);
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int errnum = errno;

		if (errnum != EWOULDBLOCK) {
			err_sys(e, ERR_IO, errnum, "cannot lock \"%s\"", path);
			goto fail;
		}
		if (!wait) {
			long pid = lock_read_pid(fd);

			if (pid > 0)
				err_set(e, ERR_LOCKED, "account is locked by another ferry run (pid %ld); use --wait to wait for it",
					pid);
			else
				err_set(e, ERR_LOCKED, "account is locked by another ferry run; use --wait to wait for it");
			goto fail;
		}
		log_info("waiting for the lock \"%s\" (held by pid %ld)", path,
			 lock_read_pid(fd));
		if (flock(fd, LOCK_EX) < 0) {
			errnum = errno;
			if (errnum == EINTR)
				err_set(e, ERR_LOCKED, "interrupted while waiting for the account lock \"%s\"",
					path);
			else
				err_sys(e, ERR_IO, errnum, "cannot lock \"%s\"",
					path);
			goto fail;
		}
	}
	if (lock_write_pid(fd, path, e) < 0)
		goto fail;
	out->fd = fd;
	out->path = path;
	return 0;
fail:
	close(fd);
	free(path);
	return -1;
}

void lock_release(struct lock *l)
{
	if (l->fd >= 0) {
		/* Clear the pid first: a reader must not blame a finished run. */
		if (ftruncate(l->fd, 0) < 0)
			log_debug(LOG_CAT_STATE, "cannot truncate \"%s\"", l->path);
		flock(l->fd, LOCK_UN);
		close(l->fd);
	}
	free(l->path);
	l->fd = -1;
	l->path = NULL;
}
