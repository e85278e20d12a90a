/*
 * fsync_pool.h - a few threads that fdatasync files for the Maildir's
 * batched durability (maildir_deliver_queue); maildir.h embeds a job in
 * each folder.  Used by store/ only.
 *
 * Why threads in a single-threaded program: fsync has no asynchronous form
 * short of io_uring, and each call costs a device cache flush (about 0.5 ms
 * here, far more under load).  One after another, 5,000 of them triple an
 * initial download.  Issued from several threads at once, the block layer
 * merges the flushes that are pending together, so a batch of files
 * becomes durable in a few flush times, while the main loop keeps
 * receiving.  The workers only ever call fdatasync() (or syncfs(), for the
 * syncfs method of maildir.h) on fds they are given;
 * they touch no other state.
 *
 * Ownership: a job is the caller's memory and must stay in place (not be
 * moved or freed) from fsync_pool_submit() until fsync_pool_wait() returns
 * for it.  The fd stays the caller's; the pool never closes it.  The pool
 * is not shared between processes and not used after fork().
 */
#ifndef FERRY_STORE_FSYNC_POOL_H
#define FERRY_STORE_FSYNC_POOL_H

#include <stdbool.h>

struct fsync_job {
	int fd;
	bool whole_fs;                  /* syncfs(fd) instead of fdatasync(fd) */
	int err;                        /* 0, or the errno of fdatasync (after wait) */
	bool done;                      /* guarded by the pool's lock */
	struct fsync_job *next;         /* queue link, the pool's */
};

struct fsync_pool;

/* A pool of `threads` workers (at least 1); NULL if no thread could start. */
struct fsync_pool *fsync_pool_new(unsigned threads);
/* Waits for the queued jobs, stops and joins the workers; NULL is fine. */
void fsync_pool_free(struct fsync_pool *p);
/* Queue an fdatasync (or, job->whole_fs, a syncfs) of job->fd. */
void fsync_pool_submit(struct fsync_pool *p, struct fsync_job *job);
/* Block until `job` is done; returns job->err (0 on success). */
int fsync_pool_wait(struct fsync_pool *p, struct fsync_job *job);

#endif
