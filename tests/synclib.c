/*
 * synclib.c - see synclib.h.  Test code: bounded, but failures print and
 * return -1 rather than carrying struct err.
 */
#include "synclib.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

#define SL_TEXT_MAX (64u << 20)
#define SL_MAX_MSGS 100000

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("synclib: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- small string builder (unbounded within SL_TEXT_MAX) ---- */
struct sb {
	char *s;
	size_t len, cap;
};

static void sb_addn(struct sb *b, const char *p, size_t n)
{
	if (b->len + n + 1 > SL_TEXT_MAX)
		abort();
	b->s = xgrow(b->s, &b->cap, b->len + n + 1, 1);
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_adds(struct sb *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void sb_addf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_addf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	sb_adds(b, s);
	free(s);
}

static char *sb_take(struct sb *b)
{
	char *s = b->s ? b->s : xstrdup("");

	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

/* ---- string vectors ---- */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strv_push(char ***v, size_t *n, size_t *cap, char *s)
{
	*v = xgrow(*v, cap, *n + 2, sizeof(**v));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

void sl_strv_free(char **v)
{
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

/* ---- setup ---- */
int sl_write_config_remote(struct sl_ctx *c, const char *remote_extra, const char *extra)
{
	struct harness_account a = {
		.user = c->user,
		.password = c->pass,
		.local_path = c->root,
		.state_path = c->state,
		.remote_extra = remote_extra,
		.extra = extra,
	};

	return harness_write_config(&c->d, c->config, &a);
}

int sl_config_port(struct sl_ctx *c, int from, int to)
{
	char *text = harness_read_file(c->config, 1 << 20);
	char *want = xasprintf("port: %d\n", from), *at, *out;
	int rc = -1;

	if (text != NULL && (at = strstr(text, want)) != NULL) {
		*at = '\0';
		out = xasprintf("%sport: %d\n%s", text, to, at + strlen(want));
		rc = harness_write_file(c->config, out);
		free(out);
	}
	free(want);
	free(text);
	return rc;
}

int sl_write_config(struct sl_ctx *c, const char *extra)
{
	return sl_write_config_remote(c, NULL, extra);
}

int sl_setup(struct sl_ctx *c, bool rev1, const char *extra)
{
	memset(c, 0, sizeof(*c));
	c->rev1 = rev1;
	if (harness_dovecot_start(&c->d, rev1 ? "--caps imap4rev1" : NULL) < 0)
		return -1;
	c->user = c->d.user1;
	c->pass = c->d.pass1;
	snprintf(c->root, sizeof(c->root), "%s/Mail", c->d.tmp);
	snprintf(c->state, sizeof(c->state), "%s/state", c->d.tmp);
	snprintf(c->config, sizeof(c->config), "%s/config.yaml", c->d.tmp);
	fprintf(stderr, "synclib: server %s on port %d (%s)\n", c->d.tmp, c->d.imaps_port,
		rev1 ? "imap4rev1" : "full caps");
	return sl_write_config(c, extra);
}

void sl_teardown(struct sl_ctx *c)
{
	harness_dovecot_stop(&c->d);
}

/* ---- messages ---- */
char *sl_msgid(const char *tag)
{
	return xasprintf("<%s@ferry.test>", tag);
}

char *sl_message(const char *tag, size_t body_bytes)
{
	struct sb b = { 0 };
	unsigned long h = 5381;
	size_t line = 0;

	for (const char *p = tag; *p; p++)
		h = h * 33 + (unsigned char)*p;
	sb_addf(&b, "From: Tester <tester@ferry.test>\nTo: alice@ferry.test\n"
		    "Subject: %s\nDate: Mon, 01 Jan 2024 12:00:00 +0000\n"
		    "Message-ID: <%s@ferry.test>\nMIME-Version: 1.0\n"
		    "Content-Type: text/plain; charset=us-ascii\n\n", tag, tag);
	sb_addf(&b, "Body of %s.\n", tag);
	while (b.len < body_bytes) {
		sb_addf(&b, "%s line %zu %016lx abcdefghijklmnopqrstuvwxyz0123456789\n", tag, line++, h);
		h = h * 6364136223846793005UL + 1442695040888963407UL;
	}
	return sb_take(&b);
}

static char *to_crlf(const char *text, size_t *len_out)
{
	struct sb b = { 0 };

	for (const char *p = text; *p; p++) {
		if (*p == '\n' && (p == text || p[-1] != '\r'))
			sb_addn(&b, "\r", 1);
		sb_addn(&b, p, 1);
	}
	*len_out = b.len;
	return sb_take(&b);
}

/* ---- flags ---- */
char *sl_canon_flags(const char *flags)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct sb b = { 0 };
	const char *p = flags;

	while (*p) {
		size_t len;

		while (*p == ' ' || *p == '(' || *p == ')')
			p++;
		len = strcspn(p, " ()");
		if (!len)
			continue;
		if (!(len == 7 && strncasecmp(p, "\\Recent", 7) == 0))
			strv_push(&v, &n, &cap, xstrndup(p, len));
		p += len;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(v[i], v[i - 1]) == 0)
			continue;
		if (b.len)
			sb_adds(&b, " ");
		sb_adds(&b, v[i]);
	}
	sl_strv_free(v);
	return sb_take(&b);
}

/* ---- content identity ---- */
static uint64_t body_hash(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r')
			continue;
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The Message-ID value in a header block (first match), "" if none. */
static char *find_msgid(const char *h, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t end = i;

		while (end < n && h[end] != '\n')
			end++;
		if (end - i > 11 && strncasecmp(h + i, "Message-ID:", 11) == 0) {
			size_t a = i + 11, z = end;

			while (a < z && (h[a] == ' ' || h[a] == '\t'))
				a++;
			while (z > a && (h[z - 1] == '\r' || h[z - 1] == ' ' || h[z - 1] == '\t'))
				z--;
			return xstrndup(h + a, z - a);
		}
		i = end + 1;
	}
	return xstrdup("");
}

/* Offset of the body: after the first empty line (LF or CRLF), or n. */
static size_t body_start(const char *m, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t end = i;

		while (end < n && m[end] != '\n')
			end++;
		if (end == i || (end == i + 1 && m[i] == '\r'))
			return end < n ? end + 1 : n;
		i = end + 1;
	}
	return n;
}

static char *make_ident(const char *msgid, const char *body, size_t n)
{
	return xasprintf("%s#%016llx", msgid, (unsigned long long)body_hash(body, n));
}

/* ---- lists ---- */
void sl_list_release(struct sl_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].msgid);
		free(l->v[i].ident);
		free(l->v[i].flags);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void sl_snap_release(struct sl_snap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->names[i]);
		sl_list_release(&s->lists[i]);
	}
	free(s->names);
	free(s->lists);
	memset(s, 0, sizeof(*s));
}

static struct sl_msg *list_add(struct sl_list *l, size_t *cap)
{
	l->v = xgrow(l->v, cap, l->n + 1, sizeof(*l->v));
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

static int cmp_msg(const void *a, const void *b)
{
	const struct sl_msg *x = a, *y = b;
	int r = strcmp(x->ident, y->ident);

	if (r)
		return r;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static void list_sort(struct sl_list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_msg);
}

size_t sl_list_dups(const struct sl_list *l)
{
	size_t d = 0;

	for (size_t i = 1; i < l->n; i++)
		if (strcmp(l->v[i].ident, l->v[i - 1].ident) == 0)
			d++;
	return d;
}

size_t sl_snap_count(const struct sl_snap *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->lists[i].n;
	return n;
}

/* ---- raw IMAP ---- */
char *sl_quote(const char *s)
{
	struct sb b = { 0 };

	sb_adds(&b, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			sb_adds(&b, "\\");
		sb_addn(&b, s, 1);
	}
	sb_adds(&b, "\"");
	return sb_take(&b);
}

/* True if `reply` holds "TAG OK" at a line start. */
static bool tagged_ok(const char *reply, const char *tag)
{
	char *want = xasprintf("%s OK", tag);
	bool ok = harness_has_line(reply, want);

	free(want);
	return ok;
}

int sl_imap(struct sl_ctx *c, const char *mailbox, const char *const cmds[], char **reply_out)
{
	char **lines = NULL, **tags = NULL;
	size_t n = 0, cap = 0, nt = 0, capt = 0;
	char *reply = NULL, *q = NULL;
	int rc;

	q = sl_quote(c->pass);
	strv_push(&lines, &n, &cap, xasprintf("l LOGIN %s %s", c->user, q));
	free(q);
	strv_push(&tags, &nt, &capt, xstrdup("l"));
	if (mailbox) {
		q = sl_quote(mailbox);
		strv_push(&lines, &n, &cap, xasprintf("s SELECT %s", q));
		strv_push(&tags, &nt, &capt, xstrdup("s"));
		free(q);
	}
	for (size_t i = 0; cmds && cmds[i]; i++) {
		const char *cmd = cmds[i];

		if (strncmp(cmd, "\x01", 1) == 0) { /* a literal's bytes: sent as is */
			strv_push(&lines, &n, &cap, xstrdup(cmd + 1));
			continue;
		}
		strv_push(&lines, &n, &cap, xasprintf("c%zu %s", i, cmd));
		strv_push(&tags, &nt, &capt, xasprintf("c%zu", i));
	}
	strv_push(&lines, &n, &cap, xstrdup("z LOGOUT"));
	rc = harness_imap_raw(c->d.imap_port, (const char *const *)lines, &reply);
	for (size_t i = 0; rc == 0 && i < nt; i++)
		if (!tagged_ok(reply, tags[i])) {
			say("IMAP command %s failed:\n%s", tags[i], reply);
			rc = -1;
		}
	if (reply_out)
		*reply_out = reply;
	else
		free(reply);
	sl_strv_free(lines);
	sl_strv_free(tags);
	return rc;
}

int sl_remote_append(struct sl_ctx *c, const char *mailbox, const char *text, const char *flags)
{
	return sl_remote_append_dated(c, mailbox, text, flags, NULL);
}

int sl_remote_append_dated(struct sl_ctx *c, const char *mailbox, const char *text, const char *flags,
			   const char *date)
{
	size_t len;
	char *crlf = to_crlf(text, &len), *q = sl_quote(mailbox), *lit;
	char *cmd;
	int rc;

	/* The harness adds the CRLF that ends the command after the literal. */
	cmd = date ? xasprintf("APPEND %s (%s) \"%s\" {%zu+}", q, flags ? flags : "", date, len)
		   : xasprintf("APPEND %s (%s) {%zu+}", q, flags ? flags : "", len);
	lit = xasprintf("\x01%s", crlf);
	{
		const char *cmds[] = { cmd, lit, NULL };

		rc = sl_imap(c, NULL, cmds, NULL);
	}
	free(cmd);
	free(lit);
	free(q);
	free(crlf);
	return rc;
}

/* A tiny reader for FETCH/LIST responses. */
struct rd {
	const char *p, *end;
};

static void rd_sp(struct rd *r)
{
	while (r->p < r->end && *r->p == ' ')
		r->p++;
}

/* An atom, a quoted string, a literal or NIL; *out xmalloc'd (NIL: NULL). */
static int rd_string(struct rd *r, char **out, size_t *len_out)
{
	rd_sp(r);
	*out = NULL;
	if (r->p >= r->end)
		return -1;
	if (*r->p == '{') {
		char *e;
		unsigned long long n = strtoull(r->p + 1, &e, 10);

		if (*e != '}' || e + 3 > r->end || e[1] != '\r' || e[2] != '\n' || n > (unsigned long long)(r->end - e - 3))
			return -1;
		*out = xmemdup(e + 3, (size_t)n + 1);
		(*out)[n] = '\0';
		*len_out = (size_t)n;
		r->p = e + 3 + n;
		return 0;
	}
	if (*r->p == '"') {
		struct sb b = { 0 };

		r->p++;
		while (r->p < r->end && *r->p != '"') {
			if (*r->p == '\\' && r->p + 1 < r->end)
				r->p++;
			sb_addn(&b, r->p, 1);
			r->p++;
		}
		if (r->p >= r->end)
			return -1;
		r->p++;
		*len_out = b.len;
		*out = sb_take(&b);
		return 0;
	}
	{
		const char *a = r->p;

		while (r->p < r->end && *r->p != ' ' && *r->p != ')' && *r->p != '\r')
			r->p++;
		if (r->p - a == 3 && strncasecmp(a, "NIL", 3) == 0) {
			*len_out = 0;
			return 0;
		}
		*out = xstrndup(a, (size_t)(r->p - a));
		*len_out = (size_t)(r->p - a);
		return 0;
	}
}

/* A parenthesised list as text without the outer parens. */
static int rd_paren(struct rd *r, char **out)
{
	const char *a;
	int depth = 0;

	rd_sp(r);
	if (r->p >= r->end || *r->p != '(')
		return -1;
	a = r->p + 1;
	do {
		if (*r->p == '(')
			depth++;
		else if (*r->p == ')')
			depth--;
		r->p++;
	} while (depth && r->p < r->end);
	if (depth)
		return -1;
	*out = xstrndup(a, (size_t)(r->p - 1 - a));
	return 0;
}

/* Parse one "* N FETCH (...)" starting after "FETCH ". */
static int parse_fetch(struct rd *r, struct sl_list *l, size_t *cap)
{
	struct sl_msg *m;
	char *hdr = NULL, *body = NULL, *flags = NULL;
	size_t hlen = 0, blen = 0;
	uint32_t uid = 0;

	rd_sp(r);
	if (r->p >= r->end || *r->p != '(')
		return -1;
	r->p++;
	for (;;) {
		const char *a;
		size_t alen;

		rd_sp(r);
		if (r->p >= r->end)
			goto bad;
		if (*r->p == ')') {
			r->p++;
			break;
		}
		a = r->p;
		if (strncasecmp(a, "BODY[", 5) == 0) {
			const char *close = memchr(a, ']', (size_t)(r->end - a));

			if (!close)
				goto bad;
			r->p = close + 1;
			if (r->p < r->end && *r->p == '<') { /* origin octet */
				while (r->p < r->end && *r->p != '>')
					r->p++;
				r->p++;
			}
			if (strncasecmp(a, "BODY[HEADER", 11) == 0) {
				free(hdr);
				if (rd_string(r, &hdr, &hlen) < 0)
					goto bad;
			} else {
				free(body);
				if (rd_string(r, &body, &blen) < 0)
					goto bad;
			}
			continue;
		}
		while (r->p < r->end && *r->p != ' ')
			r->p++;
		alen = (size_t)(r->p - a);
		if (alen == 3 && strncasecmp(a, "UID", 3) == 0) {
			rd_sp(r);
			uid = (uint32_t)strtoul(r->p, (char **)&r->p, 10);
		} else if (alen == 5 && strncasecmp(a, "FLAGS", 5) == 0) {
			free(flags);
			if (rd_paren(r, &flags) < 0)
				goto bad;
		} else {
			/* skip an unknown item's value */
			char *junk = NULL;
			size_t jl;

			rd_sp(r);
			if (r->p < r->end && *r->p == '(') {
				if (rd_paren(r, &junk) < 0)
					goto bad;
			} else if (rd_string(r, &junk, &jl) < 0) {
				goto bad;
			}
			free(junk);
		}
	}
	if (!uid || !flags || !body)
		goto bad;
	m = list_add(l, cap);
	m->uid = uid;
	m->msgid = find_msgid(hdr ? hdr : "", hlen);
	m->ident = make_ident(m->msgid, body, blen);
	m->flags = sl_canon_flags(flags);
	m->size = hlen + blen;
	free(hdr);
	free(body);
	free(flags);
	return 0;
bad:
	free(hdr);
	free(body);
	free(flags);
	return -1;
}

int sl_remote_list(struct sl_ctx *c, const char *mailbox, struct sl_list *out)
{
	const char *cmds[] = {
		"UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] BODY.PEEK[TEXT])",
		NULL,
	};
	char *reply = NULL;
	size_t cap = 0;
	struct rd r;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (sl_imap(c, mailbox, cmds, &reply) < 0) {
		free(reply);
		return -1;
	}
	r.p = reply;
	r.end = reply + strlen(reply);
	while (r.p < r.end) {
		const char *nl;

		if (strncmp(r.p, "* ", 2) == 0) {
			const char *f = r.p + 2;

			while (f < r.end && isdigit((unsigned char)*f))
				f++;
			if (f > r.p + 2 && strncmp(f, " FETCH ", 7) == 0) {
				r.p = f + 7;
				if (parse_fetch(&r, out, &cap) < 0) {
					say("cannot parse FETCH in %s", mailbox);
					rc = -1;
					break;
				}
			}
		}
		nl = memchr(r.p, '\n', (size_t)(r.end - r.p));
		r.p = nl ? nl + 1 : r.end;
	}
	free(reply);
	if (rc < 0)
		sl_list_release(out);
	else
		list_sort(out);
	return rc;
}

char **sl_remote_mailboxes(struct sl_ctx *c)
{
	const char *cmds[] = { "LIST \"\" \"*\"", NULL };
	char *reply = NULL, **v = NULL;
	size_t n = 0, cap = 0;
	struct rd r;

	if (sl_imap(c, NULL, cmds, &reply) < 0) {
		free(reply);
		return NULL;
	}
	strv_push(&v, &n, &cap, NULL); /* an empty, NULL-terminated vector */
	n = 0;
	r.p = reply;
	r.end = reply + strlen(reply);
	while (r.p < r.end) {
		const char *nl;

		if (strncmp(r.p, "* LIST ", 7) == 0) {
			char *attrs = NULL, *sep = NULL, *name = NULL;
			size_t len;

			r.p += 7;
			if (rd_paren(&r, &attrs) == 0 && rd_string(&r, &sep, &len) == 0 &&
			    rd_string(&r, &name, &len) == 0 && name) {
				if (!strcasestr(attrs, "\\Noselect") && !strcasestr(attrs, "\\NonExistent"))
					strv_push(&v, &n, &cap, name);
				else
					free(name);
			} else {
				free(name);
			}
			free(attrs);
			free(sep);
		}
		nl = memchr(r.p, '\n', (size_t)(r.end - r.p));
		r.p = nl ? nl + 1 : r.end;
	}
	free(reply);
	qsort(v, n, sizeof(*v), cmp_str);
	return v;
}

int sl_remote_snap(struct sl_ctx *c, struct sl_snap *out)
{
	char **names = sl_remote_mailboxes(c);
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (!names)
		return -1;
	while (names[n])
		n++;
	out->names = names;
	out->lists = xcalloc(n ? n : 1, sizeof(*out->lists));
	out->n = n;
	for (size_t i = 0; i < n; i++)
		if (sl_remote_list(c, names[i], &out->lists[i]) < 0) {
			sl_snap_release(out);
			return -1;
		}
	return 0;
}

uint32_t sl_remote_uidvalidity(struct sl_ctx *c, const char *mailbox)
{
	char *q = sl_quote(mailbox), *cmd = xasprintf("STATUS %s (UIDVALIDITY)", q), *reply = NULL;
	const char *cmds[] = { cmd, NULL };
	uint32_t v = 0;

	if (sl_imap(c, NULL, cmds, &reply) == 0) {
		const char *p = strstr(reply, "UIDVALIDITY ");

		if (p)
			v = (uint32_t)strtoul(p + 12, NULL, 10);
	}
	free(reply);
	free(cmd);
	free(q);
	return v;
}

uint32_t sl_remote_uid(struct sl_ctx *c, const char *mailbox, const char *msgid)
{
	struct sl_list l;
	uint32_t uid = 0;
	size_t hits = 0;

	if (sl_remote_list(c, mailbox, &l) < 0)
		return 0;
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.v[i].msgid, msgid) == 0) {
			uid = l.v[i].uid;
			hits++;
		}
	sl_list_release(&l);
	if (hits != 1) {
		say("%zu messages %s in %s", hits, msgid, mailbox);
		return 0;
	}
	return uid;
}

int sl_remote_store(struct sl_ctx *c, const char *mailbox, const char *msgid, const char *op, const char *flags)
{
	uint32_t uid = sl_remote_uid(c, mailbox, msgid);
	char *cmd;
	int rc;

	if (!uid)
		return -1;
	cmd = xasprintf("UID STORE %u %s (%s)", uid, op, flags);
	{
		const char *cmds[] = { cmd, NULL };

		rc = sl_imap(c, mailbox, cmds, NULL);
	}
	free(cmd);
	return rc;
}

int sl_remote_move(struct sl_ctx *c, const char *from, const char *msgid, const char *to)
{
	uint32_t uid = sl_remote_uid(c, from, msgid);
	char *q = sl_quote(to), *cmd;
	int rc = -1;

	if (uid) {
		cmd = xasprintf("UID MOVE %u %s", uid, q);
		const char *cmds[] = { cmd, NULL };

		rc = sl_imap(c, from, cmds, NULL);
		free(cmd);
	}
	free(q);
	return rc;
}

int sl_remote_expunge(struct sl_ctx *c, const char *mailbox, const char *msgid)
{
	uint32_t uid = sl_remote_uid(c, mailbox, msgid);
	char *a, *b;
	int rc;

	if (!uid)
		return -1;
	a = xasprintf("UID STORE %u +FLAGS.SILENT (\\Deleted)", uid);
	b = xasprintf("UID EXPUNGE %u", uid);
	{
		const char *cmds[] = { a, b, NULL };

		rc = sl_imap(c, mailbox, cmds, NULL);
	}
	free(a);
	free(b);
	return rc;
}

static int one_cmd(struct sl_ctx *c, const char *verb, const char *m1, const char *m2)
{
	char *q1 = sl_quote(m1), *q2 = m2 ? sl_quote(m2) : NULL;
	char *cmd = m2 ? xasprintf("%s %s %s", verb, q1, q2) : xasprintf("%s %s", verb, q1);
	const char *cmds[] = { cmd, NULL };
	int rc = sl_imap(c, NULL, cmds, NULL);

	free(cmd);
	free(q1);
	free(q2);
	return rc;
}

int sl_remote_create(struct sl_ctx *c, const char *mailbox)
{
	return one_cmd(c, "CREATE", mailbox, NULL);
}

int sl_remote_delete(struct sl_ctx *c, const char *mailbox)
{
	return one_cmd(c, "DELETE", mailbox, NULL);
}

int sl_remote_rename(struct sl_ctx *c, const char *from, const char *to)
{
	return one_cmd(c, "RENAME", from, to);
}

/* ---- local side ---- */
static void escape_component(struct sb *b, const char *comp, size_t len)
{
	if ((len == 3 && (strncmp(comp, "cur", 3) == 0 || strncmp(comp, "new", 3) == 0 ||
			  strncmp(comp, "tmp", 3) == 0))) {
		sb_addf(b, "%%%02X", (unsigned char)comp[0]);
		sb_addn(b, comp + 1, 2);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (comp[i] == '%')
			sb_adds(b, "%25");
		else
			sb_addn(b, comp + i, 1);
	}
}

char *sl_local_path(struct sl_ctx *c, const char *name)
{
	struct sb b = { 0 };
	const char *p = name;

	sb_adds(&b, c->root);
	if (strcasecmp(name, "INBOX") == 0) {
		sb_adds(&b, "/INBOX");
		return sb_take(&b);
	}
	while (*p) {
		size_t len = strcspn(p, "/");

		sb_adds(&b, "/");
		escape_component(&b, p, len);
		p += len;
		if (*p == '/')
			p++;
	}
	return sb_take(&b);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decode a relative disk path into an IMAP name (NULL if not canonical). */
static char *decode_rel(const char *rel)
{
	struct sb b = { 0 };

	if (strcmp(rel, "INBOX") == 0)
		return xstrdup("INBOX");
	for (const char *p = rel; *p; p++) {
		if (*p == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

			if (lo < 0) {
				free(sb_take(&b));
				return NULL;
			}
			char ch = (char)(hi * 16 + lo);

			sb_addn(&b, &ch, 1);
			p += 2;
		} else {
			sb_addn(&b, p, 1);
		}
	}
	return sb_take(&b);
}

static bool is_dir(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void walk(const char *root, const char *rel, char ***v, size_t *n, size_t *cap)
{
	char *path = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	char *cur = xasprintf("%s/cur", path);
	DIR *dir;
	struct dirent *de;

	if (*rel && is_dir(cur)) {
		char *name = decode_rel(rel);

		strv_push(v, n, cap, name ? name : xasprintf("?undecodable:%s", rel));
	}
	free(cur);
	dir = opendir(path);
	while (dir && (de = readdir(dir))) {
		char *sub, *full;

		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (strcmp(de->d_name, "cur") == 0 || strcmp(de->d_name, "new") == 0 ||
		    strcmp(de->d_name, "tmp") == 0)
			continue;
		full = xasprintf("%s/%s", path, de->d_name);
		if (is_dir(full)) {
			sub = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
			walk(root, sub, v, n, cap);
			free(sub);
		}
		free(full);
	}
	if (dir)
		closedir(dir);
	free(path);
}

char **sl_local_folders(struct sl_ctx *c)
{
	char **v = NULL;
	size_t n = 0, cap = 0;

	strv_push(&v, &n, &cap, NULL);
	n = 0;
	walk(c->root, "", &v, &n, &cap);
	qsort(v, n, sizeof(*v), cmp_str);
	return v;
}

/* dovecot-keywords: "N name" lines -> table[N] */
static void read_keywords(const char *folder_path, char *table[26])
{
	char *path = xasprintf("%s/dovecot-keywords", folder_path);
	char *text = harness_read_file(path, 1 << 20);

	memset(table, 0, 26 * sizeof(*table));
	free(path);
	if (!text)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *e;
		long i = strtol(line, &e, 10);

		if (e != line && *e == ' ' && i >= 0 && i < 26 && !table[i])
			table[i] = xstrdup(e + 1);
	}
	free(text);
}

static char *letters_to_flags(const char *letters, char *const table[26])
{
	struct sb b = { 0 };
	char *canon;

	for (const char *p = letters; *p; p++) {
		const char *f = NULL;
		char unk[8];

		switch (*p) {
		case 'D': f = "\\Draft"; break;
		case 'F': f = "\\Flagged"; break;
		case 'P': f = "$Forwarded"; break;
		case 'R': f = "\\Answered"; break;
		case 'S': f = "\\Seen"; break;
		case 'T': f = "\\Deleted"; break;
		default:
			if (*p >= 'a' && *p <= 'z' && table[*p - 'a'])
				f = table[*p - 'a'];
			break;
		}
		if (!f) {
			snprintf(unk, sizeof(unk), "?%c", *p);
			f = unk;
		}
		sb_adds(&b, " ");
		sb_adds(&b, f);
	}
	canon = sl_canon_flags(b.s ? b.s : "");
	free(b.s);
	return canon;
}

static int list_sub(const char *folder_path, const char *sub, char *const table[26],
		    struct sl_list *l, size_t *cap)
{
	char *dpath = xasprintf("%s/%s", folder_path, sub);
	DIR *dir = opendir(dpath);
	struct dirent *de;
	int rc = 0;

	if (!dir) {
		free(dpath);
		return errno == ENOENT ? 0 : -1;
	}
	while ((de = readdir(dir))) {
		char *fpath, *text;
		const char *info;
		struct stat st;
		struct sl_msg *m;
		size_t len, bs;

		if (de->d_name[0] == '.')
			continue;
		fpath = xasprintf("%s/%s", dpath, de->d_name);
		if (lstat(fpath, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(fpath);
			continue;
		}
		text = harness_read_file(fpath, SL_TEXT_MAX);
		free(fpath);
		if (!text) {
			rc = -1;
			continue;
		}
		len = (size_t)st.st_size;
		bs = body_start(text, len);
		m = list_add(l, cap);
		m->name = xasprintf("%s/%s", sub, de->d_name);
		m->msgid = find_msgid(text, bs);
		m->ident = make_ident(m->msgid, text + bs, len - bs);
		info = strstr(de->d_name, ":2,");
		m->flags = info ? letters_to_flags(info + 3, table) : xstrdup("");
		m->size = len;
		free(text);
	}
	closedir(dir);
	free(dpath);
	return rc;
}

int sl_local_list_path(const char *folder_path, struct sl_list *out)
{
	char *table[26];
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	read_keywords(folder_path, table);
	if (list_sub(folder_path, "cur", table, out, &cap) < 0 ||
	    list_sub(folder_path, "new", table, out, &cap) < 0)
		rc = -1;
	for (int i = 0; i < 26; i++)
		free(table[i]);
	list_sort(out);
	return rc;
}

int sl_local_list(struct sl_ctx *c, const char *folder, struct sl_list *out)
{
	char *path = sl_local_path(c, folder);
	int rc = sl_local_list_path(path, out);

	free(path);
	return rc;
}

int sl_local_snap(struct sl_ctx *c, struct sl_snap *out)
{
	char **names = sl_local_folders(c);
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	while (names[n])
		n++;
	out->names = names;
	out->lists = xcalloc(n ? n : 1, sizeof(*out->lists));
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		char *fpath = sl_local_path(c, names[i]);

		if (sl_local_list_path(fpath, &out->lists[i]) < 0) {
			free(fpath);
			sl_snap_release(out);
			return -1;
		}
		free(fpath);
	}
	return 0;
}

static unsigned long deliver_counter;

int sl_local_deliver(struct sl_ctx *c, const char *folder, const char *text, const char *letters)
{
	char *fp = sl_local_path(c, folder);
	char *uniq = xasprintf("%lld.M%luP%ldQ%lu.testclient", (long long)time(NULL),
			       (unsigned long)(clock() & 0xfffff), (long)getpid(), ++deliver_counter);
	char *tmp = xasprintf("%s/tmp/%s", fp, uniq);
	char *dst = letters ? xasprintf("%s/cur/%s:2,%s", fp, uniq, letters)
			    : xasprintf("%s/new/%s", fp, uniq);
	int rc = -1;

	if (harness_write_file(tmp, text) == 0 && rename(tmp, dst) == 0)
		rc = 0;
	else
		say("cannot deliver into %s: %s", fp, strerror(errno));
	free(fp);
	free(uniq);
	free(tmp);
	free(dst);
	return rc;
}

char *sl_local_find(struct sl_ctx *c, const char *folder, const char *msgid)
{
	struct sl_list l;
	char *fp, *found = NULL;
	size_t hits = 0;

	if (sl_local_list(c, folder, &l) < 0)
		return NULL;
	fp = sl_local_path(c, folder);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.v[i].msgid, msgid) == 0) {
			free(found);
			found = xasprintf("%s/%s", fp, l.v[i].name);
			hits++;
		}
	free(fp);
	sl_list_release(&l);
	if (hits != 1) {
		say("%zu local files with %s in %s", hits, msgid, folder);
		free(found);
		return NULL;
	}
	return found;
}

int sl_local_set_flags(struct sl_ctx *c, const char *folder, const char *msgid, const char *letters)
{
	char *path = sl_local_find(c, folder, msgid), *fp, *base, *uniq, *dst;
	int rc;

	if (!path)
		return -1;
	base = strrchr(path, '/') + 1;
	uniq = xstrndup(base, strcspn(base, ":"));
	fp = sl_local_path(c, folder);
	dst = xasprintf("%s/cur/%s:2,%s", fp, uniq, letters);
	rc = rename(path, dst);
	if (rc < 0)
		say("rename %s: %s", path, strerror(errno));
	free(path);
	free(uniq);
	free(fp);
	free(dst);
	return rc;
}

char sl_local_keyword_letter(struct sl_ctx *c, const char *folder, const char *keyword)
{
	char *fp = sl_local_path(c, folder), *table[26], letter = 0;
	int free_i = -1;

	read_keywords(fp, table);
	for (int i = 0; i < 26; i++) {
		if (table[i] && strcmp(table[i], keyword) == 0)
			letter = (char)('a' + i);
		if (!table[i] && free_i < 0)
			free_i = i;
	}
	if (!letter && free_i >= 0) {
		char *path = xasprintf("%s/dovecot-keywords", fp);
		FILE *f = fopen(path, "a");

		if (f) {
			fprintf(f, "%d %s\n", free_i, keyword);
			if (fclose(f) == 0)
				letter = (char)('a' + free_i);
		}
		free(path);
	}
	for (int i = 0; i < 26; i++)
		free(table[i]);
	free(fp);
	return letter;
}

int sl_local_delete(struct sl_ctx *c, const char *folder, const char *msgid)
{
	char *path = sl_local_find(c, folder, msgid);
	int rc;

	if (!path)
		return -1;
	rc = unlink(path);
	free(path);
	return rc;
}

int sl_local_move(struct sl_ctx *c, const char *from, const char *msgid, const char *to)
{
	char *path = sl_local_find(c, from, msgid), *tp, *dst, *sub;
	int rc;

	if (!path)
		return -1;
	tp = sl_local_path(c, to);
	sub = path + strlen(path);
	for (int slashes = 0; sub > path; sub--)
		if (*sub == '/' && ++slashes == 2)
			break;
	dst = xasprintf("%s%s", tp, sub); /* sub = "/cur/NAME" */
	rc = rename(path, dst);
	if (rc < 0)
		say("mv %s %s: %s", path, dst, strerror(errno));
	free(path);
	free(tp);
	free(dst);
	return rc;
}

int sl_local_mkfolder(struct sl_ctx *c, const char *folder)
{
	char *fp = sl_local_path(c, folder);
	static const char *const subs[] = { "cur", "new", "tmp" };
	int rc = 0;

	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", fp, subs[i]);

		if (harness_mkdirs(p) < 0)
			rc = -1;
		free(p);
	}
	free(fp);
	return rc;
}

int sl_local_rmtree(struct sl_ctx *c, const char *folder)
{
	char *fp = folder ? sl_local_path(c, folder) : xstrdup(c->root);
	int rc = harness_remove_tree(fp);

	free(fp);
	return rc;
}

/* ---- comparing ---- */
/* Compare two sorted lists; appends to b; returns differences. */
static size_t list_diff(const char *folder, const char *an, const struct sl_list *a,
			const char *bn, const struct sl_list *b, bool strict, struct sb *r)
{
	size_t i = 0, j = 0, d = 0;

	while (i < a->n || j < b->n) {
		int k = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->v[i].ident, b->v[j].ident);

		if (k < 0) {
			sb_addf(r, "  %s: %s only on %s (flags \"%s\")\n", folder, a->v[i].ident, an, a->v[i].flags);
			i++, d++;
		} else if (k > 0) {
			sb_addf(r, "  %s: %s only on %s (flags \"%s\")\n", folder, b->v[j].ident, bn, b->v[j].flags);
			j++, d++;
		} else {
			if (strcmp(a->v[i].flags, b->v[j].flags) != 0) {
				sb_addf(r, "  %s: %s flags \"%s\" on %s, \"%s\" on %s\n", folder, a->v[i].ident,
					a->v[i].flags, an, b->v[j].flags, bn);
				d++;
			}
			if (strict && (a->v[i].uid != b->v[j].uid ||
				       strcmp(a->v[i].name ? a->v[i].name : "", b->v[j].name ? b->v[j].name : ""))) {
				sb_addf(r, "  %s: %s was uid %u name %s, now uid %u name %s\n", folder, a->v[i].ident,
					a->v[i].uid, a->v[i].name ? a->v[i].name : "-", b->v[j].uid,
					b->v[j].name ? b->v[j].name : "-");
				d++;
			}
			i++, j++;
		}
	}
	return d;
}

static size_t snaps_diff(const struct sl_snap *a, const char *an, const struct sl_snap *b,
			 const char *bn, bool strict, bool dups, char **report_out)
{
	struct sb r = { 0 };
	size_t i = 0, j = 0, d = 0;
	static const struct sl_list empty = { 0 };

	while (i < a->n || j < b->n) {
		int k = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->names[i], b->names[j]);

		if (k < 0) {
			sb_addf(&r, "folder \"%s\" only on %s (%zu messages)\n", a->names[i], an, a->lists[i].n);
			d++;
			d += list_diff(a->names[i], an, &a->lists[i], bn, &empty, false, &r);
			i++;
		} else if (k > 0) {
			sb_addf(&r, "folder \"%s\" only on %s (%zu messages)\n", b->names[j], bn, b->lists[j].n);
			d++;
			d += list_diff(b->names[j], an, &empty, bn, &b->lists[j], false, &r);
			j++;
		} else {
			d += list_diff(a->names[i], an, &a->lists[i], bn, &b->lists[j], strict, &r);
			i++, j++;
		}
	}
	for (i = 0; dups && i < a->n; i++)
		if (sl_list_dups(&a->lists[i])) {
			sb_addf(&r, "%zu duplicates in %s \"%s\"\n", sl_list_dups(&a->lists[i]), an, a->names[i]);
			d++;
		}
	for (j = 0; dups && j < b->n; j++)
		if (sl_list_dups(&b->lists[j])) {
			sb_addf(&r, "%zu duplicates in %s \"%s\"\n", sl_list_dups(&b->lists[j]), bn, b->names[j]);
			d++;
		}
	if (report_out)
		*report_out = sb_take(&r);
	else
		free(r.s);
	return d;
}

size_t sl_snap_sides_diff(const struct sl_snap *remote, const struct sl_snap *local, char **report_out)
{
	return snaps_diff(remote, "server", local, "local", false, true, report_out);
}

size_t sl_sides_diff(struct sl_ctx *c, char **report_out)
{
	struct sl_snap r, l;
	size_t d;

	if (sl_remote_snap(c, &r) < 0) {
		if (report_out)
			*report_out = xstrdup("cannot list the server");
		return 1;
	}
	if (sl_local_snap(c, &l) < 0) {
		sl_snap_release(&r);
		if (report_out)
			*report_out = xstrdup("cannot list the Maildir");
		return 1;
	}
	d = sl_snap_sides_diff(&r, &l, report_out);
	sl_snap_release(&r);
	sl_snap_release(&l);
	return d;
}

size_t sl_snap_diff(const struct sl_snap *a, const struct sl_snap *b, bool strict, char **report_out)
{
	return snaps_diff(a, "before", b, "after", strict, false, report_out);
}

size_t sl_expect_diff(const struct sl_list *l, const char *const expect[], char **report_out)
{
	struct sb r = { 0 };
	size_t ne = 0, d = 0;
	bool *used;

	while (expect[ne])
		ne++;
	used = xcalloc(l->n + 1, sizeof(*used));
	for (size_t k = 0; k < ne; k++) {
		size_t idlen = strcspn(expect[k], " ");
		char *id = xstrndup(expect[k], idlen), *want = sl_canon_flags(expect[k] + idlen);
		size_t hits = 0;

		for (size_t i = 0; i < l->n; i++) {
			if (strcmp(l->v[i].msgid, id) != 0)
				continue;
			hits++;
			used[i] = true;
			if (strcmp(l->v[i].flags, want) != 0) {
				sb_addf(&r, "  %s: flags \"%s\", expected \"%s\"\n", id, l->v[i].flags, want);
				d++;
			}
		}
		if (hits != 1) {
			sb_addf(&r, "  %s: found %zu times, expected once\n", id, hits);
			d++;
		}
		free(id);
		free(want);
	}
	for (size_t i = 0; i < l->n; i++)
		if (!used[i]) {
			sb_addf(&r, "  unexpected message %s (flags \"%s\")\n", l->v[i].ident, l->v[i].flags);
			d++;
		}
	free(used);
	if (report_out)
		*report_out = sb_take(&r);
	else
		free(r.s);
	return d;
}

/* ---- running ferry ---- */
int sl_ferry_argv(struct sl_ctx *c, const char *const env[], const char *const args[], struct harness_result *res)
{
	const char *argv[64];
	char *ferry = harness_ferry_path();
	size_t n = 0;
	struct harness_run_opts o = { .env = env };
	int rc;

	if (!ferry)
		return -1;
	argv[n++] = ferry;
	argv[n++] = "-c";
	argv[n++] = c->config;
	for (size_t i = 0; args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	rc = harness_run_with(argv, &o, res);
	free(ferry);
	return rc;
}

int sl_ferry(struct sl_ctx *c, const char *const env[], struct harness_result *res, ...)
{
	const char *args[60];
	size_t n = 0;
	va_list ap;
	const char *a;

	va_start(ap, res);
	while ((a = va_arg(ap, const char *)) && n < 59)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	return sl_ferry_argv(c, env, args, res);
}

/* ---- Dovecot byte counters ---- */
long sl_log_mark(struct sl_ctx *c)
{
	struct stat st;
	long last = -1, size = 0;

	/* Sessions that just ended log a moment later: wait for a quiet log
	 * (200 ms without growth, at most 3 s) so their lines fall before the mark. */
	for (int quiet = 0, tries = 0; quiet < 4 && tries < 60; tries++) {
		struct timespec ts = { 0, 50 * 1000000L };

		size = stat(c->d.log_file, &st) == 0 ? (long)st.st_size : 0;
		quiet = size == last ? quiet + 1 : 0;
		last = size;
		if (quiet < 4)
			nanosleep(&ts, NULL);
	}
	return size;
}

static int scan_log(struct sl_ctx *c, long mark, uint64_t *in, uint64_t *out, unsigned *sessions, long *size)
{
	char *text = harness_read_file(c->d.log_file, SL_TEXT_MAX);
	char *who = xasprintf("imap(%s)", c->user);
	size_t len;

	*in = *out = 0;
	*sessions = 0;
	if (!text) {
		free(who);
		return -1;
	}
	len = strlen(text);
	*size = (long)len;
	for (char *p = text + ((size_t)mark < len ? (size_t)mark : len); *p;) {
		char *nl = strchr(p, '\n');
		char *e = nl ? nl : p + strlen(p);
		char save = *e;

		*e = '\0';
		if (strstr(p, who)) {
			char *i = strstr(p, " in="), *o = strstr(p, " out=");

			if (i && o) {
				*in += strtoull(i + 4, NULL, 10);
				*out += strtoull(o + 5, NULL, 10);
				(*sessions)++;
			}
		}
		*e = save;
		p = nl ? nl + 1 : e;
	}
	free(text);
	free(who);
	return 0;
}

int sl_log_bytes(struct sl_ctx *c, long mark, uint64_t *in_out, uint64_t *out_out, unsigned *sessions_out)
{
	long size = -1, last = -2;
	unsigned sessions = 0;
	int quiet = 0;

	/* Dovecot's log process writes the logout line after the client has
	 * gone; on a loaded CI machine that was seen to take over 3 s. */
	for (int tries = 0; tries < 300; tries++) {
		struct timespec ts = { 0, 50 * 1000000L };

		if (scan_log(c, mark, in_out, out_out, &sessions, &size) < 0)
			return -1;
		quiet = size == last ? quiet + 1 : 0;
		last = size;
		if (sessions && quiet >= 6)
			break;
		nanosleep(&ts, NULL);
	}
	*sessions_out = sessions;
	if (sessions == 0) {
		/* say what the log holds after the mark, for the next reader */
		char *text = harness_read_file(c->d.log_file, SL_TEXT_MAX);
		size_t len = text ? strlen(text) : 0, from = (size_t)mark < len ? (size_t)mark : len;

		fprintf(stderr, "sl_log_bytes: no \"imap(%s)\" line with in=/out= after offset %ld "
			"of %s (%zu bytes now); what follows the offset (last 4 KB):\n%s\n",
			c->user, mark, c->d.log_file, len,
			text ? text + (len - from > 4096 ? len - 4096 : from) : "(unreadable)");
		free(text);
	}
	return sessions ? 0 : -1;
}
