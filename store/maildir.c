/*
 * maildir.c - opening a Maildir tree, listing and creating folders,
 * dovecot-keywords, delivery, and per-message operations.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "fsync_pool.h"
#include "log.h"
#include "maildir.h"
#include "maildir_int.h"
#include "xalloc.h"

#define DELIVERY_BUF 65536
_Static_assert(MAILDIR_DELIVERY_ROOM <= DELIVERY_BUF, "a delivery's room fits its buffer");
#define KEYWORDS_FILE "dovecot-keywords"
#define KEYWORDS_FILE_MAX 65536
#define KEYWORD_NAME_MAX 255
#define LIST_DEPTH_MAX 64
#define LIST_NAME_MAX (4096 * 3 + 16)

static int io_err(struct err *e, int errnum, const char *what, const char *path)
{
	char q[MAILDIR_QUOTE_MAX];

	err_sys(e, ERR_IO, errnum, "cannot %s \"%s\"", what, maildir_quote(path, q));
	e->scope = ERR_SCOPE_MAILBOX;
	return -1;
}

/* mkdir -p; existing directories are fine. */
static int mkdir_p(const char *path, struct err *e)
{
	char *p = xstrdup(path), *s;
	int rc = 0;

	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char save = *s;

		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = io_err(e, errno, "create folder", p);
			break;
		}
		*s = save;
		if (save == '\0')
			break;
	}
	free(p);
	return rc;
}

static char *strip_slashes(const char *s)
{
	char *p = xstrdup(s);
	size_t n = strlen(p);

	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	return p;
}

/* Linux 5.8 or later: syncfs() reports writeback errors (errseq on the superblock). */
static bool syncfs_reports_errors(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (uname(&u) < 0 || strcmp(u.sysname, "Linux") != 0 ||
	    sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return false;
	return major > 5 || (major == 5 && minor >= 8);
}

/* Filesystems whose syncfs() writes every dirty inode and flushes the device. */
static bool fs_syncs_whole(long type)
{
	switch (type) {
	case 0xEF53:            /* ext2, ext3, ext4 */
	case 0x58465342:        /* XFS */
	case 0x9123683E:        /* Btrfs */
	case 0xF2F52010:        /* F2FS */
	case 0x01021994:        /* tmpfs */
		return true;
	default:
		return false;
	}
}

/* See enum maildir_sync_method. */
static enum maildir_sync_method choose_sync_method(const char *root)
{
	const char *env = getenv("FERRY_SYNC_METHOD");
	struct statfs sfs;

	if (!syncfs_reports_errors())
		return MAILDIR_SYNC_FILE;
	if (env != NULL && strcmp(env, "file") == 0)
		return MAILDIR_SYNC_FILE;
	if (env != NULL && strcmp(env, "fs") == 0)
		return MAILDIR_SYNC_FS;
	if (statfs(root, &sfs) < 0)
		return MAILDIR_SYNC_FILE;
	return fs_syncs_whole((long)sfs.f_type) ? MAILDIR_SYNC_FS : MAILDIR_SYNC_FILE;
}

int maildir_open(struct maildir *md, const struct maildir_config *cfg, struct err *e)
{
	char host[256];

	memset(md, 0, sizeof(*md));
	if (cfg->root == NULL || cfg->root[0] != '/')
		return err_set(e, ERR_CONFIG, "maildir root must be an absolute path");
	if (cfg->layout != MAILDIR_LAYOUT_VERBATIM && cfg->layout != MAILDIR_LAYOUT_MAILDIRPP)
		return err_set(e, ERR_CONFIG, "unknown maildir layout %d", (int)cfg->layout);
	if (cfg->sep != '\0' && ((unsigned char)cfg->sep < 0x21 || (unsigned char)cfg->sep > 0x7e))
		return err_set(e, ERR_PROTO, "unusable hierarchy separator 0x%02x",
			       (unsigned char)cfg->sep);
	md->root = strip_slashes(cfg->root);
	md->inbox = cfg->inbox != NULL ? strip_slashes(cfg->inbox) : xasprintf("%s/INBOX", md->root);
	md->layout = cfg->layout;
	md->sep = cfg->sep;
	if (cfg->hostname != NULL) {
		md->host = maildir_host_escape(cfg->hostname);
	} else {
		if (gethostname(host, sizeof(host)) < 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		md->host = maildir_host_escape(host);
	}
	md->pid = (long)getpid();
	if (mkdir_p(md->root, e) < 0) {
		maildir_release(md);
		return -1;
	}
	md->sync_method = choose_sync_method(md->root);
	log_debug(LOG_CAT_MAILDIR, "maildir \"%s\": durability by %s", md->root,
		  md->sync_method == MAILDIR_SYNC_FS ? "syncfs per batch" : "fdatasync per file");
	return 0;
}

void maildir_release(struct maildir *md)
{
	fwriter_free(md->writer);       /* before the pool: a job may hand it a sync */
	fsync_pool_free(md->fsync_pool);
	free(md->root);
	free(md->inbox);
	free(md->host);
	memset(md, 0, sizeof(*md));
}

/* ---- listing ---- */

struct lister {
	struct maildir *md;
	struct arena *a;
	struct maildir_folder_info *items;
	size_t count, cap;
};

static bool is_dir_at(int dirfd, const char *name, unsigned char d_type)
{
	struct stat st;

	if (d_type == DT_DIR)
		return true;
	if (d_type != DT_UNKNOWN)
		return false;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static bool is_link_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

static bool has_cur(int dirfd, const char *name)
{
	struct stat st;
	char *p = xasprintf("%s/cur", name);
	bool ok = fstatat(dirfd, p, &st, 0) == 0 && S_ISDIR(st.st_mode);

	free(p);
	return ok;
}

static void lister_add(struct lister *l, const char *name, const char *path)
{
	l->items = xgrow(l->items, &l->cap, l->count + 1, sizeof(*l->items));
	l->items[l->count].name = arena_strdup(l->a, name);
	l->items[l->count].path = arena_strdup(l->a, path);
	l->count++;
}

/* Consider directory `rel` (relative to root) as a folder. Returns true if
 * its children may be folders too. */
static bool lister_consider(struct lister *l, const char *rel, bool is_folder)
{
	struct maildir *md = l->md;
	struct buf name = BUF_INIT(LIST_NAME_MAX);
	char *path = xasprintf("%s/%s", md->root, rel);
	char q[MAILDIR_QUOTE_MAX];
	struct err e;
	bool ok = true;

	if (strcmp(path, md->inbox) == 0) {
		/* Listed as INBOX already; children keep their own names. */
	} else if (maildir_disk_to_name(md->layout, md->sep, rel, &name, &e) != 0) {
		if (is_folder)
			log_warn("maildir: skipping folder \"%s\": its name is not one ferry can map",
				 maildir_quote(path, q));
		ok = false;
	} else if (is_folder && strcasecmp(buf_cstr(&name), "INBOX") == 0) {
		log_warn("maildir: skipping folder \"%s\": INBOX is \"%s\"", maildir_quote(path, q),
			 md->inbox);
	} else if (is_folder) {
		lister_add(l, buf_cstr(&name), path);
	}
	buf_release(&name);
	free(path);
	return ok;
}

/* A link to a folder is not listed (not followed below the root): say so. */
static void warn_linked_folder(const struct lister *l, int dirfd, const char *rel,
			       const struct dirent *d)
{
	char *sub = xasprintf("%s/cur", d->d_name), *path;
	char q[MAILDIR_QUOTE_MAX];
	struct stat st;

	if ((d->d_type == DT_LNK || d->d_type == DT_UNKNOWN) && is_link_at(dirfd, d->d_name) &&
	    fstatat(dirfd, sub, &st, 0) == 0 && S_ISDIR(st.st_mode)) {
		path = rel[0] != '\0' ? xasprintf("%s/%s/%s", l->md->root, rel, d->d_name)
				      : xasprintf("%s/%s", l->md->root, d->d_name);
		log_warn("maildir: skipping folder \"%s\": it is a symbolic link, and ferry does not "
			 "follow links inside the Maildir", maildir_quote(path, q));
		free(path);
	}
	free(sub);
}

static int list_verbatim(struct lister *l, int rootfd, const char *rel, int depth, struct err *e)
{
	int fd = openat(rootfd, rel[0] != '\0' ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *d;
	DIR *dir;

	if (fd < 0)
		return errno == ENOENT ? 0 : io_err(e, errno, "open folder", rel);
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return io_err(e, errno, "read folder", rel);
	}
	while ((d = readdir(dir)) != NULL) {
		char *child;
		bool folder;

		if (d->d_name[0] == '.' && (d->d_name[1] == '\0' ||
					    (d->d_name[1] == '.' && d->d_name[2] == '\0')))
			continue;
		if (strcmp(d->d_name, "cur") == 0 || strcmp(d->d_name, "new") == 0 ||
		    strcmp(d->d_name, "tmp") == 0)
			continue;
		if (!is_dir_at(dirfd(dir), d->d_name, d->d_type)) {
			warn_linked_folder(l, dirfd(dir), rel, d);
			continue;
		}
		child = rel[0] != '\0' ? xasprintf("%s/%s", rel, d->d_name) : xstrdup(d->d_name);
		folder = has_cur(rootfd, child);
		if (lister_consider(l, child, folder) && depth < LIST_DEPTH_MAX &&
		    list_verbatim(l, rootfd, child, depth + 1, e) < 0) {
			free(child);
			closedir(dir);
			return -1;
		}
		free(child);
	}
	closedir(dir);
	return 0;
}

static int list_maildirpp(struct lister *l, int rootfd, struct err *e)
{
	int fd = dup(rootfd);
	struct dirent *d;
	DIR *dir;

	if (fd < 0)
		return io_err(e, errno, "read folder", l->md->root);
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return io_err(e, errno, "read folder", l->md->root);
	}
	rewinddir(dir);
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] != '.' || d->d_name[1] == '\0' ||
		    (d->d_name[1] == '.' && d->d_name[2] == '\0'))
			continue;
		if (!is_dir_at(rootfd, d->d_name, d->d_type) || !has_cur(rootfd, d->d_name))
			continue;
		lister_consider(l, d->d_name, true);
	}
	closedir(dir);
	return 0;
}

static int info_cmp(const void *x, const void *y)
{
	const struct maildir_folder_info *a = x, *b = y;

	return strcmp(a->name, b->name);
}

int maildir_list(struct maildir *md, struct arena *a, struct maildir_folder_info **list_out,
		 size_t *count_out, struct err *e)
{
	struct lister l = { md, a, NULL, 0, 0 };
	struct stat st;
	char *cur = xasprintf("%s/cur", md->inbox);
	int rootfd, rc;
	size_t first = 0;

	if (stat(cur, &st) == 0 && S_ISDIR(st.st_mode)) {
		lister_add(&l, "INBOX", md->inbox);
		first = 1;
	}
	free(cur);
	rootfd = open(md->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		free(l.items);
		return io_err(e, errno, "open maildir root", md->root);
	}
	if (md->layout == MAILDIR_LAYOUT_VERBATIM)
		rc = list_verbatim(&l, rootfd, "", 0, e);
	else
		rc = list_maildirpp(&l, rootfd, e);
	close(rootfd);
	if (rc < 0) {
		free(l.items);
		return -1;
	}
	if (l.count - first > 1)    /* qsort() must not see a NULL array */
		qsort(l.items + first, l.count - first, sizeof(*l.items), info_cmp);
	*list_out = ARENA_NEW_ARRAY(a, struct maildir_folder_info, l.count ? l.count : 1);
	if (l.count)
		memcpy(*list_out, l.items, l.count * sizeof(*l.items));
	*count_out = l.count;
	free(l.items);
	return 0;
}

/* ---- folders ---- */

/*
 * The error for a directory ferry will not go through: `name` under
 * `dirfd` (in folder `path`) is a symbolic link.  Following one would let
 * a scan, a delivery or the tmp/ clean-up work on files outside the
 * Maildir, and a link to a folder ferry also lists would count its mail
 * twice.
 */
static int link_err(struct err *e, const char *path, const char *name)
{
	char q[MAILDIR_QUOTE_MAX];

	err_set(e, ERR_IO, "folder \"%s\": \"%s\" is a symbolic link, and ferry does not follow "
		"links inside the Maildir; put the directory itself there (or point the config's "
		"path or inbox at it)", maildir_quote(path, q), name);
	e->scope = ERR_SCOPE_MAILBOX;
	return -1;
}

/*
 * Open directory `name` under `dirfd`, made first when missing and
 * `create`; never through a symbolic link.  0 with *fd_out, 1 when it does
 * not exist, -1 on error (`path` names the folder).
 */
static int open_dir_at(int dirfd, const char *name, bool create, const char *path, int *fd_out,
		       struct err *e)
{
	int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dirfd, name, flags);

	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
			return io_err(e, errno, "create folder", path);
		fd = openat(dirfd, name, flags);
	}
	if (fd >= 0) {
		*fd_out = fd;
		return 0;
	}
	if (errno == ENOENT)
		return 1;
	if ((errno == ELOOP || errno == ENOTDIR) && is_link_at(dirfd, name))
		return link_err(e, path, name);
	return io_err(e, errno, "open folder", path);
}

static int open_sub(struct maildir_folder *f, const char *sub, bool create, int *fd_out,
		    struct err *e)
{
	return open_dir_at(f->dir_fd, sub, create, f->path, fd_out, e);
}

/*
 * Open the directory of folder `path`.  The Maildir root and the INBOX
 * directory are taken as the config names them (either may be a link, to
 * another disk say); every directory below them is opened without
 * following a link.  0 with *fd_out, 1 when missing, -1 on error.
 */
static int open_folder_dir(struct maildir *md, const char *path, bool create, int *fd_out,
			   struct err *e)
{
	size_t rl = strlen(md->root), il = strlen(md->inbox);
	const char *base = md->root, *rest;
	char *walk, *comp, *save = NULL;
	int fd, rc = 0;

	if (strncmp(path, md->inbox, il) == 0 && (path[il] == '\0' || path[il] == '/')) {
		base = md->inbox;
		rest = path + il;
	} else if (strncmp(path, md->root, rl) == 0 && path[rl] == '/') {
		rest = path + rl;
	} else {
		base = path;
		rest = "";
	}
	if (create && mkdir_p(base, e) < 0)
		return -1;
	fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1 : io_err(e, errno, "open folder", path);
	walk = xstrdup(rest);
	for (comp = strtok_r(walk, "/", &save); comp != NULL; comp = strtok_r(NULL, "/", &save)) {
		int next;

		rc = open_dir_at(fd, comp, create, path, &next, e);
		close(fd);
		fd = -1;
		if (rc != 0)
			break;
		fd = next;
	}
	free(walk);
	if (rc != 0)
		return rc;
	*fd_out = fd;
	return 0;
}

int maildir_folder_open(struct maildir *md, const char *name, bool create,
			struct maildir_folder *f, struct err *e)
{
	int rc;

	memset(f, 0, sizeof(*f));
	f->dir_fd = f->cur_fd = f->new_fd = f->tmp_fd = -1;
	f->md = md;
	if (maildir_name_to_path(md, name, &f->path, e) < 0)
		return -1;
	f->name = xstrdup(name);
	rc = open_folder_dir(md, f->path, create, &f->dir_fd, e);
	if (rc == 1) {
		maildir_folder_close(f);
		return 1;
	}
	if (rc < 0)
		goto fail;
	rc = open_sub(f, "cur", create, &f->cur_fd, e);
	if (rc == 1) {
		maildir_folder_close(f);
		return 1;
	}
	/* new/ and tmp/ are re-made if a tool dropped them (they may be empty). */
	if (rc < 0 || open_sub(f, "new", true, &f->new_fd, e) != 0 ||
	    open_sub(f, "tmp", true, &f->tmp_fd, e) != 0)
		goto fail;
	if (create && md->layout == MAILDIR_LAYOUT_MAILDIRPP && strcmp(f->path, md->inbox) != 0) {
		int fd = openat(f->dir_fd, "maildirfolder",
				O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd < 0) {
			io_err(e, errno, "create marker file in", f->path);
			goto fail;
		}
		close(fd);
	}
	if (maildir_keywords_load(f->dir_fd, f->keywords, e) < 0)
		goto fail;
	return 0;
fail:
	maildir_folder_close(f);
	return -1;
}

static void pending_abort_all(struct maildir_folder *f);
static int pending_complete(struct maildir_folder *f, struct err *e);

void maildir_folder_close(struct maildir_folder *f)
{
	pending_abort_all(f);
	if (f->dir_fd >= 0)
		close(f->dir_fd);
	if (f->cur_fd >= 0)
		close(f->cur_fd);
	if (f->new_fd >= 0)
		close(f->new_fd);
	if (f->tmp_fd >= 0)
		close(f->tmp_fd);
	maildir_keywords_clear(f->keywords);
	free(f->name);
	free(f->path);
	memset(f, 0, sizeof(*f));
	f->dir_fd = f->cur_fd = f->new_fd = f->tmp_fd = -1;
}

int maildir_folder_sync(struct maildir_folder *f, struct err *e)
{
	if (pending_complete(f, e) < 0)
		return -1;
	if (f->md->sync_method == MAILDIR_SYNC_FS) {
		/* one flush for the three directories (and whatever else is dirty) */
		if (syncfs(f->dir_fd) < 0)
			return io_err(e, errno, "sync the filesystem of folder", f->path);
	} else if (fsync(f->cur_fd) < 0 || fsync(f->new_fd) < 0 || fsync(f->dir_fd) < 0) {
		return io_err(e, errno, "sync folder", f->path);
	}
	f->gen++;
	f->gen_durable = f->gen_renamed = f->gen;
	return 0;
}

/* fsync the directory holding `path` (a folder's parent). */
static int sync_parent(const char *path, struct err *e)
{
	char *p = xstrdup(path), *slash = strrchr(p, '/');
	int fd, rc = 0;

	if (slash == NULL || slash == p)
		slash = p + 1;
	*slash = '\0';
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = io_err(e, errno, "sync folder", p);
	if (fd >= 0)
		close(fd);
	free(p);
	return rc;
}

int maildir_folder_rename(struct maildir *md, const char *from, const char *to, struct err *e)
{
	char *src = NULL, *dst = NULL, *parent = NULL;
	struct stat st;
	int rc = -1;

	if (strcasecmp(from, "INBOX") == 0 || strcasecmp(to, "INBOX") == 0)
		return err_set(e, ERR_PROTO, "the inbox folder is never renamed");
	if (maildir_name_to_path(md, from, &src, e) < 0 || maildir_name_to_path(md, to, &dst, e) < 0)
		goto out;
	if (strcmp(src, md->inbox) == 0 || strcmp(dst, md->inbox) == 0) {
		err_set(e, ERR_PROTO, "the inbox folder is never renamed");
		goto out;
	}
	if (lstat(src, &st) < 0) {
		if (errno == ENOENT) {
			rc = 1;
			goto out;
		}
		io_err(e, errno, "look at folder", src);
		goto out;
	}
	if (lstat(dst, &st) == 0 || errno != ENOENT) {
		io_err(e, lstat(dst, &st) == 0 ? EEXIST : errno, "rename a folder to", dst);
		goto out;
	}
	parent = xstrdup(dst);
	*strrchr(parent, '/') = '\0';
	if (mkdir_p(parent, e) < 0)
		goto out;
	if (rename(src, dst) < 0) {
		io_err(e, errno, "rename folder", src);
		goto out;
	}
	if (sync_parent(src, e) < 0 || sync_parent(dst, e) < 0)
		goto out;
	rc = 0;
out:
	free(src);
	free(dst);
	free(parent);
	return rc;
}

/*
 * A file ferry itself left in tmp/ when it died: named as
 * maildir_uniq_new() names them ("SEC.MUSECPpidQnRhex16.HOST"), with this
 * machine's host and the pid of a process that no longer exists (and not
 * ours).  Nothing will ever finish it.  Files of other writers (a delivery
 * agent) keep the 36 hours Maildir gives them.
 */
static bool abandoned_by_ferry(const struct maildir *md, const char *name)
{
	const char *p = strchr(name, '.'), *host;
	char *end;
	long pid;

	if (p == NULL || p[1] != 'M' || (p = strchr(p + 2, 'P')) == NULL)
		return false;
	errno = 0;
	pid = strtol(p + 1, &end, 10);
	if (errno != 0 || end == p + 1 || pid <= 0 || pid == md->pid || *end != 'Q')
		return false;
	p = end + 1;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p != 'R')
		return false;
	for (int i = 1; i <= 16; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	if (p[17] != '.')
		return false;
	host = p + 18;
	if (strcmp(host, md->host) != 0)
		return false;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/*
 * A name a Maildir delivery gives its file in tmp/: the time in seconds,
 * a dot, the rest ("1732611200.M5P42Q1R....host").  Only such files are
 * cleaned up: a tmp/ that holds anything else (a directory that was not a
 * Maildir before ferry was pointed at it) keeps it.
 */
static bool delivery_name(const char *name)
{
	const char *p = name;

	while (*p >= '0' && *p <= '9')
		p++;
	return p > name && *p == '.';
}

int maildir_folder_clean_tmp(struct maildir_folder *f, time_t age, size_t *removed_out,
			     struct err *e)
{
	int fd = openat(f->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	time_t limit = time(NULL) - age;
	struct dirent *d;
	size_t removed = 0;
	DIR *dir;

	if (fd < 0)
		return io_err(e, errno, "open tmp folder of", f->path);
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return io_err(e, errno, "read tmp folder of", f->path);
	}
	while ((d = readdir(dir)) != NULL) {
		struct stat st;

		if (d->d_name[0] == '.')
			continue;
		if (fstatat(f->tmp_fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || !delivery_name(d->d_name) ||
		    (st.st_mtime >= limit && !abandoned_by_ferry(f->md, d->d_name)))
			continue;
		if (unlinkat(f->tmp_fd, d->d_name, 0) == 0)
			removed++;
	}
	closedir(dir);
	if (removed_out != NULL)
		*removed_out = removed;
	return 0;
}

/* ---- dovecot-keywords ---- */

void maildir_keywords_clear(char *table[MAILDIR_KEYWORDS_MAX])
{
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		free(table[i]);
		table[i] = NULL;
	}
}

static bool keyword_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > KEYWORD_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* Parse "N name" lines; bad lines are ignored, the first use of a letter wins. */
void maildir_keywords_parse(const char *data, size_t len, char *table[MAILDIR_KEYWORDS_MAX])
{
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *q = p;
		unsigned idx = 0;
		size_t digits = 0;

		while (q < le && *q >= '0' && *q <= '9' && digits < 3) {
			idx = idx * 10 + (unsigned)(*q - '0');
			q++;
			digits++;
		}
		if (digits > 0 && q < le && *q == ' ' && idx < MAILDIR_KEYWORDS_MAX) {
			const char *name = q + 1, *ne = le;

			if (ne > name && ne[-1] == '\r')
				ne--;
			if (keyword_name_ok(name, (size_t)(ne - name)) && table[idx] == NULL)
				table[idx] = xstrndup(name, (size_t)(ne - name));
		}
		p = le + (nl != NULL);
	}
}

int maildir_keywords_load(int dir_fd, char *table[MAILDIR_KEYWORDS_MAX], struct err *e)
{
	int fd = openat(dir_fd, KEYWORDS_FILE, O_RDONLY | O_CLOEXEC);
	char *data;
	size_t len = 0;

	maildir_keywords_clear(table);
	if (fd < 0)
		return errno == ENOENT ? 0 : err_sys(e, ERR_IO, errno, "cannot open \"%s\"", KEYWORDS_FILE);
	data = xmalloc(KEYWORDS_FILE_MAX);
	while (len < KEYWORDS_FILE_MAX) {
		ssize_t r = read(fd, data + len, KEYWORDS_FILE_MAX - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;

			free(data);
			close(fd);
			return err_sys(e, ERR_IO, err, "cannot read \"%s\"", KEYWORDS_FILE);
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	maildir_keywords_parse(data, len, table);
	free(data);
	return 0;
}

int maildir_keywords_reload(struct maildir_folder *f, struct err *e)
{
	if (maildir_keywords_load(f->dir_fd, f->keywords, e) < 0)
		return err_prefix(e, "folder \"%s\"", f->path);
	return 0;
}

static int write_all(int fd, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write the table atomically: a temporary file, fsync, rename, fsync dir. */
static int keywords_save(struct maildir_folder *f, struct err *e)
{
	char tmp[64];
	struct buf b = BUF_INIT(KEYWORDS_FILE_MAX);
	int fd, rc = -1;

	snprintf(tmp, sizeof(tmp), ".%s.ferry-%ld", KEYWORDS_FILE, f->md->pid);
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (f->keywords[i] != NULL && buf_addf(&b, e, "%d %s\n", i, f->keywords[i]) < 0)
			goto out;
	fd = openat(f->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		io_err(e, errno, "write keywords in", f->path);
		goto out;
	}
	if (write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0) {
		io_err(e, errno, "write keywords in", f->path);
		close(fd);
		unlinkat(f->dir_fd, tmp, 0);
		goto out;
	}
	close(fd);
	if (renameat(f->dir_fd, tmp, f->dir_fd, KEYWORDS_FILE) < 0 || fsync(f->dir_fd) < 0) {
		io_err(e, errno, "write keywords in", f->path);
		unlinkat(f->dir_fd, tmp, 0);
		goto out;
	}
	rc = 0;
out:
	buf_release(&b);
	return rc;
}

static int keyword_find(char *const table[MAILDIR_KEYWORDS_MAX], const char *name)
{
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (table[i] != NULL && strcmp(table[i], name) == 0)
			return i;
	return -1;
}

/*
 * The keyword letters (a-z) that message files in cur/ and new/ carry.  A
 * letter the keywords file does not name (the file was truncated or
 * edited) still stands for something on those files: a new keyword must not
 * take it, or it would land on them too.  Read once per open folder, when a
 * keyword first needs a new letter and one is free: letters ferry gives
 * later are in the keywords file anyway.
 */
static int letters_on_files(struct maildir_folder *f, struct err *e)
{
	static const char *const subs[] = { "cur", "new" };
	uint32_t mask = 0;

	if (f->file_letters_known)
		return 0;

	for (size_t i = 0; i < 2; i++) {
		int fd = openat(f->dir_fd, subs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct dirent *d;
		DIR *dir;

		if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
			if (fd >= 0)
				close(fd);
			return io_err(e, errno, "read folder", f->path);
		}
		while ((d = readdir(dir)) != NULL) {
			const char *info = strchr(d->d_name, ':');

			if (info == NULL || info[1] != '2' || info[2] != ',')
				continue;
			for (const char *p = info + 3; *p != '\0'; p++)
				if (*p >= 'a' && *p <= 'z')
					mask |= 1u << (*p - 'a');
		}
		closedir(dir);
	}
	f->file_letters = mask;
	f->file_letters_known = true;
	return 0;
}

static bool letter_free(const struct maildir_folder *f)
{
	for (int k = 0; k < MAILDIR_KEYWORDS_MAX; k++)
		if (f->keywords[k] == NULL)
			return true;
	return false;
}

int maildir_keywords_assign(struct maildir_folder *f, const char *const *names, size_t n,
			    uint32_t *mask_out, bool *stored_out, struct err *e)
{
	bool added = false;
	uint32_t mask = 0;
	size_t i;

	/* Before adding letters, re-read the file: another program (Dovecot,
	 * a mail client) may have added some since the folder was read. */
	for (i = 0; i < n; i++)
		if (keyword_find(f->keywords, names[i]) < 0 &&
		    keyword_name_ok(names[i], strlen(names[i])))
			break;
	if (i < n && (maildir_keywords_reload(f, e) < 0 ||
		      (letter_free(f) && letters_on_files(f, e) < 0)))
		return -1;
	for (i = 0; i < n; i++) {
		int idx = keyword_find(f->keywords, names[i]);

		if (idx < 0 && keyword_name_ok(names[i], strlen(names[i]))) {
			for (int k = 0; k < MAILDIR_KEYWORDS_MAX; k++) {
				if (f->keywords[k] == NULL && !(f->file_letters & (1u << k))) {
					f->keywords[k] = xstrdup(names[i]);
					idx = k;
					added = true;
					break;
				}
			}
		}
		if (idx >= 0)
			mask |= 1u << idx;
		if (stored_out != NULL)
			stored_out[i] = idx >= 0;
	}
	if (added && keywords_save(f, e) < 0)
		return -1;
	*mask_out = mask;
	return 0;
}

/* ---- delivery ---- */

/* rename that never replaces an existing file (where the FS supports it). */
#define rename_noreplace fwriter_rename_noreplace

/*
 * The writer thread (fwriter.h) takes a delivery's file I/O with the
 * syncfs method: a queued delivery's file is then not made durable by its
 * own flush but by a syncfs, which the writer hands on after the writes.
 * NULL: do it in place (the fdatasync method, or no thread).
 */
static struct fwriter *writer_of(struct maildir *md)
{
	if (md->sync_method != MAILDIR_SYNC_FS)
		return NULL;
	if (!md->writer_tried) {
		md->writer_tried = true;
		if (getenv("FERRY_NO_WRITER") == NULL)
			md->writer = fwriter_new();
	}
	return md->writer;
}

int maildir_deliver_begin(struct maildir_folder *f, struct maildir_delivery *d, struct err *e)
{
	memset(d, 0, sizeof(*d));
	d->f = f;
	d->fd = -1;
	if (writer_of(f->md) != NULL) {
		/* created by the writer, on its first write */
		d->uniq = maildir_uniq_new(f->md);
		d->wf = xmalloc(sizeof(*d->wf));
		fwriter_file_init(d->wf, f->tmp_fd, d->uniq);
		d->buf = xmalloc(DELIVERY_BUF);
		return 0;
	}
	for (int tries = 0; tries < 5; tries++) {
		d->uniq = maildir_uniq_new(f->md);
		d->fd = openat(f->tmp_fd, d->uniq, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (d->fd >= 0) {
			d->buf = xmalloc(DELIVERY_BUF);
			return 0;
		}
		if (errno != EEXIST)
			break;
		free(d->uniq);
		d->uniq = NULL;
	}
	io_err(e, errno, "create a message file in", f->path);
	free(d->uniq);
	d->uniq = NULL;
	d->fd = -1;
	return -1;
}

static int deliver_flush(struct maildir_delivery *d, struct err *e)
{
	if (d->wf != NULL) {
		/* a full buffer goes to the writer and a fresh one takes its
		 * place; the last piece goes as a copy of its own size (the
		 * writer's queue is bounded by the bytes it holds) */
		char *piece = d->buf;

		if (d->buf_len == 0)
			return 0;
		if (d->buf_len < DELIVERY_BUF / 2) {
			piece = xmalloc(d->buf_len);
			memcpy(piece, d->buf, d->buf_len);
		} else {
			d->buf = xmalloc(DELIVERY_BUF);
		}
		fwriter_write(d->f->md->writer, d->wf, piece, d->buf_len);
		d->buf_len = 0;
		return 0;
	}
	if (d->buf_len > 0 && write_all(d->fd, d->buf, d->buf_len) < 0)
		return io_err(e, errno, "write a message file in", d->f->path);
	d->buf_len = 0;
	return 0;
}

int maildir_deliver_write(struct maildir_delivery *d, const void *data, size_t n,
			  struct err *e)
{
	if (n == 0)
		return 0;
	d->size += n;
	if (d->buf_len + n <= DELIVERY_BUF) {
		memcpy(d->buf + d->buf_len, data, n);
		d->buf_len += n;
		return 0;
	}
	if (deliver_flush(d, e) < 0)
		return -1;
	if (n >= DELIVERY_BUF && d->wf != NULL) {
		char *copy = xmalloc(n);

		memcpy(copy, data, n);
		fwriter_write(d->f->md->writer, d->wf, copy, n);
		return 0;
	}
	if (n >= DELIVERY_BUF) {
		if (write_all(d->fd, data, n) < 0)
			return io_err(e, errno, "write a message file in", d->f->path);
		return 0;
	}
	memcpy(d->buf, data, n);
	d->buf_len = n;
	return 0;
}

char *maildir_deliver_room(struct maildir_delivery *d, size_t n, struct err *e)
{
	if (n > MAILDIR_DELIVERY_ROOM) {
		err_set(e, ERR_INTERNAL, "a delivery's room asked for %zu bytes", n);
		return NULL;
	}
	if (d->buf_len + n > DELIVERY_BUF && deliver_flush(d, e) < 0)
		return NULL;
	return d->buf + d->buf_len;
}

void maildir_deliver_wrote(struct maildir_delivery *d, size_t k)
{
	d->buf_len += k;
	d->size += k;
}

static void delivery_release(struct maildir_delivery *d)
{
	if (d->fd >= 0)
		close(d->fd);
	free(d->wf);
	free(d->uniq);
	free(d->buf);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

void maildir_deliver_abort(struct maildir_delivery *d)
{
	if (d->wf != NULL) {
		/* the writer may be creating it: remove it in its turn */
		fwriter_unlink(d->f->md->writer, d->wf);
		fwriter_drain(d->f->md->writer);
	} else if (d->uniq != NULL && d->f != NULL) {
		unlinkat(d->f->tmp_fd, d->uniq, 0);
	}
	delivery_release(d);
}

/*
 * A delivery the writer has done so far becomes one done in place: wait
 * for its jobs and take the file (created now if no write did).
 */
static int delivery_take_back(struct maildir_delivery *d, struct err *e)
{
	struct fwriter_file *wf = d->wf;

	if (wf == NULL)
		return 0;
	fwriter_drain(d->f->md->writer);
	if (wf->err != 0)
		return io_err(e, wf->err, wf->failed, d->f->path);
	d->wf = NULL;
	d->fd = wf->fd;
	free(wf);
	if (d->fd < 0)
		d->fd = openat(d->f->tmp_fd, d->uniq, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (d->fd < 0)
		return io_err(e, errno, "create a message file in", d->f->path);
	return 0;
}

int maildir_deliver_commit(struct maildir_delivery *d, uint32_t flags, uint32_t keywords,
			   time_t internaldate, bool to_new, char **name_out, struct err *e)
{
	struct maildir_folder *f = d->f;
	struct buf name = BUF_INIT(PATH_MAX);
	char *uniq = NULL;
	bool into_new = to_new && flags == 0 && keywords == 0;

	if (delivery_take_back(d, e) < 0 || deliver_flush(d, e) < 0)
		goto fail;
	if (internaldate != 0) {
		struct timespec ts[2] = { { internaldate, 0 }, { internaldate, 0 } };

		if (futimens(d->fd, ts) < 0) {
			io_err(e, errno, "set the date of a message in", f->path);
			goto fail;
		}
	}
	if (fsync(d->fd) < 0) {
		io_err(e, errno, "sync a message file in", f->path);
		goto fail;
	}
	uniq = xasprintf("%s,S=%llu", d->uniq, (unsigned long long)d->size);
	if (into_new ? buf_adds(&name, uniq, e) < 0
		     : maildir_info_format(uniq, flags & MAILDIR_FLAGS_ALL, keywords, NULL, &name, e) < 0)
		goto fail;
	if (rename_noreplace(f->tmp_fd, d->uniq, into_new ? f->new_fd : f->cur_fd, buf_cstr(&name)) < 0) {
		io_err(e, errno, "move a message into", f->path);
		goto fail;
	}
	if (name_out != NULL)
		*name_out = buf_detach(&name, NULL);
	buf_release(&name);
	free(uniq);
	delivery_release(d);
	return 0;
fail:
	buf_release(&name);
	free(uniq);
	maildir_deliver_abort(d);
	return -1;
}

/* ---- queued deliveries (batched durability) ---- */

#define FSYNC_THREADS 32u

/*
 * A delivery whose file is written but not yet renamed into place.
 * MAILDIR_SYNC_FILE: job.fd is the open file, its fdatasync queued on the
 * pool.  MAILDIR_SYNC_FS: the file is closed (job.fd -1); a syncfs covers
 * it.  The array never moves while jobs are in flight: it is allocated
 * once with PENDING_CAP entries.
 */
struct maildir_pending {
	struct fsync_job job;
	bool queued;                    /* job handed to the pool */
	struct fwriter_file *wf;        /* the writer's file (MAILDIR_SYNC_FS), or NULL */
	char *tmp;                      /* name in tmp/ */
	char *final;                    /* name in cur/ or new/ */
	bool into_new;
};

/*
 * Renamed by the writer at the last advance (MAILDIR_PENDING_MAX at most),
 * covered by the syncfs in flight (as many), and queued (as many).
 */
#define PENDING_CAP (3 * MAILDIR_PENDING_MAX)

/*
 * Wait for p's fdatasync (or do it here without a pool): 0 or an errno.
 * A file the writer did: its error, if any (the writer must be past it).
 */
static int pending_wait(struct maildir_folder *f, struct maildir_pending *p)
{
	if (p->wf != NULL)
		return p->wf->err;
	if (p->queued) {
		p->queued = false;
		return fsync_pool_wait(f->md->fsync_pool, &p->job);
	}
	if (p->job.fd < 0)
		return 0;       /* MAILDIR_SYNC_FS: a syncfs covers it */
	while (fdatasync(p->job.fd) < 0)
		if (errno != EINTR)
			return errno;
	return 0;
}

/* Wait for the folder's syncfs in flight, if any: 0 or an errno. */
static int fs_job_wait(struct maildir_folder *f)
{
	if (!f->fs_job_queued)
		return 0;
	f->fs_job_queued = false;
	return fsync_pool_wait(f->md->fsync_pool, &f->fs_job);
}

static void pending_free(struct maildir_pending *p)
{
	free(p->wf);
	free(p->tmp);
	free(p->final);
}

/* The error of a failed entry, as a message (its file, or `what` for the folder). */
static int pending_err(struct maildir_folder *f, const struct maildir_pending *p, int err,
		       const char *what, struct err *e)
{
	return io_err(e, err, p != NULL && p->wf != NULL && p->wf->failed ? p->wf->failed : what,
		      f->path);
}

static void pending_abort_all(struct maildir_folder *f)
{
	if (f->md->writer != NULL)
		fwriter_drain(f->md->writer);
	(void)fs_job_wait(f);
	for (size_t i = 0; i < f->npending; i++) {
		struct maildir_pending *p = &f->pending[i];

		if (p->queued) {
			(void)fsync_pool_wait(f->md->fsync_pool, &p->job);
			p->queued = false;
		}
		if (p->job.fd >= 0)
			close(p->job.fd);
		/* renamed by the writer: in place, not durable, not recorded */
		if (i >= f->nrenamed || (p->wf != NULL && p->wf->err != 0))
			unlinkat(f->tmp_fd, p->tmp, 0);
		pending_free(p);
	}
	free(f->pending);
	f->pending = NULL;
	f->npending = f->nrenamed = f->nsyncing = 0;
}

/* Drop pending[0..n) (done with) from the array. */
static void pending_drop(struct maildir_folder *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pending_free(&f->pending[i]);
	if (n > 0 && f->npending > n)
		memmove(f->pending, f->pending + n, (f->npending - n) * sizeof(*f->pending));
	f->npending -= n;
}

/*
 * The writer's renames of the last advance are done (it is past them):
 * any failure fails the batch; the others are dropped from the array.
 */
static int pending_renamed(struct maildir_folder *f, struct err *e)
{
	for (size_t i = 0; i < f->nrenamed; i++) {
		struct maildir_pending *p = &f->pending[i];

		if (p->wf->err != 0) {
			pending_err(f, p, p->wf->err, "move a message into", e);
			pending_abort_all(f);
			return -1;
		}
	}
	pending_drop(f, f->nrenamed);
	f->nrenamed = 0;
	return 0;
}

/*
 * Rename pending[0..n) into place, in order, and drop them from the
 * array.  Their data must be durable already.  On failure everything
 * still queued is aborted.  (No renames may be with the writer.)
 */
static int pending_rename(struct maildir_folder *f, size_t n, struct err *e)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct maildir_pending *p = &f->pending[i];

		if (p->job.fd >= 0) {
			close(p->job.fd);
			p->job.fd = -1;
		}
		if (rename_noreplace(f->tmp_fd, p->tmp, p->into_new ? f->new_fd : f->cur_fd,
				     p->final) < 0) {
			io_err(e, errno, "move a message into", f->path);
			unlinkat(f->tmp_fd, p->tmp, 0);
			pending_drop(f, i + 1);
			f->nsyncing = 0;
			pending_abort_all(f);
			return -1;
		}
	}
	pending_drop(f, n);
	f->nsyncing = f->nsyncing > n ? f->nsyncing - n : 0;
	return 0;
}

/*
 * Make every queued file durable (the syncfs in flight, then one syncfs,
 * or each file's fdatasync), then rename them all into place, in order.
 * The directories are not synced here.
 */
static int pending_complete(struct maildir_folder *f, struct err *e)
{
	int err;

	if (f->md->writer != NULL)
		fwriter_drain(f->md->writer);
	err = fs_job_wait(f);
	if (err != 0) {
		pending_err(f, NULL, err, "sync the message files in", e);
		pending_abort_all(f);
		return -1;
	}
	if (pending_renamed(f, e) < 0)
		return -1;
	if (f->npending > 0 && f->md->sync_method == MAILDIR_SYNC_FS && syncfs(f->tmp_fd) < 0) {
		io_err(e, errno, "sync the message files in", f->path);
		pending_abort_all(f);
		return -1;
	}
	for (size_t i = 0; i < f->npending; i++) {
		err = pending_wait(f, &f->pending[i]);
		if (err != 0) {
			pending_err(f, &f->pending[i], err, "sync a message file in", e);
			pending_abort_all(f);
			return -1;
		}
	}
	return pending_rename(f, f->npending, e);
}

uint64_t maildir_folder_generation(const struct maildir_folder *f)
{
	return f->gen;
}

/*
 * Hand the renames of pending[0..n) (durable in tmp/, written without an
 * error) to the writer, or do them here without one.
 */
static int advance_renames(struct maildir_folder *f, size_t n, struct err *e)
{
	struct fwriter *w = f->md->writer;
	bool all_its = w != NULL;

	for (size_t i = 0; i < n; i++) {
		struct maildir_pending *p = &f->pending[i];

		if (p->wf == NULL) {
			all_its = false;        /* done in place: renamed here */
		} else if (p->wf->err != 0) {
			pending_err(f, p, p->wf->err, "write a message file in", e);
			pending_abort_all(f);
			return -1;
		}
	}
	/* (the writer is past every file of pending[0..n): the syncfs that
	 * covered them was handed on after their jobs) */
	if (!all_its)
		return pending_rename(f, n, e);
	for (size_t i = 0; i < n; i++) {
		struct maildir_pending *p = &f->pending[i];

		fwriter_rename(w, p->wf, p->into_new ? f->new_fd : f->cur_fd, p->final);
	}
	f->nrenamed = n;
	f->nsyncing -= n;
	return 0;
}

int maildir_folder_advance(struct maildir_folder *f, uint64_t *durable_out, struct err *e)
{
	size_t n;
	int err;

	if (f->md->sync_method != MAILDIR_SYNC_FS || f->md->fsync_pool == NULL) {
		if (maildir_folder_sync(f, e) < 0)
			return -1;
		*durable_out = f->gen_durable;
		return 0;
	}
	/* the syncfs started by the last advance: the files it covered are
	 * durable in tmp/, and the renames made then are durable too (the
	 * writer handed it on after them) */
	err = fs_job_wait(f);
	if (err != 0) {
		pending_err(f, NULL, err, "sync the message files in", e);
		pending_abort_all(f);
		return -1;
	}
	if (pending_renamed(f, e) < 0)
		return -1;
	f->gen_durable = f->gen_renamed;
	n = f->nsyncing;
	if (n > 0) {
		if (advance_renames(f, n, e) < 0)
			return -1;
		f->gen_renamed = f->gen;        /* every generation before the current one */
	}
	/* one syncfs for the files queued since, and for those renames */
	if (f->npending > 0 || n > 0) {
		f->nsyncing = f->npending - f->nrenamed;
		memset(&f->fs_job, 0, sizeof(f->fs_job));
		f->fs_job.fd = f->tmp_fd;
		f->fs_job.whole_fs = true;
		if (f->md->writer != NULL)
			fwriter_then_sync(f->md->writer, f->md->fsync_pool, &f->fs_job);
		else
			fsync_pool_submit(f->md->fsync_pool, &f->fs_job);
		f->fs_job_queued = true;
		f->gen++;
	}
	*durable_out = f->gen_durable;
	return 0;
}

int maildir_deliver_queue(struct maildir_delivery *d, uint32_t flags, uint32_t keywords,
			  time_t internaldate, bool to_new, char **name_out, struct err *e)
{
	struct maildir_folder *f = d->f;
	struct buf name = BUF_INIT(PATH_MAX);
	struct maildir_pending *p;
	char *uniq = NULL;
	bool into_new = to_new && flags == 0 && keywords == 0;

	if (f->npending - f->nrenamed - f->nsyncing >= MAILDIR_PENDING_MAX &&
	    maildir_folder_sync(f, e) < 0)
		goto fail;
	if (f->pending == NULL)
		f->pending = xcalloc(PENDING_CAP, sizeof(*f->pending));
	if (f->md->fsync_pool == NULL)  /* NULL: synced in place */
		f->md->fsync_pool = fsync_pool_new(f->md->sync_method == MAILDIR_SYNC_FS ? 1 : FSYNC_THREADS);
	if (d->wf != NULL && f->md->fsync_pool == NULL &&
	    delivery_take_back(d, e) < 0)       /* no pool: nothing to hand syncs to */
		goto fail;
	if (deliver_flush(d, e) < 0)
		goto fail;
	if (d->wf == NULL && internaldate != 0) {
		struct timespec ts[2] = { { internaldate, 0 }, { internaldate, 0 } };

		if (futimens(d->fd, ts) < 0) {
			io_err(e, errno, "set the date of a message in", f->path);
			goto fail;
		}
	}
	uniq = xasprintf("%s,S=%llu", d->uniq, (unsigned long long)d->size);
	if (into_new ? buf_adds(&name, uniq, e) < 0
		     : maildir_info_format(uniq, flags & MAILDIR_FLAGS_ALL, keywords, NULL, &name, e) < 0)
		goto fail;
	p = &f->pending[f->npending++];
	memset(p, 0, sizeof(*p));
	p->job.fd = d->fd;
	p->wf = d->wf;
	p->tmp = d->uniq;
	p->final = buf_detach(&name, NULL);
	p->into_new = into_new;
	if (p->wf != NULL) {
		/* the writer writes, dates and closes it; a syncfs covers it */
		fwriter_close(f->md->writer, p->wf, internaldate);
	} else if (f->md->sync_method == MAILDIR_SYNC_FS) {
		/* a syncfs writes it; starting its writeback here
		 * (sync_file_range) was measured slower: the main thread then
		 * submits the I/O itself */
		close(p->job.fd);
		p->job.fd = -1;
	} else if (f->md->fsync_pool != NULL) {
		fsync_pool_submit(f->md->fsync_pool, &p->job);
		p->queued = true;
	}
	if (name_out != NULL)
		*name_out = xstrdup(p->final);
	/* The file now belongs to the queue. */
	d->fd = -1;
	d->wf = NULL;
	d->uniq = NULL;
	buf_release(&name);
	free(uniq);
	delivery_release(d);
	return 0;
fail:
	buf_release(&name);
	free(uniq);
	maildir_deliver_abort(d);
	return -1;
}

/* ---- operations on entries ---- */

static int sub_fd(const struct maildir_folder *f, const struct maildir_entry *ent)
{
	return ent->sub == MAILDIR_SUB_NEW ? f->new_fd : f->cur_fd;
}

static int entry_err(struct maildir_folder *f, const struct maildir_entry *ent, const char *what,
		     struct err *e)
{
	char q[MAILDIR_QUOTE_MAX];

	err_sys(e, ERR_IO, errno, "cannot %s message \"%s\" in \"%s\"%s", what,
		maildir_quote(ent->name, q), f->path,
		errno == ENAMETOOLONG ? " (its name, with the flags it must carry, is too long "
					"for the file system)" : "");
	e->scope = ERR_SCOPE_MESSAGE;
	return -1;
}

int maildir_entry_set_flags(struct maildir_folder *f, const struct maildir_entry *ent,
			    uint32_t flags, uint32_t keywords, char **name_out, struct err *e)
{
	struct maildir_info info;
	struct buf name = BUF_INIT(PATH_MAX);
	char *uniq;
	int rc = 0;

	maildir_info_parse(ent->name, (const char *const *)f->keywords, &info);
	uniq = xstrndup(ent->name, info.uniq_len);
	if (maildir_info_format(uniq, flags & MAILDIR_FLAGS_ALL, keywords,
				(info.odd & MAILDIR_ODD_OTHER_INFO) ? NULL : info.extra, &name, e) < 0) {
		rc = -1;
		goto out;
	}
	if (ent->sub == MAILDIR_SUB_CUR && strcmp(buf_cstr(&name), ent->name) == 0)
		goto done;
	if (rename_noreplace(sub_fd(f, ent), ent->name, f->cur_fd, buf_cstr(&name)) < 0) {
		rc = errno == ENOENT ? 1 : entry_err(f, ent, "rename", e);
		goto out;
	}
done:
	if (name_out != NULL)
		*name_out = buf_detach(&name, NULL);
out:
	buf_release(&name);
	free(uniq);
	return rc;
}

int maildir_entry_remove(struct maildir_folder *f, const struct maildir_entry *ent,
			 struct err *e)
{
	if (unlinkat(sub_fd(f, ent), ent->name, 0) < 0)
		return errno == ENOENT ? 1 : entry_err(f, ent, "remove", e);
	return 0;
}

int maildir_entry_move(struct maildir_folder *from, const struct maildir_entry *ent,
		       struct maildir_folder *to, struct err *e)
{
	struct maildir_info info;
	struct buf name = BUF_INIT(PATH_MAX);
	const char *names[MAILDIR_KEYWORDS_MAX];
	const char *target = ent->name;
	uint32_t mask = 0;
	size_t n = 0;
	char *uniq = NULL;
	int rc = 0;

	/* keyword letters are the folder's: carried over by name, as letters of `to` */
	maildir_info_parse(ent->name, (const char *const *)from->keywords, &info);
	for (unsigned l = 0; l < MAILDIR_KEYWORDS_MAX; l++)
		if ((info.keywords & (1u << l)) && from->keywords[l] != NULL)
			names[n++] = from->keywords[l];
	if (n > 0) {
		uniq = xstrndup(ent->name, info.uniq_len);
		if (maildir_keywords_assign(to, names, n, &mask, NULL, e) < 0 ||
		    maildir_info_format(uniq, info.flags & MAILDIR_FLAGS_ALL, mask,
					(info.odd & MAILDIR_ODD_OTHER_INFO) ? NULL : info.extra, &name, e) < 0) {
			rc = -1;
			goto out;
		}
		target = buf_cstr(&name);
	}
	if (rename_noreplace(sub_fd(from, ent), ent->name, sub_fd(to, ent), target) < 0) {
		if (errno == ENOENT) {
			rc = 1;
			goto out;
		}
		entry_err(from, ent, "move", e);
		rc = err_prefix(e, "to \"%s\"", to->path);
	}
out:
	buf_release(&name);
	free(uniq);
	return rc;
}

int maildir_entry_open(struct maildir_folder *f, const struct maildir_entry *ent,
		       int *fd_out, struct err *e)
{
	int fd = openat(sub_fd(f, ent), ent->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 1 : entry_err(f, ent, "open", e);
	*fd_out = fd;
	return 0;
}
