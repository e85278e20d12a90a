/*
 * fuzz_mutf7: mailbox names from the server (modified UTF-7) and from disk
 * (UTF-8).  Whatever either decoder accepts must round-trip exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a = BUF_INIT(1 << 16), b = BUF_INIT(1 << 16);
	struct err e;

	if (mutf7_decode((const char *)data, size, &a, &e) == 0) {
		if (!utf8_valid(buf_cstr(&a), a.len))
			abort();
		if (mutf7_encode(buf_cstr(&a), a.len, &b, &e) < 0)
			abort();
		if (b.len != size || memcmp(buf_cstr(&b), data, size) != 0)
			abort();        /* accepted a non-canonical spelling */
	}
	buf_reset(&a);
	buf_reset(&b);
	if (mutf7_encode((const char *)data, size, &a, &e) == 0) {
		if (mutf7_decode(buf_cstr(&a), a.len, &b, &e) < 0)
			abort();
		if (b.len != size || memcmp(buf_cstr(&b), data, size) != 0)
			abort();
	} else if (e.code != ERR_LIMIT && utf8_valid((const char *)data, size) &&
		   !memchr(data, 0, size)) {
		abort();                /* valid UTF-8 without NUL must encode */
	}
	buf_release(&a);
	buf_release(&b);
	return 0;
}
