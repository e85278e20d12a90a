#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mutf7.h"

void json_init(struct json *j, size_t max)
{
	memset(j, 0, sizeof(*j));
	buf_init(&j->out, max);
}

void json_release(struct json *j)
{
	buf_release(&j->out);
}

const char *json_cstr(const struct json *j)
{
	return buf_cstr(&j->out);
}

static void put(struct json *j, const char *s, size_t n)
{
	if (!j->failed && buf_add(&j->out, s, n, NULL) < 0)
		j->failed = true;
}

static void puts_(struct json *j, const char *s)
{
	put(j, s, strlen(s));
}

/* Before any value: a comma if a sibling came before (not after a key). */
static void value_prefix(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->need_comma[j->depth])
		put(j, ",", 1);
	j->need_comma[j->depth] = true;
}

static void open_(struct json *j, char c)
{
	value_prefix(j);
	put(j, &c, 1);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void close_(struct json *j, char c)
{
	if (j->depth > 0)
		j->depth--;
	put(j, &c, 1);
}

void json_object_begin(struct json *j)
{
	open_(j, '{');
}

void json_object_end(struct json *j)
{
	close_(j, '}');
}

void json_array_begin(struct json *j)
{
	open_(j, '[');
}

void json_array_end(struct json *j)
{
	close_(j, ']');
}

void json_key(struct json *j, const char *key)
{
	json_string(j, key);
	put(j, ":", 1);
	j->after_key = true;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n || !utf8_valid((const char *)s, len))
		return 0;
	return len;
}

void json_stringn(struct json *j, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	value_prefix(j);
	put(j, "\"", 1);
	while (i < len) {
		unsigned char c = p[i];
		char esc[8];
		size_t n;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(j, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(j, esc, 6);
			i++;
		} else if ((n = utf8_seq(p + i, len - i)) > 0) {
			put(j, (const char *)p + i, n);
			i += n;
		} else {
			puts_(j, "\\ufffd");
			i++;
		}
	}
	put(j, "\"", 1);
}

void json_string(struct json *j, const char *s)
{
	if (s == NULL) {
		json_null(j);
		return;
	}
	json_stringn(j, s, strlen(s));
}

void json_uint(struct json *j, uint64_t v)
{
	char num[32];

	value_prefix(j);
	snprintf(num, sizeof(num), "%" PRIu64, v);
	puts_(j, num);
}

void json_int(struct json *j, int64_t v)
{
	char num[32];

	value_prefix(j);
	snprintf(num, sizeof(num), "%" PRId64, v);
	puts_(j, num);
}

void json_double(struct json *j, double v)
{
	char num[64];

	value_prefix(j);
	if (!isfinite(v))
		v = 0;
	snprintf(num, sizeof(num), "%.3f", v);
	puts_(j, num);
}

void json_bool(struct json *j, bool v)
{
	value_prefix(j);
	puts_(j, v ? "true" : "false");
}

void json_null(struct json *j)
{
	value_prefix(j);
	puts_(j, "null");
}

void json_raw(struct json *j, const char *value)
{
	value_prefix(j);
	puts_(j, value);
}

void json_error(struct json *j, const struct err *e)
{
	json_key(j, "error");
	json_object_begin(j);
	json_key(j, "code");
	json_string(j, err_code_name(e->code));
	json_key(j, "exit_code");
	json_int(j, err_exit_code(e));
	json_key(j, "message");
	json_string(j, e->msg);
	json_object_end(j);
}

void json_error_entry(struct json *j, const struct err *e, int exit_code, const char *account,
		      const char *mailbox)
{
	json_object_begin(j);
	json_key(j, "code");
	json_string(j, err_code_name(e->code));
	json_key(j, "exit_code");
	json_int(j, exit_code);
	json_key(j, "scope");
	json_string(j, mailbox ? "mailbox" : account ? "account" : "run");
	json_key(j, "account");
	json_string(j, account);
	json_key(j, "mailbox");
	json_string(j, mailbox);
	json_key(j, "message");
	json_string(j, e->msg);
	json_object_end(j);
}

void json_time(struct json *j, time_t t)
{
	char text[32];
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		json_null(j);
		return;
	}
	json_string(j, text);
}

void json_header(struct json *j, const char *command, time_t started)
{
	json_key(j, "version");
	json_int(j, JSON_SCHEMA_VERSION);
	json_key(j, "command");
	if (command != NULL)
		json_string(j, command);
	else
		json_null(j);
	json_key(j, "started_at");
	json_time(j, started);
}

void json_footer(struct json *j, struct json *errs, const struct timespec *t0, int exit_code)
{
	struct timespec t1;

	json_array_end(errs);
	json_key(j, "errors");
	json_raw(j, json_cstr(errs));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	json_key(j, "seconds");
	json_double(j, (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9);
	json_key(j, "exit_code");
	json_int(j, exit_code);
	json_object_end(j);
}
