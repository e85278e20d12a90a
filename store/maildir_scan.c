/*
 * maildir_scan.c - reading a folder into a snapshot, the "unchanged since
 * last time" marker, and the pure diff against the last agreed records.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"
#include "maildir_int.h"
#include "xalloc.h"

#define KEYWORDS_FILE "dovecot-keywords"

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static void stamp_from(const struct stat *st, struct maildir_stamp *s)
{
	s->dev = (uint64_t)st->st_dev;
	s->ino = (uint64_t)st->st_ino;
	s->mtime_ns = ts_ns(&st->st_mtim);
	s->ctime_ns = ts_ns(&st->st_ctim);
}

/* Stamp of `name` under the folder; a missing file gives a zero stamp
 * when `optional`. */
static int stamp_at(struct maildir_folder *f, const char *name, bool optional,
		    struct maildir_stamp *s, struct err *e)
{
	struct stat st;
	char q[MAILDIR_QUOTE_MAX];

	memset(s, 0, sizeof(*s));
	if (fstatat(f->dir_fd, name, &st, 0) < 0) {
		if (optional && errno == ENOENT)
			return 0;
		err_sys(e, ERR_IO, errno, "cannot stat \"%s/%s\"", maildir_quote(f->path, q), name);
		e->scope = ERR_SCOPE_MAILBOX;
		return -1;
	}
	stamp_from(&st, s);
	return 0;
}

static bool stamp_eq(const struct maildir_stamp *a, const struct maildir_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

static int64_t stamp_newest(const struct maildir_stamp *s, int64_t t)
{
	if (s->mtime_ns > t)
		t = s->mtime_ns;
	if (s->ctime_ns > t)
		t = s->ctime_ns;
	return t;
}

static void marker_finish(struct maildir_scan_marker *m)
{
	int64_t newest = stamp_newest(&m->cur, INT64_MIN);

	newest = stamp_newest(&m->new_, newest);
	newest = stamp_newest(&m->keywords, newest);
	m->version = MAILDIR_MARKER_VERSION;
	m->trusted = m->taken_ns - newest >= MAILDIR_MARKER_TICK_NS;
}

/* 64-bit FNV-1a over `len` bytes, from `h`. */
static uint64_t fnv_add(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++) {
		h ^= c[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* splitmix64's finaliser: spreads FNV's weak high bits. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Adds one item (a tag byte, a number, a string) to the marker's digest. */
static void digest_add(struct maildir_scan_marker *m, char tag, uint32_t n, const char *s)
{
	uint64_t h = fnv_add(0xcbf29ce484222325ull, &tag, 1);

	h = fnv_add(h, &n, sizeof(n));
	h = fnv_add(h, s, strlen(s));
	m->digest_sum += mix64(h);
	m->digest_xor ^= mix64(h ^ 0x9e3779b97f4a7c15ull);
}

static void digest_keywords(struct maildir_scan_marker *m, char *const *keywords)
{
	for (uint32_t i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (keywords[i] != NULL)
			digest_add(m, 'k', i, keywords[i]);
}

/* Whether cur/, new/ and dovecot-keywords carry the marker's stamps now. */
static int stamps_match(struct maildir_folder *f, const struct maildir_scan_marker *prev,
			bool *match_out, struct err *e)
{
	struct maildir_stamp cur, new_, kw;

	*match_out = false;
	if (stamp_at(f, "cur", false, &cur, e) < 0 || stamp_at(f, "new", false, &new_, e) < 0 ||
	    stamp_at(f, KEYWORDS_FILE, true, &kw, e) < 0)
		return -1;
	*match_out = stamp_eq(&cur, &prev->cur) && stamp_eq(&new_, &prev->new_) &&
		     stamp_eq(&kw, &prev->keywords);
	return 0;
}

int maildir_check_unchanged(struct maildir_folder *f, const struct maildir_scan_marker *prev,
			    bool *unchanged_out, struct err *e)
{
	*unchanged_out = false;
	if (prev == NULL || prev->version != MAILDIR_MARKER_VERSION || !prev->trusted)
		return 0;
	return stamps_match(f, prev, unchanged_out, e);
}

uint64_t maildir_uniq_key(const char *uniq)
{
	uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a, 64 bit */

	for (; *uniq != '\0'; uniq++) {
		h ^= (unsigned char)*uniq;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The snapshot order: key, then the bytes (keys may collide). */
static int order_cmp(uint64_t ka, const char *a, uint64_t kb, const char *b)
{
	if (ka != kb)
		return ka < kb ? -1 : 1;
	return strcmp(a, b);
}

struct scan_vec {
	struct maildir_entry *items;
	size_t count, cap;
};

enum entry_kind { ENTRY_MESSAGE, ENTRY_LINK, ENTRY_OTHER };

/*
 * Only regular files are messages.  A symbolic link is not followed: it
 * could bring in any file the user can read (and upload it to the server).
 */
static enum entry_kind entry_kind(int dirfd, const struct dirent *d)
{
	struct stat st;

	if (d->d_type == DT_REG)
		return ENTRY_MESSAGE;
	if (d->d_type == DT_LNK)
		return ENTRY_LINK;
	if (d->d_type != DT_UNKNOWN)
		return ENTRY_OTHER;
	/* Only here do we pay for a stat: the file system did not say. */
	if (fstatat(dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return ENTRY_OTHER;
	return S_ISREG(st.st_mode) ? ENTRY_MESSAGE : S_ISLNK(st.st_mode) ? ENTRY_LINK : ENTRY_OTHER;
}

static void scan_add(struct maildir_snapshot *snap, struct scan_vec *v, const char *name,
		     enum maildir_sub sub)
{
	struct maildir_info info;
	struct maildir_entry *ent;
	size_t len = strlen(name);
	char *mem;

	maildir_info_parse(name, snap->keywords, &info);
	if (info.uniq_len == 0) {
		snap->strays++;
		return;
	}
	v->items = xgrow(v->items, &v->cap, v->count + 1, sizeof(*v->items));
	ent = &v->items[v->count++];
	mem = arena_alloc(&snap->arena, info.uniq_len + 1 + len + 1);
	memcpy(mem, name, info.uniq_len);
	mem[info.uniq_len] = '\0';
	memcpy(mem + info.uniq_len + 1, name, len + 1);
	ent->uniq = mem;
	ent->name = mem + info.uniq_len + 1;
	ent->key = maildir_uniq_key(mem);
	ent->size = maildir_name_size(name);
	ent->flags = (uint8_t)info.flags;
	ent->keywords = info.keywords;
	ent->sub = (uint8_t)sub;
	ent->odd = info.odd;
	if (sub == MAILDIR_SUB_NEW)
		ent->odd &= (uint8_t)~MAILDIR_ODD_NO_INFO;
	if (!maildir_utf8_valid(name, len))
		ent->odd |= MAILDIR_ODD_NOT_UTF8;
}

/* Open `sub` afresh, stamp it, and read it once: every message file goes
 * into the marker's digest and, unless `snap` is NULL, into `v`. */
static int scan_sub(struct maildir_folder *f, const char *subname, enum maildir_sub sub,
		    struct maildir_snapshot *snap, struct scan_vec *v,
		    struct maildir_scan_marker *mk, struct maildir_stamp *stamp, struct err *e)
{
	char q[MAILDIR_QUOTE_MAX];
	int fd = openat(f->dir_fd, subname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *d;
	struct stat st;
	size_t links = 0;
	DIR *dir;

	if (fd < 0 || fstat(fd, &st) < 0 || (dir = fdopendir(fd)) == NULL) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		err_sys(e, ERR_IO, err, "cannot read \"%s/%s\"", maildir_quote(f->path, q), subname);
		e->scope = ERR_SCOPE_MAILBOX;
		return -1;
	}
	stamp_from(&st, stamp);
	errno = 0;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;       /* ".", "..", and hidden files by convention */
		enum entry_kind kind = entry_kind(fd, d);

		if (kind != ENTRY_MESSAGE) {
			links += kind == ENTRY_LINK;
			if (snap != NULL)
				snap->strays++;
		} else {
			mk->files++;
			digest_add(mk, 's', (uint32_t)sub, d->d_name);
			if (snap != NULL)
				scan_add(snap, v, d->d_name, sub);
		}
		errno = 0;
	}
	if (errno != 0) {
		int err = errno;

		closedir(dir);
		err_sys(e, ERR_IO, err, "cannot read \"%s/%s\"", maildir_quote(f->path, q), subname);
		e->scope = ERR_SCOPE_MAILBOX;
		return -1;
	}
	closedir(dir);
	if (links > 0 && snap != NULL)
		log_warn("maildir: \"%s/%s\": %zu symbolic link%s left alone: ferry syncs only "
			 "regular files", maildir_quote(f->path, q), subname, links, links == 1 ? "" : "s");
	return 0;
}

static int entry_cmp(const void *x, const void *y)
{
	const struct maildir_entry *a = x, *b = y;
	int c = order_cmp(a->key, a->uniq, b->key, b->uniq);

	if (c != 0)
		return c;
	if (a->sub != b->sub)
		return a->sub == MAILDIR_SUB_CUR ? -1 : 1;      /* cur/ copy first */
	return strcmp(a->name, b->name);
}

int maildir_scan(struct maildir_folder *f, struct maildir_snapshot *snap, struct err *e)
{
	struct scan_vec v = { NULL, 0, 0 };
	struct timespec now;

	memset(snap, 0, sizeof(*snap));
	arena_init(&snap->arena, 256 * 1024);
	clock_gettime(CLOCK_REALTIME, &now);
	snap->marker.taken_ns = ts_ns(&now);
	if (stamp_at(f, KEYWORDS_FILE, true, &snap->marker.keywords, e) < 0 ||
	    maildir_keywords_reload(f, e) < 0)
		goto fail;
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		snap->keywords[i] = f->keywords[i] ? arena_strdup(&snap->arena, f->keywords[i]) : NULL;
	digest_keywords(&snap->marker, f->keywords);
	if (scan_sub(f, "new", MAILDIR_SUB_NEW, snap, &v, &snap->marker, &snap->marker.new_, e) < 0 ||
	    scan_sub(f, "cur", MAILDIR_SUB_CUR, snap, &v, &snap->marker, &snap->marker.cur, e) < 0)
		goto fail;
	marker_finish(&snap->marker);
	if (v.count > 1)
		qsort(v.items, v.count, sizeof(*v.items), entry_cmp);
	for (size_t i = 1; i < v.count; i++)
		if (v.items[i].key == v.items[i - 1].key && strcmp(v.items[i].uniq, v.items[i - 1].uniq) == 0)
			v.items[i].odd |= MAILDIR_ODD_DUPLICATE;
	snap->entries = v.items;
	snap->count = v.count;
	return 0;
fail:
	free(v.items);
	arena_release(&snap->arena);
	memset(snap, 0, sizeof(*snap));
	return -1;
}

int maildir_confirm_unchanged(struct maildir_folder *f, const struct maildir_scan_marker *prev,
			      bool *unchanged_out, struct maildir_scan_marker *now_out,
			      struct err *e)
{
	struct maildir_scan_marker now = { 0 };
	struct timespec ts;
	bool same = false;

	*unchanged_out = false;
	if (prev == NULL || prev->version != MAILDIR_MARKER_VERSION)
		return 0;
	/* Three stats first: a folder that visibly changed is not read. */
	if (stamps_match(f, prev, &same, e) < 0)
		return -1;
	if (!same)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	now.taken_ns = ts_ns(&ts);
	if (stamp_at(f, KEYWORDS_FILE, true, &now.keywords, e) < 0 ||
	    maildir_keywords_reload(f, e) < 0)
		return -1;
	digest_keywords(&now, f->keywords);
	if (scan_sub(f, "new", MAILDIR_SUB_NEW, NULL, NULL, &now, &now.new_, e) < 0 ||
	    scan_sub(f, "cur", MAILDIR_SUB_CUR, NULL, NULL, &now, &now.cur, e) < 0)
		return -1;
	marker_finish(&now);
	if (!stamp_eq(&now.cur, &prev->cur) || !stamp_eq(&now.new_, &prev->new_) ||
	    !stamp_eq(&now.keywords, &prev->keywords) || now.files != prev->files ||
	    now.digest_sum != prev->digest_sum || now.digest_xor != prev->digest_xor)
		return 0;
	*unchanged_out = true;
	*now_out = now;
	return 0;
}

void maildir_snapshot_release(struct maildir_snapshot *snap)
{
	free(snap->entries);
	arena_release(&snap->arena);
	memset(snap, 0, sizeof(*snap));
}

const struct maildir_entry *maildir_snapshot_find(const struct maildir_snapshot *snap,
						  const char *uniq)
{
	uint64_t key = maildir_uniq_key(uniq);
	size_t lo = 0, hi = snap->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct maildir_entry *ent = &snap->entries[mid];

		if (order_cmp(ent->key, ent->uniq, key, uniq) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < snap->count && strcmp(snap->entries[lo].uniq, uniq) == 0)
		return &snap->entries[lo];
	return NULL;
}

struct known_ref {
	uint64_t key;
	const char *uniq;
	size_t index;
};

static int known_cmp(const void *x, const void *y)
{
	const struct known_ref *a = x, *b = y;

	return order_cmp(a->key, a->uniq, b->key, b->uniq);
}

/* The letters the snapshot's table gives to a known record's keywords. */
static uint32_t known_mask(const struct maildir_snapshot *snap, const struct maildir_known *k)
{
	uint32_t mask = 0;

	for (size_t i = 0; i < k->keyword_count; i++)
		for (int l = 0; l < MAILDIR_KEYWORDS_MAX; l++)
			if (snap->keywords[l] != NULL && strcmp(snap->keywords[l], k->keywords[i]) == 0) {
				mask |= 1u << l;
				break;
			}
	return mask;
}

struct change_vec {
	struct maildir_change *items;
	size_t count, cap;
};

static void change_add(struct change_vec *v, enum maildir_change_kind kind,
		       const struct maildir_entry *ent, size_t known_index)
{
	v->items = xgrow(v->items, &v->cap, v->count + 1, sizeof(*v->items));
	v->items[v->count].kind = kind;
	v->items[v->count].entry = ent;
	v->items[v->count].known_index = known_index;
	v->count++;
}

void maildir_diff(const struct maildir_snapshot *snap, const struct maildir_known *known,
		  size_t known_count, struct arena *a, struct maildir_change **changes_out,
		  size_t *count_out)
{
	struct known_ref *order = xmalloc((known_count ? known_count : 1) * sizeof(*order));
	struct change_vec v = { NULL, 0, 0 };
	size_t i = 0, j = 0;

	for (size_t k = 0; k < known_count; k++) {
		order[k].key = maildir_uniq_key(known[k].uniq);
		order[k].uniq = known[k].uniq;
		order[k].index = k;
	}
	if (known_count > 1)
		qsort(order, known_count, sizeof(*order), known_cmp);
	/* Both sides in snapshot order: one merge walk. */
	while (i < snap->count || j < known_count) {
		const struct maildir_entry *ent = i < snap->count ? &snap->entries[i] : NULL;
		const struct known_ref *r = j < known_count ? &order[j] : NULL;
		int c = ent == NULL ? 1 : r == NULL ? -1 : order_cmp(ent->key, ent->uniq, r->key, r->uniq);

		if (c < 0) {
			change_add(&v, MAILDIR_CHANGE_NEW, ent, 0);
			i++;
		} else if (c > 0) {
			change_add(&v, MAILDIR_CHANGE_GONE, NULL, r->index);
			j++;
		} else {
			const struct maildir_known *k = &known[r->index];

			if (ent->flags != (k->flags & MAILDIR_FLAGS_ALL) ||
			    ent->keywords != known_mask(snap, k))
				change_add(&v, MAILDIR_CHANGE_FLAGS, ent, r->index);
			i++;
			j++;
		}
	}
	*changes_out = ARENA_NEW_ARRAY(a, struct maildir_change, v.count ? v.count : 1);
	if (v.count)
		memcpy(*changes_out, v.items, v.count * sizeof(*v.items));
	*count_out = v.count;
	free(v.items);
	free(order);
}

size_t maildir_entry_keyword_names(const struct maildir_snapshot *snap,
				   const struct maildir_entry *ent, struct arena *a,
				   const char ***names_out)
{
	const char **names = ARENA_NEW_ARRAY(a, const char *, MAILDIR_KEYWORDS_MAX);
	size_t n = 0;

	for (int l = 0; l < MAILDIR_KEYWORDS_MAX; l++)
		if ((ent->keywords & (1u << l)) && snap->keywords[l] != NULL)
			names[n++] = snap->keywords[l];
	*names_out = names;
	return n;
}
