/*
 * synclib.h - helpers for the black-box tests of `ferry sync` (SPEC §4).
 *
 * A test owns one struct sl_ctx: a throwaway Dovecot (tests/harness), one
 * user on it, a local Maildir root (verbatim layout, INBOX at ROOT/INBOX),
 * a state folder and a config file, all under d.tmp.  The helpers
 *   - list both sides: every message with its content identity (the
 *     Message-ID header plus a hash of the body with every CR removed, so a
 *     CRLF copy on the server and an LF copy on disk are the same message)
 *     and its flags in one canonical form: IMAP names (\Seen, $Forwarded,
 *     keywords), sorted, space-separated, \Recent dropped;
 *   - change the server as another IMAP client would (raw IMAP over
 *     harness_imap_raw: APPEND, UID STORE, UID MOVE, UID EXPUNGE, CREATE,
 *     DELETE, RENAME) and the Maildir as a mail client would (tmp/ then
 *     rename into new/ or cur/, rename to change flags, unlink, mv keeping
 *     the name, mkdir cur/new/tmp, rm -r);
 *   - compare: the two sides of one account (sl_sides_diff), an account
 *     with itself at another time (sl_snap_diff), a folder with a written
 *     expectation (sl_expect_diff);
 *   - run ferry and read Dovecot's `in=N out=N` byte counters from its log.
 *
 * Local folder names map to disk paths by the escape SPEC §4.5 and
 * store/maildir.h document (verbatim layout): components joined with '/',
 * '%' written as %25, a component that is exactly cur/new/tmp gets its first
 * letter as %63/%6E/%74.  This file implements that mapping on its own, so
 * the tests check ferry's layout rather than reuse its code.
 *
 * Every diff function returns the number of differences and, when
 * `report_out` is not NULL, a text listing them (caller frees; "" when
 * none).  Listing functions return 0, or -1 after printing why on stderr.
 *
 * Ownership: lists and snapshots own their strings until *_release();
 * returned strings are the caller's to free().  Not thread-safe.
 */
#ifndef FERRY_TESTS_SYNCLIB_H
#define FERRY_TESTS_SYNCLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

struct sl_ctx {
	struct dovecot d;
	bool rev1;                      /* server started with --caps imap4rev1 */
	const char *user, *pass;        /* d.user1 / d.pass1 unless changed */
	char root[HARNESS_PATH_MAX];    /* local Maildir root, d.tmp/Mail */
	char state[HARNESS_PATH_MAX];   /* d.tmp/state */
	char config[HARNESS_PATH_MAX];  /* d.tmp/config.yaml */
};

/* One message on either side. */
struct sl_msg {
	uint32_t uid;           /* remote: its UID; local: 0 */
	char *name;             /* local: "cur/FILE" or "new/FILE"; remote: NULL */
	char *msgid;            /* the Message-ID header value, "" if none */
	char *ident;            /* msgid "#" 16 hex digits of the body hash */
	char *flags;            /* canonical flag string, "" if none */
	uint64_t size;          /* remote: RFC822.SIZE-ish (body+header bytes seen); local: file size */
};

struct sl_list {
	struct sl_msg *v;
	size_t n;
};

/* All folders of one side, sorted by name. */
struct sl_snap {
	char **names;
	struct sl_list *lists;
	size_t n;
};

/* Start Dovecot (`rev1`: --caps imap4rev1), fill the paths, write the
 * config with `extra` (YAML lines inside the account, indented 4 spaces, or
 * NULL).  0 or -1. */
int sl_setup(struct sl_ctx *c, bool rev1, const char *extra);
void sl_teardown(struct sl_ctx *c);
/* The config's "port: FROM" made "port: TO" (0 or -1). */
int sl_config_port(struct sl_ctx *c, int from, int to);
/* Rewrite the config with other `extra` lines. */
int sl_write_config(struct sl_ctx *c, const char *extra);
/* The same with `remote_extra` lines inside remote: (indented 6 spaces), or NULL. */
int sl_write_config_remote(struct sl_ctx *c, const char *remote_extra, const char *extra);

/* ---- server side ---- */
int sl_remote_list(struct sl_ctx *c, const char *mailbox, struct sl_list *out);
/* Selectable mailboxes, sorted (NULL-terminated array; free with sl_strv_free). */
char **sl_remote_mailboxes(struct sl_ctx *c);
int sl_remote_snap(struct sl_ctx *c, struct sl_snap *out);
/* Raw commands after LOGIN (and SELECT `mailbox` unless NULL); each string
 * is a command without tag.  0 if every command got a tagged OK.  *reply_out
 * (optional) gets the whole conversation. */
int sl_imap(struct sl_ctx *c, const char *mailbox, const char *const cmds[], char **reply_out);
/* APPEND `text` (LF or CRLF line ends; sent as CRLF) with `flags` like
 * "\\Seen $label1" (NULL: none). */
int sl_remote_append(struct sl_ctx *c, const char *mailbox, const char *text, const char *flags);
/* As sl_remote_append() with an INTERNALDATE like "01-Jan-2020 12:00:00 +0000". */
int sl_remote_append_dated(struct sl_ctx *c, const char *mailbox, const char *text, const char *flags,
			   const char *date);
/* The mailbox's UIDVALIDITY (STATUS), 0 on error. */
uint32_t sl_remote_uidvalidity(struct sl_ctx *c, const char *mailbox);
/* The UID of the message with this Message-ID, 0 if absent (or not unique). */
uint32_t sl_remote_uid(struct sl_ctx *c, const char *mailbox, const char *msgid);
/* "UID STORE uid <op> (<flags>)", op e.g. "+FLAGS.SILENT". */
int sl_remote_store(struct sl_ctx *c, const char *mailbox, const char *msgid, const char *op, const char *flags);
int sl_remote_move(struct sl_ctx *c, const char *from, const char *msgid, const char *to);
int sl_remote_expunge(struct sl_ctx *c, const char *mailbox, const char *msgid);
int sl_remote_create(struct sl_ctx *c, const char *mailbox);
int sl_remote_delete(struct sl_ctx *c, const char *mailbox);
int sl_remote_rename(struct sl_ctx *c, const char *from, const char *to);
/* Quote for IMAP (caller frees). */
char *sl_quote(const char *s);

/* ---- local side ---- */
/* Disk path of folder `name` (IMAP name, '/' separator) under c->root. */
char *sl_local_path(struct sl_ctx *c, const char *name);
int sl_local_list(struct sl_ctx *c, const char *folder, struct sl_list *out);
/* List the folder at an explicit disk path (with its dovecot-keywords). */
int sl_local_list_path(const char *folder_path, struct sl_list *out);
char **sl_local_folders(struct sl_ctx *c);
int sl_local_snap(struct sl_ctx *c, struct sl_snap *out);
/* Deliver `text` as a mail client/MDA would: tmp/ then new/ (letters NULL)
 * or cur/NAME:2,LETTERS.  The folder must exist. */
int sl_local_deliver(struct sl_ctx *c, const char *folder, const char *text, const char *letters);
/* Full path of the file holding `msgid`, NULL if absent (or not unique). */
char *sl_local_find(struct sl_ctx *c, const char *folder, const char *msgid);
/* Rename the file to cur/UNIQ:2,LETTERS (letters sorted by the caller). */
int sl_local_set_flags(struct sl_ctx *c, const char *folder, const char *msgid, const char *letters);
/* The dovecot-keywords letter for `keyword`, added to the file if new; 0 on error. */
char sl_local_keyword_letter(struct sl_ctx *c, const char *folder, const char *keyword);
int sl_local_delete(struct sl_ctx *c, const char *folder, const char *msgid);
/* mv keeping the file name (and its sub folder). */
int sl_local_move(struct sl_ctx *c, const char *from, const char *msgid, const char *to);
int sl_local_mkfolder(struct sl_ctx *c, const char *folder);
/* rm -r the folder (NULL: the whole Maildir root). */
int sl_local_rmtree(struct sl_ctx *c, const char *folder);

/* ---- comparing ---- */
/* Both sides: same folder set; per folder same messages (by identity, as
 * multisets) with the same flags; no duplicate identity on either side. */
size_t sl_sides_diff(struct sl_ctx *c, char **report_out);
size_t sl_snap_sides_diff(const struct sl_snap *remote, const struct sl_snap *local, char **report_out);
/* Same side at two times: same folders, same messages and flags; with
 * `strict` also the same UIDs (remote) / file names (local). */
size_t sl_snap_diff(const struct sl_snap *a, const struct sl_snap *b, bool strict, char **report_out);
/* `expect`: NULL-terminated "MSGID" or "MSGID FLAG FLAG..." entries; the
 * list must hold exactly those messages (by Message-ID) with exactly those
 * flags, each once. */
size_t sl_expect_diff(const struct sl_list *l, const char *const expect[], char **report_out);
/* Total messages in a snapshot. */
size_t sl_snap_count(const struct sl_snap *s);
/* Duplicated identities within one list (0 if none). */
size_t sl_list_dups(const struct sl_list *l);

void sl_list_release(struct sl_list *l);
void sl_snap_release(struct sl_snap *s);
void sl_strv_free(char **v);
/* Canonical form of a flag list ("\\Seen foo \\Recent" -> "\\Seen foo"). */
char *sl_canon_flags(const char *flags);

/* ---- messages ---- */
/* A message with LF line ends: Message-ID <TAG@ferry.test>, Subject TAG,
 * a body of about `body_bytes` bytes derived from TAG. */
char *sl_message(const char *tag, size_t body_bytes);
/* "<TAG@ferry.test>" (caller frees). */
char *sl_msgid(const char *tag);

/* ---- running ferry ---- */
/* ferry -c CONFIG ARGS... (NULL-terminated) with extra `env`; 0 if it ran. */
int sl_ferry(struct sl_ctx *c, const char *const env[], struct harness_result *res, ...);
int sl_ferry_argv(struct sl_ctx *c, const char *const env[], const char *const args[], struct harness_result *res);

/* ---- Dovecot byte counters ---- */
/* The current end of the log (an offset for sl_log_bytes). */
long sl_log_mark(struct sl_ctx *c);
/* Sum in= and out= of every IMAP session of c->user that logged out after
 * `mark`, waiting (up to 15 s) until at least one did and the log is quiet.
 * 0, or -1 if no session ended. */
int sl_log_bytes(struct sl_ctx *c, long mark, uint64_t *in_out, uint64_t *out_out, unsigned *sessions_out);

#endif
