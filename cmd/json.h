/*
 * json.h - a small streaming JSON writer for --json output.
 *
 * Builds the document in a capped buffer; strings are escaped per RFC 8259
 * (control characters as \u00XX; bytes that are not valid UTF-8 become
 * U+FFFD so the output is always valid JSON).  Commas are placed for the
 * caller: call json_key() before each value inside an object.
 *
 * Ownership: the writer owns its buffer until json_release(); json_cstr()
 * is valid until the next call.
 */
#ifndef FERRY_JSON_H
#define FERRY_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "err.h"

#define JSON_MAX_DEPTH 32

struct json {
	struct buf out;
	unsigned depth;
	bool need_comma[JSON_MAX_DEPTH];
	bool after_key;
	bool failed;        /* the cap was reached: output is truncated */
};

void json_init(struct json *j, size_t max);
void json_release(struct json *j);
const char *json_cstr(const struct json *j);

void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *s);
void json_stringn(struct json *j, const char *s, size_t len);
void json_uint(struct json *j, uint64_t v);
void json_int(struct json *j, int64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* A complete JSON value made by another writer (json_cstr of it), as is. */
void json_raw(struct json *j, const char *value);
/* "error": {"code": ..., "exit_code": ..., "message": ...} inside an object. */
void json_error(struct json *j, const struct err *e);
/*
 * One entry of the top-level "errors" array (doc/json.md): {"code",
 * "exit_code" (what this error makes of the run's exit code), "scope"
 * ("mailbox", "account", or "run" when no account is known: a bad config),
 * "account", "mailbox" (null unless scope is "mailbox"),
 * "message"}.  account and mailbox may be NULL.
 */
void json_error_entry(struct json *j, const struct err *e, int exit_code, const char *account,
		      const char *mailbox);
/* A UTC time as an RFC 3339 string, "2026-11-26T00:50:10Z". */
void json_time(struct json *j, time_t t);
/* The version of the --json schema (doc/ferry-json.schema.json). */
#define JSON_SCHEMA_VERSION 1
/* "version": JSON_SCHEMA_VERSION, "command": name (NULL: null, a command
 * line with no command to run), "started_at": started: the first keys of
 * every object. */
void json_header(struct json *j, const char *command, time_t started);
/*
 * The last keys of every object: "errors" (the array `errs` holds, ended
 * here), "seconds" (since t0, CLOCK_MONOTONIC) and "exit_code"; then the
 * top-level object is ended.  The caller has ended the "accounts" array.
 */
void json_footer(struct json *j, struct json *errs, const struct timespec *t0, int exit_code);

#endif
