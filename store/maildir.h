/*
 * maildir.h - the local side of a sync: a tree of Maildir folders.
 *
 * Caveats (read first)
 * - Nothing here knows the sync state.  The caller keeps, per folder, the
 *   records last agreed (unique name -> flags + keywords) and the scan marker
 *   of the last run, and passes them back; see maildir_diff() and
 *   struct maildir_scan_marker.
 * - Folder names given to and returned by this module are UTF-8 IMAP-style
 *   names using the separator given at maildir_open() (the server's
 *   hierarchy separator; 0 for a flat namespace).  "INBOX" (any case) is the
 *   configured inbox path.  Names that could leave the root ("..", ".", empty
 *   components, a leading '/', control characters, invalid UTF-8) are refused
 *   with ERR_PROTO and nothing is created.
 * - Names that cannot live on disk as they are get a reversible escape, see
 *   "Folder name escape" below.  On-disk folders whose names are not in the
 *   canonical escaped form (e.g. "%zz", non-UTF-8 bytes) are skipped by
 *   maildir_list() with a warning, never guessed at.
 * - Message file names are opaque bytes (they need not be UTF-8).  Files
 *   whose names start with '.', directories and other non-files in cur/ and
 *   new/ are ignored (counted as strays).
 * - Delivery, renames and removals never fsync a directory on their own:
 *   they are made durable in batches with maildir_folder_sync().  (The one
 *   exception is a dovecot-keywords update, rare, which is fsynced with its
 *   folder before any file can carry the new letter.)
 * - Folders on different file systems: maildir_entry_move() fails with
 *   ERR_IO (EXDEV) and leaves the message where it was; the caller copies.
 *
 * Folder name escape (SPEC 4.5)
 *   Every byte that cannot appear in an on-disk component is written as '%'
 *   followed by two upper-case hex digits, and '%' itself is always written
 *   as "%25", so the mapping is one-to-one and reversible:
 *   - verbatim (Foo/Bar/{cur,new,tmp}): components are joined with '/'; a '/'
 *     inside a component (possible when the separator is not '/') becomes
 *     "%2F"; a component that is exactly "cur", "new" or "tmp" has its first
 *     letter escaped ("%63ur", "%6Eew", "%74mp") at every level, so it never
 *     collides with a Maildir's own subfolders.
 *   - maildir++ (.Foo.Bar): the disk name is '.' followed by the components
 *     joined with '.'; a '.' inside a component becomes "%2E" and a '/'
 *     becomes "%2F".
 *   Decoding accepts exactly the canonical form (upper-case hex, only the
 *   bytes listed above escaped); anything else is not one of ours.
 *
 * Message file names
 *   Delivered files are named  SEC.M<usec>P<pid>Q<counter>R<16 hex>.HOST,S=SIZE
 *   where HOST has '/' ':' ',' and '\' written as \057 \072 \054 \134.  The
 *   unique name of a file is everything before its first ':'; flags follow
 *   in ":2," as letters in ASCII order: D F P R S T, then keyword letters
 *   a-z mapped through the folder's dovecot-keywords file.  Letters this
 *   module does not understand are kept on renames.
 *
 * Ownership
 *   struct maildir owns its strings; a struct maildir_folder borrows its
 *   maildir, which must outlive it.  A snapshot owns all of its memory
 *   (entries, names, keyword table) until maildir_snapshot_release().
 *   Results placed in a caller's arena live as long as that arena.
 */
#ifndef FERRY_MAILDIR_H
#define FERRY_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "err.h"
#include "fsync_pool.h"
#include "fwriter.h"

enum maildir_layout {
	MAILDIR_LAYOUT_VERBATIM = 0,    /* ROOT/Foo/Bar/{cur,new,tmp} */
	MAILDIR_LAYOUT_MAILDIRPP,       /* ROOT/.Foo.Bar/{cur,new,tmp} */
};

/* Standard Maildir flags; the bit order is the letters' ASCII order. */
enum maildir_flags {
	MAILDIR_FLAG_DRAFT = 1u << 0,   /* D  \Draft */
	MAILDIR_FLAG_FLAGGED = 1u << 1, /* F  \Flagged */
	MAILDIR_FLAG_PASSED = 1u << 2,  /* P  $Forwarded */
	MAILDIR_FLAG_REPLIED = 1u << 3, /* R  \Answered */
	MAILDIR_FLAG_SEEN = 1u << 4,    /* S  \Seen */
	MAILDIR_FLAG_TRASHED = 1u << 5, /* T  \Deleted */
};
#define MAILDIR_FLAGS_ALL 0x3fu
#define MAILDIR_KEYWORDS_MAX 26         /* letters a..z */

/* Where a message file lives inside its folder. */
enum maildir_sub {
	MAILDIR_SUB_NEW = 0,
	MAILDIR_SUB_CUR,
};

/* Odd things noticed about an entry's file name (informational). */
enum maildir_entry_odd {
	MAILDIR_ODD_NO_INFO = 1u << 0,          /* in cur/ without ":2," */
	MAILDIR_ODD_OTHER_INFO = 1u << 1,       /* ":1," or another info form; ignored, dropped on rename */
	MAILDIR_ODD_UNKNOWN_LETTERS = 1u << 2,  /* letters kept but not understood */
	MAILDIR_ODD_NOT_UTF8 = 1u << 3,         /* the name is not valid UTF-8 */
	MAILDIR_ODD_DUPLICATE = 1u << 4,        /* another file in the folder has the same unique name */
};

#define MAILDIR_SIZE_UNKNOWN UINT64_MAX

struct maildir_config {
	const char *root;               /* the Maildir root; must exist or be creatable */
	const char *inbox;              /* INBOX's folder path; NULL: ROOT/INBOX */
	enum maildir_layout layout;
	char sep;                       /* IMAP hierarchy separator; 0: none */
	const char *hostname;           /* for unique names; NULL: gethostname() */
};

/*
 * How a batch of queued deliveries (maildir_deliver_queue) becomes durable.
 *
 * MAILDIR_SYNC_FILE: an fdatasync per file, issued from a pool of threads,
 * then an fsync of cur/, new/ and the folder.  Correct on every filesystem
 * that implements fsync.
 * MAILDIR_SYNC_FS: the batch ends with one syncfs() before the renames
 * and one after: the filesystem writes everything dirty and flushes the
 * device cache once per batch instead of once per file.
 * syncfs() reports writeback errors only from Linux 5.8 on, and some
 * filesystems (FUSE before 5.15, network filesystems) do not make it a
 * full flush, so it is chosen only on Linux >= 5.8 for ext2/3/4, XFS,
 * Btrfs, F2FS and tmpfs, and FILE everywhere else.  The environment
 * variable FERRY_SYNC_METHOD=file|fs overrides the choice (diagnosis and
 * tests; "fs" is still refused where syncfs cannot report errors).
 * With MAILDIR_SYNC_FS, queued deliveries' file I/O runs on a writer
 * thread (fwriter.h; doc/maildir.md), unless FERRY_NO_WRITER is set.
 */
enum maildir_sync_method {
	MAILDIR_SYNC_FILE,
	MAILDIR_SYNC_FS,
};

/* An open Maildir tree.  Fields are read-only for callers. */
struct maildir {
	char *root;
	char *inbox;
	enum maildir_layout layout;
	char sep;
	char *host;                     /* escaped for file names */
	long pid;
	unsigned long counter;          /* per-process delivery counter */
	uint64_t seed;                  /* random, for the R part of unique names (0: not drawn yet) */
	struct fsync_pool *fsync_pool;  /* queued deliveries' fdatasync (lazy; fsync_pool.h) */
	enum maildir_sync_method sync_method;   /* how queued deliveries become durable */
	struct fwriter *writer;         /* MAILDIR_SYNC_FS: the deliveries' file I/O (lazy; fwriter.h) */
	bool writer_tried;              /* its thread failed to start: I/O done in place */
};

/* One folder, opened.  The fds are private; name/path are read-only. */
struct maildir_folder {
	struct maildir *md;             /* borrowed */
	char *name;                     /* IMAP name, UTF-8 */
	char *path;                     /* absolute disk path */
	int dir_fd, cur_fd, new_fd, tmp_fd;
	char *keywords[MAILDIR_KEYWORDS_MAX];   /* dovecot-keywords, NULL = free letter */
	/* Keyword letters the message files carry, read once (maildir.c
	 * letters_on_files) when a keyword first needs a new letter. */
	uint32_t file_letters;
	bool file_letters_known;
	struct maildir_pending *pending;        /* queued deliveries (maildir_deliver_queue) */
	size_t npending;                /* the array holds PENDING_CAP (maildir.c) */
	size_t nrenamed;                /* pending[0..nrenamed): renames handed to the writer */
	size_t nsyncing;                /* the nsyncing after those: covered by the syncfs in flight */
	struct fsync_job fs_job;        /* that syncfs (MAILDIR_SYNC_FS, maildir_folder_advance) */
	bool fs_job_queued;
	uint64_t gen;                   /* generation of the deliveries queued now */
	uint64_t gen_durable;           /* deliveries of a generation below this are durable */
	uint64_t gen_renamed;           /* ... below this are renamed (durable after fs_job) */
};

/*
 * What a scan records so that the next run can tell whether cur/, new/ and
 * dovecot-keywords changed without reading them.  Plain fixed-width fields:
 * the caller may store the struct as bytes (check `version`).
 *
 * Rule: directory times come from a clock with a coarse tick (1 s or 2 s on
 * some file systems, a jiffy on Linux), so a change made in the same tick
 * as the recorded time could leave it unchanged.  A marker is therefore
 * trusted only when the scan started at least MAILDIR_MARKER_TICK_NS after
 * the newest recorded mtime/ctime; otherwise the next check says "changed"
 * and the folder is scanned again.  ctime is compared too, so a tool that
 * restores directory mtimes (rsync -t, touch -d) cannot hide a change.
 *
 * An untrusted marker still carries the digest of what its scan read: the
 * number of message files in cur/ and new/, and two order-free sums of a
 * 64-bit hash of each one's subfolder and name and of the keyword table.
 * maildir_confirm_unchanged() compares a fresh read of the names (nothing
 * kept, no record needed) against it.
 */
#define MAILDIR_MARKER_VERSION 2u
#define MAILDIR_MARKER_TICK_NS 2000000000LL
struct maildir_stamp {
	uint64_t dev, ino;
	int64_t mtime_ns, ctime_ns;
};
struct maildir_scan_marker {
	uint32_t version;               /* MAILDIR_MARKER_VERSION; 0: no marker */
	uint32_t trusted;               /* 1 if the rule above holds */
	int64_t taken_ns;               /* CLOCK_REALTIME when the scan started */
	struct maildir_stamp cur, new_, keywords;     /* keywords: zero if absent */
	uint64_t files;                 /* message files read in cur/ and new/ */
	uint64_t digest_sum, digest_xor;        /* of the files' names and the keywords */
};

/*
 * One message file found by a scan.  Strings live in the snapshot's arena.
 * `uniq` is the part of `name` before the first ':'.
 */
struct maildir_entry {
	const char *uniq;
	const char *name;
	uint64_t key;                   /* maildir_uniq_key(uniq): the sort key */
	uint64_t size;                  /* from ",S=" in the name, else MAILDIR_SIZE_UNKNOWN */
	uint32_t keywords;              /* bit i: letter 'a'+i present and named in the table */
	uint8_t flags;                  /* enum maildir_flags */
	uint8_t sub;                    /* enum maildir_sub */
	uint8_t odd;                    /* enum maildir_entry_odd */
};

/*
 * The contents of one folder at one instant, in snapshot order: by
 * maildir_uniq_key(uniq), then by uniq's bytes (strcmp), the cur/ copy of
 * a duplicate first.  (A hash order sorts 100,000 names several times
 * faster than strcmp on names that share long prefixes; the order is
 * stable across runs and machines.)
 */
struct maildir_snapshot {
	struct arena arena;
	struct maildir_entry *entries;
	size_t count;
	size_t strays;                  /* ignored non-message entries */
	const char *keywords[MAILDIR_KEYWORDS_MAX];     /* the table at scan time */
	struct maildir_scan_marker marker;
};

/* Open a tree; creates the root directory (not INBOX) if missing. */
int maildir_open(struct maildir *md, const struct maildir_config *cfg, struct err *e);
void maildir_release(struct maildir *md);

/*
 * Names.  maildir_name_to_path(): the absolute folder path for an IMAP
 * name, xmalloc'd into *path_out; -1/ERR_PROTO for a name that would escape
 * or cannot be mapped.  The pure functions below map one relative disk name
 * (verbatim: "A/B", maildir++: ".A.B") and an IMAP name both ways, appending
 * to `out`; disk_to_name returns 1 (not an error) if `rel` is not in the
 * canonical form and so is not a folder of ours.
 */
int maildir_name_to_path(const struct maildir *md, const char *name, char **path_out,
			 struct err *e);
int maildir_name_to_disk(enum maildir_layout layout, char sep, const char *name,
			 struct buf *out, struct err *e);
int maildir_disk_to_name(enum maildir_layout layout, char sep, const char *rel,
			 struct buf *out, struct err *e);

struct maildir_folder_info {
	const char *name;               /* IMAP name */
	const char *path;               /* absolute */
};
/*
 * List every folder (a directory with cur/ in it), INBOX first if it
 * exists, the rest sorted by name.  Symbolic links are not followed while
 * walking.  Results live in `a`.
 */
int maildir_list(struct maildir *md, struct arena *a, struct maildir_folder_info **list_out,
		 size_t *count_out, struct err *e);

/*
 * Open a folder by IMAP name.  With `create`, missing directories are made
 * (and, for maildir++, the "maildirfolder" marker file); without it a
 * missing folder returns 1 (not found).  Loads dovecot-keywords.
 */
int maildir_folder_open(struct maildir *md, const char *name, bool create,
			struct maildir_folder *f_out, struct err *e);
void maildir_folder_close(struct maildir_folder *f);
/*
 * The durability point of a batch: completes the queued deliveries
 * (maildir_deliver_queue: each file fdatasync'ed, then renamed into cur/ or
 * new/), then fsyncs cur/, new/ and the folder.  On failure the deliveries
 * not yet renamed are aborted (their tmp/ files removed) and -1 returned;
 * those already renamed stay (unrecorded files, found again by fingerprint).
 */
int maildir_folder_sync(struct maildir_folder *f, struct err *e);
/*
 * Rename folder `from` to `to` (IMAP names) with one rename(2) of its
 * directory: its files keep their names and inodes, and in the verbatim
 * layout its child folders move with it (maildir++ children are folders
 * of their own and stay).  Missing parent directories of `to` are made;
 * the parents of both are fsynced before it returns.  Open folders of
 * `from` keep working through their fds but their path is stale: reopen.
 * Returns 0 renamed, 1 when `from` does not exist (nothing done), or -1:
 * ERR_PROTO for a name that cannot be mapped or for INBOX (never renamed),
 * ERR_IO with EEXIST when `to` exists (nothing done), or another errno.
 */
int maildir_folder_rename(struct maildir *md, const char *from, const char *to, struct err *e);
/* Remove files in tmp/ older than `age` seconds (Maildir: 36 hours), and
 * at once those a ferry process that has died left there (its own naming,
 * this host, a pid that no longer exists). */
int maildir_folder_clean_tmp(struct maildir_folder *f, time_t age, size_t *removed_out,
			     struct err *e);

/*
 * Keywords.  maildir_keywords_reload() re-reads dovecot-keywords.
 * maildir_keywords_assign() maps names to letters, giving each unknown
 * name the next free letter and rewriting the file atomically (tmp, fsync,
 * rename) when it added one.  Names that find no letter (more than 26) are
 * not stored on disk: stored_out[i] (if given, n entries) says which were
 * stored, *mask_out has the letters of the stored ones.  Names are
 * compared case-sensitively, as Dovecot does; a name with a space or a
 * control character cannot be stored (stored_out false).
 */
int maildir_keywords_reload(struct maildir_folder *f, struct err *e);
int maildir_keywords_assign(struct maildir_folder *f, const char *const *names, size_t n,
			    uint32_t *mask_out, bool *stored_out, struct err *e);

/*
 * Change detection.
 * maildir_check_unchanged(): *unchanged_out is true only if `prev` is a
 * trusted marker and cur/, new/ and dovecot-keywords are exactly as
 * recorded: a few stat calls, no readdir.
 * maildir_scan(): one readdir of new/ and one of cur/, no per-file stat or
 * open (except for entries whose type the file system does not report).
 * Reloads the folder's keyword table.  The snapshot is the caller's to
 * release.
 */
int maildir_check_unchanged(struct maildir_folder *f, const struct maildir_scan_marker *prev,
			    bool *unchanged_out, struct err *e);
/*
 * maildir_confirm_unchanged(): for a marker maildir_check_unchanged()
 * cannot vouch for because it was taken within the tick of the folder's
 * last change (typically this program's own last renames).  If cur/, new/
 * and dovecot-keywords still carry the marker's stamps, reads the names in
 * cur/ and new/ once (nothing kept) and sets *unchanged_out when they and
 * the keyword table are exactly what the marker's scan read.  *now_out is
 * then the marker of this read, to be stored in place of `prev` (trusted
 * once the folder's newest change is a tick old).  Returns -1 on an I/O
 * error (e filled, scope mailbox).
 */
int maildir_confirm_unchanged(struct maildir_folder *f, const struct maildir_scan_marker *prev,
			      bool *unchanged_out, struct maildir_scan_marker *now_out,
			      struct err *e);
int maildir_scan(struct maildir_folder *f, struct maildir_snapshot *snap_out, struct err *e);
void maildir_snapshot_release(struct maildir_snapshot *snap);
/* The snapshot order's key of a unique name: 64-bit FNV-1a of its bytes. */
uint64_t maildir_uniq_key(const char *uniq);
/* The entry with this unique name (the first of duplicates), or NULL;
 * binary search. */
const struct maildir_entry *maildir_snapshot_find(const struct maildir_snapshot *snap,
						  const char *uniq);

/*
 * The pure diff.  `known` is what the state says was in this folder at the
 * last sync (in any order; uniq strings are borrowed for the call).
 *
 * Contract:
 * - NEW: an entry with no known record (entry set, known_index unused).
 *   A second file with a known uniq (a duplicate) is reported NEW too,
 *   with MAILDIR_ODD_DUPLICATE set: the caller decides (e.g. fingerprint).
 * - GONE: a known record with no file (entry NULL).
 * - FLAGS: both exist and the flags or keywords differ.  Keywords are
 *   compared only where the folder's table has a letter for them: a known
 *   keyword without a letter (beyond 26) lives in the state only and is
 *   never reported as removed.
 * - Moves between folders are found by the caller: a GONE uniq here that is
 *   NEW in another folder's snapshot (maildir_snapshot_find), or, failing
 *   that, a NEW file whose fingerprint matches a GONE record's.
 * Changes come out in snapshot order; the array lives in `a`.
 */
struct maildir_known {
	const char *uniq;
	uint32_t flags;                 /* enum maildir_flags */
	const char *const *keywords;    /* names */
	size_t keyword_count;
};
enum maildir_change_kind {
	MAILDIR_CHANGE_NEW = 0,
	MAILDIR_CHANGE_GONE,
	MAILDIR_CHANGE_FLAGS,
};
struct maildir_change {
	enum maildir_change_kind kind;
	const struct maildir_entry *entry;      /* NEW, FLAGS */
	size_t known_index;                     /* GONE, FLAGS: index into `known` */
};
void maildir_diff(const struct maildir_snapshot *snap, const struct maildir_known *known,
		  size_t known_count, struct arena *a, struct maildir_change **changes_out,
		  size_t *count_out);
/* Keyword names of an entry (from the snapshot table), into `a`. */
size_t maildir_entry_keyword_names(const struct maildir_snapshot *snap,
				   const struct maildir_entry *ent, struct arena *a,
				   const char ***names_out);

/*
 * Delivery, streamed:  begin -> write* -> commit (or abort).
 * begin creates a file in tmp/ under a fresh unique name (with the writer
 * thread, md->writer, the thread creates it at the first flush of the
 * buffer, and writes it; I/O errors then surface at the durability point:
 * see maildir_deliver_queue); write appends (buffered); commit flushes, sets the mtime to `internaldate` (if not 0),
 * fsyncs the file and renames it into cur/ with ":2,<flags>" (or into new/
 * when `to_new` and there are no flags or keywords).  commit does NOT fsync
 * the directory: call maildir_folder_sync() once per batch, before the
 * state records the batch.  A crash at any point leaves at most a file in
 * tmp/, never a partial file in cur/ or new/.  After commit or abort the
 * delivery is released; `name`/`uniq` are valid until then (commit copies
 * the final name into *name_out, xmalloc'd, if not NULL).
 */
struct maildir_delivery {
	struct maildir_folder *f;       /* borrowed */
	int fd;                         /* -1 when the writer does the file (wf) */
	struct fwriter_file *wf;        /* MAILDIR_SYNC_FS: the file, created by md->writer */
	char *uniq;                     /* without ",S=" until commit */
	char *buf;
	size_t buf_len;
	uint64_t size;
};
int maildir_deliver_begin(struct maildir_folder *f, struct maildir_delivery *d, struct err *e);
int maildir_deliver_write(struct maildir_delivery *d, const void *data, size_t n,
			  struct err *e);
/*
 * Writing in place: room for up to n (<= MAILDIR_DELIVERY_ROOM) bytes at
 * the end of the delivery's buffer, flushed to the file first when full
 * (NULL and `e` set when that write fails); the caller fills k <= n of
 * them and says so with maildir_deliver_wrote(d, k) before any other call
 * on the delivery.
 */
#define MAILDIR_DELIVERY_ROOM 32768
char *maildir_deliver_room(struct maildir_delivery *d, size_t n, struct err *e);
void maildir_deliver_wrote(struct maildir_delivery *d, size_t k);
int maildir_deliver_commit(struct maildir_delivery *d, uint32_t flags, uint32_t keywords,
			   time_t internaldate, bool to_new, char **name_out, struct err *e);
void maildir_deliver_abort(struct maildir_delivery *d);
/*
 * Batched durability: like commit (same arguments, same final name in
 * *name_out), but the file is only flushed and dated and stays in tmp/,
 * queued on the folder, while the caller goes on.  How it becomes durable
 * depends on md->sync_method (enum maildir_sync_method): its fdatasync is
 * handed to a pool of threads (fsync_pool.h), or it is closed at once and
 * a syncfs covers it.  maildir_folder_sync() makes every queued file
 * durable, renames them into place and syncs the directories: the batch's
 * durability point, as for commit; maildir_folder_advance() is the
 * checkpoint that does not wait for the disk.
 * Until then the final name does not exist yet: record nothing for it.
 * With the writer thread the file's I/O is the thread's (fwriter.h): its
 * failure fails the sync or advance that would rename the file or report
 * it durable (ERR_IO naming what failed).
 * At most MAILDIR_PENDING_MAX files wait unsynced; the next queue call
 * first runs maildir_folder_sync().  The delivery is released either way;
 * maildir_folder_close() aborts what is still queued.
 */
#define MAILDIR_PENDING_MAX 256u
int maildir_deliver_queue(struct maildir_delivery *d, uint32_t flags, uint32_t keywords,
			  time_t internaldate, bool to_new, char **name_out, struct err *e);

/*
 * A checkpoint that does not wait for the disk (the syncfs method; with
 * MAILDIR_SYNC_FILE it is maildir_folder_sync()).  Each queued delivery
 * belongs to the generation maildir_folder_generation() returned just
 * before it was queued.  An advance waits for the syncfs the previous
 * advance started, renames the files it covered into place, and starts
 * one syncfs, in the background, for the files queued since and for those
 * renames; then the generation moves on.  *durable_out: every delivery of
 * a generation below it is durable in cur/ or new/, directory entry
 * included (record it now); later ones become so at later advances, or
 * all at maildir_folder_sync().  A failed sync aborts what is queued (the
 * files renamed but not yet durable stay in place, unrecorded).
 */
uint64_t maildir_folder_generation(const struct maildir_folder *f);
int maildir_folder_advance(struct maildir_folder *f, uint64_t *durable_out, struct err *e);

/*
 * Operations on a scanned entry.  Each returns 1 (not an error) if the file
 * is gone (a mail client moved or removed it since the scan), 0 on success.
 *
 * set_flags: rename to uniq + ":2," + letters (flags, keyword letters of
 *   `keywords`, and the unknown letters the name already had), into cur/.
 * remove: unlink.
 * move: rename into folder `to` under the same unique name (cur/ or new/
 *   as it was); its keywords keep their names: their letters become `to`'s
 *   (maildir_keywords_assign, which may add them to `to`'s dovecot-keywords),
 *   the other letters stay; fails with ERR_IO if the folders are on
 *   different file systems.
 * open: an fd to read the message (the caller closes it).
 * *name_out, if not NULL, gets the new file name (xmalloc'd).
 */
int maildir_entry_set_flags(struct maildir_folder *f, const struct maildir_entry *ent,
			    uint32_t flags, uint32_t keywords, char **name_out, struct err *e);
int maildir_entry_remove(struct maildir_folder *f, const struct maildir_entry *ent,
			 struct err *e);
int maildir_entry_move(struct maildir_folder *from, const struct maildir_entry *ent,
		       struct maildir_folder *to, struct err *e);
int maildir_entry_open(struct maildir_folder *f, const struct maildir_entry *ent,
		       int *fd_out, struct err *e);

/*
 * Info suffix helpers (pure).  maildir_info_parse() reads the letters after
 * ":2," of `name` against a keyword table; maildir_info_format() writes
 * uniq + ":2," + sorted letters into `out`, keeping `extra` letters.
 */
struct maildir_info {
	uint32_t flags;
	uint32_t keywords;
	char extra[64];                 /* letters kept as they are, sorted, NUL-terminated */
	uint8_t odd;                    /* enum maildir_entry_odd */
	size_t uniq_len;
};
void maildir_info_parse(const char *name, const char *const keywords[MAILDIR_KEYWORDS_MAX],
			struct maildir_info *info_out);
int maildir_info_format(const char *uniq, uint32_t flags, uint32_t keywords,
			const char *extra, struct buf *out, struct err *e);
/* ",S=" value of a file name, or MAILDIR_SIZE_UNKNOWN. */
uint64_t maildir_name_size(const char *name);

#endif
