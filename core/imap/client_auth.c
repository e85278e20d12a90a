/*
 * client_auth.c - choosing a mechanism, fetching the secret only then,
 * LOGIN and AUTHENTICATE (with SASL-IR when offered), and the capability
 * refresh after login.
 */
#include "client_int.h"

#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "sasl.h"
#include "xalloc.h"

#define SECRET_MAX (64u * 1024u)

static const struct {
	const char *name;
	enum imap_cap cap;
} mech_info[] = {
	[IMAP_AUTH_LOGIN] = { "login", IMAP_CAP_COUNT },
	[IMAP_AUTH_PLAIN] = { "plain", IMAP_CAP_AUTH_PLAIN },
	[IMAP_AUTH_SCRAM_SHA_1] = { "scram-sha-1", IMAP_CAP_AUTH_SCRAM_SHA_1 },
	[IMAP_AUTH_SCRAM_SHA_256] = { "scram-sha-256", IMAP_CAP_AUTH_SCRAM_SHA_256 },
	[IMAP_AUTH_XOAUTH2] = { "xoauth2", IMAP_CAP_AUTH_XOAUTH2 },
	[IMAP_AUTH_OAUTHBEARER] = { "oauthbearer", IMAP_CAP_AUTH_OAUTHBEARER },
};
#define NMECHS (sizeof(mech_info) / sizeof(mech_info[0]))

const char *imap_auth_mech_name(enum imap_auth_mech mech)
{
	return (size_t)mech < NMECHS ? mech_info[mech].name : "?";
}

bool imap_auth_mech_is_oauth(enum imap_auth_mech mech)
{
	return mech == IMAP_AUTH_XOAUTH2 || mech == IMAP_AUTH_OAUTHBEARER;
}

static enum sasl_mech to_sasl(enum imap_auth_mech m)
{
	switch (m) {
	case IMAP_AUTH_SCRAM_SHA_1:
		return SASL_SCRAM_SHA_1;
	case IMAP_AUTH_SCRAM_SHA_256:
		return SASL_SCRAM_SHA_256;
	case IMAP_AUTH_XOAUTH2:
		return SASL_XOAUTH2;
	case IMAP_AUTH_OAUTHBEARER:
		return SASL_OAUTHBEARER;
	default:
		return SASL_PLAIN;
	}
}

/* The IANA spelling, for messages. */
static const char *mech_wire_name(enum imap_auth_mech m)
{
	return m == IMAP_AUTH_LOGIN ? "LOGIN" : sasl_mech_name(to_sasl(m));
}

/* Sends something an eavesdropper could replay: the password or a bearer token. */
static bool mech_sends_cleartext(enum imap_auth_mech m)
{
	return m == IMAP_AUTH_LOGIN || m == IMAP_AUTH_PLAIN || imap_auth_mech_is_oauth(m);
}

/* ---- choosing ------------------------------------------------------------- */

static size_t default_mechs(const struct imap_client *cl, enum imap_auth_mech *out)
{
	static const enum imap_auth_mech oauth[] = { IMAP_AUTH_OAUTHBEARER, IMAP_AUTH_XOAUTH2 };
	static const enum imap_auth_mech pass[] = { IMAP_AUTH_SCRAM_SHA_256, IMAP_AUTH_SCRAM_SHA_1,
						    IMAP_AUTH_PLAIN, IMAP_AUTH_LOGIN };
	bool want_pass = cl->opts.have_password || !cl->opts.have_token;
	size_t n = 0, i;

	if (cl->opts.have_token)
		for (i = 0; i < 2; i++)
			out[n++] = oauth[i];
	if (want_pass)
		for (i = 0; i < 4; i++)
			out[n++] = pass[i];
	return n;
}

static bool mech_offered(const struct imap_client *cl, enum imap_auth_mech m)
{
	if (m == IMAP_AUTH_LOGIN)
		return !imap_caps_has(&cl->caps, IMAP_CAP_LOGINDISABLED);
	return imap_caps_has(&cl->caps, mech_info[m].cap);
}

static int choose_mech(struct imap_client *cl, enum imap_auth_mech *out, struct err *e)
{
	enum imap_auth_mech defaults[NMECHS];
	const enum imap_auth_mech *list = cl->opts.mechs;
	size_t n = cl->opts.nmechs, i;
	bool secure = imap_conn_is_tls(cl->conn) || imap_conn_peer_is_local(cl->conn);
	bool refused_clear = false;

	if (list == NULL) {
		n = default_mechs(cl, defaults);
		list = defaults;
	}
	for (i = 0; i < n; i++) {
		if (!mech_offered(cl, list[i]))
			continue;
		if (!secure && mech_sends_cleartext(list[i])) {
			refused_clear = true;
			continue;
		}
		*out = list[i];
		return 0;
	}
	if (refused_clear)
		return err_set(e, ERR_AUTH, "refusing to send credentials in plain text to \"%s\" "
			       "(not this machine); use tls: implicit or starttls", cl->host);
	{
		char offered[160] = "";
		size_t len = 0;

		for (i = 0; i < NMECHS; i++)
			if (mech_offered(cl, (enum imap_auth_mech)i) && len < sizeof(offered))
				len += (size_t)snprintf(offered + len, sizeof(offered) - len, "%s%s",
							len ? ", " : "", mech_info[i].name);
		return err_set(e, ERR_AUTH, "server \"%s\" offers none of the allowed authentication "
			       "mechanisms (it offers: %s); change auth: in the config",
			       cl->host, len ? offered : "none that ferry knows");
	}
}

/* ---- LOGIN ---------------------------------------------------------------------- */

static int auth_refused(struct imap_client *cl, const struct imap_cmd *cmd, const char *detail,
			struct err *e)
{
	const struct imap_resp *r = cmd ? imap_cmd_response(cmd) : NULL;

	if (r == NULL)
		return -1;          /* a connection error: keep it */
	err_set(e, ERR_AUTH, "server \"%s\" refused %s login for \"%s\": %s%s%s%s",
		cl->host, mech_wire_name(cl->mech), cl->user,
		r->text && r->text[0] ? r->text : "no reason given",
		detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
	return -1;
}

static int login_plain(struct imap_client *cl, const struct buf *secret,
		       struct imap_cmd **cmd_out, struct err *e)
{
	struct buf b = BUF_INIT(2 * SECRET_MAX + 1024);
	struct imap_cmd_req req = { .flags = IMAP_CMD_SECRET };
	unsigned f = client_str_flags(cl);
	int rc = -1;

	if (buf_adds(&b, "LOGIN ", e) < 0 ||
	    imap_cmd_add_string(&b, cl->user, strlen(cl->user), f, NULL, e) < 0)
		goto out;
	req.public_len = b.len;
	if (buf_addc(&b, ' ', e) < 0 ||
	    imap_cmd_add_string(&b, buf_cstr(secret), secret->len, f, NULL, e) < 0) {
		err_set(e, ERR_AUTH, "the password cannot be sent with LOGIN");
		goto out;
	}
	req.text = buf_cstr(&b);
	req.len = b.len;
	rc = client_run(cl, &req, cmd_out, e);
out:
	buf_release_secret(&b);
	return rc;
}

/* ---- AUTHENTICATE ------------------------------------------------------------- */

struct auth_ctx {
	struct imap_client *cl;
	struct sasl *sasl;
	bool initial_pending;       /* no SASL-IR: the first "+" asks for it */
	bool failed;                /* we cancelled the exchange */
	struct err err;
};

static int auth_answer(struct auth_ctx *ac, const struct imap_resp *r, struct buf *answer,
		       struct err *e)
{
	struct buf raw = BUF_INIT(SECRET_MAX * 2);
	struct buf chal = BUF_INIT(SECRET_MAX);
	const char *text = r->text ? r->text : "";
	int rc;

	if (ac->initial_pending) {
		ac->initial_pending = false;
		rc = sasl_start(ac->sasl, &raw, e);
	} else {
		rc = sasl_b64_decode(text, strlen(text), &chal, e);
		if (rc == 0)
			rc = sasl_step(ac->sasl, buf_cstr(&chal), chal.len, &raw, e);
	}
	if (rc == 0)
		rc = sasl_b64_encode(raw.data ? raw.data : "", raw.len, answer, e);
	buf_release_secret(&raw);
	buf_release(&chal);
	return rc;
}

static int auth_cont(void *ctx, const struct imap_resp *r, struct buf *answer, struct err *e)
{
	struct auth_ctx *ac = ctx;
	struct err why;

	if (ac->failed || auth_answer(ac, r, answer, &why) < 0) {
		if (!ac->failed) {
			ac->err = why;
			ac->failed = true;
		}
		buf_reset(answer);
		return buf_addc(answer, '*', e);    /* RFC 3501 6.2.2: cancel */
	}
	return 0;
}

static int build_authenticate(struct imap_client *cl, struct auth_ctx *ac, struct buf *b,
			      size_t *public_len_out, struct err *e)
{
	const char *name = sasl_mech_name(to_sasl(cl->mech));
	struct buf raw = BUF_INIT(SECRET_MAX * 2);
	int rc = 0;

	if (buf_addf(b, e, "AUTHENTICATE %s", name) < 0)
		return -1;
	*public_len_out = b->len;
	if (!imap_caps_has(&cl->caps, IMAP_CAP_SASL_IR)) {
		ac->initial_pending = true;
		return 0;
	}
	if (sasl_start(ac->sasl, &raw, e) < 0 || buf_addc(b, ' ', e) < 0)
		rc = -1;
	else if (raw.len == 0)
		rc = buf_addc(b, '=', e);
	else
		rc = sasl_b64_encode(raw.data, raw.len, b, e);
	buf_release_secret(&raw);
	return rc;
}

static int authenticate(struct imap_client *cl, const struct buf *secret,
			struct imap_cmd **cmd_out, struct err *e)
{
	struct sasl_opts so = {
		.mech = to_sasl(cl->mech), .user = cl->user, .secret = buf_cstr(secret),
		.host = cl->host, .port = cl->opts.conn.port,
	};
	struct auth_ctx ac = { .cl = cl };
	struct buf b = BUF_INIT(4 * SECRET_MAX + 1024);
	struct imap_cmd_req req = { .flags = IMAP_CMD_SECRET, .cont = auth_cont, .ctx = &ac };
	int rc = -1;

	ac.sasl = sasl_new(&so, e);
	if (ac.sasl == NULL)
		return -1;
	if (build_authenticate(cl, &ac, &b, &req.public_len, e) < 0)
		goto out;
	req.text = buf_cstr(&b);
	req.len = b.len;
	rc = client_run(cl, &req, cmd_out, e);
	if (ac.failed) {
		*e = ac.err;
		if (e->code != ERR_AUTH)
			err_prefix(e, "%s", mech_wire_name(cl->mech));
		rc = -1;
	} else if (rc == 0) {
		rc = sasl_finish(ac.sasl, NULL, 0, e);
	} else if (rc < 0 && e->code == ERR_SERVER) {
		auth_refused(cl, *cmd_out, sasl_error_detail(ac.sasl), e);
	}
out:
	buf_release_secret(&b);
	sasl_free(ac.sasl);
	return rc;
}

/* ---- the whole login ------------------------------------------------------------ */

static int get_secret(struct imap_client *cl, struct buf *secret, struct err *e)
{
	enum imap_secret_kind kind = imap_auth_mech_is_oauth(cl->mech) ? IMAP_SECRET_TOKEN
								     : IMAP_SECRET_PASSWORD;

	if (cl->opts.get_secret == NULL)
		return err_set(e, ERR_AUTH, "no %s configured for \"%s\"",
			       kind == IMAP_SECRET_TOKEN ? "OAuth token" : "password", cl->user);
	if (cl->opts.get_secret(cl->opts.secret_ctx, kind, secret, e) < 0)
		return -1;
	if (memchr(buf_cstr(secret), '\0', secret->len))
		return err_set(e, ERR_AUTH, "the %s contains a NUL byte",
			       kind == IMAP_SECRET_TOKEN ? "token" : "password");
	return 0;
}

int client_authenticate(struct imap_client *cl, struct err *e)
{
	struct buf secret = BUF_INIT(SECRET_MAX);
	struct imap_cmd *cmd = NULL;
	int rc;

	if (choose_mech(cl, &cl->mech, e) < 0)
		return -1;
	log_debug(LOG_CAT_NET, "logging in to \"%s\" as \"%s\" with %s", cl->host, cl->user,
		  mech_wire_name(cl->mech));
	if (get_secret(cl, &secret, e) < 0) {
		buf_release_secret(&secret);
		return -1;
	}
	cl->have_caps = false;      /* an untagged CAPABILITY during login sets it again */
	if (cl->mech == IMAP_AUTH_LOGIN) {
		rc = login_plain(cl, &secret, &cmd, e);
		if (rc < 0 && e->code == ERR_SERVER)
			auth_refused(cl, cmd, NULL, e);
	} else {
		rc = authenticate(cl, &secret, &cmd, e);
	}
	buf_release_secret(&secret);
	if (rc == 0) {
		/* The tagged OK may carry the new capabilities; otherwise ask. */
		rc = client_caps_from_code(cl, imap_cmd_response(cmd), e);
		if (rc == 0 && !cl->have_caps)
			rc = client_refresh_caps(cl, e);
		else if (rc > 0)
			rc = 0;
	}
	imap_cmd_free(cmd);
	return rc;
}
