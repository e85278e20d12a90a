/*
 * crlf.h - the two scans every downloaded byte goes through: CRLF line
 * ends turned into LF (the Maildir convention), and the count of bare LFs
 * (what a CRLF copy of the text would add).  Both take the text in pieces
 * as it arrives and carry what one piece's last byte means to the next.
 * On x86-64 they look at 16 bytes at a time (SSE2, part of the baseline);
 * elsewhere a byte at a time.
 */
#ifndef FERRY_CRLF_H
#define FERRY_CRLF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Copy in[0..n) to out, dropping every CR that a LF follows.  *held_cr
 * (in and out): a CR ended the previous piece and was not copied yet; it
 * is dropped if this piece starts with LF, else copied first.  A CR that
 * ends this piece is held back the same way.  `out` must have room for
 * n + 1 bytes (the held CR of the previous piece); in and out must not
 * overlap.  Returns the bytes written.  At the end of the text, a held CR
 * is the text's own last byte: the caller writes it.
 */
size_t crlf_to_lf(const char *in, size_t n, char *out, bool *held_cr);

/*
 * crlf_to_lf(), also adding to *bare the bare LFs of in[0..n) (as
 * crlf_count_bare_lf(in, n, CR held before) would): one pass where the two
 * would make two.  A text of N bytes fed in pieces is N + bare bytes with
 * every bare LF made CRLF.
 */
size_t crlf_to_lf_counting(const char *in, size_t n, char *out, bool *held_cr, uint64_t *bare);

/*
 * How many bytes of p[0..n) are LF without a CR just before them;
 * prev_cr: the byte before p[0] (in the previous piece) was CR.
 */
size_t crlf_count_bare_lf(const char *p, size_t n, bool prev_cr);

#endif
