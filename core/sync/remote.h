/*
 * remote.h - the IMAP side of a sync: change detection, fingerprints,
 * streamed downloads, uploads, flag stores, moves, expunges and mailbox
 * creation / deletion over one imap_client (core/imap/client.h).
 *
 * One struct sync_remote owns one client (one connection) and keeps at most
 * one mailbox selected; every call that needs a mailbox selects it when it is
 * not the selected one (read-write SELECT), and it stays selected for the
 * next call on the same mailbox (a scan always selects anew).  Do not call
 * imap_client_select() on the adapter's client: the adapter would not know.
 * UIDVALIDITY: the first SELECT of a mailbox in the session records its
 * UIDVALIDITY (for the engine, the scan's: the UIDs it plans with); every
 * later SELECT of it must show the same, or it fails with ERR_SERVER
 * ("the mailbox was made again") and nothing that uses UIDs is done in it:
 * commands that change the server (UID STORE, EXPUNGE, MOVE) go out only
 * once their SELECT is answered and checked (one round trip per mailbox),
 * and FETCH answers pipelined behind a SELECT that shows another value
 * are dropped.  APPENDUID and COPYUID under another UIDVALIDITY than the
 * one seen for their target are not believed (the UIDs are left 0, to be
 * found by fingerprint).  DELETE and RENAME (by this adapter) forget what
 * was seen of the names involved.
 * Capabilities are taken as advertised: a server that sends APPENDUID or
 * COPYUID without announcing UIDPLUS is not believed (the UID is then found
 * by fingerprint, or reported as 0).  MULTIAPPEND is used only through
 * sync_remote_append_many_submit(), when the caller asks for it.
 *
 * Typical use (the engine):
 *
 *     struct sync_remote *r = sync_remote_new(&client_opts);
 *     if (sync_remote_open(r, &e) < 0) ...        // connect, login, caps
 *     sync_remote_status_all(r, names, n, st, &e); // cheap pre-check
 *     for each mailbox:
 *             known = { uidvalidity, highestmodseq, uidnext, messages,
 *                       known uids, &st[i] };
 *             sync_remote_scan(r, name, &known, arena, &listing, &e);
 *             ... plan ... then download / append / store / move / expunge
 *     sync_remote_logout(r, &e);
 *     sync_remote_free(r);
 *
 * Names: every mailbox name in this API is UTF-8 ("INBOX" for the inbox);
 * the adapter encodes it to modified UTF-7 unless UTF8=ACCEPT is enabled.
 *
 * Change detection (sync_remote_scan), chosen by capability:
 *   - QRESYNC (enabled by the client at login): SELECT name (QRESYNC
 *     (uidvalidity modseq known-uids)); the delta is the FETCH responses
 *     (UID FLAGS MODSEQ) and "* VANISHED (EARLIER)" the server sends during
 *     the SELECT.  With known-uids the server reports changes among those
 *     UIDs only (RFC 7162), so messages that arrived since are fetched by
 *     "UID FETCH known-uidnext:* (UID FLAGS RFC822.SIZE)"; RFC822.SIZE of
 *     the changed old ones afterwards.  A known-uids list longer than 64 KiB
 *     on the wire is left out (the server then reports every expunge since
 *     modseq; only known UIDs are returned as vanished).
 *   - CONDSTORE only: SELECT name (CONDSTORE), UID FETCH 1:* (UID FLAGS
 *     RFC822.SIZE) (CHANGEDSINCE modseq); expunges: with ESEARCH
 *     "UID SEARCH RETURN (ALL) UID known-range", else "UID SEARCH UID
 *     known-range" (known-range = 1:max-known-uid, so only the old UIDs come
 *     back, as compact ranges with ESEARCH), compared with the known UIDs;
 *     a known UID that is not returned vanished.  No flag is listed for an
 *     unchanged message.  (Without ESEARCH the "* SEARCH" line must fit the
 *     parser's 1 MiB line limit: about 150,000 UIDs.)
 *   - plain IMAP4rev1 (or nothing known, or UIDVALIDITY changed, or
 *     NOMODSEQ): UID FETCH 1:* (UID FLAGS RFC822.SIZE), a complete listing.
 *   Pre-check: sync_remote_status_all() (LIST-STATUS when offered, else
 *   pipelined STATUS; a NOOP first when a mailbox is selected, since STATUS
 *   of the selected mailbox reports the session's possibly stale view) and
 *   sync_remote_unchanged().  Given known->status,
 *   scan does not select a mailbox whose UIDVALIDITY, UIDNEXT, MESSAGES and
 *   HIGHESTMODSEQ did not move, and returns an empty delta (unchanged set).
 *   Without HIGHESTMODSEQ (no CONDSTORE) a flag change is invisible to
 *   STATUS, so the pre-check never says "unchanged" then.
 *   Pipelining across mailboxes: sync_remote_scan_start_known() / _finish()
 *   (any method) and sync_remote_fetch_fps_many() send the commands of
 *   several mailboxes before the first answer is read; see there.
 *
 * Fingerprints (SYNC-DESIGN.md): SHA-256 over "ferry-fp1\n", the header
 * section with CRLF line ends, "\n" and the decimal RFC822.SIZE; fetched as
 * UID FETCH uids (UID RFC822.SIZE BODY.PEEK[HEADER]).
 *
 * Memory: bodies are never held in memory.  Downloads: the parser's
 * literal sink hands them to the caller's sink in pieces.  Uploads: the
 * connection's literal source reads the file as the socket takes it,
 * converting LF -> CRLF on the way.
 *
 * Errors: the client's (ERR_NET, ERR_TLS, ERR_TIMEOUT, ERR_PROTO,
 * ERR_LIMIT, ERR_SERVER with the server's text for NO/BAD), ERR_IO for the
 * caller's file, ERR_STATE when a file is not the size promised, and
 * whatever a caller's callback returns.  After ERR_NET / ERR_TLS /
 * ERR_TIMEOUT / ERR_PROTO / ERR_LIMIT the connection is dead: free the
 * adapter and open a new one.
 *
 * Ownership: the adapter owns its client; it copies opts (as the client
 * does).  Everything a scan returns lives in the caller's arena.  Pointers
 * passed to callbacks live only for the duration of the call.
 */
#ifndef FERRY_SYNC_REMOTE_H
#define FERRY_SYNC_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "imap/client.h"
#include "err.h"
#include "plan.h"
#include "imap/resp.h"

struct sync_remote;

/* What the session offers (after login), as the adapter uses it. */
struct sync_remote_caps {
	bool qresync;           /* QRESYNC offered and enabled */
	bool condstore;         /* CONDSTORE offered (or implied by QRESYNC) */
	bool uidplus;
	bool move;
	bool literal_plus;
	bool multiappend;
	bool list_status;
	bool esearch;
	bool utf8;              /* UTF8=ACCEPT enabled: names go as UTF-8 */
	bool unselect;
};

/*
 * Create the client (imap_client_new(opts) with the adapter's literal sink
 * added to opts->conn.sink, which must be NULL) and the adapter.  Not
 * connected yet.
 */
struct sync_remote *sync_remote_new(const struct imap_client_opts *opts);
/* Closes without LOGOUT if still connected; NULL is fine. */
void sync_remote_free(struct sync_remote *r);
/* imap_client_open() (connect, TLS, login, ENABLE) and learn the capabilities. */
int sync_remote_open(struct sync_remote *r, struct err *e);
/* LOGOUT and close. */
int sync_remote_logout(struct sync_remote *r, struct err *e);
/* The client, e.g. for imap_client_list(); owned by the adapter. */
struct imap_client *sync_remote_client(struct sync_remote *r);
/* Valid after sync_remote_open(). */
const struct sync_remote_caps *sync_remote_caps(const struct sync_remote *r);
/*
 * Stop using the capabilities set in `off` (for servers whose extension is
 * broken, and for tests of the fallbacks).  Turning off qresync after login
 * only changes the method: the server keeps QRESYNC enabled.  utf8 and
 * literal_plus are the session's state and are not changed.  Call after
 * sync_remote_open().
 */
void sync_remote_disable(struct sync_remote *r, const struct sync_remote_caps *off);
/*
 * Open mailboxes with EXAMINE instead of SELECT from now on (a dry run:
 * the server is only read; SELECT would clear \Recent, RFC 3501 6.3.1).
 * Commands that change a mailbox then fail: it is read-only.
 */
void sync_remote_set_examine(struct sync_remote *r, bool on);
/* SELECT / EXAMINE commands sent so far (statistics; tests of the pre-check). */
unsigned long sync_remote_selects(const struct sync_remote *r);

/*
 * STATUS (MESSAGES UIDNEXT UIDVALIDITY [HIGHESTMODSEQ]) of n mailboxes:
 * one LIST-STATUS of every mailbox when offered and n > 1, else pipelined
 * STATUS commands.  out[i]
 * belongs to names[i]; a mailbox the server did not report (it does not
 * exist) has out[i].have == 0.
 */
int sync_remote_status_all(struct sync_remote *r, const char *const *names, size_t n,
			   struct imap_status_data *out, struct err *e);
/*
 * The same, always as pipelined STATUS commands (never LIST-STATUS): for
 * the pre-check sent before the session's first LIST (see
 * imap_client_list_names()).
 */
int sync_remote_status_each(struct sync_remote *r, const char *const *names, size_t n,
			    struct imap_status_data *out, struct err *e);
/*
 * sync_remote_status_each(), and behind its STATUS commands, in the same
 * round trip, LIST "" "*" of every mailbox's name into `list`
 * (imap_client_list_names(); `list` initialised by the caller).  The
 * server still takes the STATUS commands first.
 */
int sync_remote_status_each_list(struct sync_remote *r, const char *const *names, size_t n,
				 struct imap_status_data *out, struct imap_mailbox_list *list,
				 struct err *e);

/* What the caller knew after the last sync of a mailbox. */
struct sync_remote_known {
	uint32_t uidvalidity;           /* 0: nothing known: complete listing */
	uint64_t highestmodseq;         /* 0: unknown (no delta by modseq) */
	uint32_t uidnext;
	uint32_t messages;
	const uint32_t *uids;           /* the known UIDs, ascending (expunge check) */
	size_t nuids;
	/*
	 * Optional, parallel to uids: each one's recorded RFC822.SIZE (0:
	 * unknown).  Given, a complete listing asks sizes only above the
	 * highest known UID (and of known UIDs recorded without one), and a
	 * QRESYNC delta asks none of the known UIDs it reports changed.
	 */
	const uint64_t *sizes;
	const struct imap_status_data *status;  /* optional: from sync_remote_status_all() */
};

/*
 * True if `st` shows that nothing changed since `known`: same UIDVALIDITY,
 * UIDNEXT and MESSAGES, and a HIGHESTMODSEQ (required) equal to the known
 * one.
 */
bool sync_remote_unchanged(const struct imap_status_data *st, const struct sync_remote_known *known);

enum sync_remote_method {
	SYNC_REMOTE_UNCHANGED = 0,      /* pre-check: not selected */
	SYNC_REMOTE_QRESYNC,
	SYNC_REMOTE_CONDSTORE,
	SYNC_REMOTE_FULL,
};

struct sync_remote_listing {
	enum sync_remote_method method;
	/*
	 * complete: `msgs` lists every message of the mailbox (method FULL).
	 * Otherwise a delta: new or changed messages, and `vanished`.
	 */
	bool complete;
	bool uidvalidity_changed;       /* known->uidvalidity != 0 and different */
	uint32_t uidvalidity, uidnext, messages;
	uint64_t highestmodseq;         /* 0 without CONDSTORE or with NOMODSEQ */
	/* Ascending by UID; fp.state SYNC_FP_UNKNOWN; keywords in the arena. */
	struct sync_remote_msg *msgs;
	size_t nmsgs;
	uint32_t *vanished;             /* ascending; only known UIDs */
	size_t nvanished;
};

/*
 * Select `name` and list its changes since `known` (NULL: nothing known).
 * Everything in *out lives in arena `a`.  ERR_SERVER if the mailbox does
 * not exist.
 */
int sync_remote_scan(struct sync_remote *r, const char *name, const struct sync_remote_known *known,
		     struct arena *a, struct sync_remote_listing *out, struct err *e);

/*
 * sync_remote_scan() in two halves, so that the listings of several
 * mailboxes can be in flight at once (the server goes from one to the next
 * without waiting for the client).
 *
 * sync_remote_scan_start_known() works on every server: it sends what
 * sync_remote_scan(r, name, known, ...) would, without waiting: the SELECT
 * with the same parameters (QRESYNC (uidvalidity modseq known-uids),
 * (CONDSTORE), or none) and the listing's commands behind it (QRESYNC: UID
 * FETCH known-uidnext:4294967295 (UID FLAGS RFC822.SIZE); CONDSTORE: the
 * CHANGEDSINCE FETCH and the expunge check's UID SEARCH; a complete
 * listing: as sync_remote_scan_start() below).  When the pre-check
 * (known->status) says unchanged, nothing is sent and *out is NULL: call
 * sync_remote_scan() for the listing.  known (NULL: nothing known) and its
 * arrays must stay unchanged until the finish, which must be given the
 * same records (ERR_INTERNAL otherwise).  sync_remote_scan_finish() fills
 * *out exactly as sync_remote_scan() would: when the SELECT's answer
 * forbids the delta (UIDVALIDITY changed, NOMODSEQ, HIGHESTMODSEQ went
 * back), or a "* OK [CLOSED]" arrives after responses were taken (they were
 * the previous mailbox's, RFC 7162 3.2.11), the answers are dropped and the
 * mailbox is scanned again one command after the other; changed messages
 * of a QRESYNC delta whose size is not recorded get it from one more FETCH
 * (the mailbox selected again if need be).
 *
 * sync_remote_scan_start() is the older form, only for a server without
 * CONDSTORE (sync_remote_scan_can_start()), where a scan is always a
 * complete listing; sync_remote_scan() itself then uses it (with CONDSTORE
 * sync_remote_scan() sends one command after the other).  It sends SELECT
 * name and the listing's FETCHes without waiting; *out is the scan in
 * flight.  `uidvalidity` is the
 * recorded one (0: nothing known), `max_known` the highest recorded UID
 * (0: none).  With one, the listing is "UID FETCH 1:max_known (UID
 * FLAGS)" and "UID FETCH max_known+1:4294967295 (UID FLAGS RFC822.SIZE)",
 * else "UID FETCH 1:* (UID FLAGS RFC822.SIZE)".  sync_remote_scan_finish()
 * waits for its answers and fills *out exactly as sync_remote_scan(r, name,
 * known, ...) would; `known` (the records, with this UIDVALIDITY; NULL when it is 0)
 * is needed only now: a UID up to max_known takes its recorded size, or
 * gets it from one more FETCH; under a new UIDVALIDITY the answers are
 * dropped and the mailbox listed afresh.  Either command selects the
 * mailbox again first if another SELECT was sent since.  Finish frees the
 * scan, failed or not.  The arena must
 * stay until the finish.  Finish the scans in the order they were started;
 * between a start and its finish send nothing but other scans' starts
 * (another command would find another mailbox selected).
 * sync_remote_scan_abandon() frees a scan that will not be finished (its
 * commands are dropped when their answers come).
 *
 * Each scan's responses go to it alone: untagged responses that arrive
 * before the server reached its SELECT belong to earlier commands.  A
 * SELECT that fails fails its own scan only (the server then has no
 * mailbox selected, so the FETCHes behind it fail too and are not run in
 * another mailbox).  The adapter's selection after several scans is the
 * last SELECT's.
 */
struct sync_remote_scan_ahead;
bool sync_remote_scan_can_start(const struct sync_remote *r);
int sync_remote_scan_start(struct sync_remote *r, const char *name, uint32_t uidvalidity,
			   uint32_t max_known, struct arena *a,
			   struct sync_remote_scan_ahead **out, struct err *e);
int sync_remote_scan_start_known(struct sync_remote *r, const char *name,
				 const struct sync_remote_known *known, struct arena *a,
				 struct sync_remote_scan_ahead **out, struct err *e);
int sync_remote_scan_finish(struct sync_remote_scan_ahead *scan,
			    const struct sync_remote_known *known,
			    struct sync_remote_listing *out, struct err *e);
void sync_remote_scan_abandon(struct sync_remote_scan_ahead *scan);

/*
 * The UIDs of `name` whose INTERNALDATE is before the day of `since` (a
 * UTC midnight): "UID SEARCH BEFORE d-Mon-yyyy" (the server compares dates,
 * ignoring the time of day).  *uids_out is ascending, in arena `a`; *n_out
 * may be 0.  Used for the config's `since:`.
 */
int sync_remote_search_before(struct sync_remote *r, const char *name, time_t since,
			      struct arena *a, uint32_t **uids_out, size_t *n_out, struct err *e);

/*
 * A fingerprint: uid, the fingerprint (state SYNC_FP_KNOWN), the
 * Message-ID header's value (unfolded, trimmed; NULL if none) and the
 * RFC822.SIZE.  Non-zero return stops (the value is returned, e passed on).
 */
typedef int (*sync_remote_fp_fn)(void *ctx, uint32_t uid, const struct sync_fp *fp,
				 const char *message_id, uint64_t size, struct err *e);

/*
 * Fingerprints of the given UIDs (ascending), in pipelined batches.  A UID
 * the server no longer has gets no call.
 */
int sync_remote_fetch_fps(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
			  sync_remote_fp_fn fn, void *ctx, struct err *e);

/* What a downloaded message came with (known only once its FETCH is complete). */
/* One mailbox's part of sync_remote_fetch_fps_many(). */
struct sync_remote_fp_job {
	const char *name;
	const uint32_t *uids;           /* ascending; n == 0: nothing is sent */
	size_t n;
	sync_remote_fp_fn fn;
	void *ctx;
	/* Out: 0, -1 (err filled), or fn's non-zero return (err as fn left it). */
	int rc;
	struct err err;
};

/*
 * sync_remote_fetch_fps() for several mailboxes, pipelined: each job's
 * SELECT (none for the first when its mailbox is the selected one) and UID
 * FETCHes are sent without waiting for the previous jobs' answers, up to
 * 16 mailboxes ahead; answers are read and fn called job after job, in
 * order.  Every job gets its own result: a mailbox that cannot be selected
 * fails its job alone.  After a job fails with ERR_NET / ERR_TLS /
 * ERR_TIMEOUT / ERR_PROTO / ERR_LIMIT the connection is dead and so fail
 * the ones after it.  The adapter's selection is then the last SELECT's.
 */
void sync_remote_fetch_fps_many(struct sync_remote *r, struct sync_remote_fp_job *jobs, size_t n);

struct sync_remote_fetched {
	uint32_t uid;
	struct sync_flags flags;        /* strings live for the call only */
	time_t internaldate;            /* 0 if the server sent none */
	uint64_t size;                  /* the body's size in bytes (CRLF, as sent) */
};

/*
 * The caller's side of a download.  For each message: begin (size of the
 * body literal; the UID is not known yet: FETCH items may come in any
 * order), data (pieces, in order; the bytes are the server's, CRLF line
 * ends), then exactly one of finish (the whole FETCH response arrived:
 * uid, flags, date) or abort (the response was lost: connection failure,
 * parse error, or it lacked a UID).  gone (optional) is called for each
 * requested UID the server did not return (expunged meanwhile).  A -1
 * return fails the download (and, from begin/data, the connection: a
 * literal cannot be skipped).  Every call happens before
 * sync_remote_download() returns, so the sink may live on its stack.
 */
struct sync_remote_sink {
	void *ctx;
	int (*begin)(void *ctx, uint64_t size, void **handle_out, struct err *e);
	int (*data)(void *ctx, void *handle, const char *bytes, size_t len, struct err *e);
	int (*finish)(void *ctx, void *handle, const struct sync_remote_fetched *msg,
		      struct err *e);
	void (*abort)(void *ctx, void *handle);
	int (*gone)(void *ctx, uint32_t uid, struct err *e);
};

/*
 * Download the messages (UIDs ascending) with UID FETCH uids (UID FLAGS
 * INTERNALDATE RFC822.SIZE BODY.PEEK[]), pipelined in batches.  Memory is
 * bounded whatever the message sizes.
 */
int sync_remote_download(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
			 const struct sync_remote_sink *sink, struct err *e);

/*
 * The same for the header sections only (BODY.PEEK[HEADER], for max_size
 * placeholders): the sink gets the header bytes (up to and including the
 * empty line), and finish's msg->size is the whole message's RFC822.SIZE.
 */
int sync_remote_download_headers(struct sync_remote *r, const char *name, const uint32_t *uids,
				 size_t n, const struct sync_remote_sink *sink, struct err *e);

/*
 * sync_remote_download() (headers: _headers()) in halves, so that several
 * connections (one adapter each) can stream at once, driven by one poll()
 * loop.  _start() sends the SELECT (when another mailbox is selected) and
 * the UID FETCHes without waiting and returns the download in *out (NULL
 * only with -1: a bad UID list, or a download already in flight on this
 * adapter: one at a time per adapter).  A failure to send is kept for
 * _finish().  Until then the sink is called whenever the adapter's
 * connection is driven: by _wait_any(), or by any blocking call on the
 * same adapter (none should be made meanwhile: the selection is the
 * download's).  _ready(): every command of it has been answered (or its
 * connection failed), so _finish() will not block.  _wait_any() drives
 * the connections of ds[0..n) (n <= SYNC_REMOTE_DL_MAX, each on its own
 * adapter) until at least one of them is ready; -1 only when poll()
 * fails.  _finish() waits for what is left, calls gone() for UIDs the
 * server did not return, frees the download, and returns what
 * sync_remote_download() would have.  The sink's ctx must live until then.
 */
#define SYNC_REMOTE_DL_MAX 16
struct sync_remote_dl;
int sync_remote_download_start(struct sync_remote *r, const char *name, const uint32_t *uids,
			       size_t n, const struct sync_remote_sink *sink, bool headers,
			       struct sync_remote_dl **out, struct err *e);
bool sync_remote_download_ready(const struct sync_remote_dl *d);
int sync_remote_download_wait_any(struct sync_remote_dl *const *ds, size_t n, struct err *e);
int sync_remote_download_finish(struct sync_remote_dl *d, struct err *e);

/*
 * Make the UIDVALIDITY that `from`'s session first saw for each mailbox
 * the one `to` expects (added to to's records, or replacing one): a
 * second connection then refuses a mailbox made again since the first
 * one listed it, as the first connection would.
 */
void sync_remote_adopt_uidvalidities(struct sync_remote *to, const struct sync_remote *from);
/* The connection is open: commands can still be sent (false once it failed or closed). */
bool sync_remote_connected(const struct sync_remote *r);
/* The server is on this machine (a loopback address): it shares our CPUs. */
bool sync_remote_peer_is_local(const struct sync_remote *r);

/*
 * The mailbox's UIDNEXT now (selects it; or STATUS when another mailbox is
 * selected and stays so).  For the upload intent recorded before an APPEND.
 */
int sync_remote_uidnext(struct sync_remote *r, const char *name, uint32_t *uidnext_out,
			struct err *e);

/*
 * APPEND the message read from fd (from offset 0; bare LF converted to
 * CRLF; size_crlf is the size after conversion and is checked before
 * anything is sent: ERR_STATE if the file changed; a file that changes
 * while it is being sent fails the connection, since the server expects
 * exactly size_crlf bytes) with flags (\Recent never) and internaldate (0:
 * none; sent as UTC).  The file streams (never whole in memory).  LITERAL+
 * when offered, else the continuation is awaited.  *uid_out: from APPENDUID; without UIDPLUS,
 * when fp is given, found by fingerprint among UIDs >= the UIDNEXT seen
 * just before the APPEND (sync_remote_find_fp); 0 if not found or unknown.
 */
int sync_remote_append(struct sync_remote *r, const char *name, int fd, uint64_t size_crlf,
		       const struct sync_flags *flags, time_t internaldate,
		       const struct sync_fp *fp, uint32_t *uid_out, struct err *e);
/*
 * Pipelined APPENDs (sync_remote_append()'s upload, without waiting): only
 * when sync_remote_can_pipeline_appends(), i.e. the server offers LITERAL+
 * (each message goes out behind the previous one, no "+" awaited) and
 * UIDPLUS (each answer's APPENDUID names its message).  Submit any number,
 * then wait for each handle in the order submitted.  Every submitted
 * handle must be waited for (the connection reads from fd, and from the
 * handle, until the command completes); fd must stay open until then.
 * Errors as sync_remote_append()'s; a failed submit leaves *ap_out NULL.
 */
struct sync_remote_append;
bool sync_remote_can_pipeline_appends(const struct sync_remote *r);
int sync_remote_append_submit(struct sync_remote *r, const char *name, int fd, uint64_t size_crlf,
			      const struct sync_flags *flags, time_t internaldate,
			      struct sync_remote_append **ap_out, struct err *e);
/* Wait for ap's answer and free ap; *uid_out from APPENDUID (0 if none). */
int sync_remote_append_wait(struct sync_remote *r, struct sync_remote_append *ap,
			    uint32_t *uid_out, struct err *e);

/*
 * MULTIAPPEND (RFC 3502): n messages into one mailbox in one command, which
 * the server stores all or none, and so with one transaction instead of n
 * (measured on Dovecot 2.3: 50 messages into 10 mailboxes take less than
 * half the time as 10 commands of 5 than as 50 APPENDs).  Only when
 * sync_remote_can_multiappend() (MULTIAPPEND, LITERAL+ and UIDPLUS); n == 1
 * needs only sync_remote_can_pipeline_appends().  Submitted and waited for
 * like sync_remote_append_submit(); every fd stays open until the wait.
 * uids_out[0..n): the UIDs of APPENDUID's set in order; all 0 when the set
 * does not name exactly n UIDs.
 */
struct sync_remote_append_msg {
	int fd;
	uint64_t size_crlf;
	const struct sync_flags *flags;
	time_t internaldate;
};
bool sync_remote_can_multiappend(const struct sync_remote *r);
int sync_remote_append_many_submit(struct sync_remote *r, const char *name,
				   const struct sync_remote_append_msg *msgs, size_t n,
				   struct sync_remote_append **ap_out, struct err *e);
int sync_remote_append_many_wait(struct sync_remote *r, struct sync_remote_append *ap,
				 uint32_t *uids_out, struct err *e);

/*
 * Optional: fn(ctx, n) is called as an APPEND's message data is read to
 * be sent, n bytes (CRLF) at a time, for a progress display.  NULL: none.
 */
void sync_remote_set_upload_progress(struct sync_remote *r, void (*fn)(void *ctx, uint64_t n),
				     void *ctx);

/*
 * The lowest UID >= uid_min whose fingerprint is fp (UID FETCH
 * uid_min:* (UID RFC822.SIZE BODY.PEEK[HEADER])), 0 if none.  Also for
 * resolving an interrupted upload's intent.
 */
int sync_remote_find_fp(struct sync_remote *r, const char *name, uint32_t uid_min,
			const struct sync_fp *fp, uint32_t *uid_out, struct err *e);

/*
 * Set flags: UID STORE uids +FLAGS.SILENT (add) and -FLAGS.SILENT
 * (remove), over UID ranges (several commands when the set is long,
 * pipelined).  Either may be NULL or empty.  The engine batches UIDs that
 * share the same (add, remove) pair into one call.
 */
int sync_remote_store(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
		      const struct sync_flags *add, const struct sync_flags *remove,
		      struct err *e);
/* One flag change of sync_remote_store_many(). */
struct sync_remote_store_op {
	const uint32_t *uids;           /* ascending */
	size_t n;
	const struct sync_flags *add;   /* may be NULL or empty */
	const struct sync_flags *remove;
};
/*
 * sync_remote_store() for several flag changes in one mailbox: one SELECT
 * (if not selected), every UID STORE sent before the first answer is read
 * (the server runs them in order); all answered before it returns, the
 * first error kept.
 */
int sync_remote_store_many(struct sync_remote *r, const char *name,
			   const struct sync_remote_store_op *ops, size_t nops, struct err *e);

/*
 * Move the messages (UIDs ascending) from `from` to `to`.  UID MOVE when
 * offered; else UID COPY, UID STORE +FLAGS.SILENT (\Deleted), and UID
 * EXPUNGE with UIDPLUS.  Without UIDPLUS there is no UID EXPUNGE: a bare
 * EXPUNGE, with the \Deleted mark of every other message of `from` (found
 * by UID SEARCH DELETED) taken off for it and put back after it
 * (remote_write.c).  new_uids_out[i] (may be NULL) is the new UID of
 * uids[i] from COPYUID (MOVE/COPY), 0 where unknown.
 */
int sync_remote_move(struct sync_remote *r, const char *from, const uint32_t *uids, size_t n,
		     const char *to, uint32_t *new_uids_out, struct err *e);

/*
 * Remove the messages: STORE +FLAGS.SILENT (\Deleted) then UID EXPUNGE
 * (UIDPLUS); without UIDPLUS as in sync_remote_move() (a bare EXPUNGE, the
 * other messages' \Deleted marks off for it and back after it).
 */
int sync_remote_expunge(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
			struct err *e);

/*
 * Expunges and flag stores in several mailboxes, pipelined: each submit
 * queues the mailbox's SELECT (unless it is the selected mailbox already)
 * and its UID commands without waiting for an answer (sync_remote_send()
 * puts them on the wire); wait for each handle, in the order submitted, to learn
 * that mailbox's outcome: an error spoils that mailbox only, unless it is
 * the connection's (ERR_NET, ERR_TIMEOUT ...: every handle reports it).
 * A failed SELECT leaves no mailbox selected, so the commands behind it
 * fail without touching another mailbox.  Every handle returned must be
 * waited for; a failed submit waits for what it sent, leaves *p_out NULL.
 *
 * Expunge: UID STORE +FLAGS.SILENT (\Deleted) and UID EXPUNGE, so only
 * when sync_remote_can_pipeline_expunges() (UIDPLUS; without it use
 * sync_remote_expunge(), which may leave messages \Deleted).  Store: the
 * UID STOREs of sync_remote_store_many().
 */
struct sync_remote_pending;
bool sync_remote_can_pipeline_expunges(const struct sync_remote *r);
int sync_remote_expunge_submit(struct sync_remote *r, const char *name, const uint32_t *uids,
			       size_t n, struct sync_remote_pending **p_out, struct err *e);
int sync_remote_store_submit(struct sync_remote *r, const char *name,
			     const struct sync_remote_store_op *ops, size_t nops,
			     struct sync_remote_pending **p_out, struct err *e);
/* Wait for p's answers and free p: 0 if every command of it succeeded. */
int sync_remote_pending_wait(struct sync_remote *r, struct sync_remote_pending *p, struct err *e);
/*
 * Send what was submitted now, without waiting for any answer, so that
 * the server works while the caller does something else (a wait sends it
 * anyway).  A failure fails the connection; the next wait reports it.
 */
void sync_remote_send(struct sync_remote *r);

/* CREATE then SUBSCRIBE (an existing mailbox is fine: ALREADYEXISTS, and
 * *existed_out, when not NULL, says so). */
int sync_remote_create(struct sync_remote *r, const char *name, bool *existed_out,
		       struct err *e);
/* UNSUBSCRIBE then DELETE (unselecting it first if needed). */
int sync_remote_delete(struct sync_remote *r, const char *name, struct err *e);
/*
 * RENAME `from` `to` (leaving any selected mailbox first; its inferiors
 * follow on the server), then SUBSCRIBE `to`.  A NO from the server is
 * ERR_SERVER with its text (e.g. `to` exists, `from` does not).
 */
int sync_remote_rename(struct sync_remote *r, const char *from, const char *to, struct err *e);

#endif
