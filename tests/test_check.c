/*
 * `ferry check` end to end against a real Dovecot on loopback: what it
 * prints, and each exit code of SPEC §1 it can give (0, 2, 3, 4).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "harness.h"

static struct dovecot dc;
static char config[4096];
static char *ferry;

static void start(void)
{
	cr_assert_eq(harness_dovecot_start(&dc, ""), 0, "cannot start dovecot");
	snprintf(config, sizeof(config), "%s/config.yaml", dc.tmp);
	ferry = harness_ferry_path();
}

static void stop(void)
{
	harness_dovecot_stop(&dc);
	free(ferry);
}

TestSuite(check, .init = start, .fini = stop, .timeout = 120);

static void write_config(const char *tls, const char *password, const char *remote_extra)
{
	struct harness_account a = {
		.name = "test",
		.tls = tls,
		.user = dc.user1,
		.password = password,
		.remote_extra = remote_extra,
	};
	cr_assert_eq(harness_write_config(&dc, config, &a), 0);
}

static void run(struct harness_result *r, const char *a1, const char *a2, const char *a3)
{
	const char *argv[] = { ferry, "-c", config, "check", a1, a2, a3, NULL };

	cr_assert_eq(harness_run(argv, NULL, r), 0, "cannot run %s", ferry);
}

Test(check, implicit_tls_with_ca_file_logs_in_and_lists_mailboxes_with_roles)
{
	struct harness_result r;

	write_config("implicit", dc.pass1, NULL);
	run(&r, "test", NULL, NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.out, "account \"test\": ok") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "certificate:  verified") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "IMAP4rev1") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "QRESYNC") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "    INBOX\n") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "Sent Items") != NULL && strstr(r.out, "\\Sent") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "\\Trash") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, dc.pass1) == NULL);
	harness_result_release(&r);
}

Test(check, starttls_and_plain_loopback_both_work)
{
	struct harness_result r;

	write_config("starttls", dc.pass1, NULL);
	run(&r, NULL, NULL, NULL);
	cr_assert_eq(r.status, 0, "starttls: %s", r.err);
	cr_assert(strstr(r.out, "certificate:  verified") != NULL, "%s", r.out);
	harness_result_release(&r);
	write_config("none", dc.pass1, NULL);
	run(&r, NULL, NULL, NULL);
	cr_assert_eq(r.status, 0, "none: %s", r.err);
	cr_assert(strstr(r.out, "certificate:") == NULL, "%s", r.out);
	harness_result_release(&r);
}

Test(check, wrong_password_exits_3_without_showing_it)
{
	struct harness_result r;

	write_config("implicit", "not-the-password-8731", NULL);
	run(&r, NULL, NULL, NULL);
	cr_assert_eq(r.status, 3, "status %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.err, "account \"test\"") != NULL, "%s", r.err);
	cr_assert(strstr(r.err, "not-the-password-8731") == NULL, "%s", r.err);
	cr_assert(strstr(r.out, "not-the-password-8731") == NULL, "%s", r.out);
	harness_result_release(&r);
}

Test(check, untrusted_certificate_exits_4_and_a_pin_or_ca_file_fixes_it)
{
	struct harness_result r;
	char pin[256];

	/* No tls_ca_file: the self-signed certificate is not trusted. */
	write_config("implicit", dc.pass1, NULL);
	{
		char *text = harness_read_file(config, 1 << 16);
		char *line = strstr(text, "tls_ca_file:");

		cr_assert_not_null(line);
		memcpy(line, "#ls_ca_file:", 12);
		cr_assert_eq(harness_write_file(config, text), 0);
		free(text);
	}
	run(&r, NULL, NULL, NULL);
	cr_assert_eq(r.status, 4, "status %d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "certificate") != NULL, "%s", r.err);
	harness_result_release(&r);

	/* Pinned by fingerprint instead. */
	snprintf(pin, sizeof(pin), "      tls_fingerprint: \"%s\"\n", dc.fingerprint);
	write_config("implicit", dc.pass1, pin);
	{
		char *text = harness_read_file(config, 1 << 16);
		char *line = strstr(text, "tls_ca_file:");

		memcpy(line, "#ls_ca_file:", 12);
		cr_assert_eq(harness_write_file(config, text), 0);
		free(text);
	}
	run(&r, NULL, NULL, NULL);
	cr_assert_eq(r.status, 0, "pinned: %s", r.err);
	/* the pin decided, not the trust store: said so */
	cr_assert(strstr(r.out, "certificate:  pinned") != NULL, "%s", r.out);
	harness_result_release(&r);

	/* A wrong pin is refused even with the CA file. */
	write_config("implicit", dc.pass1,
		     "      tls_fingerprint: \"sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
		     "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\"\n");
	run(&r, NULL, NULL, NULL);
	cr_assert_eq(r.status, 4, "wrong pin: status %d: %s", r.status, r.err);
	harness_result_release(&r);
}

Test(check, unreachable_port_exits_4)
{
	struct harness_result r;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char extra[128];
	int fd;

	/* A port that was free a moment ago: bind, learn it, close. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	write_config("implicit", dc.pass1, NULL);
	{
		char *text = harness_read_file(config, 1 << 16);
		char *port = strstr(text, "port:");
		char *eol = strchr(port, '\n');
		char *out;

		snprintf(extra, sizeof(extra), "port: %u", ntohs(sa.sin_port));
		out = malloc(strlen(text) + 64);
		sprintf(out, "%.*s%s%s", (int)(port - text), text, extra, eol);
		cr_assert_eq(harness_write_file(config, out), 0);
		free(out);
		free(text);
	}
	run(&r, NULL, NULL, NULL);
	cr_assert_eq(r.status, 4, "status %d: %s", r.status, r.err);
	harness_result_release(&r);
}

Test(check, bad_config_exits_2_with_file_line_and_column)
{
	struct harness_result r;

	cr_assert_eq(harness_write_file(config, "accounts:\n  test:\n    remote:\n      hots: x\n"), 0);
	run(&r, NULL, NULL, NULL);
	cr_assert_eq(r.status, 2, "status %d", r.status);
	cr_assert(strstr(r.err, "config.yaml:4:7") != NULL, "%s", r.err);
	harness_result_release(&r);
}

Test(check, unknown_account_exits_2)
{
	struct harness_result r;

	write_config("implicit", dc.pass1, NULL);
	run(&r, "nosuch", NULL, NULL);
	cr_assert_eq(r.status, 2, "status %d", r.status);
	cr_assert(strstr(r.err, "nosuch") != NULL, "%s", r.err);
	harness_result_release(&r);
}

Test(check, offline_validates_without_connecting)
{
	struct harness_result r;

	write_config("implicit", "not-the-password-8731", NULL);
	run(&r, "--offline", NULL, NULL);
	/* The wrong password does not matter: nothing connects. */
	cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
	cr_assert(strstr(r.out, "account \"test\": ok") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "logged in") == NULL, "%s", r.out);
	harness_result_release(&r);
}

Test(check, verbose_trace_shows_the_protocol_but_never_the_password)
{
	struct harness_result r;

	write_config("none", dc.pass1, "      auth: [login]\n");
	run(&r, "-v", NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.err, "C: ") != NULL && strstr(r.err, "S: ") != NULL, "no trace: %s", r.err);
	cr_assert(strstr(r.err, "LOGIN") != NULL, "%s", r.err);
	cr_assert(strstr(r.err, dc.pass1) == NULL, "password in the trace: %s", r.err);
	harness_result_release(&r);

	write_config("implicit", dc.pass1, "      auth: [plain]\n");
	run(&r, "-v", NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.err, "AUTHENTICATE PLAIN") != NULL, "%s", r.err);
	cr_assert(strstr(r.err, dc.pass1) == NULL, "password in the trace: %s", r.err);
	harness_result_release(&r);
}

Test(check, json_output_is_one_object_with_capabilities_and_mailboxes)
{
	struct harness_result r;

	write_config("implicit", dc.pass1, NULL);
	run(&r, "--json", NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(r.out[0], '{', "%s", r.out);
	cr_assert(strstr(r.out, "\"command\":\"check\"") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "\"ok\":true") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "\"name\":\"Sent Items\",\"role\":\"sent\"") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "\"exit_code\":0}") != NULL, "%s", r.out);
	/* Exactly one line: one object per run. */
	cr_assert_eq(strchr(r.out, '\n'), r.out + r.out_len - 1, "%s", r.out);
	harness_result_release(&r);
}
