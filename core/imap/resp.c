/*
 * resp.c - typed results from parsed responses: capabilities, LIST,
 * STATUS and SELECT data.
 */
#include "resp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "mutf7.h"
#include "xalloc.h"

#define CAPS_MAX 1024
#define CAP_NAME_MAX 256

static const char *const cap_names[IMAP_CAP_COUNT] = {
	[IMAP_CAP_IMAP4REV1] = "IMAP4rev1",
	[IMAP_CAP_IMAP4REV2] = "IMAP4rev2",
	[IMAP_CAP_STARTTLS] = "STARTTLS",
	[IMAP_CAP_LOGINDISABLED] = "LOGINDISABLED",
	[IMAP_CAP_SASL_IR] = "SASL-IR",
	[IMAP_CAP_LITERAL_PLUS] = "LITERAL+",
	[IMAP_CAP_LITERAL_MINUS] = "LITERAL-",
	[IMAP_CAP_ENABLE] = "ENABLE",
	[IMAP_CAP_ID] = "ID",
	[IMAP_CAP_IDLE] = "IDLE",
	[IMAP_CAP_NAMESPACE] = "NAMESPACE",
	[IMAP_CAP_UIDPLUS] = "UIDPLUS",
	[IMAP_CAP_MOVE] = "MOVE",
	[IMAP_CAP_CONDSTORE] = "CONDSTORE",
	[IMAP_CAP_QRESYNC] = "QRESYNC",
	[IMAP_CAP_SPECIAL_USE] = "SPECIAL-USE",
	[IMAP_CAP_LIST_EXTENDED] = "LIST-EXTENDED",
	[IMAP_CAP_LIST_STATUS] = "LIST-STATUS",
	[IMAP_CAP_COMPRESS_DEFLATE] = "COMPRESS=DEFLATE",
	[IMAP_CAP_UTF8_ACCEPT] = "UTF8=ACCEPT",
	[IMAP_CAP_OBJECTID] = "OBJECTID",
	[IMAP_CAP_BINARY] = "BINARY",
	[IMAP_CAP_ESEARCH] = "ESEARCH",
	[IMAP_CAP_UNSELECT] = "UNSELECT",
	[IMAP_CAP_AUTH_PLAIN] = "AUTH=PLAIN",
	[IMAP_CAP_AUTH_LOGIN] = "AUTH=LOGIN",
	[IMAP_CAP_AUTH_SCRAM_SHA_1] = "AUTH=SCRAM-SHA-1",
	[IMAP_CAP_AUTH_SCRAM_SHA_256] = "AUTH=SCRAM-SHA-256",
	[IMAP_CAP_AUTH_XOAUTH2] = "AUTH=XOAUTH2",
	[IMAP_CAP_AUTH_OAUTHBEARER] = "AUTH=OAUTHBEARER",
};

const char *imap_cap_name(enum imap_cap cap)
{
	return (unsigned)cap < IMAP_CAP_COUNT ? cap_names[cap] : "?";
}

bool imap_caps_has(const struct imap_caps *caps, enum imap_cap cap)
{
	return (unsigned)cap < IMAP_CAP_COUNT && (caps->bits & ((uint64_t)1 << cap)) != 0;
}

void imap_caps_release(struct imap_caps *caps)
{
	size_t i;

	for (i = 0; i < caps->n; i++)
		free(caps->names[i]);
	free(caps->names);
	caps->names = NULL;
	caps->n = 0;
	caps->bits = 0;
}

static void caps_note(struct imap_caps *caps, const char *name)
{
	unsigned i;

	for (i = 0; i < IMAP_CAP_COUNT; i++)
		if (strcasecmp(name, cap_names[i]) == 0)
			caps->bits |= (uint64_t)1 << i;
	if (strcasecmp(name, "UTF8=ONLY") == 0)
		caps->bits |= (uint64_t)1 << IMAP_CAP_UTF8_ACCEPT;
}

int imap_caps_parse(struct imap_caps *caps, const struct imap_arg *args, size_t nargs,
		    struct err *e)
{
	size_t i;

	imap_caps_release(caps);
	if (nargs > CAPS_MAX)
		return err_set(e, ERR_PROTO, "server lists more than %d capabilities", CAPS_MAX);
	caps->names = xcalloc(nargs ? nargs : 1, sizeof(*caps->names));
	for (i = 0; i < nargs; i++) {
		const struct imap_arg *a = &args[i];

		if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > CAP_NAME_MAX) {
			imap_caps_release(caps);
			return err_set(e, ERR_PROTO, "server sent a malformed capability list");
		}
		caps->names[caps->n++] = xstrndup(a->str, a->len);
		caps_note(caps, a->str);
	}
	return 0;
}

int imap_caps_format(const struct imap_caps *caps, struct buf *out, struct err *e)
{
	size_t i;

	for (i = 0; i < caps->n; i++)
		if (buf_addf(out, e, "%s%s", i ? " " : "", caps->names[i]) < 0)
			return -1;
	return 0;
}

/* ---- mailboxes ---------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned attr;
	enum imap_mbox_role role;
} mbox_attrs[] = {
	{ "\\Noselect", IMAP_MBOX_NOSELECT, IMAP_ROLE_NONE },
	{ "\\Noinferiors", IMAP_MBOX_NOINFERIORS, IMAP_ROLE_NONE },
	{ "\\HasChildren", IMAP_MBOX_HASCHILDREN, IMAP_ROLE_NONE },
	{ "\\HasNoChildren", IMAP_MBOX_HASNOCHILDREN, IMAP_ROLE_NONE },
	{ "\\Marked", IMAP_MBOX_MARKED, IMAP_ROLE_NONE },
	{ "\\Unmarked", IMAP_MBOX_UNMARKED, IMAP_ROLE_NONE },
	{ "\\NonExistent", IMAP_MBOX_NONEXISTENT | IMAP_MBOX_NOSELECT, IMAP_ROLE_NONE },
	{ "\\Subscribed", IMAP_MBOX_SUBSCRIBED, IMAP_ROLE_NONE },
	{ "\\Remote", IMAP_MBOX_REMOTE, IMAP_ROLE_NONE },
	{ "\\All", 0, IMAP_ROLE_ALL },
	{ "\\Archive", 0, IMAP_ROLE_ARCHIVE },
	{ "\\Drafts", 0, IMAP_ROLE_DRAFTS },
	{ "\\Flagged", 0, IMAP_ROLE_FLAGGED },
	{ "\\Junk", 0, IMAP_ROLE_JUNK },
	{ "\\Sent", 0, IMAP_ROLE_SENT },
	{ "\\Trash", 0, IMAP_ROLE_TRASH },
	{ "\\Important", 0, IMAP_ROLE_IMPORTANT },
};

static const char *const role_names[] = {
	[IMAP_ROLE_NONE] = "",        [IMAP_ROLE_ALL] = "all",     [IMAP_ROLE_ARCHIVE] = "archive",
	[IMAP_ROLE_DRAFTS] = "drafts", [IMAP_ROLE_FLAGGED] = "flagged", [IMAP_ROLE_JUNK] = "junk",
	[IMAP_ROLE_SENT] = "sent",    [IMAP_ROLE_TRASH] = "trash", [IMAP_ROLE_IMPORTANT] = "important",
};

const char *imap_mbox_role_name(enum imap_mbox_role role)
{
	return (unsigned)role < sizeof(role_names) / sizeof(role_names[0]) ? role_names[role] : "";
}

void imap_mailbox_list_init(struct imap_mailbox_list *l)
{
	memset(l, 0, sizeof(*l));
	arena_init(&l->arena, 16384);
}

void imap_mailbox_list_release(struct imap_mailbox_list *l)
{
	arena_release(&l->arena);
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}

struct imap_mailbox *imap_mailbox_list_find(struct imap_mailbox_list *l, const char *wire_name)
{
	size_t i;

	/* LIST-STATUS sends STATUS right after its LIST: look at the end first. */
	for (i = l->n; i > 0; i--)
		if (strcmp(l->items[i - 1].wire_name, wire_name) == 0)
			return &l->items[i - 1];
	return NULL;
}

struct name_pos {
	const char *name;
	size_t pos;
};

static int cmp_name_pos(const void *a, const void *b)
{
	const struct name_pos *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

size_t imap_mailbox_list_dedupe(struct imap_mailbox_list *l)
{
	struct name_pos *v;
	bool *drop;
	size_t i, j, dropped = 0;

	if (l->n < 2)
		return 0;
	v = xmalloc(l->n * sizeof(*v));
	drop = xcalloc(l->n, sizeof(*drop));
	for (i = 0; i < l->n; i++)
		v[i] = (struct name_pos){ l->items[i].name, i };
	qsort(v, l->n, sizeof(*v), cmp_name_pos);
	for (i = 0; i + 1 < l->n; i++) {
		if (strcmp(v[i].name, v[i + 1].name) != 0)
			continue;
		/* The last one stays: a LIST-STATUS STATUS went to it. */
		drop[v[i].pos] = true;
		dropped++;
		log_warn("server mailbox left out: mailbox \"%s\" is listed twice", v[i].name);
	}
	for (i = 0, j = 0; i < l->n; i++)
		if (!drop[i])
			l->items[j++] = l->items[i];
	l->n = j;
	free(drop);
	free(v);
	return dropped;
}

static void apply_attrs(struct imap_mailbox *m, const struct imap_arg *list)
{
	size_t i, k;

	for (i = 0; i < list->len; i++) {
		const struct imap_arg *a = &list->list[i];

		if (a->type != IMAP_ARG_ATOM)
			continue;
		for (k = 0; k < sizeof(mbox_attrs) / sizeof(mbox_attrs[0]); k++) {
			if (strcasecmp(a->str, mbox_attrs[k].name) != 0)
				continue;
			m->attrs |= mbox_attrs[k].attr;
			if (mbox_attrs[k].role != IMAP_ROLE_NONE && m->role == IMAP_ROLE_NONE)
				m->role = mbox_attrs[k].role;
		}
	}
}

/* The UTF-8 form of a wire name; "INBOX" in any case is INBOX. */
static const char *decode_name(struct imap_mailbox_list *l, const char *wire, size_t len,
			       bool utf8, struct err *e)
{
	struct buf b = BUF_INIT(4 * len + 16);
	const char *name;

	if (len == 5 && strncasecmp(wire, "INBOX", 5) == 0)
		return "INBOX";
	if (memchr(wire, '\0', len)) {
		err_set(e, ERR_PROTO, "server sent a mailbox name with a NUL byte");
		return NULL;
	}
	if (utf8) {
		if (!utf8_valid(wire, len)) {
			err_set(e, ERR_PROTO, "server sent a mailbox name that is not UTF-8");
			return NULL;
		}
		return arena_strndup(&l->arena, wire, len);
	}
	if (mutf7_decode(wire, len, &b, e) < 0) {
		buf_release(&b);
		err_prefix(e, "mailbox \"%.*s\"", (int)(len > 200 ? 200 : len), wire);
		return NULL;
	}
	name = arena_strndup(&l->arena, buf_cstr(&b), b.len);
	buf_release(&b);
	return name;
}

int imap_resp_list_add(const struct imap_resp *r, bool utf8, size_t max_entries,
		       struct imap_mailbox_list *l, struct err *e)
{
	struct imap_mailbox m;
	const char *wire;
	size_t dlen = 0, wlen = 0;
	const char *d;

	memset(&m, 0, sizeof(m));
	if (r->nargs < 3 || r->args[0].type != IMAP_ARG_LIST ||
	    (r->args[1].type != IMAP_ARG_NIL && r->args[1].type != IMAP_ARG_QUOTED) ||
	    (wire = imap_arg_str(&r->args[2], &wlen)) == NULL)
		return err_set(e, ERR_PROTO, "server sent a malformed LIST response");
	if (r->args[1].type == IMAP_ARG_QUOTED) {
		d = imap_arg_str(&r->args[1], &dlen);
		if (dlen != 1) {
			err_set(e, ERR_PROTO, "mailbox \"%.*s\": a hierarchy delimiter of %zu bytes",
				(int)(wlen > 200 ? 200 : wlen), wire, dlen);
			return 1;
		}
		m.delim = d[0];
	}
	if (l->n >= max_entries)
		return err_set(e, ERR_LIMIT, "server lists more than %zu mailboxes", max_entries);
	apply_attrs(&m, &r->args[0]);
	m.name = decode_name(l, wire, wlen, utf8, e);
	if (m.name == NULL)
		return 1;
	m.wire_name = strcmp(m.name, "INBOX") == 0 ? "INBOX" : arena_strndup(&l->arena, wire, wlen);
	l->items = xgrow(l->items, &l->cap, l->n + 1, sizeof(*l->items));
	l->items[l->n++] = m;
	return 0;
}

static int status_item(struct imap_status_data *out, const struct imap_arg *name,
		       const struct imap_arg *val)
{
	static const struct { const char *name; unsigned have; } items[] = {
		{ "MESSAGES", IMAP_STATUS_HAVE_MESSAGES },
		{ "UIDNEXT", IMAP_STATUS_HAVE_UIDNEXT },
		{ "UIDVALIDITY", IMAP_STATUS_HAVE_UIDVALIDITY },
		{ "UNSEEN", IMAP_STATUS_HAVE_UNSEEN },
		{ "HIGHESTMODSEQ", IMAP_STATUS_HAVE_HIGHESTMODSEQ },
	};
	uint32_t *slots[] = { &out->messages, &out->uidnext, &out->uidvalidity, &out->unseen };
	size_t i;

	for (i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		if (!imap_arg_is_atom(name, items[i].name))
			continue;
		if (items[i].have == IMAP_STATUS_HAVE_HIGHESTMODSEQ) {
			if (!imap_arg_u64(val, &out->highestmodseq))
				return -1;
		} else if (!imap_arg_u32(val, slots[i])) {
			return -1;
		}
		out->have |= items[i].have;
	}
	return 0;       /* unknown items are ignored */
}

int imap_resp_status(const struct imap_resp *r, const char **wire_name_out,
		     struct imap_status_data *out, struct err *e)
{
	const struct imap_arg *list;
	size_t i, len;

	memset(out, 0, sizeof(*out));
	if (r->nargs < 2 || r->args[1].type != IMAP_ARG_LIST ||
	    (*wire_name_out = imap_arg_str(&r->args[0], &len)) == NULL)
		return err_set(e, ERR_PROTO, "server sent a malformed STATUS response");
	if (len == 5 && strncasecmp(*wire_name_out, "INBOX", 5) == 0)
		*wire_name_out = "INBOX";
	list = &r->args[1];
	if (list->len % 2 != 0)
		return err_set(e, ERR_PROTO, "server sent a malformed STATUS response");
	for (i = 0; i + 1 < list->len; i += 2)
		if (status_item(out, &list->list[i], &list->list[i + 1]) < 0)
			return err_set(e, ERR_PROTO, "server sent a malformed STATUS item");
	return 0;
}

/* ---- SELECT ------------------------------------------------------------ */

static int code_u32(const struct imap_resp *r, uint32_t *out, struct err *e)
{
	if (r->ncode_args < 1 || !imap_arg_u32(&r->code_args[0], out))
		return err_set(e, ERR_PROTO, "server sent a malformed [%s] code", r->code);
	return 1;
}

int imap_resp_select_item(const struct imap_resp *r, struct imap_select_info *info,
			  struct err *e)
{
	if (r->kind == IMAP_RESP_UNTAGGED && r->has_number && r->name &&
	    strcmp(r->name, "EXISTS") == 0) {
		info->exists = r->number;
		return 1;
	}
	if (r->code == NULL || r->kind == IMAP_RESP_CONTINUATION)
		return 0;
	if (strcmp(r->code, "UIDVALIDITY") == 0)
		return code_u32(r, &info->uidvalidity, e);
	if (strcmp(r->code, "UIDNEXT") == 0)
		return code_u32(r, &info->uidnext, e);
	if (strcmp(r->code, "HIGHESTMODSEQ") == 0) {
		if (r->ncode_args < 1 || !imap_arg_u64(&r->code_args[0], &info->highestmodseq))
			return err_set(e, ERR_PROTO, "server sent a malformed [HIGHESTMODSEQ] code");
		return 1;
	}
	if (strcmp(r->code, "NOMODSEQ") == 0) {
		info->nomodseq = true;
		return 1;
	}
	if (strcmp(r->code, "READ-ONLY") == 0) {
		info->read_only = true;
		return 1;
	}
	if (strcmp(r->code, "READ-WRITE") == 0) {
		info->read_only = false;
		return 1;
	}
	return 0;
}
