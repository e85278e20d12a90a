/*
 * mutf7.h - IMAP mailbox names: modified UTF-7 (RFC 3501 §5.1.3) on the
 * wire, UTF-8 on disk and in the config.
 *
 * Both directions validate: a name that is not valid UTF-8, or not valid
 * modified UTF-7 (bad base64, non-zero padding bits, a needless shift,
 * "&-" spelled wrongly, an encoded printable ASCII character, unpaired
 * surrogates) is ERR_PROTO / ERR_CONFIG, never silently mangled.
 *
 * Only the canonical form is accepted on the wire, so every name has one
 * spelling: base64 shifts must be padded with fewer than six zero bits,
 * adjacent shifts must be merged ("&AOQ-&APY-" is refused; "&AOQA9g-" is
 * right), and U+0000 is refused both ways (it cannot live in a file name).
 * Control characters other than NUL are encoded in base64, as RFC 3501 says.
 *
 * Errors: mutf7_encode() fails with ERR_CONFIG (its input comes from the
 * config or the local store), mutf7_decode() with ERR_PROTO (its input comes
 * from the server); both may fail with ERR_LIMIT from `out`'s cap.  On any
 * failure `out` is truncated back to its length at the call.
 */
#ifndef FERRY_IMAP_MUTF7_H
#define FERRY_IMAP_MUTF7_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

/* Append the modified UTF-7 form of len bytes of UTF-8 to out. */
int mutf7_encode(const char *utf8, size_t len, struct buf *out, struct err *e);
/* Append the UTF-8 form of len bytes of modified UTF-7 to out. */
int mutf7_decode(const char *mutf7, size_t len, struct buf *out, struct err *e);

/* True if the len bytes are valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int utf8_valid(const char *s, size_t len);

#endif
