/*
 * Tests of the CRLF scans (lib/crlf.h): fixed cases, then random texts
 * cut into random pieces, against a byte-at-a-time reference.  The seed
 * is printed; FERRY_TEST_SEED=N repeats a run.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crlf.h"

/* The whole text at once, the obvious way. */
static size_t ref_to_lf(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		if (!(in[i] == '\r' && i + 1 < n && in[i + 1] == '\n'))
			out[o++] = in[i];
	return o;
}

static size_t ref_bare_lf(const char *in, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += in[i] == '\n' && (i == 0 || in[i - 1] != '\r');
	return k;
}

/* The text in pieces of the given lengths (cycled), as dl_data feeds it. */
static size_t pieces_to_lf(const char *in, size_t n, const size_t *cuts, size_t ncuts, char *out,
			   size_t *bare_out)
{
	bool held = false;
	size_t o = 0, i = 0, c = 0, bare = 0;

	while (i < n) {
		size_t len = cuts[c++ % ncuts];

		if (len > n - i)
			len = n - i;
		bare += crlf_count_bare_lf(in + i, len, i > 0 && in[i - 1] == '\r');
		o += crlf_to_lf(in + i, len, out + o, &held);
		i += len;
	}
	if (held)
		out[o++] = '\r';
	*bare_out = bare;
	return o;
}

/* The same pieces through crlf_to_lf_counting(): the bare LFs without a second scan. */
static size_t pieces_counting(const char *in, size_t n, const size_t *cuts, size_t ncuts, char *out,
			      uint64_t *bare_out)
{
	bool held = false;
	size_t o = 0, i = 0, c = 0;
	uint64_t bare = 0;

	while (i < n) {
		size_t len = cuts[c++ % ncuts];

		if (len > n - i)
			len = n - i;
		o += crlf_to_lf_counting(in + i, len, out + o, &held, &bare);
		i += len;
	}
	*bare_out = bare;
	if (held)
		out[o++] = '\r';
	return o;
}

static void check(const char *in, size_t n, const size_t *cuts, size_t ncuts)
{
	char *want = malloc(n + 1), *got = malloc(n + 2);
	size_t wn, gn, bare;

	cr_assert(want != NULL && got != NULL);
	wn = ref_to_lf(in, n, want);
	gn = pieces_to_lf(in, n, cuts, ncuts, got, &bare);
	cr_assert_eq(gn, wn, "length %zu, expected %zu (text of %zu bytes, first cut %zu)", gn, wn,
		     n, cuts[0]);
	cr_assert(memcmp(got, want, wn) == 0, "the output differs (text of %zu bytes, first cut %zu)",
		  n, cuts[0]);
	cr_assert_eq(bare, ref_bare_lf(in, n), "bare LFs %zu, expected %zu", bare, ref_bare_lf(in, n));
	{
		uint64_t bare2 = 0;

		memset(got, 0, n + 2);
		gn = pieces_counting(in, n, cuts, ncuts, got, &bare2);
		cr_assert_eq(gn, wn, "counting: length %zu, expected %zu (first cut %zu)", gn, wn, cuts[0]);
		cr_assert(memcmp(got, want, wn) == 0, "counting: the output differs (first cut %zu)",
			  cuts[0]);
		cr_assert_eq(bare2, (uint64_t)bare, "counting: %llu bare LFs, expected %zu (first cut %zu)",
			     (unsigned long long)bare2, bare, cuts[0]);
	}
	free(want);
	free(got);
}

Test(crlf, crlf_becomes_lf_and_lone_cr_and_bare_lf_stay)
{
	static const size_t whole[] = { 1000 };
	const char *t = "a\r\nb\rc\nd\r\r\n\r";
	char out[32];
	bool held = false;
	size_t n = crlf_to_lf(t, strlen(t), out, &held);

	cr_assert_eq(n, 9);
	cr_assert(memcmp(out, "a\nb\rc\nd\r\n", 9) == 0);
	cr_assert(held, "the CR that ends the text is held back for the caller");
	cr_assert_eq(crlf_count_bare_lf(t, strlen(t), false), 1);
	cr_assert_eq(crlf_count_bare_lf("\nx", 2, true), 0, "a LF after the previous piece's CR is not bare");
	check(t, strlen(t), whole, 1);
}

Test(crlf, cr_at_the_end_of_a_piece_meets_its_lf_in_the_next)
{
	static const size_t cuts[] = { 17, 1, 16, 15 };
	char t[] = "0123456789abcdef\r\nline two\r\n\r\nlast line without end\r";

	check(t, strlen(t), cuts, 4);
	for (size_t cut = 1; cut < sizeof(t); cut++) {
		size_t one[] = { cut };

		check(t, strlen(t), one, 1);
	}
}

Test(crlf, random_texts_in_random_pieces_match_the_reference)
{
	const char *s = getenv("FERRY_TEST_SEED");
	unsigned seed = s != NULL ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
	static const char alphabet[] = "\r\n\r\nab \r\n\n\rxyz0123456789";
	char *t = malloc(5000);

	cr_assert(t != NULL);
	fprintf(stderr, "crlf: seed %u (FERRY_TEST_SEED=%u repeats it)\n", seed, seed);
	srand(seed);
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)rand() % 5000, cuts[5];

		for (size_t i = 0; i < n; i++)
			t[i] = rand() % 3 == 0 ? alphabet[rand() % (int)(sizeof(alphabet) - 1)]
					       : (char)('a' + rand() % 26);
		for (size_t k = 0; k < 5; k++)
			cuts[k] = 1 + (size_t)rand() % (k == 0 ? 100 : 40);
		check(t, n, cuts, 5);
	}
	free(t);
}
