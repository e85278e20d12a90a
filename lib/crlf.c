/*
 * crlf.c - CRLF to LF, and bare LFs counted (see crlf.h).
 */
#include "crlf.h"

#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/*
 * crlf_to_lf(), counting the bare LFs of the input into *bare when `count`
 * (a constant in each caller below: the compiler makes two loops).  Mail
 * from a server has none, so the count costs a compare per 16 bytes and
 * a branch that is almost never taken.
 */
static inline size_t to_lf(const char *in, size_t n, char *out, bool *held_cr, uint64_t *bare,
			   bool count)
{
	size_t i = 0, o = 0, k_bare = 0;
	bool cr_before = *held_cr;      /* the byte before in[0] was CR */

	if (n == 0)
		return 0;
	if (*held_cr) {
		if (in[0] != '\n')
			out[o++] = '\r';
		*held_cr = false;
	}
#ifdef __SSE2__
	{
		const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');

		/* o <= i + 1 throughout, so a 16-byte store at out + o stays
		 * within the n + 1 bytes of out while i + 16 <= n */
		while (i + 16 <= n) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
			unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr));
			unsigned lm = count ? (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)) : 0;
			unsigned k = m != 0 ? (unsigned)__builtin_ctz(m) : 16;

			/* the LFs before the block's first CR have no CR of their
			 * own, but the first may follow the byte before the block */
			lm &= k < 16 ? (1u << k) - 1 : 0xffffu;
			if (lm != 0) {
				if ((lm & 1u) && (i > 0 ? in[i - 1] == '\r' : cr_before))
					lm &= lm - 1;
				for (; lm != 0; lm &= lm - 1)
					k_bare++;
			}
			_mm_storeu_si128((__m128i *)(void *)(out + o), v);
			if (m == 0) {
				o += 16;
				i += 16;
				continue;
			}
			o += k;
			i += k;         /* in[i] is CR, and out[o] holds it already */
			if (i + 1 == n) {
				*held_cr = true;
				goto out;
			}
			if (in[i + 1] != '\n')
				o++;    /* a lone CR stays */
			i++;
		}
	}
#endif
	for (; i < n; i++) {
		char ch = in[i];

		if (ch == '\r') {
			if (i + 1 == n) {
				*held_cr = true;
				break;
			}
			if (in[i + 1] == '\n')
				continue;
		}
		if (count && ch == '\n' && !(i > 0 ? in[i - 1] == '\r' : cr_before))
			k_bare++;
		out[o++] = ch;
	}
#ifdef __SSE2__
out:
#endif
	if (count)
		*bare += k_bare;
	return o;
}

size_t crlf_to_lf(const char *in, size_t n, char *out, bool *held_cr)
{
	return to_lf(in, n, out, held_cr, NULL, false);
}

size_t crlf_to_lf_counting(const char *in, size_t n, char *out, bool *held_cr, uint64_t *bare)
{
	return to_lf(in, n, out, held_cr, bare, true);
}

size_t crlf_count_bare_lf(const char *p, size_t n, bool prev_cr)
{
	size_t count = 0, i = 0;
	bool cr_before = prev_cr;

#ifdef __SSE2__
	{
		const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
		unsigned carry = prev_cr ? 1u : 0u;

		for (; i + 16 <= n; i += 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
			unsigned crm = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr));
			unsigned lfm = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
			unsigned bare = lfm & ~(((crm << 1) | carry) & 0xffffu);

			/* rare in mail from a server: a loop beats a popcount
			 * call (no POPCNT in the x86-64 baseline) */
			for (; bare != 0; bare &= bare - 1)
				count++;
			carry = crm >> 15;
		}
		cr_before = carry != 0;
	}
#endif
	for (; i < n; i++) {
		if (p[i] == '\n' && !cr_before)
			count++;
		cr_before = p[i] == '\r';
	}
	return count;
}
