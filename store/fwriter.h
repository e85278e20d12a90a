/*
 * fwriter.h - one thread that does a Maildir's message-file I/O, in the
 * order it was asked for, while the main loop goes on receiving.  Used by
 * maildir.c for queued deliveries with the syncfs method (maildir.h):
 * creating the file in tmp/, writing it, dating and closing it, renaming
 * it into cur/ or new/ once durable, and handing the batch's syncfs to the
 * fsync pool once everything asked before it is done.
 *
 * Why: a downloaded message costs the kernel an inode allocation, a
 * directory entry, the copy into the page cache and, later, a rename;
 * measured on the benchmark's initial pull, these were over half of the
 * process's CPU, all of it on the thread that also parses the server's
 * stream.  On a second core they overlap with it.
 *
 * Order is the whole contract: jobs run one at a time, first in, first
 * out, so a rename runs after the writes of its file, and a sync handed
 * on by fwriter_then_sync() covers every job asked before it.
 *
 * Errors: a job that fails records the first errno and what failed in its
 * file (fwriter_file.err / .failed) and the later jobs of that file do
 * nothing (an unlink still runs).  Read them only once the writer is past
 * the file's jobs: after fwriter_drain(), or after the fsync pool reports
 * done for a job handed on by a later fwriter_then_sync() (the pool's
 * lock orders the two).
 *
 * Memory: fwriter_write() takes the buffer (malloc'd; the writer frees
 * it) and blocks while more than FWRITER_QUEUED_MAX bytes wait, so a
 * slow disk slows the receiver instead of filling memory.
 *
 * Ownership: a struct fwriter_file and the names and directory fds it
 * names are the caller's, and must stay valid until the writer is past
 * its last job (fwriter_drain(), or the sync after it as above).  Not for
 * use after fork().
 */
#ifndef FERRY_STORE_FWRITER_H
#define FERRY_STORE_FWRITER_H

#include <stddef.h>
#include <time.h>

#include "fsync_pool.h"

#define FWRITER_QUEUED_MAX (4u << 20)

/* One message file as the writer sees it. */
struct fwriter_file {
	int dir_fd;                     /* the directory it is created in (tmp/) */
	const char *name;               /* its name there */
	int fd;                         /* the writer's: -1 until created, and once closed */
	int err;                        /* 0, or the errno of the first failure */
	const char *failed;             /* what failed then ("create a message file in" ...) */
};

struct fwriter;

/* Start the thread; NULL if it cannot start (the caller then does the I/O itself). */
struct fwriter *fwriter_new(void);
/* Finish every job, stop the thread; NULL is fine. */
void fwriter_free(struct fwriter *w);
/* Initialise f (fd -1, no error) for a file `name` in dir_fd. */
void fwriter_file_init(struct fwriter_file *f, int dir_fd, const char *name);
/* Append buf[0..len) (created O_EXCL on the first write); takes buf. */
void fwriter_write(struct fwriter *w, struct fwriter_file *f, char *buf, size_t len);
/* Create the file if no write did, set its times to mtime (0: leave them), close it. */
void fwriter_close(struct fwriter *w, struct fwriter_file *f, time_t mtime);
/* Close it if open and remove it from dir_fd (an abandoned delivery). */
void fwriter_unlink(struct fwriter *w, struct fwriter_file *f);
/* Rename it to to_name in to_dir_fd, never replacing a file there. */
void fwriter_rename(struct fwriter *w, struct fwriter_file *f, int to_dir_fd, const char *to_name);
/* Once every job asked so far is done, submit `job` to the fsync pool. */
void fwriter_then_sync(struct fwriter *w, struct fsync_pool *pool, struct fsync_job *job);
/* Block until every job asked so far is done. */
void fwriter_drain(struct fwriter *w);

/* rename(2) that never replaces to_name (RENAME_NOREPLACE, or a check first). */
int fwriter_rename_noreplace(int fromfd, const char *from, int tofd, const char *to);

#endif
