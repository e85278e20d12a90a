/*
 * fsync_pool.c - see fsync_pool.h.  One mutex guards the queue and every
 * job's `done`; workers sleep on `work`, waiters on `done`.
 */
#include "fsync_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "xalloc.h"

#define FSYNC_POOL_MAX 32u

struct fsync_pool {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct fsync_job *head, *tail;
	bool stop;
	unsigned nthreads;
	pthread_t threads[FSYNC_POOL_MAX];
};

static void *worker(void *arg)
{
	struct fsync_pool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct fsync_job *j;
		int err = 0;

		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->head == NULL)
			break;                  /* stopping and nothing left */
		j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		while ((j->whole_fs ? syncfs(j->fd) : fdatasync(j->fd)) < 0) {
			if (errno != EINTR) {
				err = errno;
				break;
			}
		}
		pthread_mutex_lock(&p->mu);
		j->err = err;
		j->done = true;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct fsync_pool *fsync_pool_new(unsigned threads)
{
	struct fsync_pool *p = xcalloc(1, sizeof(*p));

	if (threads == 0)
		threads = 1;
	if (threads > FSYNC_POOL_MAX)
		threads = FSYNC_POOL_MAX;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		pthread_cond_destroy(&p->done);
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return NULL;
	}
	return p;
}

void fsync_pool_free(struct fsync_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void fsync_pool_submit(struct fsync_pool *p, struct fsync_job *job)
{
	pthread_mutex_lock(&p->mu);
	job->err = 0;
	job->done = false;
	job->next = NULL;
	if (p->tail != NULL)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

int fsync_pool_wait(struct fsync_pool *p, struct fsync_job *job)
{
	int err;

	pthread_mutex_lock(&p->mu);
	while (!job->done)
		pthread_cond_wait(&p->done, &p->mu);
	err = job->err;
	pthread_mutex_unlock(&p->mu);
	return err;
}
