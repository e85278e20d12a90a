/*
 * config_value.c - parsers for the scalar types of the configuration
 * schema, path expansion, and quoting of values for messages.
 */
#include <ctype.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "config_int.h"
#include "xalloc.h"

/* Digits only, no sign; -1 on anything else or overflow of uint64_t. */
static int parse_digits(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static size_t digit_run(const char *s)
{
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

int cfg_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	uint64_t v;

	if (parse_digits(s, strlen(s), &v) < 0 || v < min || v > max)
		return -1;
	*out = (unsigned long)v;
	return 0;
}

int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t i;

	for (i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int cfg_parse_duration(const char *s, unsigned *seconds_out)
{
	size_t n = digit_run(s);
	uint64_t v, mult = 1;

	if (parse_digits(s, n, &v) < 0)
		return -1;
	if (strcmp(s + n, "m") == 0)
		mult = 60;
	else if (strcmp(s + n, "h") == 0)
		mult = 3600;
	else if (strcmp(s + n, "s") != 0 && s[n] != '\0')
		return -1;
	if (v == 0 || v > 86400 / mult)
		return -1;
	*seconds_out = (unsigned)(v * mult);
	return 0;
}

int cfg_parse_size(const char *s, uint64_t *bytes_out)
{
	size_t n = digit_run(s);
	const char *unit = s + n;
	uint64_t v, mult = 1;

	if (parse_digits(s, n, &v) < 0)
		return -1;
	switch (*unit) {
	case 'k': case 'K': mult = 1ULL << 10; unit++; break;
	case 'm': case 'M': mult = 1ULL << 20; unit++; break;
	case 'g': case 'G': mult = 1ULL << 30; unit++; break;
	default: break;
	}
	if (strcmp(unit, "iB") == 0 && mult == 1)
		return -1;
	if (*unit != '\0' && strcmp(unit, "B") != 0 && strcmp(unit, "iB") != 0)
		return -1;
	/* Beyond 1 TiB is a typo, not a mail size. */
	if (v > (1ULL << 40) / mult)
		return -1;
	*bytes_out = v * mult;
	return 0;
}

int cfg_parse_percent(const char *s, unsigned *out)
{
	size_t n = digit_run(s);
	uint64_t v;

	if (parse_digits(s, n, &v) < 0 || strcmp(s + n, "%") != 0 || v > 100)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int cfg_parse_date(const char *s, struct cfg_date *out)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	uint64_t y, m, d;
	int dim;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    parse_digits(s, 4, &y) < 0 || parse_digits(s + 5, 2, &m) < 0 ||
	    parse_digits(s + 8, 2, &d) < 0)
		return -1;
	if (y < 1900 || m < 1 || m > 12)
		return -1;
	dim = mdays[m - 1] + (m == 2 && leap_year((int)y) ? 1 : 0);
	if (d < 1 || d > (uint64_t)dim)
		return -1;
	out->year = (int)y;
	out->month = (int)m;
	out->day = (int)d;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cfg_parse_fingerprint(const char *s, unsigned char out[32], const char **why)
{
	const char *colon = strchr(s, ':');
	size_t len, i, step;

	*why = "expected \"sha256:\" and 32 hex bytes (AA:BB:... or AABB...)";
	/* "sha256:" or another algorithm name (not a hex byte) before a colon. */
	if (colon != NULL && colon - s > 2 && colon - s <= 10) {
		if ((size_t)(colon - s) != 6 || strncasecmp(s, "sha256", 6) != 0) {
			*why = "only sha256 fingerprints are supported";
			return -1;
		}
		s = colon + 1;
	}
	len = strlen(s);
	if (len == 64)
		step = 2;
	else if (len == 32 * 3 - 1)
		step = 3;
	else
		return -1;
	for (i = 0; i < 32; i++) {
		const char *p = s + i * step;
		int hi = hexval(p[0]), lo = hexval(p[1]);

		if (hi < 0 || lo < 0)
			return -1;
		if (step == 3 && i < 31 && p[2] != ':')
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

const char *cfg_home_dir(char *buf, size_t size)
{
	const char *home = getenv("HOME");
	struct passwd pw, *res = NULL;

	if (home != NULL && home[0] == '/')
		return home;
	if (getpwuid_r(getuid(), &pw, buf, size, &res) != 0 || res == NULL ||
	    res->pw_dir == NULL || res->pw_dir[0] != '/')
		return NULL;
	return res->pw_dir;
}

/* Expand a leading "~" or "~user" into `out`; *rest_out is what follows. */
static int expand_tilde(const char *s, struct buf *out, const char **rest_out, char **why)
{
	char pwbuf[4096];
	const char *slash = strchr(s, '/');
	size_t ulen = slash ? (size_t)(slash - s - 1) : strlen(s + 1);
	const char *dir;
	struct err e;

	*rest_out = s + 1 + ulen;
	if (ulen == 0) {
		dir = cfg_home_dir(pwbuf, sizeof(pwbuf));
		if (dir == NULL) {
			*why = xstrdup("cannot expand \"~\": no home directory ($HOME is not set)");
			return -1;
		}
	} else {
		struct passwd pw, *res = NULL;
		char *user = xstrndup(s + 1, ulen);

		if (getpwnam_r(user, &pw, pwbuf, sizeof(pwbuf), &res) != 0 ||
		    res == NULL || res->pw_dir == NULL) {
			char *q = cfg_quote(user, ulen, 64);

			*why = xasprintf("cannot expand \"~\": no user %s", q);
			free(q);
			free(user);
			return -1;
		}
		free(user);
		dir = res->pw_dir;
	}
	if (buf_adds(out, dir, &e) < 0) {
		*why = xstrdup("expanded path longer than 4096 bytes");
		return -1;
	}
	return 0;
}

static bool var_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool var_char(char c)
{
	return var_start(c) || (c >= '0' && c <= '9');
}

/* Expand the variable at s ('$' already seen at s[-1]); returns its length. */
static int expand_var(const char *s, struct buf *out, size_t *used_out, char **why)
{
	const char *name = s;
	size_t n = 0, used;
	const char *val;
	char *vname;
	struct err e;

	if (s[0] == '{') {
		name = s + 1;
		while (var_char(name[n]))
			n++;
		if (n == 0 || !var_start(name[0]) || name[n] != '}') {
			*why = xstrdup("bad \"${...}\": expected a variable name and \"}\"");
			return -1;
		}
		used = n + 2;
	} else {
		if (!var_start(s[0])) {
			*why = xstrdup("\"$\" not followed by a variable name "
				       "(write \"$$\" for a literal \"$\")");
			return -1;
		}
		while (var_char(name[n]))
			n++;
		used = n;
	}
	vname = xstrndup(name, n);
	val = getenv(vname);
	if (val == NULL) {
		char *q = cfg_quote(vname, n, 64);

		*why = xasprintf("environment variable %s is not set", q);
		free(q);
		free(vname);
		return -1;
	}
	free(vname);
	if (buf_adds(out, val, &e) < 0) {
		*why = xstrdup("expanded path longer than 4096 bytes");
		return -1;
	}
	*used_out = used;
	return 0;
}

int cfg_expand_path(const char *s, char **out, char **why)
{
	struct buf b = BUF_INIT(PATH_MAX);
	const char *p = s;
	struct err e;

	*why = NULL;
	if (s[0] == '~' && expand_tilde(s, &b, &p, why) < 0)
		goto fail;
	while (*p != '\0') {
		size_t used;

		if (*p != '$') {
			if (buf_addc(&b, *p++, &e) < 0) {
				*why = xstrdup("expanded path longer than 4096 bytes");
				goto fail;
			}
			continue;
		}
		p++;
		if (*p == '$') {
			if (buf_addc(&b, *p++, &e) < 0) {
				*why = xstrdup("expanded path longer than 4096 bytes");
				goto fail;
			}
			continue;
		}
		if (expand_var(p, &b, &used, why) < 0)
			goto fail;
		p += used;
	}
	if (buf_cstr(&b)[0] != '/') {
		char *q = cfg_quote(buf_cstr(&b), b.len, 128);

		*why = xasprintf("expected an absolute path (or one starting with \"~\"), got %s", q);
		free(q);
		goto fail;
	}
	*out = buf_detach(&b, NULL);
	return 0;
fail:
	buf_release(&b);
	return -1;
}

char *cfg_quote(const char *s, size_t len, size_t max)
{
	struct buf b = BUF_INIT(max * 4 + 16);
	bool cut = false;
	size_t i;
	struct err e;

	if (len > max) {
		len = max;
		/* Do not split a UTF-8 sequence. */
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--;
		cut = true;
	}
	buf_addc(&b, '"', &e);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			buf_addf(&b, &e, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			buf_addf(&b, &e, "\\x%02x", c);
		else
			buf_addc(&b, (char)c, &e);
	}
	buf_adds(&b, cut ? "\"..." : "\"", &e);
	return buf_detach(&b, NULL);
}
