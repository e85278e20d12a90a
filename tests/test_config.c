/*
 * Unit tests for cmd/config: every key and its default, every class of
 * error with its exact file:line:col, path expansion, XDG paths, mailbox
 * patterns, and every file in config-examples/.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "xalloc.h"

static char tmpdir[256];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ferry-test-config-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	setenv("HOME", tmpdir, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_STATE_HOME");
}

static void teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	cr_assert_eq(system(cmd), 0);
	free(cmd);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Lines 1-7 of most test documents; an account "w" with valid essentials. */
#define HEAD "accounts:\n" \
	     "  w:\n"
#define REMOTE "    remote:\n" \
	       "      host: imap.example.org\n" \
	       "      user: me\n" \
	       "      password_cmd: pass show w\n"
#define LOCAL "    local:\n" \
	      "      path: /mail/w\n"
#define OK_ACCOUNT HEAD REMOTE LOCAL

static struct cfg *load_ok(const char *yaml)
{
	struct cfg *cfg = NULL;
	struct err e;

	err_clear(&e);
	if (cfg_load_buffer("t.yaml", yaml, strlen(yaml), &cfg, &e) < 0)
		cr_assert_fail("unexpected error: %s\n--- input:\n%s", e.msg, yaml);
	cr_assert_not_null(cfg);
	return cfg;
}

/* Loading must fail with ERR_CONFIG and exactly this message. */
static void expect_error(const char *yaml, const char *msg)
{
	struct cfg *cfg = NULL;
	struct err e;

	err_clear(&e);
	cr_assert_eq(cfg_load_buffer("t.yaml", yaml, strlen(yaml), &cfg, &e), -1,
		     "expected an error for:\n%s", yaml);
	cr_assert_null(cfg);
	cr_assert_eq(e.code, ERR_CONFIG);
	cr_assert_str_eq(e.msg, msg);
}

/* Loading must fail with a message starting with `prefix`. */
static void expect_error_prefix(const char *yaml, const char *prefix)
{
	struct cfg *cfg = NULL;
	struct err e;

	err_clear(&e);
	cr_assert_eq(cfg_load_buffer("t.yaml", yaml, strlen(yaml), &cfg, &e), -1,
		     "expected an error for:\n%s", yaml);
	cr_assert_eq(e.code, ERR_CONFIG);
	cr_assert(strncmp(e.msg, prefix, strlen(prefix)) == 0,
		  "message \"%s\" does not start with \"%s\"", e.msg, prefix);
}

/* Replace the value of one key in a document of OK_ACCOUNT + extra. */
static char *with(const char *section_lines)
{
	return xasprintf(OK_ACCOUNT "%s", section_lines);
}

Test(config, minimal_account_gets_every_default)
{
	struct cfg *cfg = load_ok(OK_ACCOUNT);
	const struct cfg_account *a;
	char *state = xasprintf("%s/.local/state/ferry/w", tmpdir);

	cr_assert_eq(cfg->n_accounts, 1);
	a = &cfg->accounts[0];
	cr_assert_str_eq(a->name, "w");
	cr_assert_str_eq(a->remote.host, "imap.example.org");
	cr_assert_eq(a->remote.port, 993);
	cr_assert_eq(a->remote.tls, CFG_TLS_IMPLICIT);
	cr_assert_null(a->remote.tls_ca_file);
	cr_assert_not(a->remote.tls_fingerprint.set);
	cr_assert_str_eq(a->remote.user, "me");
	cr_assert_null(a->remote.password);
	cr_assert_str_eq(a->remote.password_cmd, "pass show w");
	cr_assert_null(a->remote.oauth2_token_cmd);
	cr_assert_eq(a->remote.auth.n, 0);
	cr_assert_eq(a->remote.connections, 4);
	cr_assert_eq(a->remote.timeout, 60);
	cr_assert_str_eq(a->local.path, "/mail/w");
	cr_assert_eq(a->local.layout, CFG_LAYOUT_VERBATIM);
	cr_assert_str_eq(a->local.inbox, "/mail/w/INBOX");
	cr_assert_eq(a->mailboxes.include.n, 1);
	cr_assert_str_eq(a->mailboxes.include.v[0], "*");
	cr_assert_eq(a->mailboxes.exclude.n, 0);
	cr_assert_eq(a->sync.direction, CFG_DIR_BOTH);
	cr_assert(a->sync.expunge);
	cr_assert_not(a->sync.delete_folders);
	cr_assert_eq(a->sync.max_size, 0);
	cr_assert_eq(a->sync.since.year, 0);
	cr_assert_eq(a->sync.safety_max_delete, 50);
	cr_assert_str_eq(a->state, state);
	cr_assert_eq(cfg->n_warnings, 0);
	cr_assert_eq(cfg_find_account(cfg, "w"), a);
	cr_assert_null(cfg_find_account(cfg, "x"));
	free(state);
	cfg_free(cfg);
}

Test(config, every_key_accepts_a_valid_value)
{
	static const unsigned char fpr[32] = {
		0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65, 0x9a, 0x2f, 0xea,
		0xa0, 0xc5, 0x5a, 0xd0, 0x15, 0xa3, 0xbf, 0x4f, 0x1b, 0x2b, 0x0b,
		0x82, 0x2c, 0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0, 0x0a, 0x08,
	};
	const char *yaml =
		"accounts:\n"
		"  my.acct_1-x:\n"
		"    remote:\n"
		"      host: mail.example.net\n"
		"      port: 1993\n"
		"      tls: starttls\n"
		"      tls_ca_file: /etc/ca.pem\n"
		"      tls_fingerprint: \"sha256:9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:"
		"A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08\"\n"
		"      user: someone@example.net\n"
		"      password: \"s3cret pass\"\n"
		"      auth: [scram-sha-256, SCRAM-SHA-1, plain, login]\n"
		"      connections: 16\n"
		"      timeout: 5m\n"
		"    local:\n"
		"      path: /srv/mail\n"
		"      layout: maildir++\n"
		"      inbox: /srv/mail\n"
		"    mailboxes:\n"
		"      include: [INBOX, \"Lists/*\"]\n"
		"      exclude:\n"
		"        - Lists/spam\n"
		"        - \"Trash/%\"\n"
		"    sync:\n"
		"      direction: pull\n"
		"      expunge: false\n"
		"      delete_folders: true\n"
		"      max_size: 512K\n"
		"      since: 2020-02-29\n"
		"      safety_max_delete: 10%\n"
		"    state: /var/lib/ferry/x\n";
	struct cfg *cfg = load_ok(yaml);
	const struct cfg_account *a = &cfg->accounts[0];

	cr_assert_str_eq(a->name, "my.acct_1-x");
	cr_assert_str_eq(a->remote.host, "mail.example.net");
	cr_assert_eq(a->remote.port, 1993);
	cr_assert_eq(a->remote.tls, CFG_TLS_STARTTLS);
	cr_assert_str_eq(a->remote.tls_ca_file, "/etc/ca.pem");
	cr_assert(a->remote.tls_fingerprint.set);
	cr_assert_arr_eq(a->remote.tls_fingerprint.sha256, fpr, 32);
	cr_assert_str_eq(a->remote.user, "someone@example.net");
	cr_assert_str_eq(a->remote.password, "s3cret pass");
	cr_assert_eq(a->remote.auth.n, 4);
	cr_assert_eq(a->remote.auth.v[0], CFG_AUTH_SCRAM_SHA_256);
	cr_assert_eq(a->remote.auth.v[1], CFG_AUTH_SCRAM_SHA_1);
	cr_assert_eq(a->remote.auth.v[2], CFG_AUTH_PLAIN);
	cr_assert_eq(a->remote.auth.v[3], CFG_AUTH_LOGIN);
	cr_assert_eq(a->remote.connections, 16);
	cr_assert_eq(a->remote.timeout, 300);
	cr_assert_str_eq(a->local.path, "/srv/mail");
	cr_assert_eq(a->local.layout, CFG_LAYOUT_MAILDIRPP);
	cr_assert_str_eq(a->local.inbox, "/srv/mail");
	cr_assert_eq(a->mailboxes.include.n, 2);
	cr_assert_str_eq(a->mailboxes.include.v[1], "Lists/*");
	cr_assert_eq(a->mailboxes.exclude.n, 2);
	cr_assert_str_eq(a->mailboxes.exclude.v[0], "Lists/spam");
	cr_assert_str_eq(a->mailboxes.exclude.v[1], "Trash/%");
	cr_assert_eq(a->sync.direction, CFG_DIR_PULL);
	cr_assert_not(a->sync.expunge);
	cr_assert(a->sync.delete_folders);
	cr_assert_eq(a->sync.max_size, 512 * 1024);
	cr_assert_eq(a->sync.since.year, 2020);
	cr_assert_eq(a->sync.since.month, 2);
	cr_assert_eq(a->sync.since.day, 29);
	cr_assert_eq(a->sync.safety_max_delete, 10);
	cr_assert_str_eq(a->state, "/var/lib/ferry/x");
	cfg_free(cfg);
}

Test(config, oauth_account_and_push_direction)
{
	struct cfg *cfg = load_ok(
		"accounts:\n"
		"  o:\n"
		"    remote: {host: h, user: u, oauth2_token_cmd: tok, auth: [xoauth2, oauthbearer]}\n"
		"    local: {path: /m}\n"
		"    sync: {direction: push}\n");
	const struct cfg_account *a = &cfg->accounts[0];

	cr_assert_str_eq(a->remote.oauth2_token_cmd, "tok");
	cr_assert_eq(a->remote.auth.n, 2);
	cr_assert_eq(a->remote.auth.v[0], CFG_AUTH_XOAUTH2);
	cr_assert_eq(a->remote.auth.v[1], CFG_AUTH_OAUTHBEARER);
	cr_assert_eq(a->sync.direction, CFG_DIR_PUSH);
	cfg_free(cfg);
}

Test(config, port_defaults_to_143_without_implicit_tls)
{
	static const char *const tls[] = { "starttls", "none" };
	size_t i;

	for (i = 0; i < 2; i++) {
		char *y = xasprintf("accounts:\n  w:\n    remote:\n      tls: %s\n"
				    "      host: h\n      user: u\n      password: p\n"
				    "    local:\n      path: /m\n", tls[i]);
		struct cfg *cfg = load_ok(y);

		cr_assert_eq(cfg->accounts[0].remote.port, 143, "tls: %s", tls[i]);
		cfg_free(cfg);
		free(y);
	}
}

Test(config, empty_value_is_the_same_as_absent)
{
	char *y = with("    sync:\n      max_size:\n      expunge: ~\n");
	struct cfg *cfg = load_ok(y);

	cr_assert_eq(cfg->accounts[0].sync.max_size, 0);
	cr_assert(cfg->accounts[0].sync.expunge);
	cfg_free(cfg);
	free(y);
}

struct value_case {
	const char *text;
	bool ok;
	unsigned long long want;
};

/* Put `text` as the value of sync.KEY or remote.KEY and check the result. */
static void check_values(const char *section, const char *key,
			 const struct value_case *cases, size_t n,
			 unsigned long long (*get)(const struct cfg_account *))
{
	size_t i;

	for (i = 0; i < n; i++) {
		bool remote = strcmp(section, "remote") == 0;
		char *y = remote ?
			  xasprintf(HEAD REMOTE "      %s: %s\n" LOCAL, key, cases[i].text) :
			  xasprintf(OK_ACCOUNT "    %s:\n      %s: %s\n", section, key,
				    cases[i].text);
		unsigned line = remote ? 7 : 10;
		struct cfg *cfg = NULL;
		struct err e;
		int rc = cfg_load_buffer("t.yaml", y, strlen(y), &cfg, &e);

		if (cases[i].ok) {
			cr_assert_eq(rc, 0, "%s: %s: %s", key, cases[i].text, e.msg);
			cr_assert_eq(get(&cfg->accounts[0]), cases[i].want, "%s: %s",
				     key, cases[i].text);
		} else {
			char *prefix = xasprintf("t.yaml:%u:%zu: accounts.w.%s.%s: expected ",
						 line, strlen(key) + 9, section, key);

			cr_assert_eq(rc, -1, "%s: %s accepted", key, cases[i].text);
			cr_assert(strncmp(e.msg, prefix, strlen(prefix)) == 0,
				  "\"%s\" does not start with \"%s\"", e.msg, prefix);
			free(prefix);
		}
		cfg_free(cfg);
		free(y);
	}
}

static unsigned long long get_timeout(const struct cfg_account *a) { return a->remote.timeout; }
static unsigned long long get_max_size(const struct cfg_account *a) { return a->sync.max_size; }
static unsigned long long get_safety(const struct cfg_account *a) { return a->sync.safety_max_delete; }
static unsigned long long get_port(const struct cfg_account *a) { return a->remote.port; }
static unsigned long long get_conns(const struct cfg_account *a) { return a->remote.connections; }
static unsigned long long get_expunge(const struct cfg_account *a) { return a->sync.expunge; }
static unsigned long long get_since(const struct cfg_account *a)
{
	return (unsigned long long)(a->sync.since.year * 10000 + a->sync.since.month * 100 +
				    a->sync.since.day);
}

Test(config, durations_in_seconds_minutes_hours)
{
	static const struct value_case c[] = {
		{ "60s", true, 60 }, { "5m", true, 300 }, { "1h", true, 3600 },
		{ "90", true, 90 }, { "\"45\"", true, 45 }, { "24h", true, 86400 },
		{ "0", false, 0 }, { "25h", false, 0 }, { "1d", false, 0 }, { "-1", false, 0 },
		{ "1.5m", false, 0 }, { "\"\"", false, 0 }, { "m", false, 0 },
		{ "99999999999999999999999s", false, 0 },
	};

	check_values("remote", "timeout", c, sizeof(c) / sizeof(c[0]), get_timeout);
}

Test(config, sizes_with_binary_suffixes)
{
	static const struct value_case c[] = {
		{ "50M", true, 50ULL << 20 }, { "512K", true, 512ULL << 10 },
		{ "1G", true, 1ULL << 30 }, { "1000", true, 1000 }, { "2MiB", true, 2ULL << 20 },
		{ "3kB", true, 3072 }, { "0", true, 0 }, { "1024G", true, 1ULL << 40 },
		{ "1025G", false, 0 }, { "1T", false, 0 }, { "M", false, 0 },
		{ "5X", false, 0 }, { "-5", false, 0 }, { "5iB", false, 0 }, { "[5]", false, 0 },
	};

	check_values("sync", "max_size", c, sizeof(c) / sizeof(c[0]), get_max_size);
}

Test(config, percentages)
{
	static const struct value_case c[] = {
		{ "0%", true, 0 }, { "100%", true, 100 }, { "\"25%\"", true, 25 },
		{ "101%", false, 0 }, { "50", false, 0 }, { "\"%\"", false, 0 }, { "5.5%", false, 0 },
	};

	check_values("sync", "safety_max_delete", c, sizeof(c) / sizeof(c[0]), get_safety);
}

Test(config, since_is_a_calendar_date)
{
	static const struct value_case c[] = {
		{ "2020-02-29", true, 20200229 }, { "2000-02-29", true, 20000229 },
		{ "1999-12-31", true, 19991231 }, { "2021-02-29", false, 0 },
		{ "1900-02-29", false, 0 }, { "2020-13-01", false, 0 }, { "2020-04-31", false, 0 },
		{ "2020-1-1", false, 0 }, { "yesterday", false, 0 }, { "2020-01-00", false, 0 },
		{ "1899-12-31", false, 0 },
	};

	check_values("sync", "since", c, sizeof(c) / sizeof(c[0]), get_since);
}

Test(config, port_and_connections_ranges)
{
	static const struct value_case ports[] = {
		{ "1", true, 1 }, { "65535", true, 65535 }, { "\"143\"", true, 143 },
		{ "0", false, 0 }, { "65536", false, 0 }, { "99999", false, 0 },
		{ "0x10", false, 0 }, { "imaps", false, 0 },
	};
	static const struct value_case conns[] = {
		{ "1", true, 1 }, { "16", true, 16 }, { "0", false, 0 }, { "17", false, 0 },
	};

	check_values("remote", "port", ports, sizeof(ports) / sizeof(ports[0]), get_port);
	check_values("remote", "connections", conns, sizeof(conns) / sizeof(conns[0]), get_conns);
}

Test(config, booleans)
{
	static const struct value_case c[] = {
		{ "true", true, 1 }, { "false", true, 0 }, { "yes", true, 1 }, { "no", true, 0 },
		{ "on", true, 1 }, { "off", true, 0 }, { "True", true, 1 }, { "FALSE", true, 0 },
		{ "maybe", false, 0 }, { "1", false, 0 }, { "{a: b}", false, 0 },
	};

	check_values("sync", "expunge", c, sizeof(c) / sizeof(c[0]), get_expunge);
}

Test(config, fingerprint_with_or_without_colons)
{
	static const char *const good[] = {
		"sha256:9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08",
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"SHA256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *y2 = xasprintf(HEAD REMOTE "      tls_fingerprint: \"%s\"\n" LOCAL, good[i]);
		struct cfg *cfg = load_ok(y2);

		cr_assert(cfg->accounts[0].remote.tls_fingerprint.set);
		cr_assert_eq(cfg->accounts[0].remote.tls_fingerprint.sha256[0], 0x9f);
		cr_assert_eq(cfg->accounts[0].remote.tls_fingerprint.sha256[31], 0x08);
		cfg_free(cfg);
		free(y2);
	}
}

Test(config, bad_fingerprints_are_refused_with_the_reason)
{
	expect_error(HEAD REMOTE "      tls_fingerprint: \"sha1:AA:BB\"\n" LOCAL,
		     "t.yaml:7:24: accounts.w.remote.tls_fingerprint: only sha256 fingerprints "
		     "are supported, got \"sha1:AA:BB\"");
	expect_error_prefix(HEAD REMOTE "      tls_fingerprint: \"sha256:9F:86\"\n" LOCAL,
			    "t.yaml:7:24: accounts.w.remote.tls_fingerprint: expected \"sha256:\" "
			    "and 32 hex bytes");
	/* Colons everywhere or nowhere. */
	expect_error_prefix(HEAD REMOTE "      tls_fingerprint: \"9F869D081884C7D659A2FEAA0C55AD0"
			    ":15A3BF4F1B2B0B822CD15D6C15B0F00A08\"\n" LOCAL,
			    "t.yaml:7:24: accounts.w.remote.tls_fingerprint: expected");
	expect_error_prefix(HEAD REMOTE "      tls_fingerprint: \"zz86d081884c7d659a2feaa0c55ad015"
			    "a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n" LOCAL,
			    "t.yaml:7:24: accounts.w.remote.tls_fingerprint: expected");
}

Test(config, bad_value_names_file_line_column_and_key)
{
	expect_error(HEAD
		     "    remote:\n"
		     "      host: imap.example.org\n"
		     "      port: 99999\n"
		     "      user: me\n"
		     "      password_cmd: c\n"
		     LOCAL,
		     "t.yaml:5:13: accounts.w.remote.port: expected a number from 1 to 65535, "
		     "got \"99999\"");
	expect_error(OK_ACCOUNT "    sync:\n      direction: sideways\n",
		     "t.yaml:10:18: accounts.w.sync.direction: expected both, pull or push, "
		     "got \"sideways\"");
	expect_error(HEAD REMOTE "      tls: ssl\n" LOCAL,
		     "t.yaml:7:12: accounts.w.remote.tls: expected implicit, starttls or none, "
		     "got \"ssl\"");
	expect_error(OK_ACCOUNT "      layout: mh\n",
		     "t.yaml:9:15: accounts.w.local.layout: expected verbatim or maildir++, got \"mh\"");
	expect_error(HEAD REMOTE "      host: \"bad host\"\n" LOCAL,
		     "t.yaml:7:7: accounts.w.remote.host: duplicate key \"host\" (first set at line 4)");
	expect_error(HEAD
		     "    remote:\n"
		     "      host: \"bad host\"\n"
		     "      user: me\n"
		     "      password_cmd: c\n"
		     LOCAL,
		     "t.yaml:4:13: accounts.w.remote.host: expected a host name or IP address, "
		     "got \"bad host\"");
	expect_error(HEAD
		     "    remote:\n"
		     "      host: h\n"
		     "      user: \"\"\n"
		     "      password_cmd: c\n"
		     LOCAL,
		     "t.yaml:5:13: accounts.w.remote.user: expected a non-empty string, got \"\"");
}

Test(config, unknown_keys_are_errors_at_the_key)
{
	expect_error(OK_ACCOUNT "    sync:\n      expunged: true\n",
		     "t.yaml:10:7: accounts.w.sync: unknown key \"expunged\" (expected one of: "
		     "direction, expunge, delete_folders, max_size, since, safety_max_delete)");
	expect_error(OK_ACCOUNT "    remotes: {}\n",
		     "t.yaml:9:5: accounts.w: unknown key \"remotes\" (expected one of: remote, "
		     "local, mailboxes, sync, state)");
	expect_error("accounts:\n  w: {}\nverbose: true\n",
		     "t.yaml:2:3: accounts.w: missing required section \"remote\" (with key \"host\")");
	expect_error("verbose: true\n",
		     "t.yaml:1:1: unknown key \"verbose\" (expected \"accounts\")");
	expect_error(HEAD "    Remote:\n      host: h\n",
		     "t.yaml:3:5: accounts.w: unknown key \"Remote\" (expected one of: remote, "
		     "local, mailboxes, sync, state)");
}

Test(config, wrong_types_are_errors_at_the_value)
{
	expect_error(HEAD
		     "    remote:\n"
		     "      host: [a, b]\n",
		     "t.yaml:4:13: accounts.w.remote.host: expected a host name or IP address, "
		     "got a list");
	expect_error(HEAD "    remote: imap.example.org\n",
		     "t.yaml:3:13: accounts.w.remote: expected a mapping, got a string");
	expect_error(OK_ACCOUNT "    mailboxes:\n      include: INBOX\n",
		     "t.yaml:10:16: accounts.w.mailboxes.include: expected a list of mailbox "
		     "patterns, got \"INBOX\"");
	expect_error(OK_ACCOUNT "    mailboxes:\n      exclude: [a, [b]]\n",
		     "t.yaml:10:20: accounts.w.mailboxes.exclude[1]: expected a mailbox pattern, "
		     "got a list");
	expect_error(OK_ACCOUNT "    sync:\n      since: {y: 2020}\n",
		     "t.yaml:10:14: accounts.w.sync.since: expected a date as YYYY-MM-DD, got a mapping");
	expect_error("accounts: [w]\n",
		     "t.yaml:1:11: accounts: expected a mapping of account names, got a list");
	expect_error("- accounts\n",
		     "t.yaml:1:1: expected a mapping with \"accounts:\" at the top level, got a list");
	expect_error(OK_ACCOUNT "    state: [a]\n",
		     "t.yaml:9:12: accounts.w.state: expected a path, got a list");
}

Test(config, duplicate_keys_and_accounts)
{
	expect_error(OK_ACCOUNT "    local:\n      path: /x\n",
		     "t.yaml:9:5: accounts.w.local: duplicate key \"local\" (first set at line 7)");
	expect_error(OK_ACCOUNT "  w:\n    remote: {}\n",
		     "t.yaml:9:3: accounts: duplicate account \"w\"");
	expect_error(OK_ACCOUNT "accounts: {}\n",
		     "t.yaml:9:1: accounts: duplicate key \"accounts\" (first set at line 1)");
	expect_error(HEAD REMOTE "      port:\n      port: 993\n" LOCAL,
		     "t.yaml:8:7: accounts.w.remote.port: duplicate key \"port\" (first set at line 7)");
	expect_error(HEAD REMOTE "      user: again\n" LOCAL,
		     "t.yaml:7:7: accounts.w.remote.user: duplicate key \"user\" (first set at line 5)");
}

Test(config, missing_required_keys_and_sections)
{
	expect_error(HEAD
		     "    remote:\n"
		     "      user: me\n"
		     "      password_cmd: c\n"
		     LOCAL,
		     "t.yaml:3:5: accounts.w.remote: missing required key \"host\"");
	expect_error(HEAD REMOTE,
		     "t.yaml:2:3: accounts.w: missing required section \"local\" (with key \"path\")");
	expect_error(HEAD REMOTE "    local:\n      layout: verbatim\n",
		     "t.yaml:7:5: accounts.w.local: missing required key \"path\"");
	expect_error(HEAD REMOTE "    local:\n",
		     "t.yaml:7:5: accounts.w.local: missing required key \"path\"");
	expect_error("accounts:\n  w:\n",
		     "t.yaml:2:3: accounts.w: expected a mapping with \"remote\" and \"local\", "
		     "got nothing");
	expect_error("accounts:\n", "t.yaml:1:1: accounts: no accounts defined");
	expect_error("{}\n", "t.yaml:1:1: missing required key \"accounts\"");
	expect_error("", "t.yaml:1:1: empty configuration: expected \"accounts:\"");
	expect_error("# only a comment\n", "t.yaml:1:1: empty configuration: expected \"accounts:\"");
}

Test(config, yaml_syntax_errors_have_positions)
{
	expect_error("accounts:\n  w:\n   - x\n  - y\n",
		     "t.yaml:4:3: invalid YAML: while parsing a block mapping did not find "
		     "expected key");
	expect_error("accounts: {w: [}\n",
		     "t.yaml:1:16: invalid YAML: while parsing a flow node did not find "
		     "expected node content");
	expect_error("accounts:\n  w:\n    remote:\n      host: \"unterminated\n",
		     "t.yaml:5:1: invalid YAML: while scanning a quoted scalar found unexpected "
		     "end of stream");
	expect_error_prefix("accounts:\n\tw: {}\n", "t.yaml:2:1: invalid YAML: ");
	expect_error("accounts: {}\n---\naccounts: {}\n",
		     "t.yaml:2:1: only one YAML document is allowed");
	expect_error("accounts: !!map {}\n", "t.yaml:1:11: YAML tags are not supported");
	expect_error("accounts:\n  ? [a, b]\n  : x\n",
		     "t.yaml:2:5: mapping keys must be plain strings");
	expect_error("accounts:\n  w: \"a\\0b\"\n", "t.yaml:2:6: NUL character in a value");
}

Test(config, aliases_are_refused_and_alias_bombs_are_cheap)
{
	char *bomb, *p;
	size_t cap = 1 << 16;
	clock_t start = clock();
	int i, j;

	expect_error(HEAD "    remote: &r {host: h, user: u, password_cmd: c}\n"
		     "    local: {path: /m}\n"
		     "  v:\n"
		     "    remote: *r\n",
		     "t.yaml:6:13: YAML aliases are not supported");
	/* The classic "billion laughs" document. */
	bomb = xmalloc(cap);
	p = bomb;
	p += sprintf(p, "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
	for (i = 1; i < 10; i++) {
		p += sprintf(p, "a%d: &a%d [", i, i);
		for (j = 0; j < 9; j++)
			p += sprintf(p, "%s*a%d", j ? "," : "", i - 1);
		p += sprintf(p, "]\n");
	}
	expect_error(bomb, "t.yaml:2:10: YAML aliases are not supported");
	cr_assert_lt((double)(clock() - start) / CLOCKS_PER_SEC, 2.0);
	free(bomb);
}

Test(config, node_count_depth_and_size_are_bounded)
{
	size_t n = 30000, i;
	char *big = xmalloc(n * 2 + 64);
	char *p = big;

	p += sprintf(p, "accounts: [");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s1", i ? "," : "");
	sprintf(p, "]\n");
	expect_error_prefix(big, "t.yaml:1:");
	{
		struct cfg *cfg;
		struct err e;

		cr_assert_eq(cfg_load_buffer("t.yaml", big, strlen(big), &cfg, &e), -1);
		cr_assert(strstr(e.msg, "too many YAML nodes") != NULL, "%s", e.msg);
	}
	free(big);

	big = xmalloc(1000);
	p = big;
	p += sprintf(p, "accounts: ");
	for (i = 0; i < 40; i++)
		*p++ = '[';
	for (i = 0; i < 40; i++)
		*p++ = ']';
	strcpy(p, "\n");
	expect_error(big, "t.yaml:1:42: nested too deeply (the limit is 32 levels)");
	free(big);

	big = xmalloc(CFG_MAX_FILE + 2);
	memset(big, '#', CFG_MAX_FILE + 1);
	big[CFG_MAX_FILE + 1] = '\0';
	expect_error(big, "t.yaml: file larger than 1 MiB");
	free(big);
}

Test(config, invalid_account_names)
{
	expect_error("accounts:\n  \"my account\": {}\n",
		     "t.yaml:2:3: accounts: invalid account name \"my account\": use 1 to 64 "
		     "letters, digits, \".\", \"_\" and \"-\"");
	expect_error_prefix("accounts:\n  \"..\": {}\n", "t.yaml:2:3: accounts: invalid account name \"..\"");
	expect_error_prefix("accounts:\n  a/b: {}\n", "t.yaml:2:3: accounts: invalid account name \"a/b\"");
	expect_error_prefix("accounts:\n  \"\": {}\n", "t.yaml:2:3: accounts: invalid account name \"\"");
	expect_error_prefix("accounts:\n  caf\xc3\xa9: {}\n", "t.yaml:2:3: accounts: invalid account name");
}

Test(config, exactly_one_credential)
{
	expect_error(HEAD
		     "    remote:\n"
		     "      host: h\n"
		     "      user: u\n"
		     LOCAL,
		     "t.yaml:3:5: accounts.w.remote: no credential: set one of password_cmd, "
		     "password or oauth2_token_cmd");
	expect_error(HEAD REMOTE "      password: hunter2\n" LOCAL,
		     "t.yaml:7:7: accounts.w.remote.password: password and password_cmd are "
		     "both set; an account has one credential");
	expect_error(HEAD REMOTE "      oauth2_token_cmd: tok\n" LOCAL,
		     "t.yaml:7:7: accounts.w.remote.oauth2_token_cmd: password_cmd and "
		     "oauth2_token_cmd are both set; an account has one credential");
}

Test(config, auth_list_must_fit_the_credential)
{
	expect_error(HEAD REMOTE "      auth: [plain, xoauth2]\n" LOCAL,
		     "t.yaml:7:7: accounts.w.remote.auth: cannot mix password mechanisms with "
		     "OAuth mechanisms (xoauth2, oauthbearer): an account has one credential");
	expect_error(HEAD REMOTE "      auth: [oauthbearer]\n" LOCAL,
		     "t.yaml:7:7: accounts.w.remote.auth: OAuth mechanisms need oauth2_token_cmd");
	expect_error("accounts:\n  w:\n    remote: {host: h, user: u, oauth2_token_cmd: t, "
		     "auth: [plain]}\n    local: {path: /m}\n",
		     "t.yaml:3:53: accounts.w.remote.auth: password mechanisms need password or "
		     "password_cmd, not oauth2_token_cmd");
	expect_error(HEAD REMOTE "      auth: [plain, cram-md5]\n" LOCAL,
		     "t.yaml:7:21: accounts.w.remote.auth[1]: expected login, plain, scram-sha-1, "
		     "scram-sha-256, xoauth2 or oauthbearer, got \"cram-md5\"");
	expect_error(HEAD REMOTE "      auth: [plain, PLAIN]\n" LOCAL,
		     "t.yaml:7:21: accounts.w.remote.auth[1]: mechanism listed twice, got \"PLAIN\"");
	expect_error_prefix(HEAD REMOTE "      auth: []\n" LOCAL,
			    "t.yaml:7:13: accounts.w.remote.auth[0]: expected at least one mechanism");
}

Test(config, tls_options_refused_without_tls)
{
	expect_error(HEAD REMOTE "      tls: none\n      tls_ca_file: /ca.pem\n" LOCAL,
		     "t.yaml:8:7: accounts.w.remote.tls_ca_file: has no effect with \"tls: none\"");
	expect_error(HEAD REMOTE "      tls: none\n      tls_fingerprint: "
		     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n" LOCAL,
		     "t.yaml:8:7: accounts.w.remote.tls_fingerprint: has no effect with \"tls: none\"");
}

Test(config, password_never_appears_in_messages)
{
	struct cfg *cfg;
	struct err e;
	const char *y1 = HEAD REMOTE "      password: Zebra-Secret-42\n" LOCAL;
	const char *y2 = HEAD "    remote:\n      password: [Zebra-Secret-42]\n";
	const char *y3 = HEAD "    remote:\n      password: Zebra-Secret-42\n      bogus: 1\n";

	cr_assert_eq(cfg_load_buffer("t.yaml", y1, strlen(y1), &cfg, &e), -1);
	cr_assert_null(strstr(e.msg, "Zebra"), "%s", e.msg);
	cr_assert_eq(cfg_load_buffer("t.yaml", y2, strlen(y2), &cfg, &e), -1);
	cr_assert_str_eq(e.msg, "t.yaml:4:17: accounts.w.remote.password: expected a "
			 "non-empty password, got a list");
	cr_assert_eq(cfg_load_buffer("t.yaml", y3, strlen(y3), &cfg, &e), -1);
	cr_assert_null(strstr(e.msg, "Zebra"), "%s", e.msg);
}

Test(config, overlapping_accounts_are_refused)
{
	expect_error(OK_ACCOUNT
		     "  v:\n"
		     "    remote: {host: h, user: u, password_cmd: c}\n"
		     "    local: {path: /mail/w/sub}\n",
		     "t.yaml:11:13: accounts.v.local.path: overlaps account \"w\"'s local.path");
	expect_error(OK_ACCOUNT
		     "  v:\n"
		     "    remote: {host: h, user: u, password_cmd: c}\n"
		     "    local: {path: /mail//w/}\n",
		     "t.yaml:11:13: accounts.v.local.path: overlaps account \"w\"'s local.path");
	expect_error(OK_ACCOUNT "    state: /st/x\n"
		     "  v:\n"
		     "    remote: {host: h, user: u, password_cmd: c}\n"
		     "    local: {path: /mail/v}\n"
		     "    state: /st/x/\n",
		     "t.yaml:13:5: accounts.v.state: overlaps account \"w\"'s state directory");
	/* Siblings with a common prefix are fine. */
	cfg_free(load_ok(OK_ACCOUNT
			 "  w2:\n"
			 "    remote: {host: h, user: u, password_cmd: c}\n"
			 "    local: {path: /mail/w2}\n"));
}

Test(config, paths_expand_home_and_variables)
{
	struct cfg *cfg;
	struct passwd *pw = getpwuid(getuid());
	char *want;

	setenv("MAILROOT", "/data/mail", 1);
	setenv("EMPTY", "", 1);
	cfg = load_ok(HEAD REMOTE
		      "    local:\n"
		      "      path: $MAILROOT/w\n"
		      "      inbox: ~/in${EMPTY}box\n"
		      "    state: \"${MAILROOT}/cost$$5\"\n");
	cr_assert_str_eq(cfg->accounts[0].local.path, "/data/mail/w");
	want = xasprintf("%s/inbox", tmpdir);
	cr_assert_str_eq(cfg->accounts[0].local.inbox, want);
	free(want);
	cr_assert_str_eq(cfg->accounts[0].state, "/data/mail/cost$5");
	cfg_free(cfg);

	cr_assert_not_null(pw);
	want = xasprintf(HEAD REMOTE "      tls_ca_file: ~%s/ca.pem\n" LOCAL, pw->pw_name);
	cfg = load_ok(want);
	free(want);
	want = xasprintf("%s/ca.pem", pw->pw_dir);
	cr_assert_str_eq(cfg->accounts[0].remote.tls_ca_file, want);
	free(want);
	cfg_free(cfg);

	/* A bare ~ is YAML's null; quoted it is the home directory. */
	cfg = load_ok(HEAD REMOTE "    local:\n      path: \"~\"\n");
	cr_assert_str_eq(cfg->accounts[0].local.path, tmpdir);
	cfg_free(cfg);
}

Test(config, path_expansion_errors_name_the_problem)
{
	unsetenv("FERRY_NOT_SET");
	expect_error(HEAD REMOTE "    local:\n      path: $FERRY_NOT_SET/mail\n",
		     "t.yaml:8:13: accounts.w.local.path: environment variable "
		     "\"FERRY_NOT_SET\" is not set");
	expect_error(HEAD REMOTE "    local:\n      path: \"/a/${FERRY_NOT_SET}\"\n",
		     "t.yaml:8:13: accounts.w.local.path: environment variable "
		     "\"FERRY_NOT_SET\" is not set");
	expect_error(HEAD REMOTE "    local:\n      path: Mail/w\n",
		     "t.yaml:8:13: accounts.w.local.path: expected an absolute path (or one "
		     "starting with \"~\"), got \"Mail/w\"");
	expect_error(HEAD REMOTE "    local:\n      path: /a/$5\n",
		     "t.yaml:8:13: accounts.w.local.path: \"$\" not followed by a variable name "
		     "(write \"$$\" for a literal \"$\")");
	expect_error(HEAD REMOTE "    local:\n      path: \"/a/${HOME\"\n",
		     "t.yaml:8:13: accounts.w.local.path: bad \"${...}\": expected a variable "
		     "name and \"}\"");
	expect_error(HEAD REMOTE "    local:\n      path: ~no-such-user-ferry/m\n",
		     "t.yaml:8:13: accounts.w.local.path: cannot expand \"~\": no user "
		     "\"no-such-user-ferry\"");
}

Test(config, xdg_default_paths)
{
	char *path;
	char *want;
	struct err e;
	struct cfg *cfg;

	cr_assert_eq(cfg_default_path(&path, &e), 0);
	want = xasprintf("%s/.config/ferry/config.yaml", tmpdir);
	cr_assert_str_eq(path, want);
	free(path);
	free(want);

	setenv("XDG_CONFIG_HOME", "/xdg/conf", 1);
	cr_assert_eq(cfg_default_path(&path, &e), 0);
	cr_assert_str_eq(path, "/xdg/conf/ferry/config.yaml");
	free(path);

	/* A relative XDG directory is invalid by the XDG spec and ignored. */
	setenv("XDG_CONFIG_HOME", "relative/conf", 1);
	cr_assert_eq(cfg_default_path(&path, &e), 0);
	want = xasprintf("%s/.config/ferry/config.yaml", tmpdir);
	cr_assert_str_eq(path, want);
	free(path);
	free(want);

	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	cfg = load_ok(OK_ACCOUNT);
	cr_assert_str_eq(cfg->accounts[0].state, "/xdg/state/ferry/w");
	cfg_free(cfg);
}

struct match_case {
	const char *pattern;
	const char *name;
	char sep;
	bool match;
};

Test(config, list_patterns_match_like_imap)
{
	static const struct match_case c[] = {
		{ "*", "INBOX", '/', true },
		{ "*", "a/b/c", '/', true },
		{ "%", "a", '/', true },
		{ "%", "a/b", '/', false },
		{ "a/%", "a/b", '/', true },
		{ "a/%", "a/b/c", '/', false },
		{ "a/*", "a/b/c", '/', true },
		{ "a/*", "a", '/', false },
		{ "a*", "a", '/', true },
		{ "a%", "ab/c", '/', false },
		{ "%/%", "a/b", '/', true },
		{ "%/c", "a/b/c", '/', false },
		{ "*/c", "a/b/c", '/', true },
		{ "a.%", "a.b", '.', true },
		{ "a.%", "a.b.c", '.', false },
		{ "%", "a.b", '\0', true },      /* no hierarchy: % is * */
		{ "%", "a/b", '.', true },       /* '/' is not the separator */
		{ "inbox", "INBOX", '/', true },
		{ "INBOX", "Inbox", '/', true },
		{ "INBOX/%", "inbox/Sub", '/', true },
		{ "inbox/sub", "INBOX/Sub", '/', false }, /* only INBOX folds case */
		{ "Inboxes", "INBOXES", '/', false },
		{ "Sent", "sent", '/', false },
		{ "[Gmail]/All Mail", "[Gmail]/All Mail", '/', true },
		{ "[Gmail]/*", "[Gmail]/Sent Mail", '/', true },
		{ "Arch*ve/2020", "Archive/2020", '/', true },
		{ "*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", '/', false },
		{ "", "", '/', true },
		{ "", "a", '/', false },
		{ "a", "", '/', false },
		{ "caf\xc3\xa9/%", "caf\xc3\xa9/th\xc3\xa9", '/', true },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		cr_expect_eq(cfg_pattern_match(c[i].pattern, c[i].name, c[i].sep), c[i].match,
			     "pattern \"%s\" name \"%s\" sep '%c': expected %s", c[i].pattern,
			     c[i].name, c[i].sep ? c[i].sep : '0', c[i].match ? "match" : "no match");
}

Test(config, long_names_match_without_blowing_up)
{
	size_t n = 5000;
	char *name = xmalloc(n + 1);

	memset(name, 'a', n);
	name[n] = '\0';
	cr_assert(cfg_pattern_match("*a*a*a*%a", name, '/'));
	cr_assert_not(cfg_pattern_match("*a*a*a*b", name, '/'));
	free(name);
}

Test(config, exclude_beats_include)
{
	struct cfg *cfg = load_ok(OK_ACCOUNT
				  "    mailboxes:\n"
				  "      include: [INBOX, \"Lists/*\", \"Work/%\"]\n"
				  "      exclude: [\"Lists/spam\", \"*/Old\"]\n");
	const struct cfg_account *a = &cfg->accounts[0];

	cr_assert(cfg_mailbox_selected(a, "INBOX", '/'));
	cr_assert(cfg_mailbox_selected(a, "inbox", '/'));
	cr_assert(cfg_mailbox_selected(a, "Lists/ferry", '/'));
	cr_assert(cfg_mailbox_selected(a, "Lists/ferry/dev", '/'));
	cr_assert_not(cfg_mailbox_selected(a, "Lists/spam", '/'));
	cr_assert_not(cfg_mailbox_selected(a, "Lists/Old", '/'));
	cr_assert(cfg_mailbox_selected(a, "Work/2020", '/'));
	cr_assert_not(cfg_mailbox_selected(a, "Work/2020/Q1", '/'));
	cr_assert_not(cfg_mailbox_selected(a, "Work/Old", '/'));
	cr_assert_not(cfg_mailbox_selected(a, "Sent", '/'));
	cfg_free(cfg);

	cfg = load_ok(OK_ACCOUNT);
	cr_assert(cfg_mailbox_selected(&cfg->accounts[0], "Anything/At/All", '/'));
	cfg_free(cfg);
	expect_error_prefix(OK_ACCOUNT "    mailboxes:\n      include: []\n",
			    "t.yaml:10:16: accounts.w.mailboxes.include[0]: expected at least one pattern");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(config, plain_password_in_readable_file_warns_without_the_password)
{
	char *path = xasprintf("%s/config.yaml", tmpdir);
	const char *y = "accounts:\n  w:\n    remote: {host: h, user: u, password: Zebra-Secret-42}\n"
			"    local: {path: /m}\n";
	struct cfg *cfg;
	struct err e;

	write_file(path, y, 0644);
	cr_assert_eq(cfg_load_file(path, &cfg, &e), 0, "%s", e.msg);
	cr_assert_eq(cfg->n_warnings, 1);
	cr_assert(strstr(cfg->warnings[0], "account \"w\" has a plain password") != NULL,
		  "%s", cfg->warnings[0]);
	cr_assert_null(strstr(cfg->warnings[0], "Zebra"));
	cr_assert_str_eq(cfg->accounts[0].remote.password, "Zebra-Secret-42");
	cfg_free(cfg);

	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(cfg_load_file(path, &cfg, &e), 0, "%s", e.msg);
	cr_assert_eq(cfg->n_warnings, 0);
	cfg_free(cfg);

	write_file(path, OK_ACCOUNT, 0644);
	cr_assert_eq(cfg_load_file(path, &cfg, &e), 0, "%s", e.msg);
	cr_assert_eq(cfg->n_warnings, 0);
	cfg_free(cfg);
	free(path);
}

Test(config, file_errors_name_the_file)
{
	char *path = xasprintf("%s/missing.yaml", tmpdir);
	char *want = xasprintf("cannot open \"%s\": No such file or directory", path);
	struct cfg *cfg;
	struct err e;

	cr_assert_eq(cfg_load_file(path, &cfg, &e), -1);
	cr_assert_eq(e.code, ERR_CONFIG);
	cr_assert_str_eq(e.msg, want);
	free(want);
	free(path);

	path = xasprintf("%s/bad.yaml", tmpdir);
	write_file(path, OK_ACCOUNT "    sync: {expunge: perhaps}\n", 0600);
	want = xasprintf("%s:9:21: accounts.w.sync.expunge: expected true or false, "
			 "got \"perhaps\"", path);
	cr_assert_eq(cfg_load_file(path, &cfg, &e), -1);
	cr_assert_str_eq(e.msg, want);
	free(want);
	cr_assert_eq(cfg_load_file(tmpdir, &cfg, &e), -1);
	cr_assert(strstr(e.msg, "is not a regular file") != NULL, "%s", e.msg);
	free(path);
}

Test(config, every_example_file_loads)
{
	const char *root = getenv("FERRY_SOURCE_ROOT");
	char *dir;
	DIR *d;
	struct dirent *de;
	int loaded = 0;

	cr_assert_not_null(root, "FERRY_SOURCE_ROOT is not set");
	dir = xasprintf("%s/config-examples", root);
	d = opendir(dir);
	cr_assert_not_null(d, "cannot open %s", dir);
	while ((de = readdir(d)) != NULL) {
		char *path;
		struct cfg *cfg;
		struct err e;
		size_t len = strlen(de->d_name);

		if (len < 5 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		cr_assert_eq(cfg_load_file(path, &cfg, &e), 0, "%s", e.msg);
		cr_assert_gt(cfg->n_accounts, 0);
		cfg_free(cfg);
		free(path);
		loaded++;
	}
	closedir(d);
	cr_assert_geq(loaded, 2);
	free(dir);
}

Test(config, names_of_enums)
{
	cr_assert_str_eq(cfg_tls_name(CFG_TLS_STARTTLS), "starttls");
	cr_assert_str_eq(cfg_layout_name(CFG_LAYOUT_MAILDIRPP), "maildir++");
	cr_assert_str_eq(cfg_direction_name(CFG_DIR_PULL), "pull");
	cr_assert_str_eq(cfg_auth_name(CFG_AUTH_SCRAM_SHA_256), "scram-sha-256");
}
