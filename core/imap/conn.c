/*
 * conn.c - the IMAP connection: transport (TCP, TLS, deflate), the output
 * queue with literal and continuation handling, the input path into the
 * parser, dispatch by tag, and the redacted protocol trace.
 *
 * Transport and TLS set-up live in conn_net.c (conn_int.h joins them).
 */
#include "conn_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define OUT_HIGH_WATER (256u * 1024u)   /* stop moving command bytes to out above this */
#define READ_CHUNK 65536u
#define READ_PER_STEP (1024u * 1024u)   /* bytes read per process step, for fairness */
#define TRACE_SHOW_MAX 2000              /* characters of one trace line shown */

static const char *const state_names[] = {
	[IMAP_CONN_IDLE] = "new",            [IMAP_CONN_CONNECTING] = "connecting",
	[IMAP_CONN_HANDSHAKE] = "handshake", [IMAP_CONN_GREETING] = "greeting",
	[IMAP_CONN_OPEN] = "open",           [IMAP_CONN_BYE] = "bye",
	[IMAP_CONN_CLOSED] = "closed",       [IMAP_CONN_FAILED] = "failed",
};

const char *imap_conn_state_name(enum imap_conn_state s)
{
	return (size_t)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

void conn_set_state(struct imap_conn *c, enum imap_conn_state s)
{
	if (c->state == s)
		return;
	log_debug(LOG_CAT_NET, "connection to \"%s\": %s -> %s", c->host,
		  imap_conn_state_name(c->state), imap_conn_state_name(s));
	c->state = s;
}

static bool state_is_terminal(enum imap_conn_state s)
{
	return s == IMAP_CONN_CLOSED || s == IMAP_CONN_FAILED;
}

/* ---- lifecycle ---------------------------------------------------------- */

struct imap_conn *imap_conn_new(const struct imap_conn_opts *opts)
{
	struct imap_conn *c = xcalloc(1, sizeof(*c));

	c->host = xstrdup(opts->host ? opts->host : "");
	c->port = opts->port;
	c->tls_mode = opts->tls;
	c->ca_file = opts->tls_ca_file ? xstrdup(opts->tls_ca_file) : NULL;
	c->pinned = opts->tls_fingerprint ? xstrdup(opts->tls_fingerprint) : NULL;
	c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 60000;
	c->max_command = opts->max_command ? opts->max_command : 64u * 1024 * 1024;
	c->fd = -1;
	c->assume_remote = opts->assume_remote_peer;
	c->parser = imap_parser_new(opts->limits, opts->sink);
	buf_init(&c->out, c->max_command + OUT_HIGH_WATER + 65536);
	buf_init(&c->zstage, c->max_command + OUT_HIGH_WATER);
	buf_init(&c->rin, 4u * READ_CHUNK + READ_PER_STEP);
	buf_init(&c->zplain, 4u * READ_CHUNK);
	buf_init(&c->trace_line, 128u * 1024);
	c->next_tag = 1;
	return c;
}

static void cmd_complete(struct imap_conn *c, struct imap_cmd *cmd, bool call);

void imap_conn_free(struct imap_conn *c)
{
	struct imap_cmd *cmd, *next;

	if (c == NULL)
		return;
	for (cmd = c->cmds; cmd; cmd = next) {
		next = cmd->next;
		if (!cmd->has_err)
			err_set(&cmd->err, ERR_NET, "connection to \"%s\" closed", c->host);
		cmd->has_err = true;
		cmd_complete(c, cmd, false);
	}
	c->cmds = NULL;
	conn_transport_close(c);
	imap_parser_free(c->parser);
	imap_resp_free(c->greeting);
	buf_release_secret(&c->out);
	buf_release_secret(&c->zstage);
	buf_release(&c->rin);
	buf_release(&c->zplain);
	buf_release(&c->trace_line);
	free(c->host);
	free(c->ca_file);
	free(c->pinned);
	free(c->bye_text);
	free(c);
}

/* ---- failure ------------------------------------------------------------- */

/* Fail the connection with *e: close, complete every command with the error. */
int conn_fail(struct imap_conn *c, const struct err *e)
{
	struct imap_cmd *list, *cmd, *next;

	if (c->state == IMAP_CONN_FAILED)
		return -1;
	c->err = *e;
	log_debug(LOG_CAT_NET, "connection to \"%s\" failed: %s", c->host, e->msg);
	conn_set_state(c, IMAP_CONN_FAILED);
	conn_transport_close(c);
	list = c->cmds;
	c->cmds = NULL;
	c->send_cmd = NULL;
	c->barrier = NULL;
	for (cmd = list; cmd; cmd = next) {
		next = cmd->next;
		cmd->err = *e;
		cmd->has_err = true;
		cmd_complete(c, cmd, true);
	}
	return -1;
}

static int fail_copy(struct imap_conn *c, struct err *e)
{
	conn_fail(c, e);
	return -1;
}

/* ---- trace ---------------------------------------------------------------- */

static void trace_out_text(struct imap_conn *c, const struct imap_cmd *cmd,
			   const char *p, size_t n, bool first)
{
	if (!log_enabled(LOG_DEBUG))
		return;
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n == 0)
		return;
	if (cmd->flags & IMAP_CMD_SECRET) {
		size_t show = first ? cmd->taglen + cmd->public_len : 0;

		if (show > n)
			show = n;
		log_debug(LOG_CAT_NET, "C: %.*s%s[redacted]", (int)show, p, show ? " " : "");
		return;
	}
	log_debug(LOG_CAT_NET, "C: %.*s%s", (int)(n > TRACE_SHOW_MAX ? TRACE_SHOW_MAX : n), p,
		  n > TRACE_SHOW_MAX ? "..." : "");
}

/* A server line is complete: print it, and if it ends in {N} skip N literal bytes. */
static void trace_in_line(struct imap_conn *c)
{
	struct buf *l = &c->trace_line;
	size_t n = l->len;
	const char *p = buf_cstr(l);
	uint64_t lit = 0;

	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n > 2 && p[n - 1] == '}') {
		size_t i = n - 1, digits = 0;

		while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9' && digits < 20) {
			i--;
			digits++;
		}
		if (digits > 0 && i > 0 && p[i - 1] == '{')
			lit = strtoull(p + i, NULL, 10);
	}
	log_debug(LOG_CAT_NET, "S: %.*s%s", (int)(n > TRACE_SHOW_MAX ? TRACE_SHOW_MAX : n), p,
		  n > TRACE_SHOW_MAX || c->trace_cut ? "..." : "");
	if (lit > 0)
		log_debug(LOG_CAT_NET, "S: [literal, %llu bytes]", (unsigned long long)lit);
	c->trace_skip = lit;
	c->trace_cut = false;
	buf_reset(l);
}

static void trace_in(struct imap_conn *c, const char *p, size_t n)
{
	if (!log_enabled(LOG_DEBUG))
		return;
	while (n > 0) {
		const char *nl;
		size_t k;

		if (c->trace_skip > 0) {
			k = c->trace_skip < n ? (size_t)c->trace_skip : n;
			c->trace_skip -= k;
			p += k;
			n -= k;
			continue;
		}
		nl = memchr(p, '\n', n);
		k = nl ? (size_t)(nl - p) + 1 : n;
		if (buf_add(&c->trace_line, p, k, NULL) < 0)
			c->trace_cut = true;
		p += k;
		n -= k;
		if (nl)
			trace_in_line(c);
	}
}

/* ---- commands: building ------------------------------------------------- */

static bool literal_may_skip_sync(const struct imap_conn *c, uint64_t size)
{
	return c->literal_mode == IMAP_LITERAL_PLUS ||
	       (c->literal_mode == IMAP_LITERAL_MINUS && size <= 4096);
}

static void cmd_add_seg(struct imap_cmd *cmd, size_t off, size_t len, bool literal, bool sync)
{
	cmd->segs = xgrow(cmd->segs, &cmd->segs_cap, cmd->nsegs + 1, sizeof(*cmd->segs));
	cmd->segs[cmd->nsegs++] = (struct cmd_seg){ .off = off, .len = len, .literal = literal,
						     .sync = sync };
}

static bool has_line_break(const char *t, size_t len)
{
	return t != NULL && (memchr(t, '\r', len) || memchr(t, '\n', len));
}

/*
 * The last text segment (b from seg_start, without its CRLF yet) is followed
 * by streamed literals: for each, announce it and add the stream, then the
 * text that follows it (between[i], or the tail after the last).
 */
static int cmd_add_stream(struct imap_conn *c, struct imap_cmd *cmd, const struct imap_cmd_req *req,
			  struct buf *b, size_t seg_start, struct err *e)
{
	size_t n = req->nsources ? req->nsources : 1;

	if (has_line_break(req->tail, req->tail_len))
		return err_set(e, ERR_INTERNAL, "command tail contains a line break");
	for (size_t i = 0; i + 1 < n; i++)
		if (req->between == NULL || req->between[i] == NULL ||
		    has_line_break(req->between[i], strlen(req->between[i])))
			return err_set(e, ERR_INTERNAL, "text between literals missing or broken");
	cmd->sources = xcalloc(n, sizeof(*cmd->sources));
	memcpy(cmd->sources, req->source, n * sizeof(*cmd->sources));
	cmd->nsources = n;
	for (size_t i = 0; i < n; i++) {
		uint64_t size = req->source[i].size;
		bool sync = !literal_may_skip_sync(c, size);
		const char *after = i + 1 < n ? req->between[i] : req->tail ? req->tail : "";
		size_t after_len = i + 1 < n ? strlen(after) : req->tail_len;

		if (buf_addf(b, e, "{%llu%s}\r\n", (unsigned long long)size, sync ? "" : "+") < 0)
			return -1;
		cmd_add_seg(cmd, seg_start, b->len - seg_start, false, sync);
		cmd_add_seg(cmd, 0, (size_t)size, true, false);
		cmd->segs[cmd->nsegs - 1].stream = true;
		cmd->segs[cmd->nsegs - 1].src = (uint32_t)i;
		seg_start = b->len;
		if (buf_add(b, after, after_len, e) < 0)
			return -1;
	}
	if (buf_add(b, "\r\n", 2, e) < 0)
		return -1;
	cmd_add_seg(cmd, seg_start, b->len - seg_start, false, false);
	return 0;
}

/*
 * If text[0..end) ends with a literal marker "{N}" / "{N+}", return 1 and
 * its size, the offset of '{' and whether it was non-synchronising.
 */
static int literal_marker(const char *text, size_t end, uint64_t *size_out, size_t *brace_out,
			  bool *plus_out)
{
	size_t i = end;
	uint64_t v = 0, mul = 1;
	size_t digits = 0;

	if (i == 0 || text[i - 1] != '}')
		return 0;
	i--;
	*plus_out = i > 0 && text[i - 1] == '+';
	if (*plus_out)
		i--;
	while (i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9') {
		if (++digits > 19)
			return 0;
		v += (uint64_t)(text[i - 1] - '0') * mul;
		mul *= 10;
		i--;
	}
	if (digits == 0 || i == 0 || text[i - 1] != '{')
		return 0;
	*size_out = v;
	*brace_out = i - 1;
	return 1;
}

/* Copy text into cmd->text as "TAG text\r\n", splitting it into segments. */
static int cmd_build(struct imap_conn *c, struct imap_cmd *cmd, const struct imap_cmd_req *req,
		     struct err *e)
{
	const char *text = req->text;
	size_t len = req->len;
	struct buf b = BUF_INIT(c->max_command);
	size_t pos = 0, seg_start = 0;

	if (buf_addf(&b, e, "%s ", cmd->tag) < 0)
		goto fail;
	while (pos <= len) {
		const char *crlf = pos < len ? memmem(text + pos, len - pos, "\r\n", 2) : NULL;
		size_t end = crlf ? (size_t)(crlf - text) : len;
		uint64_t lsize;
		size_t brace;
		bool plus, sync;

		if (memchr(text + pos, '\r', end - pos) || memchr(text + pos, '\n', end - pos) ||
		    memchr(text + pos, '\0', end - pos)) {
			err_set(e, ERR_INTERNAL, "command contains a bare CR, LF or NUL");
			goto fail;
		}
		if (!crlf) {
			if (buf_add(&b, text + pos, len - pos, e) < 0)
				goto fail;
			if (req->source) {
				if (cmd_add_stream(c, cmd, req, &b, seg_start, e) < 0)
					goto fail;
				break;
			}
			if (buf_add(&b, "\r\n", 2, e) < 0)
				goto fail;
			cmd_add_seg(cmd, seg_start, b.len - seg_start, false, false);
			break;
		}
		if (!literal_marker(text, end, &lsize, &brace, &plus) || brace < pos ||
		    lsize > len - end - 2) {
			err_set(e, ERR_INTERNAL, "command has a line break outside a literal");
			goto fail;
		}
		sync = !plus && !literal_may_skip_sync(c, lsize);
		if (buf_add(&b, text + pos, end - pos, e) < 0)
			goto fail;
		if (!plus && !sync) {
			buf_truncate(&b, b.len - 1);        /* "}" */
			if (buf_add(&b, "+}", 2, e) < 0)
				goto fail;
		}
		if (buf_add(&b, "\r\n", 2, e) < 0)
			goto fail;
		cmd_add_seg(cmd, seg_start, b.len - seg_start, false, sync);
		seg_start = b.len;
		if (buf_add(&b, crlf + 2, (size_t)lsize, e) < 0)
			goto fail;
		cmd_add_seg(cmd, seg_start, (size_t)lsize, true, false);
		seg_start = b.len;
		pos = end + 2 + (size_t)lsize;
	}
	cmd->text = buf_detach(&b, &cmd->len);
	return 0;
fail:
	buf_release_secret(&b);
	err_prefix(e, "cannot send command");
	return -1;
}

/* LOGIN and AUTHENTICATE are always secret, whatever the caller said. */
static void cmd_force_secret(struct imap_cmd *cmd, const char *text, size_t len)
{
	static const char *const verbs[] = { "LOGIN", "AUTHENTICATE" };
	size_t i;

	for (i = 0; i < 2; i++) {
		size_t vl = strlen(verbs[i]);

		if (len >= vl && strncasecmp(text, verbs[i], vl) == 0 &&
		    (len == vl || text[vl] == ' ') && !(cmd->flags & IMAP_CMD_SECRET)) {
			cmd->flags |= IMAP_CMD_SECRET;
			cmd->public_len = vl;
		}
	}
}

struct imap_cmd *imap_conn_submit(struct imap_conn *c, const struct imap_cmd_req *req,
				  struct err *e)
{
	struct imap_cmd *cmd, **tail;
	size_t vl = 0;

	if (c->state != IMAP_CONN_OPEN) {
		if (c->state == IMAP_CONN_FAILED) {
			*e = c->err;
			return NULL;
		}
		err_set(e, ERR_NET, "connection to \"%s\" is %s", c->host,
			imap_conn_state_name(c->state));
		return NULL;
	}
	cmd = xcalloc(1, sizeof(*cmd));
	cmd->conn = c;
	snprintf(cmd->tag, sizeof(cmd->tag), "F%u", c->next_tag++);
	cmd->taglen = strlen(cmd->tag) + 1;
	cmd->flags = req->flags | (req->cont ? IMAP_CMD_EXCLUSIVE : 0u) |
		     ((req->flags & IMAP_CMD_SWITCH) ? IMAP_CMD_EXCLUSIVE : 0u);
	cmd->public_len = req->public_len < req->len ? req->public_len : req->len;
	cmd->untagged = req->untagged;
	cmd->cont = req->cont;
	cmd->done_fn = req->done;
	cmd->ctx = req->ctx;
	while (vl < req->len && vl < sizeof(cmd->verb) - 1 && req->text[vl] != ' ' &&
	       req->text[vl] != '\r') {
		cmd->verb[vl] = req->text[vl];
		vl++;
	}
	cmd_force_secret(cmd, req->text, req->len);
	if (cmd_build(c, cmd, req, e) < 0) {
		imap_cmd_free(cmd);
		return NULL;
	}
	for (tail = &c->cmds; *tail; tail = &(*tail)->next)
		;
	*tail = cmd;
	if (c->send_cmd == NULL)
		c->send_cmd = cmd;
	if (c->npending++ == 0)
		c->last_activity = clock_now_ms();   /* the silence clock starts now */
	return cmd;
}

/* ---- commands: completion ---------------------------------------------- */

static void cmd_unlink(struct imap_conn *c, struct imap_cmd *cmd)
{
	struct imap_cmd **pp;

	for (pp = &c->cmds; *pp; pp = &(*pp)->next) {
		if (*pp == cmd) {
			*pp = cmd->next;
			break;
		}
	}
	if (c->send_cmd == cmd)
		c->send_cmd = cmd->next;
	if (c->barrier == cmd)
		c->barrier = NULL;
	cmd->next = NULL;
}

/* cmd is already out of the list; mark it done, call or drop. */
static void cmd_complete(struct imap_conn *c, struct imap_cmd *cmd, bool call)
{
	cmd->done = true;
	cmd->conn = NULL;
	if (c->npending > 0)
		c->npending--;
	if (cmd->detached) {
		imap_cmd_free(cmd);
		return;
	}
	if (call && cmd->done_fn)
		cmd->done_fn(cmd->ctx, cmd);
}

bool imap_cmd_is_done(const struct imap_cmd *cmd)
{
	return cmd->done;
}

bool imap_cmd_is_oldest(const struct imap_cmd *cmd)
{
	return !cmd->done && cmd->conn != NULL && cmd->conn->cmds == cmd;
}

enum imap_status imap_cmd_status(const struct imap_cmd *cmd)
{
	return cmd->resp ? cmd->resp->status : IMAP_STATUS_NONE;
}

const struct imap_resp *imap_cmd_response(const struct imap_cmd *cmd)
{
	return cmd->resp;
}

const char *imap_cmd_tag(const struct imap_cmd *cmd)
{
	return cmd->tag;
}

void imap_cmd_free(struct imap_cmd *cmd)
{
	if (cmd == NULL)
		return;
	if (!cmd->done && cmd->conn) {
		cmd->detached = true;       /* the connection frees it on completion */
		cmd->done_fn = NULL;
		cmd->untagged = NULL;
		return;
	}
	if (cmd->text) {
		wipe(cmd->text, cmd->len);
		free(cmd->text);
	}
	free(cmd->segs);
	free(cmd->sources);
	imap_resp_free(cmd->resp);
	free(cmd);
}

/* ---- output ---------------------------------------------------------------- */

static bool cmd_may_start(const struct imap_conn *c)
{
	return c->barrier == NULL && !c->paused;
}

/* Read up to *k bytes of the command's streamed literal into dst; *k says how many came. */
static int pump_stream(struct imap_cmd *cmd, struct buf *dst, size_t *k, struct err *e)
{
	const struct imap_literal_source *src = &cmd->sources[cmd->segs[cmd->seg_i].src];
	ssize_t n;

	if (buf_reserve(dst, *k, e) < 0)
		return -1;
	n = src->read(src->ctx, dst->data + dst->len, *k, e);
	if (n <= 0 || (size_t)n > *k) {
		if (n == 0)
			err_set(e, ERR_IO, "the literal for %s ended %llu bytes early", cmd->tag,
				(unsigned long long)(cmd->segs[cmd->seg_i].len - cmd->seg_off));
		else if (n > 0)
			err_set(e, ERR_INTERNAL, "a literal source returned more than asked");
		return -1;
	}
	dst->len += (size_t)n;
	dst->data[dst->len] = '\0';
	*k = (size_t)n;
	return 0;
}

/* Move bytes of queued commands into dst, stopping at sync literals and barriers. */
static int pump_commands(struct imap_conn *c, struct buf *dst, struct err *e)
{
	while (c->send_cmd &&
	       c->out.len + (dst != &c->out ? dst->len : 0) < OUT_HIGH_WATER) {
		struct imap_cmd *cmd = c->send_cmd;
		const struct cmd_seg *s;
		size_t k;

		if (cmd->blocked || (cmd->seg_i == 0 && cmd->seg_off == 0 && !cmd_may_start(c)))
			return 0;
		if (cmd->seg_i == cmd->nsegs) {
			c->send_cmd = cmd->next;
			if (cmd->flags & IMAP_CMD_EXCLUSIVE)
				c->barrier = cmd;
			continue;
		}
		s = &cmd->segs[cmd->seg_i];
		if (cmd->seg_off == 0) {
			if (s->literal && (cmd->flags & IMAP_CMD_SECRET))
				log_debug(LOG_CAT_NET, "C: [redacted]");      /* not even its length */
			else if (s->literal)
				log_debug(LOG_CAT_NET, "C: [literal, %zu bytes]", s->len);
			else
				trace_out_text(c, cmd, cmd->text + s->off, s->len, cmd->seg_i == 0);
		}
		k = s->len - cmd->seg_off;
		if (k > OUT_HIGH_WATER)
			k = OUT_HIGH_WATER;
		if (s->stream) {
			if (pump_stream(cmd, dst, &k, e) < 0)
				return -1;
		} else if (buf_add(dst, cmd->text + s->off + cmd->seg_off, k, e) < 0) {
			return -1;
		}
		cmd->seg_off += k;
		if (cmd->seg_off == s->len) {
			cmd->seg_i++;
			cmd->seg_off = 0;
			if (s->sync)
				cmd->blocked = true;
		}
	}
	return 0;
}

static void out_consume(struct buf *b, size_t n)
{
	size_t old = b->len;

	buf_consume(b, n);
	wipe(b->data + b->len, old - b->len);   /* secrets must not linger */
}

/* Write out until it is empty or the socket is full; 1 if it is empty. */
static int write_out(struct imap_conn *c, struct err *e)
{
	while (c->out.len > 0) {
		size_t chunk = c->out.len < 65536 ? c->out.len : 65536;
		ssize_t n = conn_transport_write(c, c->out.data, chunk, e);

		if (n < 0)
			return fail_copy(c, e);
		if (n == 0)
			return 0;
		out_consume(&c->out, (size_t)n);
		c->last_activity = clock_now_ms();
	}
	return 1;
}

/*
 * Queue command bytes, compress them if needed, and write, until the socket
 * is full or nothing more may be sent: so a caller that finds out empty
 * afterwards knows there is no reason to wait for POLLOUT.
 */
static int flush_output(struct imap_conn *c, struct err *e)
{
	struct buf *dst = c->zactive ? &c->zstage : &c->out;
	int rc;

	for (;;) {
		if (pump_commands(c, dst, e) < 0)
			return fail_copy(c, e);
		if (c->zactive && c->zstage.len > 0) {
			if (conn_deflate(c, c->zstage.data, c->zstage.len, e) < 0)
				return fail_copy(c, e);
			out_consume(&c->zstage, c->zstage.len);
		}
		if (c->out.len == 0)
			return 0;       /* nothing (more) to send now */
		rc = write_out(c, e);
		if (rc <= 0)
			return rc;      /* error, or the socket is full */
	}
}

/* A continuation answer (AUTHENTICATE): queued at once, ahead of anything else. */
static int queue_answer(struct imap_conn *c, struct buf *answer, struct err *e)
{
	struct buf *dst = c->zactive ? &c->zstage : &c->out;

	log_debug(LOG_CAT_NET, "C: [redacted]");    /* its length would hint at the secret's */
	if (buf_add(dst, answer->data ? answer->data : "", answer->len, e) < 0 ||
	    buf_add(dst, "\r\n", 2, e) < 0)
		return -1;
	return 0;
}

/* ---- input: dispatch ------------------------------------------------------ */

static struct imap_cmd *find_tag(struct imap_conn *c, const char *tag)
{
	struct imap_cmd *cmd;

	for (cmd = c->cmds; cmd; cmd = cmd->next)
		if (tag && strcmp(cmd->tag, tag) == 0)
			return cmd;
	return NULL;
}

static int dispatch_tagged(struct imap_conn *c, struct imap_resp *r, struct err *e)
{
	struct imap_cmd *cmd = find_tag(c, r->tag);

	if (cmd == NULL) {
		err_set(e, ERR_PROTO, "server \"%s\" answered unknown tag \"%.40s\"", c->host,
			r->tag ? r->tag : "");
		imap_resp_free(r);
		return fail_copy(c, e);
	}
	if (cmd->seg_i < cmd->nsegs && !cmd->blocked) {
		err_set(e, ERR_PROTO, "server \"%s\" answered \"%s\" before it was sent", c->host,
			cmd->tag);
		imap_resp_free(r);
		return fail_copy(c, e);
	}
	cmd_unlink(c, cmd);             /* a rejected sync literal: the rest is dropped */
	cmd->resp = r;
	if ((cmd->flags & IMAP_CMD_SWITCH) && r->status == IMAP_STATUS_OK)
		c->paused = true;
	cmd_complete(c, cmd, true);
	return 0;
}

static int dispatch_continuation(struct imap_conn *c, struct imap_resp *r, struct err *e)
{
	struct imap_cmd *cmd;
	struct buf answer = BUF_INIT(1024 * 1024);
	int rc;

	if (c->send_cmd && c->send_cmd->blocked) {
		c->send_cmd->blocked = false;
		imap_resp_free(r);
		return 0;
	}
	for (cmd = c->cmds; cmd; cmd = cmd->next)
		if (cmd->cont && cmd->seg_i == cmd->nsegs)
			break;
	if (cmd == NULL) {
		imap_resp_free(r);
		err_set(e, ERR_PROTO, "server \"%s\" sent an unexpected continuation request", c->host);
		return fail_copy(c, e);
	}
	rc = cmd->cont(cmd->ctx, r, &answer, e);
	if (rc == 0)
		rc = queue_answer(c, &answer, e);
	buf_release_secret(&answer);
	imap_resp_free(r);
	return rc < 0 ? fail_copy(c, e) : 0;
}

static int dispatch_untagged(struct imap_conn *c, struct imap_resp *r, struct err *e)
{
	struct imap_cmd *cmd;
	int rc = 0;

	if (c->state == IMAP_CONN_GREETING) {
		c->greeting = r;
		conn_set_state(c, r->status == IMAP_STATUS_BYE ? IMAP_CONN_BYE : IMAP_CONN_OPEN);
		if (r->status == IMAP_STATUS_BYE)
			c->bye_text = xstrdup(r->text ? r->text : "");
		return 0;
	}
	if (r->status == IMAP_STATUS_BYE && c->bye_text == NULL) {
		c->bye_text = xstrdup(r->text ? r->text : "");
		conn_set_state(c, IMAP_CONN_BYE);
	}
	for (cmd = c->cmds; cmd && rc == 0; cmd = cmd->next) {
		struct err herr;

		if (!cmd->untagged)
			continue;
		err_clear(&herr);
		rc = cmd->untagged(cmd->ctx, r, &herr);
		if (rc < 0) {
			if (!cmd->has_err) {
				cmd->err = herr;
				cmd->has_err = true;
			}
			rc = 1;
		}
	}
	if (rc == 0 && c->untagged && c->untagged(c->untagged_ctx, r, e) < 0) {
		imap_resp_free(r);
		return fail_copy(c, e);
	}
	imap_resp_free(r);
	return 0;
}

static int dispatch(struct imap_conn *c, struct imap_resp *r, struct err *e)
{
	switch (r->kind) {
	case IMAP_RESP_TAGGED:
		return dispatch_tagged(c, r, e);
	case IMAP_RESP_CONTINUATION:
		if (c->state == IMAP_CONN_GREETING)
			break;
		return dispatch_continuation(c, r, e);
	case IMAP_RESP_UNTAGGED:
		return dispatch_untagged(c, r, e);
	}
	imap_resp_free(r);
	err_set(e, ERR_PROTO, "server \"%s\" sent a bad greeting", c->host);
	return fail_copy(c, e);
}

/* ---- input: bytes to responses ------------------------------------------ */

/* Feed buffered input to the parser and dispatch complete responses. */
/*
 * Parse what was read, response by response.  The parsed bytes are dropped
 * from the buffer once, when the loop ends (or before inflating more), not
 * after each response: a 64 KiB read of short FETCH lines would otherwise
 * move the rest of the buffer once per line.  Nothing reads the buffers
 * while the loop runs (a layer switch waits for the pause that ends it).
 */
static int feed_input(struct imap_conn *c, struct err *e)
{
	struct buf *src = c->zactive ? &c->zplain : &c->rin;
	size_t off = 0;                 /* parsed, not yet dropped from src */
	int rc = 0;

	while (!c->paused && !state_is_terminal(c->state)) {
		struct imap_resp *r = NULL;
		enum imap_parse_result pr;
		size_t used = 0;

		if (src != (c->zactive ? &c->zplain : &c->rin)) {
			buf_consume(src, off);
			off = 0;
			src = c->zactive ? &c->zplain : &c->rin;
		}
		if (c->zactive && c->zplain.len == off && c->rin.len > 0) {
			int produced;

			buf_consume(src, off);
			off = 0;
			produced = conn_inflate(c, e);
			if (produced < 0) {
				rc = fail_copy(c, e);
				break;
			}
			if (produced == 0)
				break;
		}
		if (src->len == off)
			break;
		pr = imap_parser_feed(c->parser, src->data + off, src->len - off, &used, &r, e);
		if (used > src->len - off)
			used = src->len - off;
		trace_in(c, src->data + off, used);
		off += used;
		if (pr == IMAP_PARSE_ERROR) {
			err_prefix(e, "bad response from \"%s\"", c->host);
			rc = fail_copy(c, e);
			break;
		}
		if (pr == IMAP_PARSE_DONE && r && dispatch(c, r, e) < 0) {
			rc = -1;
			break;
		}
		if (used == 0 && pr != IMAP_PARSE_DONE)
			break;          /* no progress: wait for more bytes */
	}
	buf_consume(src, off);
	return rc;
}

/* The server closed its side. */
static int handle_eof(struct imap_conn *c, struct err *e)
{
	bool mid = c->rin.len > 0 || c->zplain.len > 0;

	if (c->bye_text && c->npending == 0 && !mid) {
		conn_set_state(c, IMAP_CONN_CLOSED);
		conn_transport_close(c);
		return 0;
	}
	if (c->bye_text)
		err_set(e, ERR_NET, "server \"%s\" closed the connection: %s", c->host, c->bye_text);
	else
		err_set(e, ERR_NET, "server \"%s\" closed the connection%s", c->host,
			mid ? " in the middle of a response" : "");
	e->retry = true;
	return fail_copy(c, e);
}

static int read_input(struct imap_conn *c, struct err *e)
{
	size_t total = 0;

	while (!c->paused && !state_is_terminal(c->state) && total < READ_PER_STEP) {
		ssize_t n;

		if (buf_reserve(&c->rin, READ_CHUNK, e) < 0)
			return fail_copy(c, e);
		n = conn_transport_read(c, c->rin.data + c->rin.len, READ_CHUNK, e);
		if (n == CONN_EOF)
			return handle_eof(c, e);
		if (n < 0)
			return fail_copy(c, e);
		if (n == 0)
			break;
		c->rin.len += (size_t)n;
		c->rin.data[c->rin.len] = '\0';
		total += (size_t)n;
		c->last_activity = clock_now_ms();
		if (feed_input(c, e) < 0)
			return -1;
	}
	return 0;
}

static bool expecting(const struct imap_conn *c)
{
	return c->state == IMAP_CONN_GREETING || c->npending > 0;
}

int imap_conn_poll_timeout(const struct imap_conn *c)
{
	int64_t left;

	if (state_is_terminal(c->state))
		return -1;
	if (conn_transport_has_pending(c) && !c->paused)
		return 0;       /* decrypted bytes wait inside GnuTLS: poll() cannot see them */
	if (!expecting(c))
		return -1;
	left = c->last_activity + (int64_t)c->timeout_ms - clock_now_ms();
	return left < 0 ? 0 : (int)left;
}

static int check_timeout(struct imap_conn *c, struct err *e)
{
	if (state_is_terminal(c->state) || !expecting(c) || imap_conn_poll_timeout(c) > 0)
		return 0;
	err_set(e, ERR_TIMEOUT, "no answer from \"%s\" for %u s", c->host,
		(c->timeout_ms + 999) / 1000);
	return fail_copy(c, e);
}

int imap_conn_process(struct imap_conn *c, short revents, struct err *e)
{
	if (c->state == IMAP_CONN_FAILED) {
		*e = c->err;
		return -1;
	}
	if (state_is_terminal(c->state) || c->fd < 0)
		return 0;
	if (revents & (POLLERR | POLLNVAL)) {
		err_set(e, ERR_NET, "connection to \"%s\" broke", c->host);
		e->retry = true;
		return fail_copy(c, e);
	}
	if (flush_output(c, e) < 0 || feed_input(c, e) < 0 || read_input(c, e) < 0)
		return -1;
	if (!state_is_terminal(c->state) && flush_output(c, e) < 0)
		return -1;
	return check_timeout(c, e);
}

int imap_conn_fd(const struct imap_conn *c)
{
	return c->fd;
}

short imap_conn_events(const struct imap_conn *c)
{
	short ev = 0;

	if (c->fd < 0 || state_is_terminal(c->state))
		return 0;
	if (!c->paused)
		ev |= POLLIN;
	if (c->out.len > 0 || conn_transport_wants_write(c))
		ev |= POLLOUT;
	return ev;
}

/* ---- blocking helpers ------------------------------------------------------ */

typedef bool (*wait_pred)(const struct imap_conn *c, const void *arg);

static int wait_for(struct imap_conn *c, wait_pred pred, const void *arg, struct err *e)
{
	for (;;) {
		struct pollfd pfd;
		int timeout, rc;

		if (imap_conn_process(c, 0, e) < 0)
			return -1;
		if (pred(c, arg))
			return 0;
		if (state_is_terminal(c->state) || c->paused) {
			err_set(e, ERR_NET, "connection to \"%s\" is %s", c->host,
				c->paused ? "paused" : imap_conn_state_name(c->state));
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = imap_conn_events(c);
		pfd.revents = 0;
		timeout = imap_conn_poll_timeout(c);
		rc = poll(&pfd, 1, timeout);
		if (rc < 0 && errno != EINTR) {
			err_sys(e, ERR_NET, errno, "poll");
			return fail_copy(c, e);
		}
		if (rc > 0 && imap_conn_process(c, pfd.revents, e) < 0)
			return -1;
		if (pred(c, arg))
			return 0;
	}
}

static bool pred_cmd_done(const struct imap_conn *c, const void *arg)
{
	(void)c;
	return ((const struct imap_cmd *)arg)->done;
}

static bool pred_greeting(const struct imap_conn *c, const void *arg)
{
	(void)arg;
	return c->greeting != NULL;
}

int imap_conn_greeting(struct imap_conn *c, const struct imap_resp **greeting_out,
		       struct err *e)
{
	if (c->greeting == NULL && wait_for(c, pred_greeting, NULL, e) < 0) {
		if (e->code != ERR_PROTO && e->code != ERR_LIMIT)
			return err_prefix(e, "no greeting");
		/* Something that does not speak IMAP answered: as good as no
		 * server there (exit 4, not 1: nothing could be synced). */
		e->code = ERR_NET;
		e->retry = false;
		return err_prefix(e, "no IMAP greeting (is this port an IMAP server's?)");
	}
	*greeting_out = c->greeting;
	return 0;
}

int imap_conn_wait(struct imap_conn *c, struct imap_cmd *cmd, struct err *e)
{
	if (!cmd->done && wait_for(c, pred_cmd_done, cmd, e) < 0 && !cmd->done)
		return -1;
	if (cmd->has_err) {
		*e = cmd->err;
		return -1;
	}
	if (cmd->resp == NULL)
		return err_set(e, ERR_NET, "connection to \"%s\" lost", c->host);
	if (cmd->resp->status == IMAP_STATUS_OK)
		return 0;
	err_set(e, ERR_SERVER, "server \"%s\" refused %s: %s%s%s%s%s", c->host, cmd->verb,
		cmd->resp->status == IMAP_STATUS_BAD ? "BAD " : "",
		cmd->resp->code ? "[" : "", cmd->resp->code ? cmd->resp->code : "",
		cmd->resp->code ? "] " : "", cmd->resp->text ? cmd->resp->text : "");
	e->scope = ERR_SCOPE_MAILBOX;
	return -1;
}

/* ---- layer switches ------------------------------------------------------ */

int imap_conn_start_tls(struct imap_conn *c, struct err *e)
{
	if (!c->paused || c->tls)
		return err_set(e, ERR_INTERNAL, "STARTTLS at the wrong moment");
	if (c->rin.len > 0) {
		err_set(e, ERR_TLS, "server \"%s\" sent data right after STARTTLS "
			"(a possible injection attack)", c->host);
		return fail_copy(c, e);
	}
	if (conn_tls_handshake(c, e) < 0)
		return fail_copy(c, e);
	c->paused = false;
	conn_set_state(c, IMAP_CONN_OPEN);
	return 0;
}

int imap_conn_start_compress(struct imap_conn *c, struct err *e)
{
	if (!c->paused || c->zactive)
		return err_set(e, ERR_INTERNAL, "COMPRESS at the wrong moment");
	if (conn_zlib_init(c, e) < 0)
		return fail_copy(c, e);
	c->paused = false;
	log_debug(LOG_CAT_NET, "connection to \"%s\": deflate on", c->host);
	/* Bytes already read after the OK are compressed: feed them through inflate. */
	return feed_input(c, e);
}

/* ---- small accessors -------------------------------------------------- */

void imap_conn_set_literal_mode(struct imap_conn *c, enum imap_literal_mode mode)
{
	c->literal_mode = mode;
}

void imap_conn_set_untagged(struct imap_conn *c, imap_untagged_fn fn, void *ctx)
{
	c->untagged = fn;
	c->untagged_ctx = ctx;
}

enum imap_conn_state imap_conn_state(const struct imap_conn *c)
{
	return c->state;
}

const struct err *imap_conn_error(const struct imap_conn *c)
{
	return c->state == IMAP_CONN_FAILED ? &c->err : NULL;
}

const char *imap_conn_bye_text(const struct imap_conn *c)
{
	return c->bye_text;
}

bool imap_conn_is_tls(const struct imap_conn *c)
{
	return c->tls;
}

bool imap_conn_is_compressed(const struct imap_conn *c)
{
	return c->zactive;
}

const char *imap_conn_fingerprint(const struct imap_conn *c)
{
	return c->fingerprint[0] ? c->fingerprint : NULL;
}

size_t imap_conn_pending(const struct imap_conn *c)
{
	return c->npending;
}
