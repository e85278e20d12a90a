/*
 * Integration tests of the IMAP client against a real Dovecot on loopback
 * (tests/harness/dovecot-test): every TLS mode, every mechanism, the
 * certificate checks, the capability variants, LIST with special-use
 * roles, COMPRESS, and the trace without secrets.
 *
 * Each test starts its own throwaway server in .init and stops it in .fini.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "log.h"
#include "xalloc.h"

/* ---- the server (tests/harness) ------------------------------------------------ */

static struct dovecot dc;

static void dovecot_start(const char *variant)
{
	cr_assert_eq(harness_dovecot_start(&dc, variant), 0, "cannot start Dovecot (%s)",
		     variant ? variant : "default");
	cr_assert(dc.imap_port > 0 && dc.pass1[0]);
}

static void dovecot_stop(void)
{
	harness_dovecot_stop(&dc);
}

/* A JWT minted by the harness for user. */
static char *dovecot_jwt(const char *user, unsigned flags)
{
	char *jwt = harness_jwt(&dc, user, flags);

	cr_assert_not_null(jwt);
	return jwt;
}

static void start_full(void)
{
	dovecot_start(NULL);
}

static void start_rev1(void)
{
	dovecot_start("--caps imap4rev1");
}

static void start_compress(void)
{
	dovecot_start("--compress");
}

static void start_no_starttls(void)
{
	dovecot_start("--no-starttls");
}

/* ---- the client ---------------------------------------------------------------- */

struct secrets {
	const char *password;
	const char *token;
	int calls;
};

static int give_secret(void *ctx, enum imap_secret_kind kind, struct buf *out, struct err *e)
{
	struct secrets *s = ctx;
	const char *v = kind == IMAP_SECRET_TOKEN ? s->token : s->password;

	s->calls++;
	if (v == NULL)
		return err_set(e, ERR_EXEC, "no secret of that kind");
	return buf_adds(out, v, e);
}

struct setup {
	enum imap_tls_mode tls;
	const char *ca_file;
	const char *pin;
	const char *host;
	enum imap_auth_mech mech;
	bool any_mech;              /* default order instead of one mechanism */
	bool token;                 /* OAuth token source configured */
};

static struct imap_client *client_for(const struct setup *s, struct secrets *sec,
				      enum imap_auth_mech *mech_store)
{
	struct imap_client_opts o;

	memset(&o, 0, sizeof(o));
	o.conn.host = s->host ? s->host : "localhost";
	o.conn.port = (unsigned)(s->tls == IMAP_TLS_IMPLICIT ? dc.imaps_port : dc.imap_port);
	o.conn.tls = s->tls;
	o.conn.tls_ca_file = s->ca_file;
	o.conn.tls_fingerprint = s->pin;
	o.conn.timeout_ms = 10000;
	o.user = dc.user1;
	o.have_password = !s->token;
	o.have_token = s->token;
	o.get_secret = give_secret;
	o.secret_ctx = sec;
	if (!s->any_mech) {
		*mech_store = s->mech;
		o.mechs = mech_store;
		o.nmechs = 1;
	}
	return imap_client_new(&o);
}

static void login_ok(const struct setup *s)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl = client_for(s, &sec, &m);
	struct err e;

	cr_assert_eq(imap_client_open(cl, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_client_state(cl), IMAP_CLIENT_AUTHENTICATED);
	cr_assert_eq(imap_client_mech(cl), s->mech);
	cr_assert_eq(sec.calls, 1);
	cr_assert_eq(imap_conn_is_tls(imap_client_conn(cl)), s->tls != IMAP_TLS_NONE);
	cr_assert_eq(imap_client_logout(cl, &e), 0, "%s", e.msg);
	imap_client_free(cl);
}

/* ---- TLS modes and mechanisms ---------------------------------------------------- */

TestSuite(client, .init = start_full, .fini = dovecot_stop, .timeout = 120);

Test(client, login_without_tls_on_loopback)
{
	login_ok(&(struct setup){ .tls = IMAP_TLS_NONE, .mech = IMAP_AUTH_LOGIN });
	login_ok(&(struct setup){ .tls = IMAP_TLS_NONE, .mech = IMAP_AUTH_PLAIN });
}

Test(client, login_with_starttls)
{
	login_ok(&(struct setup){ .tls = IMAP_TLS_STARTTLS, .ca_file = dc.ca_file,
				  .mech = IMAP_AUTH_LOGIN });
}

Test(client, login_with_implicit_tls)
{
	login_ok(&(struct setup){ .tls = IMAP_TLS_IMPLICIT, .ca_file = dc.ca_file,
				  .mech = IMAP_AUTH_LOGIN });
}

Test(client, ip_literal_host_is_verified_against_the_ip_in_the_certificate)
{
	login_ok(&(struct setup){ .tls = IMAP_TLS_IMPLICIT, .host = "127.0.0.1",
				  .ca_file = dc.ca_file, .mech = IMAP_AUTH_PLAIN });
}

Test(client, every_password_mechanism_logs_in)
{
	static const enum imap_auth_mech mechs[] = { IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN,
						     IMAP_AUTH_SCRAM_SHA_1,
						     IMAP_AUTH_SCRAM_SHA_256 };
	size_t i;

	for (i = 0; i < 4; i++)
		login_ok(&(struct setup){ .tls = IMAP_TLS_IMPLICIT, .ca_file = dc.ca_file,
					  .mech = mechs[i] });
}

Test(client, default_choice_is_scram_sha_256)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	struct setup s = { .tls = IMAP_TLS_IMPLICIT, .ca_file = dc.ca_file, .any_mech = true };
	enum imap_auth_mech m;
	struct imap_client *cl = client_for(&s, &sec, &m);
	struct err e;

	cr_assert_eq(imap_client_open(cl, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_client_mech(cl), IMAP_AUTH_SCRAM_SHA_256);
	imap_client_free(cl);
}

static void oauth_login(enum imap_auth_mech mech, unsigned jwt_flags, int want_rc)
{
	char *jwt = dovecot_jwt(dc.user1, jwt_flags);
	struct secrets sec = { NULL, jwt, 0 };
	struct setup s = { .tls = IMAP_TLS_IMPLICIT, .ca_file = dc.ca_file, .mech = mech,
			   .token = true };
	enum imap_auth_mech m;
	struct imap_client *cl = client_for(&s, &sec, &m);
	struct err e;
	int rc = imap_client_open(cl, &e);

	cr_assert_eq(rc, want_rc, "%s: %s", imap_auth_mech_name(mech), rc ? e.msg : "ok");
	if (rc < 0) {
		cr_assert_eq(e.code, ERR_AUTH, "%s", e.msg);
		cr_assert_null(strstr(e.msg, jwt), "%s", e.msg);
		/* The connection is still usable after the refused exchange. */
		cr_assert_eq(imap_conn_state(imap_client_conn(cl)), IMAP_CONN_OPEN);
	} else {
		cr_assert_eq(imap_client_mech(cl), mech);
	}
	cr_assert_eq(sec.calls, 1);
	imap_client_free(cl);
	free(jwt);
}

Test(client, xoauth2_and_oauthbearer_log_in_with_a_jwt)
{
	oauth_login(IMAP_AUTH_XOAUTH2, 0, 0);
	oauth_login(IMAP_AUTH_OAUTHBEARER, 0, 0);
}

Test(client, oauthbearer_bad_jwt_is_a_clean_auth_error)
{
	oauth_login(IMAP_AUTH_OAUTHBEARER, HARNESS_JWT_BAD_SIGNATURE, -1);
	oauth_login(IMAP_AUTH_XOAUTH2, HARNESS_JWT_BAD_SIGNATURE, -1);
}

Test(client, wrong_password_is_an_auth_error_with_the_server_text)
{
	struct secrets sec = { "not-the-password-XyZ", NULL, 0 };
	static const enum imap_auth_mech mechs[] = { IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN,
						     IMAP_AUTH_SCRAM_SHA_256 };
	size_t i;

	for (i = 0; i < 3; i++) {
		struct setup s = { .tls = IMAP_TLS_IMPLICIT, .ca_file = dc.ca_file,
				   .mech = mechs[i] };
		enum imap_auth_mech m;
		struct imap_client *cl = client_for(&s, &sec, &m);
		struct err e;

		cr_assert_eq(imap_client_open(cl, &e), -1);
		cr_assert_eq(e.code, ERR_AUTH, "%s", e.msg);
		cr_assert_not_null(strstr(e.msg, "Authentication failed"), "%s", e.msg);
		cr_assert_null(strstr(e.msg, "XyZ"), "%s", e.msg);
		cr_assert_eq(err_exit_code(&e), 3);
		imap_client_free(cl);
	}
}

/* ---- certificates ------------------------------------------------------------------- */

static struct err open_fails(const struct setup *s)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl = client_for(s, &sec, &m);
	struct err e;

	cr_assert_eq(imap_client_open(cl, &e), -1);
	cr_assert_eq(sec.calls, 0, "the secret was asked for before TLS was settled");
	imap_client_free(cl);
	return e;
}

Test(client, untrusted_self_signed_certificate_is_a_tls_error)
{
	struct err e = open_fails(&(struct setup){ .tls = IMAP_TLS_IMPLICIT,
						   .mech = IMAP_AUTH_LOGIN });

	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "certificate for \"localhost\" is not trusted"), "%s",
			   e.msg);
	cr_assert_not_null(strstr(e.msg, dc.fingerprint), "%s", e.msg);
	cr_assert_eq(err_exit_code(&e), 4);
	e = open_fails(&(struct setup){ .tls = IMAP_TLS_STARTTLS, .mech = IMAP_AUTH_LOGIN });
	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
}

/* Another name of this machine from /etc/hosts (the certificate names only localhost). */
static bool other_local_name(char *out, size_t size)
{
	FILE *f = fopen("/etc/hosts", "r");
	char line[512];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *save = NULL, *addr = strtok_r(line, " \t\n", &save), *name;

		if (addr == NULL || strcmp(addr, "127.0.0.1") != 0)
			continue;
		while ((name = strtok_r(NULL, " \t\n", &save)) != NULL) {
			if (strcmp(name, "localhost") != 0 && name[0] != '#') {
				snprintf(out, size, "%s", name);
				found = true;
				break;
			}
		}
	}
	fclose(f);
	return found;
}

Test(client, certificate_for_another_name_is_a_tls_error)
{
	char name[256];
	struct err e;

	if (!other_local_name(name, sizeof(name)))
		cr_skip_test("no other name for 127.0.0.1 in /etc/hosts");
	e = open_fails(&(struct setup){ .tls = IMAP_TLS_IMPLICIT, .host = name,
					.ca_file = dc.ca_file, .mech = IMAP_AUTH_LOGIN });
	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "another name"), "%s", e.msg);
}

Test(client, pinned_certificate_is_trusted_without_a_ca)
{
	login_ok(&(struct setup){ .tls = IMAP_TLS_IMPLICIT, .pin = dc.fingerprint,
				  .mech = IMAP_AUTH_PLAIN });
	login_ok(&(struct setup){ .tls = IMAP_TLS_STARTTLS, .pin = dc.fingerprint,
				  .mech = IMAP_AUTH_PLAIN });
}

Test(client, wrong_pin_is_a_tls_error_showing_both_fingerprints)
{
	const char *wrong = "sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
			    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
	struct err e = open_fails(&(struct setup){ .tls = IMAP_TLS_IMPLICIT, .pin = wrong,
						   .ca_file = dc.ca_file,
						   .mech = IMAP_AUTH_PLAIN });

	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, wrong), "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, dc.fingerprint), "%s", e.msg);
}

TestSuite(client_no_starttls, .init = start_no_starttls, .fini = dovecot_stop, .timeout = 120);

Test(client_no_starttls, starttls_demanded_but_not_offered_is_a_tls_error)
{
	struct err e = open_fails(&(struct setup){ .tls = IMAP_TLS_STARTTLS, .ca_file = dc.ca_file,
						   .mech = IMAP_AUTH_PLAIN });

	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "STARTTLS"), "%s", e.msg);
}

/* ---- after login: capabilities, LIST, SELECT ------------------------------------- */

static struct imap_client *open_default(struct secrets *sec, enum imap_auth_mech *m)
{
	struct setup s = { .tls = IMAP_TLS_IMPLICIT, .ca_file = dc.ca_file, .any_mech = true };
	struct imap_client *cl = client_for(&s, sec, m);
	struct err e;

	cr_assert_eq(imap_client_open(cl, &e), 0, "%s", e.msg);
	return cl;
}

static const struct imap_mailbox *find_box(const struct imap_mailbox_list *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->items[i].name, name) == 0)
			return &l->items[i];
	return NULL;
}

static void run_cmd(struct imap_client *cl, const char *text)
{
	struct imap_cmd_req req = { .text = text, .len = strlen(text) };
	struct imap_conn *c = imap_client_conn(cl);
	struct err e;
	struct imap_cmd *cmd = imap_conn_submit(c, &req, &e);

	cr_assert_not_null(cmd, "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s: %s", text, e.msg);
	imap_cmd_free(cmd);
}

Test(client, list_names_returns_roles_without_status)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl = open_default(&sec, &m);
	struct imap_mailbox_list l;
	const struct imap_mailbox *b;
	struct err e;

	cr_assert(imap_caps_has(imap_client_caps(cl), IMAP_CAP_LIST_STATUS));
	imap_mailbox_list_init(&l);
	cr_assert_eq(imap_client_list_names(cl, &l, &e), 0, "%s", e.msg);
	cr_assert_eq(find_box(&l, "Sent Items")->role, IMAP_ROLE_SENT);
	b = find_box(&l, "INBOX");
	cr_assert_not_null(b);
	cr_assert_eq(b->status.have, 0u, "LIST without STATUS gave a status");
	imap_mailbox_list_release(&l);
	cr_assert_eq(imap_client_logout(cl, &e), 0, "%s", e.msg);
	imap_client_free(cl);
}

Test(client, list_returns_special_use_roles_and_utf8_names)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl = open_default(&sec, &m);
	const struct imap_caps *caps = imap_client_caps(cl);
	struct imap_mailbox_list l;
	const struct imap_mailbox *b;
	struct err e;

	cr_assert(imap_caps_has(caps, IMAP_CAP_SPECIAL_USE));
	cr_assert(imap_caps_has(caps, IMAP_CAP_LIST_STATUS));
	cr_assert(imap_client_enabled(cl, IMAP_CAP_CONDSTORE));
	cr_assert(imap_client_enabled(cl, IMAP_CAP_QRESYNC));
	run_cmd(cl, "CREATE \"&AMQ-rger/Unterordner\"");    /* Ärger/Unterordner */
	imap_mailbox_list_init(&l);
	cr_assert_eq(imap_client_list(cl, &l, &e), 0, "%s", e.msg);
	b = find_box(&l, "Sent Items");
	cr_assert_not_null(b);
	cr_assert_eq(b->role, IMAP_ROLE_SENT);
	cr_assert_eq(find_box(&l, "Drafts")->role, IMAP_ROLE_DRAFTS);
	cr_assert_eq(find_box(&l, "Trash")->role, IMAP_ROLE_TRASH);
	cr_assert_eq(find_box(&l, "Junk")->role, IMAP_ROLE_JUNK);
	cr_assert_eq(find_box(&l, "Archive")->role, IMAP_ROLE_ARCHIVE);
	b = find_box(&l, "INBOX");
	cr_assert_not_null(b);
	cr_assert_eq(b->delim, '/');
	cr_assert(b->status.have & IMAP_STATUS_HAVE_UIDVALIDITY);
	cr_assert(b->status.have & IMAP_STATUS_HAVE_HIGHESTMODSEQ);
	cr_assert_neq(b->status.uidvalidity, 0);
	b = find_box(&l, "\xc3\x84rger/Unterordner");
	cr_assert_not_null(b);
	cr_assert_str_eq(b->wire_name, "&AMQ-rger/Unterordner");
	cr_assert_not_null(find_box(&l, "\xc3\x84rger"));
	imap_mailbox_list_release(&l);
	cr_assert_eq(imap_client_logout(cl, &e), 0, "%s", e.msg);
	imap_client_free(cl);
}

Test(client, select_reports_uidvalidity_uidnext_and_modseq)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl;
	struct imap_select_info info;
	const char *prefix;
	char delim;
	struct err e;

	cl = open_default(&sec, &m);
	for (int i = 0; i < 7; i++)
		run_cmd(cl, "APPEND INBOX (\\Seen) {24}\r\nSubject: hello\r\n\r\nbody\r\n");
	cr_assert_eq(imap_client_select(cl, "INBOX", false, &info, &e), 0, "%s", e.msg);
	cr_assert_eq(info.exists, 7);
	cr_assert_neq(info.uidvalidity, 0);
	cr_assert_geq(info.uidnext, 8);
	cr_assert_neq(info.highestmodseq, 0);
	cr_assert(!info.read_only);
	cr_assert_eq(imap_client_state(cl), IMAP_CLIENT_SELECTED);
	cr_assert_eq(imap_client_select(cl, "No Such Box", true, &info, &e), -1);
	cr_assert_eq(e.code, ERR_SERVER, "%s", e.msg);
	cr_assert_eq(imap_client_namespace(cl, &prefix, &delim, &e), 0, "%s", e.msg);
	cr_assert_eq(delim, '/');
	imap_client_free(cl);
}

Test(client, many_pipelined_commands_complete_in_order)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl = open_default(&sec, &m);
	struct imap_conn *c = imap_client_conn(cl);
	struct imap_cmd *cmds[100];
	struct err e;
	size_t i;

	for (i = 0; i < 100; i++) {
		const char *t = i % 2 ? "NOOP" : "STATUS INBOX (MESSAGES)";
		struct imap_cmd_req req = { .text = t, .len = strlen(t) };

		cmds[i] = imap_conn_submit(c, &req, &e);
		cr_assert_not_null(cmds[i]);
	}
	cr_assert_eq(imap_conn_wait(c, cmds[99], &e), 0, "%s", e.msg);
	for (i = 0; i < 100; i++) {
		cr_assert(imap_cmd_is_done(cmds[i]));
		cr_assert_eq(imap_cmd_status(cmds[i]), IMAP_STATUS_OK);
		imap_cmd_free(cmds[i]);
	}
	imap_client_free(cl);
}

static int note_size(void *ctx, const struct imap_resp *r, struct err *e)
{
	const struct imap_arg *size;
	uint64_t v;

	if (r->name == NULL || strcmp(r->name, "FETCH") != 0 || r->nargs < 1)
		return 0;
	size = imap_fetch_item(&r->args[0], "RFC822.SIZE");
	if (size && imap_arg_u64(size, &v))
		*(uint64_t *)ctx = v;
	return 1;
}

/* A message generated as it is sent: never whole in memory. */
struct gen_source {
	const char *head;
	uint64_t size, pos;
};

static ssize_t gen_read(void *ctx, char *buf, size_t n, struct err *e)
{
	struct gen_source *g = ctx;
	size_t hl = strlen(g->head), i;

	if (n > g->size - g->pos)
		n = (size_t)(g->size - g->pos);
	for (i = 0; i < n; i++) {
		uint64_t p = g->pos + i;

		if (p < hl)
			buf[i] = g->head[p];
		else
			buf[i] = (p - hl) % 72 == 70 ? '\r' : (p - hl) % 72 == 71 ? '\n'
									: (char)('a' + p % 26);
	}
	g->pos += n;
	return (ssize_t)n;
}

Test(client, large_streamed_append_over_tls_arrives_whole)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl = open_default(&sec, &m);
	struct imap_conn *c = imap_client_conn(cl);
	struct gen_source g = { "Subject: big\r\n\r\n", 20u * 1024 * 1024, 0 };
	struct imap_literal_source src = { g.size, gen_read, &g };
	struct imap_cmd_req append = { .text = "APPEND INBOX ", .len = 13, .source = &src };
	struct imap_select_info info;
	uint64_t size = 0;
	struct imap_cmd_req fetch = { .text = "FETCH 1 RFC822.SIZE", .len = 19,
				      .untagged = note_size, .ctx = &size };
	struct imap_cmd *cmd;
	struct err e;

	cmd = imap_conn_submit(c, &append, &e);
	cr_assert_not_null(cmd, "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	imap_cmd_free(cmd);
	cr_assert_eq(g.pos, g.size);
	cr_assert_eq(imap_client_select(cl, "INBOX", true, &info, &e), 0, "%s", e.msg);
	cr_assert_eq(info.exists, 1);
	cmd = imap_conn_submit(c, &fetch, &e);
	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	cr_assert_eq(size, g.size);
	imap_cmd_free(cmd);
	imap_client_free(cl);
}

TestSuite(client_rev1, .init = start_rev1, .fini = dovecot_stop, .timeout = 120);

Test(client_rev1, imap4rev1_only_server_uses_the_fallbacks)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl;
	const struct imap_caps *caps;
	struct imap_mailbox_list l;
	struct imap_select_info info;
	struct err e;
	static const enum imap_auth_mech mechs[] = { IMAP_AUTH_PLAIN, IMAP_AUTH_SCRAM_SHA_256,
						     IMAP_AUTH_LOGIN };
	size_t i;

	/* No SASL-IR: AUTHENTICATE waits for the empty challenge. */
	for (i = 0; i < 3; i++)
		login_ok(&(struct setup){ .tls = IMAP_TLS_IMPLICIT, .ca_file = dc.ca_file,
					  .mech = mechs[i] });
	cl = open_default(&sec, &m);
	caps = imap_client_caps(cl);
	cr_assert(!imap_caps_has(caps, IMAP_CAP_SASL_IR));
	cr_assert(!imap_caps_has(caps, IMAP_CAP_LIST_STATUS));
	cr_assert(!imap_caps_has(caps, IMAP_CAP_SPECIAL_USE));
	cr_assert(!imap_caps_has(caps, IMAP_CAP_ENABLE));
	cr_assert(!imap_client_enabled(cl, IMAP_CAP_CONDSTORE));
	imap_mailbox_list_init(&l);
	cr_assert_eq(imap_client_list(cl, &l, &e), 0, "%s", e.msg);
	cr_assert_not_null(find_box(&l, "INBOX"));
	cr_assert_not_null(find_box(&l, "Sent Items"));
	cr_assert_eq(find_box(&l, "INBOX")->status.have, 0);
	imap_mailbox_list_release(&l);
	cr_assert_eq(imap_client_select(cl, "INBOX", false, &info, &e), 0, "%s", e.msg);
	cr_assert_neq(info.uidvalidity, 0);
	cr_assert_eq(imap_client_logout(cl, &e), 0, "%s", e.msg);
	imap_client_free(cl);
}

TestSuite(client_compress, .init = start_compress, .fini = dovecot_stop, .timeout = 120);

Test(client_compress, compress_deflate_is_used_when_offered)
{
	struct secrets sec = { dc.pass1, NULL, 0 };
	enum imap_auth_mech m;
	struct imap_client *cl;
	struct imap_mailbox_list l;
	struct imap_select_info info;
	struct err e;

	cl = open_default(&sec, &m);
	for (int i = 0; i < 30; i++)
		run_cmd(cl, "APPEND INBOX {24}\r\nSubject: hello\r\n\r\nbody\r\n");
	cr_assert(imap_caps_has(imap_client_caps(cl), IMAP_CAP_COMPRESS_DEFLATE));
	cr_assert(imap_conn_is_compressed(imap_client_conn(cl)));
	imap_mailbox_list_init(&l);
	cr_assert_eq(imap_client_list(cl, &l, &e), 0, "%s", e.msg);
	cr_assert_eq(find_box(&l, "Sent Items")->role, IMAP_ROLE_SENT);
	imap_mailbox_list_release(&l);
	cr_assert_eq(imap_client_select(cl, "INBOX", false, &info, &e), 0, "%s", e.msg);
	cr_assert_eq(info.exists, 30);
	run_cmd(cl, "FETCH 1:* (UID FLAGS BODY.PEEK[])");
	run_cmd(cl, "APPEND INBOX {21}\r\nSubject: hi\r\n\r\nbody\r\n");
	cr_assert_eq(imap_client_logout(cl, &e), 0, "%s", e.msg);
	imap_client_free(cl);
}

/* ---- the trace ------------------------------------------------------------------- */

struct capture {
	int saved;
	FILE *f;
};

static struct capture capture_start(void)
{
	struct capture cap;

	fflush(stderr);
	cap.f = tmpfile();
	cr_assert_not_null(cap.f);
	cap.saved = dup(2);
	dup2(fileno(cap.f), 2);
	return cap;
}

static char *capture_end(struct capture *cap)
{
	long n;
	char *text;

	fflush(stderr);
	dup2(cap->saved, 2);
	close(cap->saved);
	n = ftell(cap->f);
	text = xcalloc(1, (size_t)n + 1);
	rewind(cap->f);
	cr_assert_eq(fread(text, 1, (size_t)n, cap->f), (size_t)n);
	fclose(cap->f);
	return text;
}

Test(client, debug_trace_never_shows_the_password_or_token)
{
	static const enum imap_auth_mech mechs[] = { IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN,
						     IMAP_AUTH_SCRAM_SHA_256, IMAP_AUTH_XOAUTH2,
						     IMAP_AUTH_OAUTHBEARER };
	char *jwt = dovecot_jwt(dc.user1, 0);
	struct capture cap;
	char *out;
	size_t i;

	log_set_level(LOG_DEBUG);
	cap = capture_start();
	for (i = 0; i < 5; i++) {
		struct secrets sec = { dc.pass1, jwt, 0 };
		struct setup s = { .tls = i % 2 ? IMAP_TLS_NONE : IMAP_TLS_STARTTLS,
				   .ca_file = dc.ca_file, .mech = mechs[i],
				   .token = imap_auth_mech_is_oauth(mechs[i]) };
		enum imap_auth_mech m;
		struct imap_client *cl = client_for(&s, &sec, &m);
		struct err e;

		cr_assert_eq(imap_client_open(cl, &e), 0, "%s", e.msg);
		imap_client_logout(cl, &e);
		imap_client_free(cl);
	}
	out = capture_end(&cap);
	log_set_level(LOG_NOTICE);
	cr_assert_not_null(strstr(out, "C: F"), "no trace at all");
	cr_assert_not_null(strstr(out, "LOGIN alice [redacted]"), "%s", out);
	cr_assert_not_null(strstr(out, "AUTHENTICATE XOAUTH2 [redacted]"), "%s", out);
	cr_assert_null(strstr(out, dc.pass1), "password in the trace");
	cr_assert_null(strstr(out, jwt), "token in the trace");
	/* Base64 forms: PLAIN's \0user\0pass and the bearer token inside XOAUTH2. */
	cr_assert_null(strstr(out, "AGFsaWNl"), "PLAIN response in the trace");
	cr_assert_null(strstr(out, "dXNlcj1hbGljZQFhdXRoPUJlYXJl"), "XOAUTH2 response");
	free(out);
	free(jwt);
}
