/* Unit tests for lib/: capped buffers, arenas, error records. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "err.h"

Test(buf, append_beyond_cap_fails_and_keeps_contents)
{
	struct buf b = BUF_INIT(8);
	struct err e;

	cr_assert_eq(buf_adds(&b, "12345", &e), 0);
	cr_assert_eq(buf_adds(&b, "6789", &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	cr_assert_str_eq(buf_cstr(&b), "12345");
	cr_assert_eq(buf_adds(&b, "678", &e), 0);
	cr_assert_str_eq(buf_cstr(&b), "12345678");
	cr_assert_eq(buf_addc(&b, 'x', &e), -1);
	buf_release(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.max, 8);
}

Test(buf, printf_consume_truncate)
{
	struct buf b = BUF_INIT(1024);
	struct err e;

	cr_assert_eq(buf_addf(&b, &e, "A%03d %s", 7, "LOGIN"), 0);
	cr_assert_str_eq(buf_cstr(&b), "A007 LOGIN");
	buf_consume(&b, 5);
	cr_assert_str_eq(buf_cstr(&b), "LOGIN");
	buf_truncate(&b, 3);
	cr_assert_str_eq(buf_cstr(&b), "LOG");
	cr_assert_eq(b.len, 3);
	buf_release(&b);
	cr_assert_str_eq(buf_cstr(&b), "");
}

Test(buf, printf_over_cap_fails)
{
	struct buf b = BUF_INIT(4);
	struct err e;

	cr_assert_eq(buf_addf(&b, &e, "%d", 123456), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	cr_assert_eq(b.len, 0);
	buf_release(&b);
}

Test(arena, allocations_are_aligned_and_survive_growth)
{
	struct arena a;
	char *first;
	int i;

	arena_init(&a, 64);
	first = arena_strdup(&a, "hello");
	for (i = 0; i < 1000; i++) {
		long double *p = arena_alloc(&a, sizeof(*p) * 3);

		cr_assert_eq((uintptr_t)p % _Alignof(max_align_t), 0);
		p[2] = i;
	}
	cr_assert_str_eq(first, "hello");
	cr_assert_str_eq(arena_printf(&a, "%s-%d", "x", 42), "x-42");
	cr_assert_str_eq(arena_strndup(&a, "abcdef", 3), "abc");
	arena_release(&a);
	cr_assert_null(a.head);
}

Test(err, prefix_and_exit_codes)
{
	struct err e;

	cr_assert_eq(err_sys(&e, ERR_IO, ENOENT, "cannot open \"%s\"", "/x"), -1);
	cr_assert_str_eq(e.msg, "cannot open \"/x\": No such file or directory");
	err_prefix(&e, "account \"%s\"", "work");
	cr_assert_str_eq(e.msg, "account \"work\": cannot open \"/x\": No such file or directory");
	cr_assert_eq(e.sys, ENOENT);
	cr_assert_eq(err_exit_code(&e), 1);
	err_set(&e, ERR_CONFIG, "x");
	cr_assert_eq(err_exit_code(&e), 2);
	err_set(&e, ERR_AUTH, "x");
	cr_assert_eq(err_exit_code(&e), 3);
	err_set(&e, ERR_EXEC, "password_cmd failed");
	cr_assert_eq(err_exit_code(&e), 3);
	err_set(&e, ERR_TLS, "x");
	cr_assert_eq(err_exit_code(&e), 4);
	err_set(&e, ERR_SAFETY, "x");
	cr_assert_eq(err_exit_code(&e), 5);
	err_set(&e, ERR_LOCKED, "x");
	cr_assert_eq(err_exit_code(&e), 6);
	cr_assert(e.retry);
	cr_assert_str_eq(err_code_name(ERR_TLS), "tls");
}

/* Server text in an error or a log line cannot reach the terminal as an
 * escape sequence. */
Test(err, control_characters_are_scrubbed)
{
	struct err e;

	err_set(&e, ERR_SERVER, "refused: %s", "\x1b]0;PWNED\x07\x1b[2J caf\xc3\xa9 \xc2\x9b" "1m");
	cr_assert_str_eq(e.msg, "refused: ?]0;PWNED??[2J caf\xc3\xa9 ??1m");
	err_prefix(&e, "mailbox \"%s\"", "a\rb");
	cr_assert_str_eq(e.msg, "mailbox \"a?b\": refused: ?]0;PWNED??[2J caf\xc3\xa9 ??1m");
}
