/*
 * Integration tests of the test harness itself: the throwaway Dovecot
 * (tests/harness/dovecot-test) and the C helpers every integration test
 * uses.  Each test starts its own server and stops it in .fini.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "xalloc.h"

static struct dovecot server;

static void start_full(void)
{
	cr_assert_eq(harness_dovecot_start(&server, NULL), 0, "dovecot did not start");
}

static void start_imap4rev1(void)
{
	cr_assert_eq(harness_dovecot_start(&server, "--caps imap4rev1"), 0);
}

static void start_compress(void)
{
	cr_assert_eq(harness_dovecot_start(&server, "--compress"), 0);
}

static void start_no_starttls(void)
{
	cr_assert_eq(harness_dovecot_start(&server, "--no-starttls"), 0);
}

static void stop(void)
{
	harness_dovecot_stop(&server);
}

/* Log in as user 1, run one command tagged "t", log out; the full reply. */
static char *after_login(const char *command)
{
	char login[512];
	const char *lines[] = { login, command, "z LOGOUT", NULL };
	char *reply;

	snprintf(login, sizeof(login), "l LOGIN %s %s", server.user1, server.pass1);
	cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0,
		     "imap session failed: %s", reply);
	cr_assert(harness_has_line(reply, "l OK"), "login failed: %s", reply);
	return reply;
}

static char *post_login_capability(void)
{
	char *reply = after_login("t CAPABILITY");
	char *caps = harness_find_line(reply, "* CAPABILITY ");

	cr_assert_not_null(caps, "no CAPABILITY: %s", reply);
	free(reply);
	return caps;
}

/* True when the space-separated list `caps` holds the word `cap`. */
static bool has_cap(const char *caps, const char *cap)
{
	size_t n = strlen(cap);
	const char *p = caps;

	while ((p = strstr(p, cap)) != NULL) {
		if ((p == caps || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0' || p[n] == ']'))
			return true;
		p += n;
	}
	return false;
}

/* The base64 initial response of XOAUTH2, or of OAUTHBEARER (RFC 7628). */
static char *bearer_response(const char *mech, const char *user, const char *jwt)
{
	char *raw = strcmp(mech, "OAUTHBEARER") == 0
		? xasprintf("n,a=%s,\001auth=Bearer %s\001\001", user, jwt)
		: xasprintf("user=%s\001auth=Bearer %s\001\001", user, jwt);
	const char *argv[] = { "base64", "-w0", NULL };
	struct harness_result res;
	char *b64;

	cr_assert_eq(harness_run(argv, raw, &res), 0);
	cr_assert_eq(res.status, 0);
	b64 = xstrdup(res.out);
	harness_result_release(&res);
	free(raw);
	return b64;
}

TestSuite(dovecot_full, .init = start_full, .fini = stop, .timeout = 60);
TestSuite(dovecot_imap4rev1, .init = start_imap4rev1, .fini = stop, .timeout = 60);
TestSuite(dovecot_compress, .init = start_compress, .fini = stop, .timeout = 60);
TestSuite(dovecot_no_starttls, .init = start_no_starttls, .fini = stop, .timeout = 60);
TestSuite(harness_lifecycle, .timeout = 60);
TestSuite(harness_run, .timeout = 60);

Test(dovecot_full, greeting_offers_starttls_and_sasl_mechanisms)
{
	const char *lines[] = { "a CAPABILITY", "b LOGOUT", NULL };
	char *reply, *caps;

	cr_assert_gt(server.imap_port, 0);
	cr_assert_gt(server.imaps_port, 0);
	cr_assert_neq(server.imap_port, server.imaps_port);
	cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0);
	cr_assert(harness_has_line(reply, "* OK "), "no greeting: %s", reply);
	caps = harness_find_line(reply, "* CAPABILITY ");
	cr_assert_not_null(caps);
	cr_assert(has_cap(caps, "STARTTLS"), "%s", caps);
	cr_assert(has_cap(caps, "AUTH=PLAIN"), "%s", caps);
	cr_assert(has_cap(caps, "AUTH=SCRAM-SHA-256"), "%s", caps);
	cr_assert(has_cap(caps, "AUTH=XOAUTH2"), "%s", caps);
	cr_assert(has_cap(caps, "AUTH=OAUTHBEARER"), "%s", caps);
	free(caps);
	free(reply);
}

Test(dovecot_full, post_login_capabilities_include_condstore_and_qresync)
{
	char *caps = post_login_capability();

	cr_assert(has_cap(caps, "CONDSTORE"), "%s", caps);
	cr_assert(has_cap(caps, "QRESYNC"), "%s", caps);
	cr_assert(has_cap(caps, "UIDPLUS"), "%s", caps);
	cr_assert(has_cap(caps, "MOVE"), "%s", caps);
	cr_assert(has_cap(caps, "SPECIAL-USE"), "%s", caps);
	cr_assert_not(has_cap(caps, "COMPRESS=DEFLATE"), "%s", caps);
	free(caps);
}

Test(dovecot_full, login_accepts_right_password_and_refuses_wrong_one)
{
	char good[512];
	const char *lines[] = { "a LOGIN alice not-the-password", good, "c LOGOUT", NULL };
	char *reply;

	cr_assert_str_eq(server.user1, "alice");
	snprintf(good, sizeof(good), "b LOGIN %s %s", server.user1, server.pass1);
	cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0, "%s", reply);
	cr_assert(harness_has_line(reply, "a NO "), "wrong password accepted: %s", reply);
	cr_assert(harness_has_line(reply, "b OK "), "right password refused: %s", reply);
	free(reply);
}

Test(dovecot_full, second_user_logs_in_with_own_password)
{
	char good[512], bad[512];
	const char *lines[] = { bad, good, "c LOGOUT", NULL };
	char *reply;

	snprintf(bad, sizeof(bad), "a LOGIN %s %s", server.user2, server.pass1);
	snprintf(good, sizeof(good), "b LOGIN %s %s", server.user2, server.pass2);
	cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0, "%s", reply);
	cr_assert(harness_has_line(reply, "a NO "), "%s", reply);
	cr_assert(harness_has_line(reply, "b OK "), "%s", reply);
	free(reply);
}

Test(dovecot_full, jwt_logs_in_with_xoauth2)
{
	char *jwt = harness_jwt(&server, "alice", 0);
	char *resp, *cmd, *reply;

	cr_assert_not_null(jwt);
	cr_assert_eq(strncmp(jwt, "eyJ", 3), 0, "not a JWT: %s", jwt);
	resp = bearer_response("XOAUTH2", "alice", jwt);
	cmd = xasprintf("a AUTHENTICATE XOAUTH2 %s", resp);
	{
		const char *lines[] = { cmd, "b NOOP", "c LOGOUT", NULL };

		cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0, "%s", reply);
	}
	cr_assert(harness_has_line(reply, "a OK "), "jwt refused: %s", reply);
	cr_assert(harness_has_line(reply, "b OK "), "%s", reply);
	free(reply);
	free(cmd);
	free(resp);
	free(jwt);
}

Test(dovecot_full, jwt_logs_in_with_oauthbearer)
{
	char *jwt = harness_jwt(&server, "bob", 0);
	char *resp, *cmd, *reply;

	cr_assert_not_null(jwt);
	resp = bearer_response("OAUTHBEARER", "bob", jwt);
	cmd = xasprintf("a AUTHENTICATE OAUTHBEARER %s", resp);
	{
		const char *lines[] = { cmd, "b LOGOUT", NULL };

		cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0, "%s", reply);
	}
	cr_assert(harness_has_line(reply, "a OK "), "jwt refused: %s", reply);
	free(reply);
	free(cmd);
	free(resp);
	free(jwt);
}

/* A refused token gets the RFC 7628 error challenge; answering it with an
 * empty line ends the exchange with NO. */
static void assert_jwt_refused(unsigned flags)
{
	char *jwt = harness_jwt(&server, "alice", flags);
	char *resp, *cmd, *reply;

	cr_assert_not_null(jwt);
	resp = bearer_response("XOAUTH2", "alice", jwt);
	cmd = xasprintf("a AUTHENTICATE XOAUTH2 %s", resp);
	{
		const char *lines[] = { cmd, "", "b LOGOUT", NULL };

		cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0, "%s", reply);
	}
	cr_assert(harness_has_line(reply, "+ "), "no error challenge: %s", reply);
	cr_assert(harness_has_line(reply, "a NO "), "bad jwt accepted: %s", reply);
	cr_assert_not(harness_has_line(reply, "a OK"), "%s", reply);
	free(reply);
	free(cmd);
	free(resp);
	free(jwt);
}

Test(dovecot_full, jwt_with_bad_signature_is_refused)
{
	assert_jwt_refused(HARNESS_JWT_BAD_SIGNATURE);
}

Test(dovecot_full, expired_jwt_is_refused)
{
	assert_jwt_refused(HARNESS_JWT_EXPIRED);
}

Test(dovecot_full, special_use_folders_exist_with_roles)
{
	char *reply = after_login("t LIST \"\" \"*\"");
	char *sent = harness_find_line(reply, "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"");

	cr_assert_not_null(sent, "no \\Sent folder \"Sent Items\": %s", reply);
	cr_assert(harness_has_line(reply, "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts"), "%s", reply);
	cr_assert(harness_has_line(reply, "* LIST (\\HasNoChildren \\Trash) \"/\" Trash"), "%s", reply);
	cr_assert(harness_has_line(reply, "* LIST (\\HasNoChildren \\Junk) \"/\" Junk"), "%s", reply);
	cr_assert(harness_has_line(reply, "* LIST (\\HasNoChildren \\Archive) \"/\" Archive"), "%s", reply);
	free(sent);
	free(reply);
}

Test(dovecot_full, imaps_handshake_verifies_with_instance_ca)
{
	char port[16];
	const char *argv[] = { "openssl", "s_client", "-connect", port, "-CAfile", server.ca_file,
			       "-verify_hostname", "localhost", "-verify_return_error",
			       "-quiet", "-crlf", NULL };
	struct harness_result res;

	snprintf(port, sizeof(port), "127.0.0.1:%d", server.imaps_port);
	cr_assert_eq(harness_run(argv, "a LOGOUT\n", &res), 0);
	cr_assert_eq(res.status, 0, "s_client failed: %s", res.err);
	cr_assert(harness_has_line(res.out, "* OK "), "no greeting over TLS: %s", res.out);
	cr_assert(harness_has_line(res.out, "a OK "), "%s", res.out);
	harness_result_release(&res);
}

Test(dovecot_full, imaps_handshake_fails_without_trust_anchor)
{
	char port[16];
	const char *argv[] = { "openssl", "s_client", "-connect", port, "-no-CAfile",
			       "-no-CApath", "-no-CAstore", "-verify_return_error", "-quiet", NULL };
	struct harness_result res;

	snprintf(port, sizeof(port), "127.0.0.1:%d", server.imaps_port);
	cr_assert_eq(harness_run(argv, "a LOGOUT\n", &res), 0);
	cr_assert_neq(res.status, 0, "an untrusted certificate was accepted");
	cr_assert_not(harness_has_line(res.out, "* OK "), "%s", res.out);
	harness_result_release(&res);
}

Test(dovecot_full, presented_certificate_has_printed_fingerprint)
{
	char *script = xasprintf(
		"openssl s_client -connect 127.0.0.1:%d </dev/null 2>/dev/null |"
		" openssl x509 -noout -fingerprint -sha256", server.imaps_port);
	const char *argv[] = { "sh", "-c", script, NULL };
	struct harness_result res;
	const char *eq;

	cr_assert_eq(harness_run(argv, NULL, &res), 0);
	cr_assert_eq(res.status, 0, "%s", res.err);
	eq = strchr(res.out, '=');
	cr_assert_not_null(eq, "%s", res.out);
	cr_assert_eq(strncmp(server.fingerprint, "sha256:", 7), 0, "%s", server.fingerprint);
	cr_assert_eq(strncmp(eq + 1, server.fingerprint + 7, strlen(server.fingerprint + 7)), 0,
		     "server shows %s, harness printed %s", eq + 1, server.fingerprint);
	harness_result_release(&res);
	free(script);
}

Test(dovecot_full, seeding_makes_messages_visible)
{
	char *reply;

	/* 20 messages: n % 5 == 3 go to Sent Items (4), n % 5 == 4 alternate
	 * between Work and Work/Projects (2 each), the rest to INBOX (12). */
	cr_assert_eq(harness_seed(&server, "alice", 20, NULL), 0);
	reply = after_login("t STATUS INBOX (MESSAGES)");
	cr_assert(harness_has_line(reply, "* STATUS INBOX (MESSAGES 12)"), "%s", reply);
	free(reply);
	reply = after_login("t STATUS \"Sent Items\" (MESSAGES)");
	cr_assert(harness_has_line(reply, "* STATUS \"Sent Items\" (MESSAGES 4)"), "%s", reply);
	free(reply);
	reply = after_login("t STATUS Work/Projects (MESSAGES)");
	cr_assert(harness_has_line(reply, "* STATUS Work/Projects (MESSAGES 2)"), "%s", reply);
	free(reply);
}

Test(dovecot_full, seeded_flags_are_indexed)
{
	char login[256];
	const char *lines[] = { login, "u STATUS INBOX (MESSAGES UNSEEN)", "s SELECT INBOX",
				"f SEARCH FLAGGED", "z LOGOUT", NULL };
	char *reply, *line;

	/* INBOX holds n = 1, 2, 5, 6, 7, 10; of those 7 is \Flagged and 6 is
	 * \Seen (every 7th and every 3rd). */
	cr_assert_eq(harness_seed(&server, "bob", 10, "Other"), 0);
	snprintf(login, sizeof(login), "l LOGIN %s %s", server.user2, server.pass2);
	cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0, "%s", reply);
	cr_assert(harness_has_line(reply, "* STATUS INBOX (MESSAGES 6 UNSEEN 5)"), "%s", reply);
	cr_assert(harness_has_line(reply, "* 6 EXISTS"), "%s", reply);
	line = harness_find_line(reply, "* SEARCH");
	cr_assert_not_null(line, "%s", reply);
	/* Exactly one flagged message: "* SEARCH N" with a single number. */
	cr_assert_eq(strchr(line + 9, ' '), NULL, "%s", line);
	free(line);
	free(reply);
}

Test(dovecot_full, raw_append_with_literals_adds_messages)
{
	char login[256];
	const char *lines[] = {
		login,
		"a APPEND INBOX (\\Seen) {18}", "Subject: one\r\n\r\nhi",
		"b APPEND INBOX {18+}", "Subject: two\r\n\r\nhi",
		"c STATUS INBOX (MESSAGES UNSEEN)",
		"z LOGOUT", NULL };
	char *reply;

	snprintf(login, sizeof(login), "l LOGIN %s %s", server.user1, server.pass1);
	cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0, "%s", reply);
	cr_assert(harness_has_line(reply, "+ "), "no continuation for {18}: %s", reply);
	cr_assert(harness_has_line(reply, "a OK "), "%s", reply);
	cr_assert(harness_has_line(reply, "b OK "), "%s", reply);
	cr_assert(harness_has_line(reply, "* STATUS INBOX (MESSAGES 2 UNSEEN 1)"), "%s", reply);
	free(reply);
}

Test(dovecot_full, doveadm_sees_the_same_mailboxes)
{
	const char *args[] = { "mailbox", "status", "-u", "alice", "messages", "INBOX", NULL };
	struct harness_result res;

	cr_assert_eq(harness_seed(&server, "alice", 5, NULL), 0);
	cr_assert_eq(harness_doveadm(&server, args, &res), 0);
	cr_assert_eq(res.status, 0, "%s", res.err);
	/* n = 1, 2, 5 land in INBOX. */
	cr_assert_str_eq(res.out, "INBOX messages=3\n");
	harness_result_release(&res);
}

Test(dovecot_full, log_records_byte_counters_at_logout)
{
	char *reply = after_login("t NOOP");
	char *log = NULL;
	int i;

	free(reply);
	/* The imap process writes the line as it exits, just after the BYE. */
	for (i = 0; i < 100; i++) {
		free(log);
		log = harness_read_file(server.log_file, 1u << 20);
		if (log && strstr(log, "Logged out in="))
			break;
		usleep(20000);
	}
	cr_assert_not_null(log);
	cr_assert_not_null(strstr(log, "Logged out in="), "%s", log);
	free(log);
}

Test(dovecot_full, config_for_ferry_names_this_server)
{
	char *path = xasprintf("%s/config.yaml", server.tmp);
	char *pwcmd = xasprintf("%s/password-work", server.tmp);
	struct harness_account acct = { .name = "work", .tls = "starttls", .user = "bob",
					.password = "bob-secret-2",
					.extra = "    sync:\n      direction: pull\n" };
	const char *argv[] = { "cat", pwcmd, NULL };
	struct harness_result res;
	char *text, *want;
	struct stat st;

	cr_assert_eq(harness_write_config(&server, path, &acct), 0);
	text = harness_read_file(path, 1u << 16);
	cr_assert_not_null(text);
	want = xasprintf("      port: %d\n      tls: starttls\n      tls_ca_file: \"%s\"\n",
			 server.imap_port, server.ca_file);
	cr_assert_not_null(strstr(text, want), "%s", text);
	cr_assert_not_null(strstr(text, "\n  work:\n    remote:\n      host: 127.0.0.1\n"), "%s", text);
	cr_assert_not_null(strstr(text, "      user: \"bob\"\n"), "%s", text);
	cr_assert_not_null(strstr(text, "    sync:\n      direction: pull\n"), "%s", text);
	cr_assert_null(strstr(text, "bob-secret-2"), "password in the config: %s", text);
	cr_assert_eq(stat(pwcmd, &st), 0);
	cr_assert_eq(st.st_mode & 077, 0, "password file readable by others");
	cr_assert_eq(harness_run(argv, NULL, &res), 0);
	cr_assert_str_eq(res.out, "bob-secret-2");
	harness_result_release(&res);
	free(want);
	free(text);
	free(pwcmd);
	free(path);
}

Test(dovecot_imap4rev1, advertises_only_the_base_capabilities)
{
	char *caps = post_login_capability();

	cr_assert_str_eq(caps, "* CAPABILITY IMAP4rev1 LITERAL+ IDLE NAMESPACE");
	cr_assert_not(has_cap(caps, "CONDSTORE"));
	cr_assert_not(has_cap(caps, "QRESYNC"));
	free(caps);
}

Test(dovecot_imap4rev1, greeting_still_offers_starttls)
{
	const char *lines[] = { "a CAPABILITY", "b LOGOUT", NULL };
	char *reply, *caps;

	cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0);
	caps = harness_find_line(reply, "* CAPABILITY ");
	cr_assert_not_null(caps, "%s", reply);
	cr_assert(has_cap(caps, "STARTTLS"), "%s", caps);
	cr_assert_not(has_cap(caps, "ENABLE"), "%s", caps);
	free(caps);
	free(reply);
}

Test(dovecot_compress, post_login_capabilities_include_compress_deflate)
{
	char *caps = post_login_capability();

	cr_assert(has_cap(caps, "COMPRESS=DEFLATE"), "%s", caps);
	cr_assert(has_cap(caps, "CONDSTORE"), "%s", caps);
	free(caps);
}

Test(dovecot_no_starttls, plain_port_offers_no_starttls_and_no_imaps_port)
{
	const char *lines[] = { "a CAPABILITY", "b STARTTLS", "c LOGOUT", NULL };
	char *reply, *caps;

	cr_assert_eq(server.imaps_port, 0);
	cr_assert_eq(harness_imap_raw(server.imap_port, lines, &reply), 0, "%s", reply);
	caps = harness_find_line(reply, "* CAPABILITY ");
	cr_assert_not_null(caps, "%s", reply);
	cr_assert_not(has_cap(caps, "STARTTLS"), "%s", caps);
	cr_assert_not(harness_has_line(reply, "b OK"), "STARTTLS accepted: %s", reply);
	free(caps);
	free(reply);
}

Test(dovecot_no_starttls, plaintext_login_still_works)
{
	char *reply = after_login("t NOOP");

	cr_assert(harness_has_line(reply, "t OK"), "%s", reply);
	free(reply);
}

Test(harness_lifecycle, stop_leaves_no_process_and_no_files)
{
	struct dovecot d;
	struct stat st;
	char tmp[HARNESS_PATH_MAX];
	pid_t pid;

	cr_assert_eq(harness_dovecot_start(&d, NULL), 0);
	pid = d.master_pid;
	memcpy(tmp, d.tmp, sizeof(tmp));
	cr_assert_gt(pid, 0);
	cr_assert(harness_pid_alive(pid));
	cr_assert_eq(stat(tmp, &st), 0);
	harness_dovecot_stop(&d);
	cr_assert_not(harness_pid_alive(pid), "dovecot master %d still running", (int)pid);
	cr_assert_neq(stat(tmp, &st), 0, "%s left behind", tmp);
	harness_dovecot_stop(&d); /* idempotent */
}

Test(harness_lifecycle, server_is_stopped_when_its_test_process_dies)
{
	struct { pid_t master; char tmp[HARNESS_PATH_MAX]; } seen = { 0 };
	int fds[2], i;
	struct stat st;
	pid_t child;

	cr_assert_eq(pipe(fds), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* A test process that dies without calling stop. */
		struct dovecot d;

		close(fds[0]);
		if (harness_dovecot_start(&d, NULL) == 0) {
			seen.master = d.master_pid;
			memcpy(seen.tmp, d.tmp, sizeof(seen.tmp));
		}
		if (write(fds[1], &seen, sizeof(seen)) != (ssize_t)sizeof(seen))
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &seen, sizeof(seen)), (ssize_t)sizeof(seen));
	close(fds[0]);
	waitpid(child, NULL, 0);
	cr_assert_gt(seen.master, 0, "the child could not start dovecot");
	for (i = 0; i < 250; i++) {
		if (!harness_pid_alive(seen.master) && stat(seen.tmp, &st) != 0)
			break;
		usleep(20000);
	}
	cr_assert_not(harness_pid_alive(seen.master), "orphaned dovecot %d still runs",
		      (int)seen.master);
	cr_assert_neq(stat(seen.tmp, &st), 0, "%s left behind", seen.tmp);
}

Test(harness_lifecycle, two_instances_run_side_by_side)
{
	struct dovecot a, b;
	const char *lines[] = { "a NOOP", "b LOGOUT", NULL };
	char *reply;

	cr_assert_eq(harness_dovecot_start(&a, NULL), 0);
	cr_assert_eq(harness_dovecot_start(&b, "--caps imap4rev1"), 0);
	cr_assert_neq(a.imap_port, b.imap_port);
	cr_assert_neq(a.imaps_port, b.imaps_port);
	cr_assert_str_neq(a.fingerprint, b.fingerprint);
	cr_assert_eq(harness_imap_raw(b.imap_port, lines, &reply), 0, "%s", reply);
	free(reply);
	harness_dovecot_stop(&a);
	cr_assert_eq(harness_imap_raw(b.imap_port, lines, &reply), 0, "%s", reply);
	free(reply);
	harness_dovecot_stop(&b);
}

Test(harness_lifecycle, bad_option_fails_and_leaves_nothing)
{
	struct dovecot d;

	cr_assert_eq(harness_dovecot_start(&d, "--caps imap9"), -1);
	cr_assert_not(d.running);
	cr_assert_eq(d.tmp[0], '\0');
}

Test(harness_run, captures_output_status_and_stdin)
{
	const char *argv[] = { "sh", "-c", "cat; echo oops >&2; exit 3", NULL };
	struct harness_result res;

	cr_assert_eq(harness_run(argv, "hello\n", &res), 0);
	cr_assert_eq(res.status, 3);
	cr_assert_str_eq(res.out, "hello\n");
	cr_assert_str_eq(res.err, "oops\n");
	cr_assert_not(res.timed_out);
	harness_result_release(&res);
}

Test(harness_run, kills_program_at_timeout)
{
	const char *argv[] = { "sh", "-c", "echo started; sleep 30", NULL };
	struct harness_run_opts opts = { .timeout_ms = 300 };
	struct harness_result res;

	cr_assert_eq(harness_run_with(argv, &opts, &res), 0);
	cr_assert(res.timed_out);
	cr_assert_eq(res.status, -1);
	cr_assert_str_eq(res.out, "started\n");
	harness_result_release(&res);
}

Test(harness_run, reports_missing_program)
{
	const char *argv[] = { "/nonexistent/ferry-no-such-program", NULL };
	struct harness_result res;

	cr_assert_eq(harness_run(argv, NULL, &res), -1);
}

Test(harness_run, passes_env_and_cwd)
{
	const char *argv[] = { "sh", "-c", "printf '%s %s' \"$FERRY_TEST_X\" \"$(pwd)\"", NULL };
	const char *env[] = { "FERRY_TEST_X=42", NULL };
	struct harness_run_opts opts = { .env = env, .cwd = "/" };
	struct harness_result res;

	cr_assert_eq(harness_run_with(argv, &opts, &res), 0);
	cr_assert_str_eq(res.out, "42 /");
	harness_result_release(&res);
}

Test(harness_run, built_ferry_can_be_started)
{
	char *ferry = harness_ferry_path();
	const char *argv[] = { ferry, "--version", NULL };
	struct harness_result res;

	cr_assert_not_null(ferry);
	cr_assert_eq(access(ferry, X_OK), 0, "%s is not built", ferry);
	cr_assert_eq(harness_run(argv, NULL, &res), 0);
	cr_assert_not(res.timed_out);
	cr_assert_lt(res.status, 128, "ferry crashed: %s", res.err);
	cr_assert_gt(res.out_len + res.err_len, 0);
	harness_result_release(&res);
	free(ferry);
}

Test(harness_run, write_and_read_file_round_trip)
{
	char path[] = "/tmp/ferry-harness-XXXXXX";
	char *file, *text;

	cr_assert_not_null(mkdtemp(path));
	file = xasprintf("%s/a/b/c.txt", path);
	*strrchr(file, '/') = '\0';
	cr_assert_eq(harness_mkdirs(file), 0);
	file[strlen(file)] = '/';
	cr_assert_eq(harness_write_file(file, "line 1\nline 2\n"), 0);
	text = harness_read_file(file, 1024);
	cr_assert_str_eq(text, "line 1\nline 2\n");
	free(text);
	cr_assert_null(harness_read_file(file, 4), "size cap ignored");
	cr_assert_eq(harness_remove_tree(path), 0);
	cr_assert_neq(access(path, F_OK), 0);
	free(file);
}
