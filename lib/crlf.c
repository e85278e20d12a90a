/*
 * crlf.c - CRLF to LF, and bare LFs counted (see crlf.h).
 */
#include "crlf.h"

#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

size_t crlf_to_lf(const char *in, size_t n, char *out, bool *held_cr)
{
	size_t i = 0, o = 0;

	if (n == 0)
		return 0;
	if (*held_cr) {
		if (in[0] != '\n')
			out[o++] = '\r';
		*held_cr = false;
	}
#ifdef __SSE2__
	{
		const __m128i cr = _mm_set1_epi8('\r');

		/* o <= i + 1 throughout, so a 16-byte store at out + o stays
		 * within the n + 1 bytes of out while i + 16 <= n */
		while (i + 16 <= n) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
			unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr));
			unsigned k;

			_mm_storeu_si128((__m128i *)(void *)(out + o), v);
			if (m == 0) {
				o += 16;
				i += 16;
				continue;
			}
			k = (unsigned)__builtin_ctz(m);
			o += k;
			i += k;         /* in[i] is CR, and out[o] holds it already */
			if (i + 1 == n) {
				*held_cr = true;
				return o;
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
		out[o++] = ch;
	}
	return o;
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
