/*
 * config.h - ferry's configuration (SPEC §2): load, validate, query.
 *
 * A YAML file is parsed with libyaml into a small tree that keeps line and
 * column marks, then mapped through one declarative table of
 * {key, type, default, required, validator} into a `struct cfg`.  Every
 * problem is an ERR_CONFIG whose message starts "FILE:LINE:COL: " and names
 * the key path, e.g.
 *     config.yaml:7:13: accounts.work.remote.port: expected a number from 1 to 65535, got "99999"
 * Secrets (the value of `password:`) never appear in a message.
 *
 * Rules beyond the schema in SPEC §2, decided here:
 *   - A key whose value is empty (`key:`, `~`, `null`) is the same as an
 *     absent key: the default applies, or a required key is missing.
 *   - Numbers, sizes and durations may be written plain or quoted; booleans
 *     are true/false (yes/no and on/off are accepted too).
 *   - YAML aliases (`*name`) and explicit tags (`!!str`) are refused; anchors
 *     are ignored.  Only one document per file.  At most CFG_MAX_NODES nodes,
 *     CFG_MAX_DEPTH levels, CFG_MAX_SCALAR bytes per value, CFG_MAX_FILE bytes.
 *   - Credentials: exactly one of password, password_cmd, oauth2_token_cmd.
 *     An `auth:` list may not mix password mechanisms (login, plain, scram-*)
 *     with OAuth ones (xoauth2, oauthbearer); OAuth mechanisms need
 *     oauth2_token_cmd, password mechanisms need password or password_cmd.
 *     Without `auth:` (n_auth == 0) the client picks the best mechanism the
 *     server offers among those that fit the credential.
 *   - tls_ca_file and tls_fingerprint are refused with `tls: none`.
 *   - connections: 1..16, default 4.  timeout: 1 s .. 24 h, default 60 s.
 *   - max_size: bytes, or K/M/G (binary: 1K = 1024; "MB", "MiB" accepted);
 *     0 or absent means no limit.  safety_max_delete: "N%" with N in 0..100.
 *   - since: YYYY-MM-DD, a real calendar date, year 1900..9999.
 *   - Paths (local.path, local.inbox, state, tls_ca_file) expand a leading
 *     `~` or `~user`, and `$VAR` / `${VAR}` anywhere (`$$` is a literal `$`);
 *     an unset variable is an error naming it; the result must be absolute.
 *   - Two accounts may not share (or nest) local.path or state.
 *   - Mailbox patterns are written with the server's hierarchy separator.
 *
 * Ownership: cfg_load_file() / cfg_load_buffer() return a `struct cfg` that
 * owns every string and array reachable from it; all of it stays valid until
 * cfg_free().  The password is wiped by cfg_free().
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CFG_MAX_FILE (1024 * 1024)
#define CFG_MAX_NODES 20000
#define CFG_MAX_DEPTH 32
#define CFG_MAX_SCALAR 8192
#define CFG_MAX_ACCOUNTS 256
#define CFG_NAME_MAX 64         /* account name length */

#define CFG_DEFAULT_CONNECTIONS 4
#define CFG_DEFAULT_TIMEOUT 60  /* seconds */
#define CFG_DEFAULT_SAFETY 50   /* percent */

enum cfg_tls {
	CFG_TLS_IMPLICIT = 0,
	CFG_TLS_STARTTLS,
	CFG_TLS_NONE,
};

enum cfg_layout {
	CFG_LAYOUT_VERBATIM = 0,   /* Foo/Bar/{cur,new,tmp} */
	CFG_LAYOUT_MAILDIRPP,      /* .Foo.Bar/ */
};

enum cfg_direction {
	CFG_DIR_BOTH = 0,
	CFG_DIR_PULL,              /* never changes the server */
	CFG_DIR_PUSH,              /* never changes the local side */
};

enum cfg_auth_mech {
	CFG_AUTH_LOGIN = 0,
	CFG_AUTH_PLAIN,
	CFG_AUTH_SCRAM_SHA_1,
	CFG_AUTH_SCRAM_SHA_256,
	CFG_AUTH_XOAUTH2,
	CFG_AUTH_OAUTHBEARER,
	CFG_AUTH_COUNT,
};

/* A list of strings (mailbox patterns). */
struct cfg_strlist {
	char **v;
	size_t n;
};

struct cfg_auth_list {
	enum cfg_auth_mech v[CFG_AUTH_COUNT];   /* in the user's order */
	size_t n;                               /* 0: best offered */
};

struct cfg_fingerprint {
	bool set;
	unsigned char sha256[32];
};

struct cfg_date {
	int year;       /* 0: not set */
	int month;      /* 1..12 */
	int day;        /* 1..31 */
};

struct cfg_remote {
	char *host;
	unsigned port;
	enum cfg_tls tls;
	char *tls_ca_file;              /* NULL: system trust store only */
	char *tls_ca_file_at;           /* "FILE:LINE:COL: accounts.A.remote.tls_ca_file" */
	struct cfg_fingerprint tls_fingerprint;
	char *user;
	char *password;                 /* secret; NULL unless given inline */
	char *password_cmd;             /* NULL unless given */
	char *oauth2_token_cmd;         /* NULL unless given */
	struct cfg_auth_list auth;
	unsigned connections;
	unsigned timeout;               /* seconds */
};

struct cfg_local {
	char *path;
	enum cfg_layout layout;
	char *inbox;                    /* default PATH/INBOX */
};

struct cfg_mailboxes {
	struct cfg_strlist include;     /* default ["*"] */
	struct cfg_strlist exclude;     /* default [] */
};

struct cfg_sync {
	enum cfg_direction direction;
	bool expunge;
	bool delete_folders;
	uint64_t max_size;              /* bytes; 0: no limit */
	struct cfg_date since;          /* year 0: not set */
	unsigned safety_max_delete;     /* percent, 0..100 */
};

struct cfg_account {
	char *name;
	struct cfg_remote remote;
	struct cfg_local local;
	struct cfg_mailboxes mailboxes;
	struct cfg_sync sync;
	char *state;                    /* state directory */
};

struct cfg {
	char *file;                     /* the name given to the loader */
	struct cfg_account *accounts;   /* in file order */
	size_t n_accounts;
	char **warnings;                /* messages for the user (no secrets) */
	size_t n_warnings;
};

/*
 * The default configuration file: $XDG_CONFIG_HOME/ferry/config.yaml when
 * XDG_CONFIG_HOME is set and absolute, else ~/.config/ferry/config.yaml.
 * *path_out is the caller's to free().  -1 (ERR_CONFIG) when no home
 * directory can be found.
 */
int cfg_default_path(char **path_out, struct err *e);

/*
 * Parse and validate `len` bytes of YAML; `name` is used in messages (and
 * copied).  On success *cfg_out is the caller's (cfg_free()); on failure it
 * is untouched and `e` holds an ERR_CONFIG.  Reads the environment for
 * path expansion and default paths (HOME, XDG_STATE_HOME, $VARs).
 * cfg->warnings are for the caller to show (log_warn); they hold no secret.
 */
int cfg_load_buffer(const char *name, const char *data, size_t len,
		    struct cfg **cfg_out, struct err *e);

/*
 * As cfg_load_buffer() for the file at `path` (at most CFG_MAX_FILE bytes).
 * Adds a warning when an account has a plain `password:` and the file is
 * readable by group or others.  ERR_CONFIG also for a file that cannot be
 * read (with errno in e->sys).
 */
int cfg_load_file(const char *path, struct cfg **cfg_out, struct err *e);

/* Free everything, wiping the password.  NULL is fine. */
void cfg_free(struct cfg *cfg);

/*
 * The account's tls_ca_file, if any, is a readable regular file holding a
 * PEM certificate ("-----BEGIN CERTIFICATE-----"): 0, or -1 with ERR_CONFIG
 * naming the file, line and key (exit code 2).  Checked when a command is
 * about to use the account (sync, check, check --offline), not while the
 * configuration is parsed.
 */
int cfg_check_ca_file(const struct cfg_account *a, struct err *e);

/* The account called `name`, or NULL.  Valid as long as `cfg`. */
const struct cfg_account *cfg_find_account(const struct cfg *cfg, const char *name);

/*
 * IMAP LIST-style match of a UTF-8 mailbox name: `*` matches anything,
 * `%` anything but `separator` (separator '\0': the server has no
 * hierarchy, and `%` is like `*`).  A leading "INBOX" component is compared
 * case-insensitively in both.
 */
bool cfg_pattern_match(const char *pattern, const char *name, char separator);

/* True when `name` matches an include pattern and no exclude pattern. */
bool cfg_mailbox_selected(const struct cfg_account *a, const char *utf8_name, char separator);

/* Names as written in the file ("implicit", "maildir++", "scram-sha-256" ...). */
const char *cfg_tls_name(enum cfg_tls tls);
const char *cfg_layout_name(enum cfg_layout layout);
const char *cfg_direction_name(enum cfg_direction dir);
const char *cfg_auth_name(enum cfg_auth_mech mech);

#endif
