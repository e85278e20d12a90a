/*
 * harness.h - helpers for ferry's integration tests against a real Dovecot.
 *
 * Each test (or suite) starts its own throwaway Dovecot on 127.0.0.1 with
 * tests/harness/dovecot-test (found through $FERRY_SOURCE_ROOT, which
 * tests/meson.build sets), runs the built ferry ($FERRY_BUILD_ROOT/cmd/ferry)
 * or other programs with harness_run(), and talks raw IMAP with
 * harness_imap_raw() when it wants to see or change the server side without
 * ferry.  See tests/harness/dovecot-test for what the server offers (users,
 * special-use folders, variants).
 *
 * Caveats
 * - Not thread-safe; meant for one test process at a time per instance.
 * - Every path is bounded by HARNESS_PATH_MAX; a longer $TMPDIR fails start.
 * - Captured output is capped (HARNESS_OUTPUT_MAX per stream); beyond that it
 *   is dropped and the result says so.
 * - Failures print a line on stderr (the test log) and return -1 / NULL.
 *
 * Ownership: struct dovecot and struct harness_result are the caller's,
 * usually on the stack.  Strings returned by harness_* functions are
 * heap-allocated and belong to the caller (free()); results hold theirs until
 * harness_result_release().
 */
#ifndef FERRY_TESTS_HARNESS_H
#define FERRY_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HARNESS_PATH_MAX 1024
#define HARNESS_FIELD_MAX 128
#define HARNESS_OUTPUT_MAX (4u << 20)
#define HARNESS_RUN_TIMEOUT_MS 120000
#define HARNESS_IMAP_TIMEOUT_MS 10000

/* One running Dovecot instance, filled by harness_dovecot_start(). */
struct dovecot {
	char tmp[HARNESS_PATH_MAX];     /* the test's temporary folder; removed by stop */
	char dir[HARNESS_PATH_MAX];     /* the instance, tmp/dovecot */
	char conf[HARNESS_PATH_MAX];    /* dir/dovecot.conf (for doveadm -c) */
	char ca_file[HARNESS_PATH_MAX]; /* the self-signed certificate, PEM */
	char log_file[HARNESS_PATH_MAX];
	char fingerprint[HARNESS_FIELD_MAX]; /* "sha256:AA:BB:..." of the cert DER */
	char user1[HARNESS_FIELD_MAX], pass1[HARNESS_FIELD_MAX];
	char user2[HARNESS_FIELD_MAX], pass2[HARNESS_FIELD_MAX];
	int imap_port;                  /* plain, offers STARTTLS unless --no-starttls */
	int imaps_port;                 /* implicit TLS; 0 with --no-starttls */
	pid_t master_pid;
	bool running;
	pid_t watchdog_pid;             /* stops the server if this process dies */
	int watchdog_fd;                /* its pipe; -1 when none */
};

/*
 * Make a temporary folder under $TMPDIR (default /tmp), start Dovecot in
 * tmp/dovecot with `options` (words passed to "dovecot-test start", e.g.
 * "--caps imap4rev1 --compress", or NULL) and fill *d.  On failure nothing
 * is left running or on disk and -1 is returned.
 */
int harness_dovecot_start(struct dovecot *d, const char *options);

/*
 * A watchdog process (in its own session) holds the other end of a pipe
 * from the calling process: if that process dies without calling
 * harness_dovecot_stop() (a crash, a Criterion timeout kill), the watchdog
 * stops the server and removes d->tmp.  The watchdog belongs to the process
 * that called start; call stop from that same process.
 */

/* Stop the server, wait for it to be gone, remove d->tmp.  Idempotent. */
void harness_dovecot_stop(struct dovecot *d);

/* Write COUNT deterministic messages for USER ("dovecot-test seed"): most in
 * INBOX, some in "Sent Items" and in the space-separated `folders` (NULL:
 * "Work Work/Projects"); every 3rd \Seen, every 7th \Flagged. */
int harness_seed(struct dovecot *d, const char *user, int count, const char *folders);

enum harness_jwt_flags {
	HARNESS_JWT_BAD_SIGNATURE = 1u << 0,
	HARNESS_JWT_EXPIRED = 1u << 1,
};

/* A JWT (HS256) for `user` that this instance accepts for XOAUTH2 and
 * OAUTHBEARER, or a broken one per `flags`.  Caller frees; NULL on error. */
char *harness_jwt(struct dovecot *d, const char *user, unsigned flags);

/* One ferry account aimed at a harness server; NULL fields take defaults. */
struct harness_account {
	const char *name;         /* "test" */
	const char *tls;          /* "implicit" (imaps port), "starttls" or "none" (imap port) */
	const char *user;         /* d->user1 */
	const char *password;     /* d->pass1; stored in a 0600 file read by password_cmd */
	const char *local_path;   /* d->tmp/Mail */
	const char *state_path;   /* d->tmp/state */
	const char *remote_extra; /* YAML lines inside remote:, indented 6 spaces */
	const char *extra;        /* YAML lines inside the account, indented 4 spaces */
};

/*
 * Write a ferry config (SPEC section 2) with one account for this server to
 * `path`: host 127.0.0.1, the port matching `tls`, tls_ca_file = the
 * instance's certificate, password_cmd "cat FILE" where FILE is
 * d->tmp/password-NAME (mode 0600).  0 or -1.
 */
int harness_write_config(struct dovecot *d, const char *path, const struct harness_account *a);

/* Output of one program run. */
struct harness_result {
	int status;        /* exit code; 128 + N when killed by signal N; -1 on timeout */
	bool timed_out;
	bool truncated;    /* some output was beyond HARNESS_OUTPUT_MAX and dropped */
	char *out;         /* stdout, NUL-terminated (never NULL after success) */
	size_t out_len;
	char *err;         /* stderr, likewise */
	size_t err_len;
};

struct harness_run_opts {
	const char *stdin_text;      /* NULL: the program reads /dev/null */
	const char *const *env;      /* extra "NAME=value" (NULL-terminated) or NULL */
	const char *cwd;             /* NULL: unchanged */
	int timeout_ms;              /* 0: HARNESS_RUN_TIMEOUT_MS */
};

/*
 * Run argv[0] (looked up in PATH when it has no '/') with argv, feeding
 * stdin_text, capturing stdout and stderr.  The program runs in its own
 * process group, which is killed (SIGKILL) on timeout.  Returns 0 when the
 * program ran (whatever its exit status: look at out->status), -1 when it
 * could not be started.  Release *out with harness_result_release().
 */
int harness_run(const char *const argv[], const char *stdin_text, struct harness_result *out);
int harness_run_with(const char *const argv[], const struct harness_run_opts *opts,
		     struct harness_result *out);
void harness_result_release(struct harness_result *r);

/* "doveadm -c d->conf ARGS..." (args NULL-terminated). */
int harness_doveadm(struct dovecot *d, const char *const args[], struct harness_result *out);

/* $FERRY_BUILD_ROOT/cmd/ferry and $FERRY_SOURCE_ROOT/REL, or NULL when the
 * variable is unset.  Caller frees. */
char *harness_ferry_path(void);
char *harness_source_path(const char *rel);

/* Create or truncate `path` (mode 0600) with `text`.  0 or -1. */
int harness_write_file(const char *path, const char *text);

/* The whole file, NUL-terminated, or NULL if missing or larger than max. */
char *harness_read_file(const char *path, size_t max);

/* mkdir -p with mode 0700.  0 or -1. */
int harness_mkdirs(const char *path);

/* rm -rf without following symlinks.  0 or -1; a missing path is fine. */
int harness_remove_tree(const char *path);

/*
 * Talk IMAP over plain TCP to 127.0.0.1:port.  Reads the greeting, then for
 * each line of `lines` (NULL-terminated, without CRLF) sends line + CRLF and
 * reads the answer: up to the tagged response whose tag is the first word of
 * the last command, or up to a continuation request ("+ ..."), after which
 * the next line is sent as the continuation's answer, not as a command.
 * Returns everything the server sent (CRLFs kept) in *reply_out (caller
 * frees; set even on failure).  0, or -1 on connect failure, timeout
 * (HARNESS_IMAP_TIMEOUT_MS per answer) or early EOF (a LOGOUT's EOF is fine).
 */
int harness_imap_raw(int port, const char *const lines[], char **reply_out);

/* True when some line of `text` starts with `prefix`. */
bool harness_has_line(const char *text, const char *prefix);

/* The first line of `text` that starts with `prefix`, without its line end,
 * or NULL.  Caller frees. */
char *harness_find_line(const char *text, const char *prefix);

/* True while `pid` exists and is not a zombie. */
bool harness_pid_alive(pid_t pid);

/*
 * A stand-in between ferry and the server (a relay, a fake): a child
 * process listening on an ephemeral port of 127.0.0.1 that accepts one
 * connection at a time and calls serve(cfd, ctx) for it (serve closes
 * cfd, or leaves it to the child's exit).  The port in *port_out; the
 * child's pid returned (kill it with SIGKILL and wait), or -1.
 */
pid_t harness_loopback_server(void (*serve)(int cfd, void *ctx), void *ctx, int *port_out);

#endif
