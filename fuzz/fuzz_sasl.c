/*
 * fuzz_sasl: server challenges.  The first byte picks the mechanism; the
 * rest is split at the first 0xff byte into two challenges (SCRAM
 * server-first and server-final, or an OAuth error challenge and a second,
 * unexpected one).  Checks that nothing crashes and the secret never shows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "sasl.h"

#define SECRET "fuzz-secret-pencil"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Skip inputs whose iteration count would make PBKDF2 slow (not a bug). */
static int iterations_too_slow(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 2 < n; i++) {
		unsigned long v = 0;
		size_t k;

		if (p[i] != 'i' || p[i + 1] != '=')
			continue;
		for (k = i + 2; k < n && p[k] >= '0' && p[k] <= '9' && v <= 8192; k++)
			v = v * 10 + (unsigned long)(p[k] - '0');
		if (v > 8192)
			return 1;
	}
	return 0;
}

static void check_err(const struct err *e)
{
	if (strstr(e->msg, SECRET))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sasl_opts o = { .user = "user,=x", .secret = SECRET, .host = "localhost",
			       .port = 143, .test_nonce = "clientnonce" };
	struct buf out = BUF_INIT(1 << 16);
	const uint8_t *split;
	size_t first_len;
	struct sasl *s;
	struct err e;
	const char *d;

	if (size < 1 || iterations_too_slow(data, size))
		return 0;
	o.mech = (enum sasl_mech)(data[0] % 5);
	data++;
	size--;
	s = sasl_new(&o, &e);
	if (!s)
		abort();
	if (sasl_start(s, &out, &e) < 0)
		abort();
	buf_release_secret(&out);
	split = memchr(data, 0xff, size);
	first_len = split ? (size_t)(split - data) : size;
	if (sasl_step(s, (const char *)data, first_len, &out, &e) < 0)
		check_err(&e);
	buf_release_secret(&out);
	if (split && sasl_step(s, (const char *)split + 1, size - first_len - 1, &out, &e) < 0)
		check_err(&e);
	buf_release_secret(&out);
	if (sasl_finish(s, NULL, 0, &e) < 0)
		check_err(&e);
	d = sasl_error_detail(s);
	if (d && strstr(d, SECRET))
		abort();
	sasl_free(s);
	return 0;
}
