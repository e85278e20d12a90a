/*
 * maildir_names.c - pure name handling: folder name <-> disk path escape,
 * info suffixes (":2,FS"), sizes in names, unique names for delivery.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "maildir.h"
#include "maildir_int.h"
#include "xalloc.h"

#define COMPONENT_MAX 255       /* NAME_MAX on every file system we care for */
#define FOLDER_NAME_MAX 4096

static const char flag_letters[] = "DFPRST";    /* bit i of enum maildir_flags */

const char *maildir_quote(const char *s, char out[MAILDIR_QUOTE_MAX])
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (o + 8 >= MAILDIR_QUOTE_MAX) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, MAILDIR_QUOTE_MAX - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

bool maildir_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len, k;

		if (n - i >= 8) {
			uint64_t w;

			memcpy(&w, s + i, 8);
			if ((w & 0x8080808080808080ull) == 0) {
				i += 8;         /* eight ASCII bytes at once */
				continue;
			}
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* Must byte `c` of a component be escaped on disk? */
static bool must_escape(enum maildir_layout layout, unsigned char c)
{
	if (c == '%' || c == '/')
		return true;
	return layout == MAILDIR_LAYOUT_MAILDIRPP && c == '.';
}

static bool is_reserved_sub(const char *p, size_t n)
{
	return n == 3 && (memcmp(p, "cur", 3) == 0 || memcmp(p, "new", 3) == 0 ||
			  memcmp(p, "tmp", 3) == 0);
}

static int refuse(struct err *e, const char *name, const char *why)
{
	char q[MAILDIR_QUOTE_MAX];

	err_set(e, ERR_PROTO, "refusing folder name \"%s\": %s", maildir_quote(name, q), why);
	e->scope = ERR_SCOPE_MAILBOX;
	return -1;
}

/* Append component p[0..n) escaped. */
static int add_component(enum maildir_layout layout, const char *p, size_t n, struct buf *out,
			 struct err *e)
{
	size_t start = out->len, i;
	bool reserved = layout == MAILDIR_LAYOUT_VERBATIM && is_reserved_sub(p, n);

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		int rc;

		if (must_escape(layout, c) || (reserved && i == 0))
			rc = buf_addf(out, e, "%%%02X", c);
		else
			rc = buf_addc(out, (char)c, e);
		if (rc < 0)
			return -1;
	}
	if (out->len - start > COMPONENT_MAX)
		return err_set(e, ERR_LIMIT, "folder name component too long for the disk (%zu bytes)",
			       out->len - start);
	return 0;
}

int maildir_name_to_disk(enum maildir_layout layout, char sep, const char *name,
			 struct buf *out, struct err *e)
{
	size_t len = strlen(name), i;
	const char *p = name;

	if (len == 0)
		return refuse(e, name, "empty name");
	if (len > FOLDER_NAME_MAX)
		return refuse(e, name, "name too long");
	if (!maildir_utf8_valid(name, len))
		return refuse(e, name, "not valid UTF-8");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return refuse(e, name, "contains a control character");
	}
	if (name[0] == '/')
		return refuse(e, name, "absolute path");
	if (layout == MAILDIR_LAYOUT_MAILDIRPP && buf_addc(out, '.', e) < 0)
		return -1;
	for (;;) {
		const char *end = sep != '\0' ? strchr(p, sep) : NULL;
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (n == 0)
			return refuse(e, name, "empty hierarchy level");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return refuse(e, name, "a hierarchy level is \".\" or \"..\"");
		if (add_component(layout, p, n, out, e) < 0)
			return -1;
		if (end == NULL)
			break;
		if (buf_addc(out, layout == MAILDIR_LAYOUT_MAILDIRPP ? '.' : '/', e) < 0)
			return -1;
		p = end + 1;
	}
	if (layout == MAILDIR_LAYOUT_MAILDIRPP && out->len > COMPONENT_MAX)
		return err_set(e, ERR_LIMIT, "folder name too long for the disk (%zu bytes)", out->len);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int maildir_disk_to_name(enum maildir_layout layout, char sep, const char *rel,
			 struct buf *out, struct err *e)
{
	const char split = layout == MAILDIR_LAYOUT_MAILDIRPP ? '.' : '/';
	struct buf check = BUF_INIT(FOLDER_NAME_MAX * 3 + 16);
	struct err ignore;
	size_t start = out->len;
	const char *p = rel;
	int rc = 1;

	if (layout == MAILDIR_LAYOUT_MAILDIRPP) {
		if (*p != '.')
			return 1;
		p++;
	}
	for (; *p != '\0'; p++) {
		char c = *p;

		if (c == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

			if (lo < 0)
				goto noncanonical;
			c = (char)(hi * 16 + lo);
			p += 2;
		} else if (c == split) {
			if (sep == '\0')
				goto noncanonical;
			c = sep;
		} else if (c == sep && sep != '\0') {
			/* A literal separator would split differently. */
			goto noncanonical;
		}
		if (buf_addc(out, c, e) < 0) {
			buf_truncate(out, start);
			return -1;
		}
	}
	/* Accept only what encodes back to exactly `rel`. */
	if (maildir_name_to_disk(layout, sep, buf_cstr(out) + start, &check, &ignore) == 0 &&
	    strcmp(buf_cstr(&check), rel) == 0)
		rc = 0;
	buf_release(&check);
	if (rc != 0)
		buf_truncate(out, start);
	return rc;
noncanonical:
	buf_truncate(out, start);
	return 1;
}

int maildir_name_to_path(const struct maildir *md, const char *name, char **path_out,
			 struct err *e)
{
	struct buf rel = BUF_INIT(FOLDER_NAME_MAX * 3 + 16);

	if (strcasecmp(name, "INBOX") == 0) {
		*path_out = xstrdup(md->inbox);
		return 0;
	}
	if (maildir_name_to_disk(md->layout, md->sep, name, &rel, e) < 0) {
		buf_release(&rel);
		return -1;
	}
	*path_out = xasprintf("%s/%s", md->root, buf_cstr(&rel));
	buf_release(&rel);
	return 0;
}

void maildir_info_parse(const char *name, const char *const keywords[MAILDIR_KEYWORDS_MAX],
			struct maildir_info *info)
{
	const char *colon = strchr(name, ':');
	bool seen[256];
	size_t x = 0;
	int c;

	info->flags = 0;
	info->keywords = 0;
	info->extra[0] = '\0';
	info->odd = 0;
	info->uniq_len = colon != NULL ? (size_t)(colon - name) : strlen(name);
	if (colon == NULL) {
		info->odd |= MAILDIR_ODD_NO_INFO;
		return;
	}
	if (colon[1] != '2' || colon[2] != ',') {
		info->odd |= MAILDIR_ODD_OTHER_INFO;
		return;
	}
	for (const char *p = colon + 3; *p != '\0'; p++) {
		c = (unsigned char)*p;
		switch (c) {
		case 'D': info->flags |= MAILDIR_FLAG_DRAFT; continue;
		case 'F': info->flags |= MAILDIR_FLAG_FLAGGED; continue;
		case 'P': info->flags |= MAILDIR_FLAG_PASSED; continue;
		case 'R': info->flags |= MAILDIR_FLAG_REPLIED; continue;
		case 'S': info->flags |= MAILDIR_FLAG_SEEN; continue;
		case 'T': info->flags |= MAILDIR_FLAG_TRASHED; continue;
		default: break;
		}
		if (c >= 'a' && c <= 'z' && keywords != NULL && keywords[c - 'a'] != NULL) {
			info->keywords |= 1u << (c - 'a');
			continue;
		}
		if (!(info->odd & MAILDIR_ODD_UNKNOWN_LETTERS))
			memset(seen, 0, sizeof(seen));
		/* Only letters are kept: punctuation ("S:2,F", a second info
		 * part) would be sorted in among the flags on the next rename. */
		seen[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
		info->odd |= MAILDIR_ODD_UNKNOWN_LETTERS;
	}
	if (!(info->odd & MAILDIR_ODD_UNKNOWN_LETTERS))
		return;
	/* Unknown letters are kept, sorted and once each, for renames. */
	for (c = 1; c < 256 && x + 1 < sizeof(info->extra); c++)
		if (seen[c])
			info->extra[x++] = (char)c;
	info->extra[x] = '\0';
}

int maildir_info_format(const char *uniq, uint32_t flags, uint32_t keywords,
			const char *extra, struct buf *out, struct err *e)
{
	bool seen[256] = { false };
	int c;

	for (c = 0; c < 6; c++)
		if (flags & (1u << c))
			seen[(unsigned char)flag_letters[c]] = true;
	for (c = 0; c < MAILDIR_KEYWORDS_MAX; c++)
		if (keywords & (1u << c))
			seen['a' + c] = true;
	for (; extra != NULL && *extra != '\0'; extra++)
		seen[(unsigned char)*extra] = true;
	if (buf_adds(out, uniq, e) < 0 || buf_adds(out, ":2,", e) < 0)
		return -1;
	for (c = 1; c < 256; c++)
		if (seen[c] && buf_addc(out, (char)c, e) < 0)
			return -1;
	return 0;
}

uint64_t maildir_name_size(const char *name)
{
	const char *colon = strchr(name, ':');
	size_t n = colon != NULL ? (size_t)(colon - name) : strlen(name);
	const char *p = name, *end = name + n;

	while ((p = memchr(p, ',', (size_t)(end - p))) != NULL) {
		uint64_t v = 0;
		const char *q = p + 3;

		if (end - p >= 4 && p[1] == 'S' && p[2] == '=' && q < end && *q >= '0' && *q <= '9') {
			for (; q < end && *q >= '0' && *q <= '9'; q++) {
				if (v > (UINT64_MAX - 10) / 10)
					return MAILDIR_SIZE_UNKNOWN;
				v = v * 10 + (uint64_t)(*q - '0');
			}
			if (q == end || *q == ',')
				return v;
			return MAILDIR_SIZE_UNKNOWN;
		}
		p++;
	}
	return MAILDIR_SIZE_UNKNOWN;
}

char *maildir_host_escape(const char *host)
{
	struct buf b = BUF_INIT(1024);
	struct err e;

	for (; *host != '\0'; host++) {
		unsigned char c = (unsigned char)*host;
		int rc;

		if (c == '/' || c == ':' || c == ',' || c == '\\' || c <= 0x20 || c >= 0x7f)
			rc = buf_addf(&b, &e, "\\%03o", c);
		else
			rc = buf_addc(&b, (char)c, &e);
		if (rc < 0)
			break;
	}
	if (b.len == 0)
		buf_adds(&b, "localhost", &e);
	return buf_detach(&b, NULL);
}

char *maildir_uniq_new(struct maildir *md)
{
	struct timespec ts;
	uint64_t rnd = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* one getrandom per process, not per message: the names' R parts are
	 * that seed stepped by the counter through a bijective mixer
	 * (splitmix64), so they differ within the process and look random
	 * across processes */
	if (md->seed == 0 && (getrandom(&md->seed, sizeof(md->seed), 0) != (ssize_t)sizeof(md->seed) ||
			      md->seed == 0))
		md->seed = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull) ^ (uint64_t)md->pid ^ 1u;
	md->counter++;
	rnd = md->seed + (uint64_t)md->counter * 0x9e3779b97f4a7c15ull;
	rnd = (rnd ^ (rnd >> 30)) * 0xbf58476d1ce4e5b9ull;
	rnd = (rnd ^ (rnd >> 27)) * 0x94d049bb133111ebull;
	rnd ^= rnd >> 31;
	return xasprintf("%lld.M%06ldP%ldQ%luR%016llx.%s", (long long)ts.tv_sec,
			 ts.tv_nsec / 1000, md->pid, md->counter, (unsigned long long)rnd, md->host);
}
