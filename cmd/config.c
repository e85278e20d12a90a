/*
 * config.c - map the YAML node tree onto `struct cfg` through one
 * declarative schema table, then apply computed defaults and cross-field
 * rules (see config.h for the decisions).
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config_int.h"
#include "xalloc.h"

enum field_type {
	F_STRING,       /* non-empty, no control characters */
	F_HOST,         /* host name or IP literal */
	F_SECRET,       /* non-empty; wiped on free; never quoted in messages */
	F_PATH,         /* ~ and $VAR expanded; absolute */
	F_UINT,         /* decimal in [min, max]; stored as unsigned */
	F_BOOL,
	F_ENUM,         /* one of names[], case-insensitive; stored as an enum */
	F_DURATION,     /* seconds, unsigned */
	F_SIZE,         /* bytes, uint64_t */
	F_PERCENT,      /* unsigned */
	F_DATE,         /* struct cfg_date */
	F_FINGERPRINT,  /* struct cfg_fingerprint */
	F_PATTERNS,     /* struct cfg_strlist */
	F_AUTH,         /* struct cfg_auth_list */
};

struct mapper;

/*
 * One key of an account.  `def` is a default written as it would be in
 * the file and parsed by the same code; NULL means no default, or one
 * computed in account_finish() (port, inbox, state).
 */
struct field {
	const char *section;            /* "remote", ...; NULL: in the account */
	const char *key;
	enum field_type type;
	size_t offset;                  /* in struct cfg_account */
	const char *def;
	bool required;
	unsigned long min, max;         /* F_UINT */
	const char *const *names;       /* F_ENUM, NULL-terminated */
};

static const char *const tls_names[] = { "implicit", "starttls", "none", NULL };
static const char *const layout_names[] = { "verbatim", "maildir++", NULL };
static const char *const direction_names[] = { "both", "pull", "push", NULL };
static const char *const auth_names[] = {
	"login", "plain", "scram-sha-1", "scram-sha-256", "xoauth2", "oauthbearer", NULL,
};

_Static_assert(sizeof(enum cfg_tls) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cfg_layout) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cfg_direction) == sizeof(int), "enums are stored as int");

#define OFF(member) offsetof(struct cfg_account, member)

static const char *const sections[] = { "remote", "local", "mailboxes", "sync", NULL };
enum { SECT_REMOTE, SECT_LOCAL, SECT_MAILBOXES, SECT_SYNC, SECT_COUNT };

static const struct field fields[] = {
	{ "remote", "host", F_HOST, OFF(remote.host), NULL, true, 0, 0, NULL },
	{ "remote", "port", F_UINT, OFF(remote.port), NULL, false, 1, 65535, NULL },
	{ "remote", "tls", F_ENUM, OFF(remote.tls), "implicit", false, 0, 0, tls_names },
	{ "remote", "tls_ca_file", F_PATH, OFF(remote.tls_ca_file), NULL, false, 0, 0, NULL },
	{ "remote", "tls_fingerprint", F_FINGERPRINT, OFF(remote.tls_fingerprint), NULL, false, 0, 0, NULL },
	{ "remote", "user", F_STRING, OFF(remote.user), NULL, true, 0, 0, NULL },
	{ "remote", "password", F_SECRET, OFF(remote.password), NULL, false, 0, 0, NULL },
	{ "remote", "password_cmd", F_STRING, OFF(remote.password_cmd), NULL, false, 0, 0, NULL },
	{ "remote", "oauth2_token_cmd", F_STRING, OFF(remote.oauth2_token_cmd), NULL, false, 0, 0, NULL },
	{ "remote", "auth", F_AUTH, OFF(remote.auth), NULL, false, 0, 0, NULL },
	{ "remote", "connections", F_UINT, OFF(remote.connections), "4", false, 1, 16, NULL },
	{ "remote", "timeout", F_DURATION, OFF(remote.timeout), "60s", false, 0, 0, NULL },
	{ "local", "path", F_PATH, OFF(local.path), NULL, true, 0, 0, NULL },
	{ "local", "layout", F_ENUM, OFF(local.layout), "verbatim", false, 0, 0, layout_names },
	{ "local", "inbox", F_PATH, OFF(local.inbox), NULL, false, 0, 0, NULL },
	{ "mailboxes", "include", F_PATTERNS, OFF(mailboxes.include), "*", false, 0, 0, NULL },
	{ "mailboxes", "exclude", F_PATTERNS, OFF(mailboxes.exclude), NULL, false, 0, 0, NULL },
	{ "sync", "direction", F_ENUM, OFF(sync.direction), "both", false, 0, 0, direction_names },
	{ "sync", "expunge", F_BOOL, OFF(sync.expunge), "true", false, 0, 0, NULL },
	{ "sync", "delete_folders", F_BOOL, OFF(sync.delete_folders), "false", false, 0, 0, NULL },
	{ "sync", "max_size", F_SIZE, OFF(sync.max_size), "0", false, 0, 0, NULL },
	{ "sync", "since", F_DATE, OFF(sync.since), NULL, false, 0, 0, NULL },
	{ "sync", "safety_max_delete", F_PERCENT, OFF(sync.safety_max_delete), "50%", false, 0, 0, NULL },
	{ NULL, "state", F_PATH, OFF(state), NULL, false, 0, 0, NULL },
};

#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

/* Indices of the fields the cross-field rules look at. */
enum {
	FI_PORT = 1, FI_TLS = 2, FI_CA = 3, FI_FPR = 4, FI_PASSWORD = 6,
	FI_PASSWORD_CMD = 7, FI_TOKEN_CMD = 8, FI_AUTH = 9, FI_PATH = 12,
	FI_INBOX = 14, FI_STATE = 23,
};

struct mapper {
	const char *file;
	struct err *e;
	const char *account;                    /* current account name */
	const struct cfg_node *account_key;
	const struct cfg_node *account_map;
	const struct cfg_node *sect_map[SECT_COUNT];
	const struct cfg_node *seen[N_FIELDS];   /* key node, for duplicates */
	const struct cfg_node *set_by[N_FIELDS]; /* key node, NULL: default */
};

static int node_err(struct mapper *m, const struct cfg_node *at, const char *path,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int node_err(struct mapper *m, const struct cfg_node *at, const char *path,
		    const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path != NULL && path[0] != '\0')
		return err_set(m->e, ERR_CONFIG, "%s:%u:%u: %s: %s", m->file,
			       at->line, at->col, path, msg);
	return err_set(m->e, ERR_CONFIG, "%s:%u:%u: %s", m->file, at->line, at->col, msg);
}

static void field_path(const struct mapper *m, const struct field *f, char *out, size_t size)
{
	if (f->section != NULL)
		snprintf(out, size, "accounts.%s.%s.%s", m->account, f->section, f->key);
	else
		snprintf(out, size, "accounts.%s.%s", m->account, f->key);
}

/* What a field expects, for "expected ..., got ..." messages. */
static void field_noun(const struct field *f, char *out, size_t size)
{
	size_t i, n = 0;

	switch (f->type) {
	case F_STRING: snprintf(out, size, "a non-empty string"); return;
	case F_HOST: snprintf(out, size, "a host name or IP address"); return;
	case F_SECRET: snprintf(out, size, "a non-empty password"); return;
	case F_PATH: snprintf(out, size, "a path"); return;
	case F_UINT: snprintf(out, size, "a number from %lu to %lu", f->min, f->max); return;
	case F_BOOL: snprintf(out, size, "true or false"); return;
	case F_DURATION:
		snprintf(out, size, "a duration from 1s to 24h such as \"60s\", \"5m\" or \"1h\"");
		return;
	case F_SIZE:
		snprintf(out, size, "a size such as \"512K\", \"50M\" or \"1G\" (at most 1024G)");
		return;
	case F_PERCENT: snprintf(out, size, "a percentage from 0%% to 100%%"); return;
	case F_DATE: snprintf(out, size, "a date as YYYY-MM-DD"); return;
	case F_FINGERPRINT: snprintf(out, size, "a sha256 fingerprint"); return;
	case F_PATTERNS: snprintf(out, size, "a list of mailbox patterns"); return;
	case F_AUTH:
		snprintf(out, size, "a list of mechanisms (login, plain, scram-sha-1, "
			 "scram-sha-256, xoauth2, oauthbearer)");
		return;
	case F_ENUM:
		out[0] = '\0';
		for (i = 0; f->names[i] != NULL; i++)
			n++;
		for (i = 0; i < n; i++) {
			size_t len = strlen(out);

			snprintf(out + len, size - len, "%s%s",
				 i == 0 ? "" : i + 1 == n ? " or " : ", ", f->names[i]);
		}
		return;
	}
}

static int bad_value(struct mapper *m, const struct field *f, const struct cfg_node *v)
{
	char path[256], noun[160];
	char *q;

	field_path(m, f, path, sizeof(path));
	field_noun(f, noun, sizeof(noun));
	if (v->kind != CFG_NODE_SCALAR || f->type == F_SECRET)
		return node_err(m, v, path, "expected %s, got %s", noun, cfg_node_kind_name(v));
	q = cfg_quote(v->text, v->len, 64);
	node_err(m, v, path, "expected %s, got %s", noun, q);
	free(q);
	return -1;
}

static bool has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool valid_host(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (; *s != '\0'; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
		      c == ':' || c == '%'))
			return false;
	}
	return true;
}

static int enum_index(const char *const *names, const char *s)
{
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (strcasecmp(names[i], s) == 0)
			return i;
	return -1;
}

static int set_path(struct mapper *m, const struct field *f, const struct cfg_node *v,
		    char **slot)
{
	char path[256];
	char *why = NULL;

	if (v->len == 0)
		return bad_value(m, f, v);
	if (cfg_expand_path(v->text, slot, &why) < 0) {
		field_path(m, f, path, sizeof(path));
		node_err(m, v, path, "%s", why);
		free(why);
		return -1;
	}
	return 0;
}

/* Parse one scalar `text` into the field's slot.  `v` is for messages. */
static int set_scalar(struct mapper *m, const struct field *f, void *slot,
		      const char *text, const struct cfg_node *v)
{
	unsigned long ul;
	const char *why;
	int idx;

	switch (f->type) {
	case F_STRING:
	case F_SECRET:
		if (text[0] == '\0' || (f->type == F_STRING && has_control(text)))
			return bad_value(m, f, v);
		*(char **)slot = xstrdup(text);
		return 0;
	case F_HOST:
		if (!valid_host(text))
			return bad_value(m, f, v);
		*(char **)slot = xstrdup(text);
		return 0;
	case F_PATH:
		return set_path(m, f, v, slot);
	case F_UINT:
		if (cfg_parse_uint(text, f->min, f->max, &ul) < 0)
			return bad_value(m, f, v);
		*(unsigned *)slot = (unsigned)ul;
		return 0;
	case F_BOOL:
		return cfg_parse_bool(text, slot) < 0 ? bad_value(m, f, v) : 0;
	case F_ENUM:
		idx = enum_index(f->names, text);
		if (idx < 0)
			return bad_value(m, f, v);
		memcpy(slot, &idx, sizeof(idx));
		return 0;
	case F_DURATION:
		return cfg_parse_duration(text, slot) < 0 ? bad_value(m, f, v) : 0;
	case F_SIZE:
		return cfg_parse_size(text, slot) < 0 ? bad_value(m, f, v) : 0;
	case F_PERCENT:
		return cfg_parse_percent(text, slot) < 0 ? bad_value(m, f, v) : 0;
	case F_DATE:
		return cfg_parse_date(text, slot) < 0 ? bad_value(m, f, v) : 0;
	case F_FINGERPRINT: {
		struct cfg_fingerprint *fp = slot;
		char path[256];
		char *q;

		if (cfg_parse_fingerprint(text, fp->sha256, &why) < 0) {
			field_path(m, f, path, sizeof(path));
			q = cfg_quote(v->text, v->len, 64);
			node_err(m, v, path, "%s, got %s", why, q);
			free(q);
			return -1;
		}
		fp->set = true;
		return 0;
	}
	case F_PATTERNS:
	case F_AUTH:
		break;
	}
	return bad_value(m, f, v);
}

static int item_err(struct mapper *m, const struct field *f, size_t i,
		    const struct cfg_node *at, const char *what)
{
	char path[256], ipath[300];
	char *q = at->kind == CFG_NODE_SCALAR ? cfg_quote(at->text, at->len, 64) : NULL;

	field_path(m, f, path, sizeof(path));
	snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
	node_err(m, at, ipath, "%s, got %s", what, q ? q : cfg_node_kind_name(at));
	free(q);
	return -1;
}

static int set_patterns(struct mapper *m, const struct field *f, struct cfg_strlist *l,
			const struct cfg_node *v)
{
	const struct cfg_node *it;
	size_t i = 0;

	if (v->kind != CFG_NODE_SEQ)
		return bad_value(m, f, v);
	if (v->n_children == 0 && f->offset == OFF(mailboxes.include))
		return item_err(m, f, 0, v, "expected at least one pattern (leave the key out for \"*\")");
	l->v = xcalloc(v->n_children, sizeof(char *));
	for (it = v->first; it != NULL; it = it->next, i++) {
		if (it->kind != CFG_NODE_SCALAR || it->len == 0 || cfg_node_is_null(it) ||
		    has_control(it->text))
			return item_err(m, f, i, it, "expected a mailbox pattern");
		l->v[l->n++] = xstrdup(it->text);
	}
	return 0;
}

static int set_auth(struct mapper *m, const struct field *f, struct cfg_auth_list *l,
		    const struct cfg_node *v)
{
	const struct cfg_node *it;
	size_t i = 0, j;

	if (v->kind != CFG_NODE_SEQ)
		return bad_value(m, f, v);
	if (v->n_children == 0)
		return item_err(m, f, 0, v,
				"expected at least one mechanism (leave the key out for the best offered)");
	for (it = v->first; it != NULL; it = it->next, i++) {
		int idx = it->kind == CFG_NODE_SCALAR ? enum_index(auth_names, it->text) : -1;

		if (idx < 0)
			return item_err(m, f, i, it, "expected login, plain, scram-sha-1, "
					"scram-sha-256, xoauth2 or oauthbearer");
		for (j = 0; j < l->n; j++)
			if (l->v[j] == (enum cfg_auth_mech)idx)
				return item_err(m, f, i, it, "mechanism listed twice");
		l->v[l->n++] = (enum cfg_auth_mech)idx;
	}
	return 0;
}

static int set_field(struct mapper *m, struct cfg_account *a, const struct field *f,
		     const struct cfg_node *v)
{
	void *slot = (char *)a + f->offset;

	if (f->type == F_PATTERNS)
		return set_patterns(m, f, slot, v);
	if (f->type == F_AUTH)
		return set_auth(m, f, slot, v);
	if (v->kind != CFG_NODE_SCALAR)
		return bad_value(m, f, v);
	return set_scalar(m, f, slot, v->text, v);
}

static int find_field(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < N_FIELDS; i++) {
		bool same_sect = section == NULL ? fields[i].section == NULL :
				 fields[i].section != NULL &&
				 strcmp(section, fields[i].section) == 0;

		if (same_sect && strcmp(key, fields[i].key) == 0)
			return (int)i;
	}
	return -1;
}

/* "remote, local, ..." - the keys valid in `section` (NULL: the account). */
static void expected_keys(const char *section, char *out, size_t size)
{
	size_t i, len;

	out[0] = '\0';
	if (section == NULL)
		for (i = 0; sections[i] != NULL; i++) {
			len = strlen(out);
			snprintf(out + len, size - len, "%s%s", i ? ", " : "", sections[i]);
		}
	for (i = 0; i < N_FIELDS; i++) {
		bool same_sect = section == NULL ? fields[i].section == NULL :
				 fields[i].section != NULL &&
				 strcmp(section, fields[i].section) == 0;

		if (!same_sect)
			continue;
		len = strlen(out);
		snprintf(out + len, size - len, "%s%s", out[0] ? ", " : "", fields[i].key);
	}
}

static int unknown_key(struct mapper *m, const struct cfg_node *k, const char *section)
{
	char path[256], keys[512];
	char *q = cfg_quote(k->text, k->len, 64);

	if (section != NULL)
		snprintf(path, sizeof(path), "accounts.%s.%s", m->account, section);
	else
		snprintf(path, sizeof(path), "accounts.%s", m->account);
	expected_keys(section, keys, sizeof(keys));
	node_err(m, k, path, "unknown key %s (expected one of: %s)", q, keys);
	free(q);
	return -1;
}

static int duplicate_key(struct mapper *m, const struct cfg_node *k, const char *path,
			 const struct cfg_node *first)
{
	char *q = cfg_quote(k->text, k->len, 64);

	node_err(m, k, path, "duplicate key %s (first set at line %u)", q, first->line);
	free(q);
	return -1;
}

/* One `key: value` inside a section (or directly in the account). */
static int map_pair(struct mapper *m, struct cfg_account *a, const char *section,
		    const struct cfg_node *k, const struct cfg_node *v)
{
	int fi = find_field(section, k->text);
	char path[256];

	if (fi < 0)
		return unknown_key(m, k, section);
	if (m->seen[fi] != NULL) {
		field_path(m, &fields[fi], path, sizeof(path));
		return duplicate_key(m, k, path, m->seen[fi]);
	}
	m->seen[fi] = k;
	if (cfg_node_is_null(v))
		return 0;       /* an empty value: as if absent */
	m->set_by[fi] = k;
	return set_field(m, a, &fields[fi], v);
}

static int map_section(struct mapper *m, struct cfg_account *a, int s,
		       const struct cfg_node *k, const struct cfg_node *v)
{
	const struct cfg_node *kk;
	char path[256];

	snprintf(path, sizeof(path), "accounts.%s.%s", m->account, sections[s]);
	if (m->sect_map[s] != NULL)
		return duplicate_key(m, k, path, m->sect_map[s]);
	m->sect_map[s] = k;
	if (cfg_node_is_null(v))
		return 0;
	if (v->kind != CFG_NODE_MAP)
		return node_err(m, v, path, "expected a mapping, got %s", cfg_node_kind_name(v));
	for (kk = v->first; kk != NULL; kk = kk->next->next)
		if (map_pair(m, a, sections[s], kk, kk->next) < 0)
			return -1;
	return 0;
}

/* Defaults written in the table, and required keys. */
static int apply_defaults(struct mapper *m, struct cfg_account *a)
{
	size_t i;

	for (i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];
		void *slot = (char *)a + f->offset;

		if (m->set_by[i] != NULL)
			continue;
		if (f->required) {
			int s = f->section ? enum_index(sections, f->section) : -1;
			const struct cfg_node *at = s >= 0 && m->sect_map[s] ? m->sect_map[s] :
						    m->account_key;
			char path[256];

			if (s >= 0 && m->sect_map[s] == NULL) {
				snprintf(path, sizeof(path), "accounts.%s", m->account);
				return node_err(m, at, path, "missing required section \"%s\" "
						"(with key \"%s\")", f->section, f->key);
			}
			snprintf(path, sizeof(path), "accounts.%s.%s", m->account, f->section);
			return node_err(m, at, path, "missing required key \"%s\"", f->key);
		}
		if (f->def == NULL)
			continue;
		if (f->type == F_PATTERNS) {
			struct cfg_strlist *l = slot;

			l->v = xcalloc(1, sizeof(char *));
			l->v[l->n++] = xstrdup(f->def);
		} else if (set_scalar(m, f, slot, f->def, m->account_key) < 0) {
			return -1;
		}
	}
	return 0;
}

static int field_err(struct mapper *m, size_t fi, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* An error about field `fi`, at its key (or the account when it is unset). */
static int field_err(struct mapper *m, size_t fi, const char *fmt, ...)
{
	const struct cfg_node *at = m->set_by[fi] ? m->set_by[fi] : m->account_key;
	char path[256], msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	field_path(m, &fields[fi], path, sizeof(path));
	return node_err(m, at, path, "%s", msg);
}

static int check_credentials(struct mapper *m, struct cfg_account *a)
{
	static const size_t cred[] = { FI_PASSWORD, FI_PASSWORD_CMD, FI_TOKEN_CMD };
	const struct cfg_remote *r = &a->remote;
	size_t i, n = 0, first = 0, second = 0;
	bool oauth = false, pw = false;

	for (i = 0; i < 3; i++) {
		if (m->set_by[cred[i]] == NULL)
			continue;
		if (n == 0)
			first = cred[i];
		else if (n == 1)
			second = cred[i];
		n++;
	}
	if (n == 0) {
		char path[256];

		snprintf(path, sizeof(path), "accounts.%s.remote", m->account);
		return node_err(m, m->sect_map[SECT_REMOTE], path, "no credential: set one of "
				"password_cmd, password or oauth2_token_cmd");
	}
	if (n > 1) {
		/* Point at whichever of the two comes later in the file. */
		const struct cfg_node *a1 = m->set_by[first], *a2 = m->set_by[second];
		bool later = a1->line > a2->line || (a1->line == a2->line && a1->col > a2->col);

		return field_err(m, later ? first : second, "%s and %s are both set; an account "
				 "has one credential", fields[first].key, fields[second].key);
	}
	for (i = 0; i < r->auth.n; i++) {
		if (r->auth.v[i] == CFG_AUTH_XOAUTH2 || r->auth.v[i] == CFG_AUTH_OAUTHBEARER)
			oauth = true;
		else
			pw = true;
	}
	if (oauth && pw)
		return field_err(m, FI_AUTH, "cannot mix password mechanisms with OAuth "
				 "mechanisms (xoauth2, oauthbearer): an account has one credential");
	if (oauth && r->oauth2_token_cmd == NULL)
		return field_err(m, FI_AUTH, "OAuth mechanisms need oauth2_token_cmd");
	if (pw && r->oauth2_token_cmd != NULL)
		return field_err(m, FI_AUTH, "password mechanisms need password or password_cmd, "
				 "not oauth2_token_cmd");
	return 0;
}

static int finish_remote(struct mapper *m, struct cfg_account *a)
{
	struct cfg_remote *r = &a->remote;

	if (m->set_by[FI_PORT] == NULL)
		r->port = r->tls == CFG_TLS_IMPLICIT ? 993 : 143;
	if (r->tls == CFG_TLS_NONE && r->tls_ca_file != NULL)
		return field_err(m, FI_CA, "has no effect with \"tls: none\"");
	if (r->tls_ca_file != NULL && m->set_by[FI_CA] != NULL) {
		char path[256];

		field_path(m, &fields[FI_CA], path, sizeof(path));
		r->tls_ca_file_at = xasprintf("%s:%u:%u: %s", m->file, m->set_by[FI_CA]->line,
					      m->set_by[FI_CA]->col, path);
	}
	if (r->tls == CFG_TLS_NONE && r->tls_fingerprint.set)
		return field_err(m, FI_FPR, "has no effect with \"tls: none\"");
	return check_credentials(m, a);
}

static int default_state(struct mapper *m, struct cfg_account *a)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	char pwbuf[4096];
	const char *home;

	if (xdg != NULL && xdg[0] == '/') {
		a->state = xasprintf("%s/ferry/%s", xdg, a->name);
		return 0;
	}
	home = cfg_home_dir(pwbuf, sizeof(pwbuf));
	if (home == NULL)
		return field_err(m, FI_STATE, "no default: neither XDG_STATE_HOME nor a home "
				 "directory is set");
	a->state = xasprintf("%s/.local/state/ferry/%s", home, a->name);
	return 0;
}

static int account_finish(struct mapper *m, struct cfg_account *a)
{
	if (finish_remote(m, a) < 0)
		return -1;
	if (a->local.inbox == NULL)
		a->local.inbox = xasprintf("%s/INBOX", a->local.path);
	if (a->state == NULL && default_state(m, a) < 0)
		return -1;
	return 0;
}

/* Path without repeated or trailing slashes, for comparisons. */
static char *path_norm(const char *p)
{
	char *out = xmalloc(strlen(p) + 1);
	size_t n = 0;

	for (; *p != '\0'; p++)
		if (*p != '/' || n == 0 || out[n - 1] != '/')
			out[n++] = *p;
	while (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	return out;
}

/* 1 when a == b or one contains the other. */
static int paths_overlap(const char *a, const char *b)
{
	char *na = path_norm(a), *nb = path_norm(b);
	size_t la = strlen(na), lb = strlen(nb);
	size_t l = la < lb ? la : lb;
	int r = strncmp(na, nb, l) == 0 &&
		(la == lb || (la < lb ? nb[l] == '/' || l == 1 : na[l] == '/' || l == 1));

	free(na);
	free(nb);
	return r;
}

static int check_overlap(struct mapper *m, const struct cfg *cfg, const struct cfg_account *a)
{
	size_t i;

	for (i = 0; i < cfg->n_accounts; i++) {
		const struct cfg_account *o = &cfg->accounts[i];

		if (o == a)
			break;
		if (paths_overlap(a->local.path, o->local.path))
			return field_err(m, FI_PATH, "overlaps account \"%s\"'s local.path", o->name);
		if (paths_overlap(a->state, o->state))
			return field_err(m, FI_STATE, "overlaps account \"%s\"'s state directory",
					 o->name);
	}
	return 0;
}

static bool valid_account_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > CFG_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int map_account(struct mapper *m, struct cfg *cfg, struct cfg_account *a,
		       const struct cfg_node *k, const struct cfg_node *v)
{
	const struct cfg_node *kk;
	char path[256];

	memset(m->sect_map, 0, sizeof(m->sect_map));
	memset(m->seen, 0, sizeof(m->seen));
	memset(m->set_by, 0, sizeof(m->set_by));
	m->account = a->name;
	m->account_key = k;
	snprintf(path, sizeof(path), "accounts.%s", a->name);
	if (v->kind != CFG_NODE_MAP)
		return node_err(m, cfg_node_is_null(v) ? k : v, path,
				"expected a mapping with \"remote\" and \"local\", got %s",
				cfg_node_kind_name(v));
	m->account_map = v;
	for (kk = v->first; kk != NULL; kk = kk->next->next) {
		int s = enum_index(sections, kk->text);

		if (s >= 0 && strcmp(sections[s], kk->text) == 0) {
			if (map_section(m, a, s, kk, kk->next) < 0)
				return -1;
		} else if (map_pair(m, a, NULL, kk, kk->next) < 0) {
			return -1;
		}
	}
	if (apply_defaults(m, a) < 0 || account_finish(m, a) < 0)
		return -1;
	return check_overlap(m, cfg, a);
}

static int map_accounts(struct mapper *m, struct cfg *cfg, const struct cfg_node *k,
			const struct cfg_node *v)
{
	const struct cfg_node *kk;
	size_t i;

	if (cfg_node_is_null(v) || (v->kind == CFG_NODE_MAP && v->n_children == 0))
		return node_err(m, k, "accounts", "no accounts defined");
	if (v->kind != CFG_NODE_MAP)
		return node_err(m, v, "accounts", "expected a mapping of account names, got %s",
				cfg_node_kind_name(v));
	if (v->n_children / 2 > CFG_MAX_ACCOUNTS)
		return node_err(m, v, "accounts", "more than %d accounts", CFG_MAX_ACCOUNTS);
	cfg->accounts = xcalloc(v->n_children / 2, sizeof(struct cfg_account));
	for (kk = v->first; kk != NULL; kk = kk->next->next) {
		struct cfg_account *a = &cfg->accounts[cfg->n_accounts];
		char *q;

		if (!valid_account_name(kk->text, kk->len)) {
			q = cfg_quote(kk->text, kk->len, 64);
			node_err(m, kk, "accounts", "invalid account name %s: use 1 to %d letters, "
				 "digits, \".\", \"_\" and \"-\"", q, CFG_NAME_MAX);
			free(q);
			return -1;
		}
		for (i = 0; i < cfg->n_accounts; i++)
			if (strcmp(cfg->accounts[i].name, kk->text) == 0)
				return node_err(m, kk, "accounts", "duplicate account \"%s\"",
						kk->text);
		a->name = xstrdup(kk->text);
		cfg->n_accounts++;
		if (map_account(m, cfg, a, kk, kk->next) < 0)
			return -1;
	}
	return 0;
}

static int map_root(struct mapper *m, struct cfg *cfg, const struct cfg_node *root)
{
	const struct cfg_node *k, *accounts = NULL;
	char *q;

	if (root == NULL || cfg_node_is_null(root))
		return err_set(m->e, ERR_CONFIG, "%s:1:1: empty configuration: expected "
			       "\"accounts:\"", m->file);
	if (root->kind != CFG_NODE_MAP)
		return node_err(m, root, NULL, "expected a mapping with \"accounts:\" at the "
				"top level, got %s", cfg_node_kind_name(root));
	for (k = root->first; k != NULL; k = k->next->next) {
		if (strcmp(k->text, "accounts") != 0) {
			q = cfg_quote(k->text, k->len, 64);
			node_err(m, k, NULL, "unknown key %s (expected \"accounts\")", q);
			free(q);
			return -1;
		}
		if (accounts != NULL)
			return duplicate_key(m, k, "accounts", accounts);
		accounts = k;
		if (map_accounts(m, cfg, k, k->next) < 0)
			return -1;
	}
	if (accounts == NULL)
		return node_err(m, root, NULL, "missing required key \"accounts\"");
	return 0;
}

/* The FI_ indices above must name the keys the rules expect. */
static bool table_is_consistent(void)
{
	return strcmp(fields[FI_PORT].key, "port") == 0 &&
	       strcmp(fields[FI_TLS].key, "tls") == 0 &&
	       strcmp(fields[FI_CA].key, "tls_ca_file") == 0 &&
	       strcmp(fields[FI_FPR].key, "tls_fingerprint") == 0 &&
	       strcmp(fields[FI_PASSWORD].key, "password") == 0 &&
	       strcmp(fields[FI_PASSWORD_CMD].key, "password_cmd") == 0 &&
	       strcmp(fields[FI_TOKEN_CMD].key, "oauth2_token_cmd") == 0 &&
	       strcmp(fields[FI_AUTH].key, "auth") == 0 &&
	       strcmp(fields[FI_PATH].key, "path") == 0 &&
	       strcmp(fields[FI_INBOX].key, "inbox") == 0 &&
	       strcmp(fields[FI_STATE].key, "state") == 0;
}

int cfg_load_buffer(const char *name, const char *data, size_t len,
		    struct cfg **cfg_out, struct err *e)
{
	struct mapper m = { .file = name, .e = e };
	struct cfg_tree tree;
	struct cfg *cfg;
	int rc;

	assert(table_is_consistent());
	if (cfg_tree_parse(&tree, name, data, len, e) < 0)
		return -1;
	cfg = xcalloc(1, sizeof(*cfg));
	cfg->file = xstrdup(name);
	rc = map_root(&m, cfg, tree.root);
	cfg_tree_release(&tree);
	if (rc < 0) {
		cfg_free(cfg);
		return -1;
	}
	*cfg_out = cfg;
	return 0;
}

static void add_warning(struct cfg *cfg, char *msg)
{
	cfg->warnings = xrealloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof(char *));
	cfg->warnings[cfg->n_warnings++] = msg;
}

static void warn_exposed_passwords(struct cfg *cfg, const struct stat *st)
{
	size_t i;

	if ((st->st_mode & (S_IRGRP | S_IROTH)) == 0)
		return;
	for (i = 0; i < cfg->n_accounts; i++)
		if (cfg->accounts[i].remote.password != NULL)
			add_warning(cfg, xasprintf("%s: account \"%s\" has a plain password and "
						   "the file is readable by others; run "
						   "\"chmod 600 %s\" or use password_cmd",
						   cfg->file, cfg->accounts[i].name, cfg->file));
}

/* Read the whole file (at most CFG_MAX_FILE bytes) into a buffer. */
static int read_file(int fd, const char *path, struct buf *b, struct err *e)
{
	for (;;) {
		ssize_t n;

		if (buf_reserve(b, 4096, e) < 0)
			return err_set(e, ERR_CONFIG, "%s: file larger than 1 MiB", path);
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(e, ERR_CONFIG, errno, "cannot read \"%s\"", path);
		if (n == 0)
			return 0;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
}

int cfg_load_file(const char *path, struct cfg **cfg_out, struct err *e)
{
	struct buf b = BUF_INIT(CFG_MAX_FILE + 4096);
	struct stat st;
	struct cfg *cfg;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, ERR_CONFIG, errno, "cannot open \"%s\"", path);
	if (fstat(fd, &st) < 0) {
		rc = err_sys(e, ERR_CONFIG, errno, "cannot stat \"%s\"", path);
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, ERR_CONFIG, "\"%s\" is not a regular file", path);
	}
	rc = read_file(fd, path, &b, e);
	close(fd);
	if (rc == 0)
		rc = cfg_load_buffer(path, buf_cstr(&b), b.len, &cfg, e);
	buf_release_secret(&b);
	if (rc < 0)
		return -1;
	warn_exposed_passwords(cfg, &st);
	*cfg_out = cfg;
	return 0;
}

int cfg_default_path(char **path_out, struct err *e)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	char pwbuf[4096];
	const char *home;

	if (xdg != NULL && xdg[0] == '/') {
		*path_out = xasprintf("%s/ferry/config.yaml", xdg);
		return 0;
	}
	home = cfg_home_dir(pwbuf, sizeof(pwbuf));
	if (home == NULL)
		return err_set(e, ERR_CONFIG, "no configuration file: neither XDG_CONFIG_HOME "
			       "nor a home directory is set (use -c FILE)");
	*path_out = xasprintf("%s/.config/ferry/config.yaml", home);
	return 0;
}

static void strlist_free(struct cfg_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static void account_free(struct cfg_account *a)
{
	size_t i;

	free(a->remote.tls_ca_file_at);
	a->remote.tls_ca_file_at = NULL;
	for (i = 0; i < N_FIELDS; i++) {
		void *slot = (char *)a + fields[i].offset;

		switch (fields[i].type) {
		case F_STRING:
		case F_HOST:
		case F_PATH:
			free(*(char **)slot);
			break;
		case F_SECRET:
			free_secret(*(char **)slot);
			break;
		case F_PATTERNS:
			strlist_free(slot);
			break;
		default:
			break;
		}
	}
	free(a->name);
}

#define CA_FILE_MAX (4u << 20)

int cfg_check_ca_file(const struct cfg_account *a, struct err *e)
{
	const char *path = a->remote.tls_ca_file;
	const char *at = a->remote.tls_ca_file_at ? a->remote.tls_ca_file_at : "tls_ca_file";
	struct stat st;
	char *text;
	size_t want;
	ssize_t n;
	int fd;
	bool pem;

	if (path == NULL)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set(e, ERR_CONFIG, "%s: cannot read \"%s\": %s", at, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, ERR_CONFIG, "%s: \"%s\" is not a regular file", at, path);
	}
	want = (uint64_t)st.st_size < CA_FILE_MAX ? (size_t)st.st_size : CA_FILE_MAX;
	text = xmalloc(want + 1);
	n = read(fd, text, want);
	close(fd);
	if (n < 0) {
		free(text);
		return err_set(e, ERR_CONFIG, "%s: cannot read \"%s\": %s", at, path, strerror(errno));
	}
	text[n] = '\0';
	pem = memmem(text, (size_t)n, "-----BEGIN CERTIFICATE-----", 27) != NULL;
	free(text);
	if (!pem)
		return err_set(e, ERR_CONFIG, "%s: \"%s\" holds no PEM certificate "
			       "(\"-----BEGIN CERTIFICATE-----\")", at, path);
	return 0;
}

void cfg_free(struct cfg *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->n_accounts; i++)
		account_free(&cfg->accounts[i]);
	free(cfg->accounts);
	for (i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg->file);
	free(cfg);
}

const struct cfg_account *cfg_find_account(const struct cfg *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_accounts; i++)
		if (strcmp(cfg->accounts[i].name, name) == 0)
			return &cfg->accounts[i];
	return NULL;
}

const char *cfg_tls_name(enum cfg_tls tls)
{
	return (unsigned)tls < 3 ? tls_names[tls] : "?";
}

const char *cfg_layout_name(enum cfg_layout layout)
{
	return (unsigned)layout < 2 ? layout_names[layout] : "?";
}

const char *cfg_direction_name(enum cfg_direction dir)
{
	return (unsigned)dir < 3 ? direction_names[dir] : "?";
}

const char *cfg_auth_name(enum cfg_auth_mech mech)
{
	return (unsigned)mech < CFG_AUTH_COUNT ? auth_names[mech] : "?";
}
