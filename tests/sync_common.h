/*
 * sync_common.h - shared scaffolding of the `ferry sync` test files: one
 * Dovecot per test (started in .init, stopped in .fini), every test run
 * twice, against the server with all capabilities (suite NAME_full) and cut
 * down to IMAP4rev1 (suite NAME_rev1), plus assertions over synclib.
 *
 * A file includes this once after defining SYNC_SUITE (a bare word) and
 * optionally SYNC_EXTRA (the account's extra YAML for the initial config).
 */
#ifndef FERRY_TESTS_SYNC_COMMON_H
#define FERRY_TESTS_SYNC_COMMON_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synclib.h"
#include "xalloc.h"

#define MID(tag) "<" tag "@ferry.test>"

static struct sl_ctx ctx;

static void up_full(void)
{
	cr_assert_eq(sl_setup(&ctx, false, NULL), 0);
}

static void up_rev1(void)
{
	cr_assert_eq(sl_setup(&ctx, true, NULL), 0);
}

static void down(void)
{
	sl_teardown(&ctx);
}

#define SYNC_CAT2(a, b) a##b
#define SYNC_CAT(a, b) SYNC_CAT2(a, b)
#define SYNC_FULL SYNC_CAT(SYNC_SUITE, _full)
#define SYNC_REV1 SYNC_CAT(SYNC_SUITE, _rev1)

#ifndef SYNC_TIMEOUT
#define SYNC_TIMEOUT 150
#endif
TestSuite(SYNC_FULL, .init = up_full, .fini = down, .timeout = SYNC_TIMEOUT);
TestSuite(SYNC_REV1, .init = up_rev1, .fini = down, .timeout = SYNC_TIMEOUT);

/* Define a test body run against both server variants. */
#define SYNC_TEST(name)                                         \
	static void name(struct sl_ctx *c);                     \
	Test(SYNC_FULL, name) { name(&ctx); }                   \
	Test(SYNC_REV1, name) { name(&ctx); }                   \
	static void name(struct sl_ctx *c)

/* Run `ferry -c CONFIG ARGS...` (NULL-terminated) with env; return its status. */
static inline int run_args(struct sl_ctx *c, const char *const env[], struct harness_result *res, va_list ap)
{
	const char *args[40];
	size_t n = 0;
	const char *a;

	while ((a = va_arg(ap, const char *)) && n < 39)
		args[n++] = a;
	args[n] = NULL;
	cr_assert_eq(sl_ferry_argv(c, env, args, res), 0, "ferry did not start");
	cr_assert(!res->timed_out, "ferry timed out\nstdout:\n%s\nstderr:\n%s", res->out, res->err);
	return res->status;
}

/* Run ferry with ARGS and require exit status `want`; output released. */
static inline void run_expect(struct sl_ctx *c, int want, ...)
{
	struct harness_result res;
	va_list ap;
	int st;

	va_start(ap, want);
	st = run_args(c, NULL, &res, ap);
	va_end(ap);
	cr_assert_eq(st, want, "ferry exited %d, expected %d\nstdout:\n%s\nstderr:\n%s", st, want, res.out,
		     res.err);
	harness_result_release(&res);
}

/* Run ferry with ARGS, keep the output in *res, return the status. */
static inline int run_keep(struct sl_ctx *c, struct harness_result *res, ...)
{
	va_list ap;
	int st;

	va_start(ap, res);
	st = run_args(c, NULL, res, ap);
	va_end(ap);
	return st;
}

/* `ferry sync` must succeed. */
static inline void sync_ok(struct sl_ctx *c)
{
	run_expect(c, 0, "sync", NULL);
}

static inline void assert_sides_equal(struct sl_ctx *c)
{
	char *report = NULL;
	size_t d = sl_sides_diff(c, &report);

	cr_assert_eq(d, 0, "the sides differ (%zu):\n%s", d, report);
	free(report);
}

/* The server's `folder` holds exactly `expect` (see sl_expect_diff). */
static inline void expect_remote(struct sl_ctx *c, const char *folder, const char *const expect[])
{
	struct sl_list l;
	char *report = NULL;
	size_t d;

	cr_assert_eq(sl_remote_list(c, folder, &l), 0, "cannot list server folder %s", folder);
	d = sl_expect_diff(&l, expect, &report);
	cr_assert_eq(d, 0, "server \"%s\" is not as expected:\n%s", folder, report);
	free(report);
	sl_list_release(&l);
}

static inline void expect_local(struct sl_ctx *c, const char *folder, const char *const expect[])
{
	struct sl_list l;
	char *report = NULL;
	size_t d;

	cr_assert_eq(sl_local_list(c, folder, &l), 0, "cannot list local folder %s", folder);
	d = sl_expect_diff(&l, expect, &report);
	cr_assert_eq(d, 0, "local \"%s\" is not as expected:\n%s", folder, report);
	free(report);
	sl_list_release(&l);
}

static inline void expect_both(struct sl_ctx *c, const char *folder, const char *const expect[])
{
	expect_remote(c, folder, expect);
	expect_local(c, folder, expect);
}

#define LIST(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NONE ((const char *const[]){ NULL })

static inline void put_remote(struct sl_ctx *c, const char *folder, const char *tag, size_t size, const char *flags)
{
	char *m = sl_message(tag, size);

	cr_assert_eq(sl_remote_append(c, folder, m, flags), 0, "APPEND %s to %s", tag, folder);
	free(m);
}

static inline void put_local(struct sl_ctx *c, const char *folder, const char *tag, size_t size, const char *letters)
{
	char *m = sl_message(tag, size);

	cr_assert_eq(sl_local_deliver(c, folder, m, letters), 0, "deliver %s to %s", tag, folder);
	free(m);
}

static inline void snap_both(struct sl_ctx *c, struct sl_snap *r, struct sl_snap *l)
{
	cr_assert_eq(sl_remote_snap(c, r), 0);
	cr_assert_eq(sl_local_snap(c, l), 0);
}

/* The side is as it was: same folders, messages, flags; `strict`: same UIDs / file names too. */
static inline void assert_snap_same(const struct sl_snap *before, const struct sl_snap *after, bool strict,
			     const char *what)
{
	char *report = NULL;
	size_t d = sl_snap_diff(before, after, strict, &report);

	cr_assert_eq(d, 0, "%s changed (%zu):\n%s", what, d, report);
	free(report);
}

static inline void assert_remote_unchanged(struct sl_ctx *c, const struct sl_snap *before, bool strict)
{
	struct sl_snap now;

	cr_assert_eq(sl_remote_snap(c, &now), 0);
	assert_snap_same(before, &now, strict, "the server");
	sl_snap_release(&now);
}

static inline void assert_local_unchanged(struct sl_ctx *c, const struct sl_snap *before, bool strict)
{
	struct sl_snap now;

	cr_assert_eq(sl_local_snap(c, &now), 0);
	assert_snap_same(before, &now, strict, "the Maildir");
	sl_snap_release(&now);
}

/* Another sync changes nothing on either side: same messages, flags, UIDs and file names. */
static inline void assert_settled(struct sl_ctx *c)
{
	struct sl_snap r, l;

	snap_both(c, &r, &l);
	sync_ok(c);
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, true);
	sl_snap_release(&r);
	sl_snap_release(&l);
}

/* Bytes Dovecot counted for the sessions that ended since `mark`. */
static inline void log_bytes(struct sl_ctx *c, long mark, uint64_t *in, uint64_t *out)
{
	unsigned sessions = 0;

	cr_assert_eq(sl_log_bytes(c, mark, in, out, &sessions), 0, "no IMAP session logged out");
	fprintf(stderr, "dovecot counted in=%llu out=%llu over %u sessions\n", (unsigned long long)*in,
		(unsigned long long)*out, sessions);
}

#endif
