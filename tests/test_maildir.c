/* Unit tests for the Maildir store (store/maildir*.c), on temporary folders. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "err.h"
#include "maildir.h"
#include "sync/fp.h"
#include "xalloc.h"

static char root[256];

static void make_root(void)
{
	snprintf(root, sizeof(root), "/tmp/ferry-test-maildir-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_root(void)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(maildir, .init = make_root, .fini = remove_root);

/* ---- helpers ---- */

static char *read_all(const char *path);

static void open_md(struct maildir *md, enum maildir_layout layout, char sep)
{
	struct maildir_config cfg = { root, NULL, layout, sep, "test.host" };
	struct err e;

	cr_assert_eq(maildir_open(md, &cfg, &e), 0, "%s", e.msg);
}

/*
 * Open without the writer thread (FERRY_NO_WRITER): deliveries then do
 * their file I/O in place, as with the fdatasync method, so a test can
 * look at tmp/ in the middle of one.
 */
static void open_md_in_place(struct maildir *md, enum maildir_layout layout, char sep)
{
	cr_assert_eq(setenv("FERRY_NO_WRITER", "1", 1), 0);
	open_md(md, layout, sep);
	/* the writer is started (or not) at the first delivery */
	md->writer_tried = true;
	unsetenv("FERRY_NO_WRITER");
}

/* Open with the syncfs method, whose deliveries use the writer thread (or skip). */
static void open_md_writer(struct maildir *md)
{
	cr_assert_eq(setenv("FERRY_SYNC_METHOD", "fs", 1), 0);
	open_md(md, MAILDIR_LAYOUT_VERBATIM, '/');
	unsetenv("FERRY_SYNC_METHOD");
	if (md->sync_method != MAILDIR_SYNC_FS) {
		maildir_release(md);
		cr_skip_test("the syncfs method is refused on this kernel");
	}
}

/* Wait until the writer thread (if any) has done every job asked of it. */
static void writer_settle(struct maildir *md)
{
	if (md->writer != NULL)
		fwriter_drain(md->writer);
}

static void open_folder(struct maildir *md, const char *name, struct maildir_folder *f)
{
	struct err e;

	cr_assert_eq(maildir_folder_open(md, name, true, f, &e), 0, "%s", e.msg);
}

static void write_file(const char *path, const char *data)
{
	FILE *fp = fopen(path, "w");

	cr_assert_not_null(fp, "cannot write %s", path);
	fputs(data, fp);
	fclose(fp);
}

static void touch_at(struct maildir_folder *f, const char *sub, const char *name, const char *data)
{
	char *p = xasprintf("%s/%s/%s", f->path, sub, name);

	write_file(p, data);
	free(p);
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static size_t count_sub(struct maildir_folder *f, const char *sub)
{
	char *p = xasprintf("%s/%s", f->path, sub);
	size_t n = count_files(p);

	free(p);
	return n;
}

static char *deliver(struct maildir_folder *f, const char *data, uint32_t flags, uint32_t kw,
		     time_t date, bool to_new)
{
	struct maildir_delivery d;
	struct err e;
	char *name = NULL;

	cr_assert_eq(maildir_deliver_begin(f, &d, &e), 0, "%s", e.msg);
	cr_assert_eq(maildir_deliver_write(&d, data, strlen(data), &e), 0, "%s", e.msg);
	cr_assert_eq(maildir_deliver_commit(&d, flags, kw, date, to_new, &name, &e), 0, "%s", e.msg);
	return name;
}

static void scan(struct maildir_folder *f, struct maildir_snapshot *s)
{
	struct err e;

	cr_assert_eq(maildir_scan(f, s, &e), 0, "%s", e.msg);
}

static char *to_disk(enum maildir_layout layout, char sep, const char *name, struct err *e,
		     int *rc_out)
{
	struct buf b = BUF_INIT(65536);

	*rc_out = maildir_name_to_disk(layout, sep, name, &b, e);
	return buf_detach(&b, NULL);
}

/* ---- folder names ---- */

struct name_case {
	enum maildir_layout layout;
	char sep;
	const char *name;
	const char *disk;
};

static const struct name_case name_cases[] = {
	{ MAILDIR_LAYOUT_VERBATIM, '/', "Foo/Bar", "Foo/Bar" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', "Foo/cur", "Foo/%63ur" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', "new/x", "%6Eew/x" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', "A/tmp/B", "A/%74mp/B" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', "curious/news", "curious/news" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', "100%", "100%25" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', "%63ur", "%2563ur" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', "Entw\xc3\xbcrfe/\xe6\x97\xa5\xe6\x9c\xac", "Entw\xc3\xbcrfe/\xe6\x97\xa5\xe6\x9c\xac" },
	{ MAILDIR_LAYOUT_VERBATIM, '.', "a/b.c", "a%2Fb/c" },
	{ MAILDIR_LAYOUT_VERBATIM, '.', "a/x/y", "a%2Fx%2Fy" },
	{ MAILDIR_LAYOUT_VERBATIM, '\0', "a/b.c", "a%2Fb.c" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', ".hidden/x", ".hidden/x" },
	{ MAILDIR_LAYOUT_VERBATIM, '/', "long-ascii-prefix-\xc3\xa9t\xc3\xa9", "long-ascii-prefix-\xc3\xa9t\xc3\xa9" },
	{ MAILDIR_LAYOUT_MAILDIRPP, '/', "Foo/Bar", ".Foo.Bar" },
	{ MAILDIR_LAYOUT_MAILDIRPP, '/', "a.b/c", ".a%2Eb.c" },
	{ MAILDIR_LAYOUT_MAILDIRPP, '/', "cur", ".cur" },
	{ MAILDIR_LAYOUT_MAILDIRPP, '.', "Foo.Bar", ".Foo.Bar" },
	{ MAILDIR_LAYOUT_MAILDIRPP, '.', "x/y", ".x%2Fy" },
	{ MAILDIR_LAYOUT_MAILDIRPP, '.', "50%.off", ".50%25.off" },
};

Test(maildir, folder_names_escape_and_round_trip)
{
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];
		struct buf back = BUF_INIT(65536);
		struct err e;
		int rc;
		char *disk = to_disk(c->layout, c->sep, c->name, &e, &rc);

		cr_assert_eq(rc, 0, "case %zu: %s", i, e.msg);
		cr_assert_str_eq(disk, c->disk, "case %zu", i);
		cr_assert_eq(maildir_disk_to_name(c->layout, c->sep, disk, &back, &e), 0, "case %zu", i);
		cr_assert_str_eq(buf_cstr(&back), c->name, "case %zu", i);
		free(disk);
		buf_release(&back);
	}
}

Test(maildir, random_folder_names_round_trip_and_never_collide)
{
	static const char *pieces[] = { "a", "B", ".", "/", "%", "cur", "new", "tmp", "\xc3\xa9", "%2F", " ", "x" };
	unsigned seed = (unsigned)time(NULL);
	struct buf seen = BUF_INIT(1 << 24);
	char **names = xcalloc(2000, sizeof(char *));
	char **disks = xcalloc(2000, sizeof(char *));
	size_t n = 0;

	srand(seed);
	fprintf(stderr, "random_folder_names seed %u\n", seed);
	for (int layout = 0; layout < 2; layout++) {
		for (int s = 0; s < 2; s++) {
			char sep = s ? '.' : '/';

			n = 0;
			for (int iter = 0; iter < 500; iter++) {
				struct buf name = BUF_INIT(256), back = BUF_INIT(65536);
				struct err e;
				int parts = 1 + rand() % 6, rc;
				char *disk;

				for (int k = 0; k < parts; k++)
					buf_adds(&name, pieces[rand() % 12], &e);
				disk = to_disk((enum maildir_layout)layout, sep, buf_cstr(&name), &e, &rc);
				if (rc == 0) {
					cr_assert_eq(maildir_disk_to_name((enum maildir_layout)layout, sep, disk, &back, &e), 0,
						     "seed %u: %s -> %s", seed, buf_cstr(&name), disk);
					cr_assert_str_eq(buf_cstr(&back), buf_cstr(&name), "seed %u", seed);
					for (size_t k = 0; k < n; k++)
						cr_assert(strcmp(names[k], buf_cstr(&name)) == 0 ||
							  strcmp(disks[k], disk) != 0,
							  "seed %u: %s and %s share %s", seed, names[k],
							  buf_cstr(&name), disk);
					names[n] = buf_detach(&name, NULL);
					disks[n++] = disk;
				} else {
					cr_assert_eq(e.code, ERR_PROTO, "seed %u: %s", seed, e.msg);
					free(disk);
				}
				buf_release(&name);
				buf_release(&back);
			}
			for (size_t k = 0; k < n; k++) {
				free(names[k]);
				free(disks[k]);
			}
		}
	}
	free(names);
	free(disks);
	buf_release(&seen);
}

Test(maildir, path_escape_names_are_refused_and_never_created)
{
	static const char *bad_slash[] = { "..", "../evil", "a/../b", "/etc/passwd", "a//b", "",
					   ".", "a/.", "a/", "ctl\x01name", "line\nbreak", "del\x7f",
					   "bad\xff", "over\xc0\xaflong", "long-ascii-prefix\xff",
					   "long-ascii-prefix\xed\xa0\x80surrogate" };
	static const char *bad_dot[] = { "..", "..evil", ".hidden", "a..b", "a.", "/abs" };
	struct maildir md;
	struct maildir_folder f;
	struct err e;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	for (size_t i = 0; i < sizeof(bad_slash) / sizeof(bad_slash[0]); i++) {
		cr_assert_eq(maildir_folder_open(&md, bad_slash[i], true, &f, &e), -1, "name %zu", i);
		cr_assert_eq(e.code, ERR_PROTO, "name %zu", i);
		cr_assert(strstr(e.msg, "refusing folder name") != NULL, "%s", e.msg);
		cr_assert_null(strchr(e.msg, '\n'), "message must not carry raw control bytes");
	}
	maildir_release(&md);
	open_md(&md, MAILDIR_LAYOUT_MAILDIRPP, '.');
	for (size_t i = 0; i < sizeof(bad_dot) / sizeof(bad_dot[0]); i++) {
		cr_assert_eq(maildir_folder_open(&md, bad_dot[i], true, &f, &e), -1, "name %zu", i);
		cr_assert_eq(e.code, ERR_PROTO);
	}
	maildir_release(&md);
	cr_assert_eq(count_files(root), 0, "nothing may be created in the root");
	cr_assert_eq(access("/tmp/evil", F_OK), -1);
}

Test(maildir, non_canonical_disk_names_are_not_ours)
{
	static const struct name_case odd[] = {
		{ MAILDIR_LAYOUT_VERBATIM, '/', NULL, "bad%zz" },
		{ MAILDIR_LAYOUT_VERBATIM, '/', NULL, "lower%2f" },
		{ MAILDIR_LAYOUT_VERBATIM, '/', NULL, "needless%41" },
		{ MAILDIR_LAYOUT_VERBATIM, '/', NULL, "trail%" },
		{ MAILDIR_LAYOUT_VERBATIM, '.', NULL, "a.b" },
		{ MAILDIR_LAYOUT_VERBATIM, '/', NULL, "bytes\xff" },
		{ MAILDIR_LAYOUT_VERBATIM, '/', NULL, "x/cur" },
		{ MAILDIR_LAYOUT_MAILDIRPP, '/', NULL, "NoDot" },
		{ MAILDIR_LAYOUT_MAILDIRPP, '/', NULL, ".a..b" },
	};

	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		struct buf b = BUF_INIT(4096);
		struct err e;

		cr_assert_eq(maildir_disk_to_name(odd[i].layout, odd[i].sep, odd[i].disk, &b, &e), 1,
			     "case %zu", i);
		cr_assert_eq(b.len, 0);
		buf_release(&b);
	}
}

Test(maildir, listing_maps_folders_and_skips_strays_verbatim)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_folder_info *list;
	struct arena a;
	struct err e;
	size_t n;
	char *p;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	maildir_folder_close(&f);
	open_folder(&md, "INBOX/Sub", &f);
	maildir_folder_close(&f);
	open_folder(&md, "Archive/2024/cur", &f);
	maildir_folder_close(&f);
	open_folder(&md, "50%", &f);
	maildir_folder_close(&f);
	/* strays: a plain file, a directory that is not a maildir, a
	 * non-canonical folder */
	p = xasprintf("%s/stray.txt", root);
	write_file(p, "x");
	free(p);
	p = xasprintf("%s/plain", root);
	mkdir(p, 0700);
	free(p);
	p = xasprintf("%s/odd%%zz/cur", root);
	mkdir(p, 0700);
	*strrchr(p, '/') = '\0';
	free(p);
	p = xasprintf("%s/odd%%zz", root);
	mkdir(p, 0700);
	free(p);
	p = xasprintf("%s/odd%%zz/cur", root);
	mkdir(p, 0700);
	free(p);

	arena_init(&a, 0);
	cr_assert_eq(maildir_list(&md, &a, &list, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(list[0].name, "INBOX");
	cr_assert_str_eq(list[1].name, "50%");
	cr_assert_str_eq(list[2].name, "Archive/2024/cur");
	cr_assert_str_eq(list[3].name, "INBOX/Sub");
	p = xasprintf("%s/Archive/2024/%%63ur", root);
	cr_assert_str_eq(list[2].path, p);
	free(p);
	arena_release(&a);
	maildir_release(&md);
}

Test(maildir, listing_maps_folders_maildirpp)
{
	struct maildir md;
	struct maildir_config cfg = { root, root, MAILDIR_LAYOUT_MAILDIRPP, '/', "h" };
	struct maildir_folder f;
	struct maildir_folder_info *list;
	struct arena a;
	struct err e;
	size_t n;
	char *p;

	cr_assert_eq(maildir_open(&md, &cfg, &e), 0);
	open_folder(&md, "INBOX", &f);
	maildir_folder_close(&f);
	open_folder(&md, "Lists/ferry.dev", &f);
	cr_assert_eq(access(f.path, F_OK), 0);
	p = xasprintf("%s/maildirfolder", f.path);
	cr_assert_eq(access(p, F_OK), 0, "maildir++ folders carry the maildirfolder marker");
	free(p);
	maildir_folder_close(&f);
	p = xasprintf("%s/.NotAMaildir", root);
	mkdir(p, 0700);
	free(p);
	arena_init(&a, 0);
	cr_assert_eq(maildir_list(&md, &a, &list, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(list[0].name, "INBOX");
	cr_assert_str_eq(list[0].path, root);
	cr_assert_str_eq(list[1].name, "Lists/ferry.dev");
	p = xasprintf("%s/.Lists.ferry%%2Edev", root);
	cr_assert_str_eq(list[1].path, p);
	free(p);
	arena_release(&a);
	maildir_release(&md);
}

Test(maildir, open_refuses_relative_roots_and_odd_separators)
{
	struct maildir md;
	struct maildir_config rel = { "relative/path", NULL, MAILDIR_LAYOUT_VERBATIM, '/', "h" };
	struct maildir_config sep = { root, NULL, MAILDIR_LAYOUT_VERBATIM, '\xc3', "h" };
	struct err e;

	cr_assert_eq(maildir_open(&md, &rel, &e), -1);
	cr_assert_eq(e.code, ERR_CONFIG);
	cr_assert_eq(maildir_open(&md, &sep, &e), -1);
	cr_assert_eq(e.code, ERR_PROTO);
}

Test(maildir, opening_a_missing_folder_without_create_is_not_found)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	cr_assert_eq(maildir_folder_open(&md, "Nope", false, &f, &e), 1);
	maildir_release(&md);
}

/* ---- info suffix ---- */

Test(maildir, every_flag_set_round_trips_in_sorted_order)
{
	for (uint32_t flags = 0; flags <= MAILDIR_FLAGS_ALL; flags++) {
		struct buf b = BUF_INIT(256);
		struct maildir_info info;
		struct err e;
		const char *letters;

		cr_assert_eq(maildir_info_format("u1", flags, 0, NULL, &b, &e), 0);
		maildir_info_parse(buf_cstr(&b), NULL, &info);
		cr_assert_eq(info.flags, flags);
		cr_assert_eq(info.uniq_len, 2);
		letters = strstr(buf_cstr(&b), ":2,") + 3;
		for (size_t i = 1; letters[0] && letters[i]; i++)
			cr_assert_lt(letters[i - 1], letters[i], "letters must be sorted: %s", letters);
		buf_release(&b);
	}
	{
		struct buf b = BUF_INIT(256);
		struct err e;

		maildir_info_format("u", MAILDIR_FLAGS_ALL, (1u << 0) | (1u << 25), "X", &b, &e);
		cr_assert_str_eq(buf_cstr(&b), "u:2,DFPRSTXaz");
		buf_release(&b);
	}
}

Test(maildir, odd_info_suffixes_parse_safely)
{
	const char *kw[MAILDIR_KEYWORDS_MAX] = { "$Junk" };
	struct maildir_info info;

	maildir_info_parse("123.abc", kw, &info);
	cr_assert_eq(info.flags, 0);
	cr_assert_eq(info.uniq_len, 7);
	cr_assert(info.odd & MAILDIR_ODD_NO_INFO);

	maildir_info_parse("123.abc:1,whatever", kw, &info);
	cr_assert_eq(info.flags, 0);
	cr_assert_eq(info.uniq_len, 7);
	cr_assert(info.odd & MAILDIR_ODD_OTHER_INFO);

	maildir_info_parse("123.abc:2,SaXqS", kw, &info);
	cr_assert_eq(info.flags, MAILDIR_FLAG_SEEN);
	cr_assert_eq(info.keywords, 1u);
	cr_assert_str_eq(info.extra, "Xq");
	cr_assert(info.odd & MAILDIR_ODD_UNKNOWN_LETTERS);

	/* A second info part: its punctuation is not kept for renames. */
	maildir_info_parse("123.abc:2,S:2,F", kw, &info);
	cr_assert_eq(info.flags, MAILDIR_FLAG_SEEN | MAILDIR_FLAG_FLAGGED);
	cr_assert_str_eq(info.extra, "");

	maildir_info_parse("x:2,", kw, &info);
	cr_assert_eq(info.flags, 0);
	cr_assert_eq(info.odd, 0);
}

Test(maildir, sizes_are_read_from_names)
{
	cr_assert_eq(maildir_name_size("1.M2P3.h,S=456:2,S"), 456);
	cr_assert_eq(maildir_name_size("1.M2P3.h,S=12,W=14:2,"), 12);
	cr_assert_eq(maildir_name_size("1.M2P3.h,W=14,S=0"), 0);
	cr_assert_eq(maildir_name_size("1.M2P3.h,S=:2,"), MAILDIR_SIZE_UNKNOWN);
	cr_assert_eq(maildir_name_size("1.M2P3.h,S=12x"), MAILDIR_SIZE_UNKNOWN);
	cr_assert_eq(maildir_name_size("1.M2P3.h"), MAILDIR_SIZE_UNKNOWN);
	cr_assert_eq(maildir_name_size("1.h:2,,S=5"), MAILDIR_SIZE_UNKNOWN);
	cr_assert_eq(maildir_name_size("1.h,S=99999999999999999999999"), MAILDIR_SIZE_UNKNOWN);
}

/* ---- delivery ---- */

Test(maildir, delivery_lands_in_cur_with_flags_size_and_date)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	struct stat st;
	char *name, *path, buf[64];
	const char *msg = "Subject: hi\n\nbody\n";
	int fd;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	name = deliver(&f, msg, MAILDIR_FLAG_SEEN | MAILDIR_FLAG_FLAGGED, 1u << 2, 1000000000, false);
	cr_assert(strstr(name, ".test.host,S=18:2,FSc") != NULL, "%s", name);
	cr_assert_eq(count_sub(&f, "cur"), 1);
	cr_assert_eq(count_sub(&f, "new"), 0);
	cr_assert_eq(count_sub(&f, "tmp"), 0);
	path = xasprintf("%s/cur/%s", f.path, name);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mtime, 1000000000);
	fd = open(path, O_RDONLY);
	cr_assert_eq(read(fd, buf, sizeof(buf)), 18);
	cr_assert_eq(memcmp(buf, msg, 18), 0);
	close(fd);
	cr_assert_eq(maildir_folder_sync(&f, &e), 0);
	free(path);
	free(name);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, delivery_without_flags_can_land_in_new)
{
	struct maildir md;
	struct maildir_folder f;
	char *name;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	name = deliver(&f, "", 0, 0, 0, true);
	cr_assert_null(strchr(name, ':'));
	cr_assert(strstr(name, ",S=0") != NULL);
	cr_assert_eq(count_sub(&f, "new"), 1);
	free(name);
	/* With flags, "new" is not possible: cur/. */
	name = deliver(&f, "x", MAILDIR_FLAG_SEEN, 0, 0, true);
	cr_assert_eq(count_sub(&f, "cur"), 1);
	free(name);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, large_delivery_streams_in_chunks)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_delivery d;
	struct err e;
	char chunk[10000];
	char *name, *path;
	struct stat st;

	memset(chunk, 'x', sizeof(chunk));
	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "Big", &f);
	cr_assert_eq(maildir_deliver_begin(&f, &d, &e), 0);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(maildir_deliver_write(&d, chunk, i == 7 ? 0 : sizeof(chunk), &e), 0);
	cr_assert_eq(maildir_deliver_write(&d, chunk, 1, &e), 0);
	cr_assert_eq(maildir_deliver_commit(&d, 0, 0, 0, false, &name, &e), 0);
	cr_assert(strstr(name, ",S=490001:2,") != NULL, "%s", name);
	path = xasprintf("%s/cur/%s", f.path, name);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 490001);
	free(path);
	free(name);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, interrupted_delivery_leaves_nothing_in_cur_or_new)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct err e;
	size_t removed;

	/* in place: the kill finds the file in tmp/ (with the writer thread a
	 * killed delivery may not have created it yet) */
	open_md_in_place(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	/* Kill a child at each step before the rename. */
	for (int step = 0; step < 3; step++) {
		pid_t pid = fork();
		int status;

		cr_assert_neq(pid, -1);
		if (pid == 0) {
			struct maildir_delivery d;
			char big[100000];

			memset(big, 'y', sizeof(big));
			if (maildir_deliver_begin(&f, &d, &e) < 0)
				_exit(1);
			if (step >= 1 && maildir_deliver_write(&d, "Subject: x\n\n", 12, &e) < 0)
				_exit(1);
			if (step >= 2 && maildir_deliver_write(&d, big, sizeof(big), &e) < 0)
				_exit(1);
			raise(SIGKILL);
			_exit(2);
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "step %d", step);
	}
	scan(&f, &s);
	cr_assert_eq(s.count, 0);
	maildir_snapshot_release(&s);
	cr_assert_eq(count_sub(&f, "cur"), 0);
	cr_assert_eq(count_sub(&f, "new"), 0);
	cr_assert_eq(count_sub(&f, "tmp"), 3);
	/* Fresh leftovers are kept (a delivery may be running); old ones go. */
	cr_assert_eq(maildir_folder_clean_tmp(&f, 36 * 3600, &removed, &e), 0);
	cr_assert_eq(removed, 0);
	cr_assert_eq(maildir_folder_clean_tmp(&f, -10, &removed, &e), 0);
	cr_assert_eq(removed, 3);
	cr_assert_eq(count_sub(&f, "tmp"), 0);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* A file a dead ferry left in tmp/ (its naming, this host, a pid that no
 * longer exists) goes at once; others' files and live writers' stay. */
Test(maildir, tmp_files_of_a_dead_ferry_go_at_once)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	size_t removed = 99;
	pid_t dead = fork();
	int status;
	char *mine, *live, *other_host, *dovecot;

	cr_assert_neq(dead, -1);
	if (dead == 0)
		_exit(0);
	cr_assert_eq(waitpid(dead, &status, 0), dead);
	open_md_in_place(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	mine = xasprintf("%s/tmp/1795720000.M000001P%ldQ3R0123456789abcdef.%s", f.path, (long)dead, md.host);
	live = xasprintf("%s/tmp/1795720000.M000002P1Q3R0123456789abcdef.%s", f.path, md.host);
	other_host = xasprintf("%s/tmp/1795720000.M000003P%ldQ3R0123456789abcdef.%s-other", f.path,
			       (long)dead, md.host);
	dovecot = xasprintf("%s/tmp/1795720000.M000004P%ld.%s", f.path, (long)dead, md.host);
	write_file(mine, "x");
	write_file(live, "x");
	write_file(other_host, "x");
	write_file(dovecot, "x");
	cr_assert_eq(maildir_folder_clean_tmp(&f, 36 * 3600, &removed, &e), 0, "%s", e.msg);
	cr_assert_eq(removed, 1);
	cr_assert_neq(access(mine, F_OK), 0, "a dead ferry's file stayed");
	cr_assert_eq(access(live, F_OK), 0);
	cr_assert_eq(access(other_host, F_OK), 0);
	cr_assert_eq(access(dovecot, F_OK), 0);
	free(dovecot);
	free(other_host);
	free(live);
	free(mine);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* Set a file's times `age` seconds into the past. */
static void age_file(const char *path, time_t age)
{
	struct timespec ts[2] = { { time(NULL) - age, 0 }, { time(NULL) - age, 0 } };

	cr_assert_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0, "%s", path);
}

/* Old files in tmp/ go only when their name has a delivery's form. */
Test(maildir, tmp_clean_up_removes_only_old_delivery_files)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	size_t removed = 99;
	char *old_delivery, *young_delivery, *report, *dotless;

	open_md_in_place(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	old_delivery = xasprintf("%s/tmp/1700000000.M1P2.otherhost", f.path);
	young_delivery = xasprintf("%s/tmp/1700000001.M1P2.otherhost", f.path);
	report = xasprintf("%s/tmp/report.odt", f.path);
	dotless = xasprintf("%s/tmp/1700000002", f.path);
	write_file(old_delivery, "x");
	write_file(young_delivery, "x");
	write_file(report, "the user's own");
	write_file(dotless, "x");
	age_file(old_delivery, 40 * 3600);
	age_file(report, 5 * 86400);
	age_file(dotless, 5 * 86400);
	cr_assert_eq(maildir_folder_clean_tmp(&f, 36 * 3600, &removed, &e), 0, "%s", e.msg);
	cr_assert_eq(removed, 1);
	cr_assert_neq(access(old_delivery, F_OK), 0, "an old delivery stayed");
	cr_assert_eq(access(young_delivery, F_OK), 0);
	cr_assert_eq(access(report, F_OK), 0, "a file that is no delivery was removed");
	cr_assert_eq(access(dotless, F_OK), 0);
	free(dotless);
	free(report);
	free(young_delivery);
	free(old_delivery);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/*
 * Links below the root are never followed: a folder, or its tmp/ or cur/,
 * that is a link fails to open (so no clean-up runs through it and nothing
 * is delivered through it), and a link in cur/ is no message.
 */
Test(maildir, links_inside_the_maildir_are_not_followed)
{
	struct maildir md;
	struct maildir_folder f, g;
	struct maildir_snapshot s;
	struct err e;
	size_t removed = 0;
	char *outside = xasprintf("%s-outside", root);
	char *victim = xasprintf("%s/1700000000.M1P2.host", outside);
	char *path, *link;

	cr_assert_eq(mkdir(outside, 0700), 0);
	write_file(victim, "Subject: not mail\n\nsecret\n");
	age_file(victim, 5 * 86400);
	open_md_in_place(&md, MAILDIR_LAYOUT_VERBATIM, '/');

	/* tmp/ a link to a directory outside */
	open_folder(&md, "A", &f);
	path = xasprintf("%s/tmp", f.path);
	maildir_folder_close(&f);
	cr_assert_eq(rmdir(path), 0);
	cr_assert_eq(symlink(outside, path), 0);
	cr_assert_eq(maildir_folder_open(&md, "A", true, &f, &e), -1);
	cr_assert(strstr(e.msg, "symbolic link"), "%s", e.msg);
	cr_assert(strstr(e.msg, "\"tmp\""), "%s", e.msg);
	cr_assert_eq(access(victim, F_OK), 0, "a file outside the Maildir was removed");
	free(path);

	/* a whole folder that is a link, to create or to open */
	link = xasprintf("%s/B", root);
	cr_assert_eq(symlink(outside, link), 0);
	cr_assert_eq(maildir_folder_open(&md, "B", true, &g, &e), -1);
	cr_assert(strstr(e.msg, "symbolic link"), "%s", e.msg);
	cr_assert_eq(maildir_folder_open(&md, "B/C", true, &g, &e), -1);
	cr_assert(strstr(e.msg, "symbolic link"), "%s", e.msg);
	cr_assert_eq(count_files(outside), 1, "something was made outside the Maildir");
	free(link);

	/* a link in cur/ is left alone; a regular file next to it is a message */
	open_folder(&md, "C", &f);
	path = xasprintf("%s/cur/1700000003.M1P2.host:2,S", f.path);
	cr_assert_eq(symlink(victim, path), 0);
	touch_at(&f, "cur", "1700000004.M1P2.host:2,", "Subject: mail\n\nbody\n");
	scan(&f, &s);
	cr_assert_eq(s.count, 1);
	cr_assert_not_null(maildir_snapshot_find(&s, "1700000004.M1P2.host"));
	cr_assert_eq(maildir_folder_clean_tmp(&f, 36 * 3600, &removed, &e), 0, "%s", e.msg);
	maildir_snapshot_release(&s);
	maildir_folder_close(&f);
	free(path);

	maildir_release(&md);
	cr_assert_eq(unlink(victim), 0);
	cr_assert_eq(rmdir(outside), 0);
	free(victim);
	free(outside);
}

Test(maildir, aborted_delivery_removes_its_tmp_file)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_delivery d;
	struct err e;

	open_md_in_place(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	cr_assert_eq(maildir_deliver_begin(&f, &d, &e), 0);
	cr_assert_eq(maildir_deliver_write(&d, "abc", 3, &e), 0);
	cr_assert_eq(count_sub(&f, "tmp"), 1);
	maildir_deliver_abort(&d);
	cr_assert_eq(count_sub(&f, "tmp"), 0);
	cr_assert_eq(count_sub(&f, "cur") + count_sub(&f, "new"), 0);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* The same with the writer thread: its file, created by the thread, goes too. */
Test(maildir, aborted_delivery_removes_the_writers_file)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_delivery d;
	struct err e;
	static char big[200000];

	open_md_writer(&md);
	open_folder(&md, "INBOX", &f);
	memset(big, 'x', sizeof(big));
	cr_assert_eq(maildir_deliver_begin(&f, &d, &e), 0);
	cr_assert_not_null(md.writer, "no writer thread with the syncfs method");
	cr_assert_eq(maildir_deliver_write(&d, big, sizeof(big), &e), 0);    /* to the writer */
	writer_settle(&md);
	cr_assert_eq(count_sub(&f, "tmp"), 1, "the writer did not create the file");
	maildir_deliver_abort(&d);
	cr_assert_eq(count_sub(&f, "tmp"), 0);
	cr_assert_eq(count_sub(&f, "cur") + count_sub(&f, "new"), 0);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* Queue deliveries "message i" for i in [from, to) (flag S on odd i); names into names[i]. */
static void queue_n(struct maildir_folder *f, size_t from, size_t to, char **names)
{
	for (size_t i = from; i < to; i++) {
		struct maildir_delivery d;
		struct err e;
		char body[64];
		int len = snprintf(body, sizeof(body), "Subject: %zu\n\nmessage %zu\n", i, i);

		cr_assert_eq(maildir_deliver_begin(f, &d, &e), 0, "%s", e.msg);
		cr_assert_eq(maildir_deliver_write(&d, body, (size_t)len, &e), 0, "%s", e.msg);
		cr_assert_eq(maildir_deliver_queue(&d, i % 2 ? MAILDIR_FLAG_SEEN : 0, 0, 1700000000, false,
						   &names[i], &e), 0, "%s", e.msg);
	}
}

/* Linux 5.8 or later (where the syncfs method may be chosen). */
static bool kernel_reports_syncfs_errors(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	cr_assert_eq(uname(&u), 0);
	if (sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return false;
	return major > 5 || (major == 5 && minor >= 8);
}

/*
 * Queued deliveries under the durability method `method`
 * (FERRY_SYNC_METHOD): files stay in tmp/ until the folder sync, a full
 * queue completes early, every file lands whole, dated and flagged.
 */
static void check_queued_deliveries(const char *method, enum maildir_sync_method method_want)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	char *names[300];
	const size_t n = 300;   /* more than MAILDIR_PENDING_MAX: one early completion */

	cr_assert_eq(setenv("FERRY_SYNC_METHOD", method, 1), 0);
	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	unsetenv("FERRY_SYNC_METHOD");
	if (method_want == MAILDIR_SYNC_FS && !kernel_reports_syncfs_errors())
		method_want = MAILDIR_SYNC_FILE;        /* refused where syncfs hides errors */
	cr_assert_eq(md.sync_method, method_want, "FERRY_SYNC_METHOD=%s gave method %d", method,
		     (int)md.sync_method);
	open_folder(&md, "INBOX", &f);
	queue_n(&f, 0, 10, names);
	writer_settle(&md);
	cr_assert_eq(count_sub(&f, "cur"), 0, "a queued file is in cur/ before the sync");
	cr_assert_eq(count_sub(&f, "tmp"), 10);
	queue_n(&f, 10, n, names);
	writer_settle(&md);
	cr_assert_eq(count_sub(&f, "cur"), MAILDIR_PENDING_MAX,
		     "a full queue is completed (synced and renamed) before it grows");
	cr_assert_eq(maildir_folder_sync(&f, &e), 0, "%s", e.msg);
	cr_assert_eq(count_sub(&f, "cur"), n);
	cr_assert_eq(count_sub(&f, "tmp"), 0);
	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s/cur/%s", f.path, names[i]);
		char *data = read_all(p);
		char want[64];
		struct stat st;

		snprintf(want, sizeof(want), "Subject: %zu\n\nmessage %zu\n", i, i);
		cr_assert_str_eq(data, want, "file %zu", i);
		cr_assert_eq(stat(p, &st), 0);
		cr_assert_eq(st.st_mtime, 1700000000);
		cr_assert_eq(strstr(names[i], ":2,S") != NULL, i % 2 == 1, "%s", names[i]);
		free(data);
		free(p);
		free(names[i]);
	}
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, queued_deliveries_appear_only_at_the_folder_sync_fdatasync_per_file)
{
	check_queued_deliveries("file", MAILDIR_SYNC_FILE);
}

Test(maildir, queued_deliveries_appear_only_at_the_folder_sync_syncfs_per_batch)
{
	check_queued_deliveries("fs", MAILDIR_SYNC_FS);
}

/*
 * maildir_folder_advance under `method`: a delivery is reported durable
 * (its generation below *durable) only once it is in cur/ and a sync
 * covering its rename has ended; never earlier.  With the syncfs method
 * the first advance renames nothing (the files wait in tmp/ for their
 * syncfs), the second renames them, the third reports them; with
 * fdatasync per file every advance is a full sync.  maildir_folder_sync
 * settles everything.
 */
static void check_advance(const char *method, bool fs)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	char *names[9];
	uint64_t gens[9], durable = 0;
	size_t in_cur;

	cr_assert_eq(setenv("FERRY_SYNC_METHOD", method, 1), 0);
	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	unsetenv("FERRY_SYNC_METHOD");
	if (fs && md.sync_method != MAILDIR_SYNC_FS) {
		maildir_release(&md);
		cr_skip_test("the syncfs method is refused on this kernel");
	}
	open_folder(&md, "INBOX", &f);
	for (size_t round = 0; round < 3; round++) {
		for (size_t i = 3 * round; i < 3 * round + 3; i++) {
			gens[i] = maildir_folder_generation(&f);
			queue_n(&f, i, i + 1, names);
		}
		cr_assert_eq(maildir_folder_advance(&f, &durable, &e), 0, "%s", e.msg);
		writer_settle(&md);     /* it renames what the advance handed it */
		in_cur = count_sub(&f, "cur");
		for (size_t i = 0; i < 3 * round + 3; i++) {
			char *p = xasprintf("%s/cur/%s", f.path, names[i]);
			bool there = access(p, F_OK) == 0;

			cr_assert(gens[i] >= durable || there, "round %zu: message %zu reported durable "
				  "but not in cur/", round, i);
			free(p);
		}
		if (fs) {
			/* round r: the files of rounds before r are renamed, those of
			 * rounds before r-1 reported durable */
			cr_assert_eq(in_cur, 3 * round, "round %zu: %zu files in cur/", round, in_cur);
			for (size_t i = 0; i < 3 * round + 3; i++) {
				bool want = round >= 2 && i < 3 * (round - 1);

				cr_assert_eq(gens[i] < durable, want, "round %zu: message %zu durable=%d",
					     round, i, gens[i] < durable);
			}
		} else {
			cr_assert_eq(in_cur, 3 * round + 3);
			for (size_t i = 0; i < 3 * round + 3; i++)
				cr_assert_lt(gens[i], durable, "round %zu: message %zu not durable after a full sync",
					     round, i);
		}
	}
	cr_assert_eq(maildir_folder_sync(&f, &e), 0, "%s", e.msg);
	cr_assert_eq(count_sub(&f, "cur"), 9);
	cr_assert_eq(count_sub(&f, "tmp"), 0);
	cr_assert_eq(maildir_folder_advance(&f, &durable, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < 9; i++) {
		cr_assert_lt(gens[i], durable, "message %zu not durable after the folder sync", i);
		free(names[i]);
	}
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, advance_reports_durable_only_what_is_renamed_and_synced_syncfs)
{
	check_advance("fs", true);
}

Test(maildir, advance_is_a_full_sync_with_fdatasync_per_file)
{
	check_advance("file", false);
}

/*
 * A file the writer thread cannot create (tmp/ removed under the open
 * folder: the create fails with ENOENT, even for root) fails the batch at
 * its durability point, by sync or by advance, naming what failed, and
 * nothing reaches cur/; the folder works again once tmp/ is back.
 */
static void check_writer_failure(bool by_advance)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	char *names[3];
	char *tmp;
	uint64_t durable = 0;
	int rc = 0;

	open_md_writer(&md);
	open_folder(&md, "INBOX", &f);
	tmp = xasprintf("%s/tmp", f.path);
	cr_assert_eq(rmdir(tmp), 0);
	queue_n(&f, 0, 2, names);
	cr_assert_not_null(md.writer);
	err_clear(&e);
	if (by_advance) {
		/* the first hands the syncfs on; the second finds the failure */
		for (int i = 0; i < 2 && rc == 0; i++)
			rc = maildir_folder_advance(&f, &durable, &e);
	} else {
		rc = maildir_folder_sync(&f, &e);
	}
	cr_assert_eq(rc, -1, "a batch whose files could not be created was made durable");
	cr_assert(strstr(e.msg, "create a message file in") != NULL, "%s", e.msg);
	cr_assert_eq(e.code, ERR_IO);
	cr_assert_eq(count_sub(&f, "cur") + count_sub(&f, "new"), 0);
	cr_assert_eq(mkdir(tmp, 0700), 0);
	maildir_folder_close(&f);
	open_folder(&md, "INBOX", &f);
	queue_n(&f, 2, 3, names);
	cr_assert_eq(maildir_folder_sync(&f, &e), 0, "%s", e.msg);
	cr_assert_eq(count_sub(&f, "cur"), 1);
	for (size_t i = 0; i < 3; i++)
		free(names[i]);
	free(tmp);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, writer_failure_fails_the_folder_sync)
{
	check_writer_failure(false);
}

Test(maildir, writer_failure_fails_the_advance)
{
	check_writer_failure(true);
}

Test(maildir, closing_a_folder_drops_queued_deliveries)
{
	struct maildir md;
	struct maildir_folder f;
	char *names[5];

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	queue_n(&f, 0, 5, names);
	writer_settle(&md);
	cr_assert_eq(count_sub(&f, "tmp"), 5);
	maildir_folder_close(&f);
	open_folder(&md, "INBOX", &f);
	cr_assert_eq(count_sub(&f, "tmp"), 0, "queued files left in tmp/");
	cr_assert_eq(count_sub(&f, "cur") + count_sub(&f, "new"), 0);
	for (size_t i = 0; i < 5; i++)
		free(names[i]);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, unique_names_are_unique_and_hostname_escaped)
{
	struct maildir md;
	struct maildir_config cfg = { root, NULL, MAILDIR_LAYOUT_VERBATIM, '/', "a/b:c,d\\e" };
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct err e;

	cr_assert_eq(maildir_open(&md, &cfg, &e), 0);
	cr_assert_str_eq(md.host, "a\\057b\\072c\\054d\\134e");
	open_folder(&md, "INBOX", &f);
	for (int i = 0; i < 200; i++)
		free(deliver(&f, "m", 0, 0, 0, i % 2));
	scan(&f, &s);
	cr_assert_eq(s.count, 200);
	for (size_t i = 0; i < s.count; i++) {
		cr_assert_eq(s.entries[i].odd & MAILDIR_ODD_DUPLICATE, 0);
		cr_assert_eq(s.entries[i].size, 1);
		cr_assert(strstr(s.entries[i].uniq, ".a\\057b\\072c\\054d\\134e,S=1") != NULL);
		cr_assert_null(strchr(s.entries[i].uniq, '/'));
	}
	maildir_snapshot_release(&s);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* ---- scanning odd input ---- */

Test(maildir, scan_handles_odd_and_hostile_file_names)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	const struct maildir_entry *ent;
	char *p;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	touch_at(&f, "cur", "1.a,S=5:2,S", "hello");
	touch_at(&f, "new", "2.b", "x\n");
	touch_at(&f, "cur", "3.c", "no info in cur");
	touch_at(&f, "cur", "4.d:1,xyz", "old form");
	touch_at(&f, "cur", "5.e:2,SQz", "unknown letters");
	touch_at(&f, "cur", "6.\xff\xfe:2,R", "not utf-8");
	touch_at(&f, "cur", ".hidden", "ignored");
	touch_at(&f, "cur", ":2,S", "no unique part");
	touch_at(&f, "cur", "7.zero:2,", "");
	touch_at(&f, "cur", "8.lf:2,", "Subject: lf\n\nbare lf\n");
	p = xasprintf("%s/cur/stray-dir", f.path);
	mkdir(p, 0700);
	free(p);
	p = xasprintf("%s/new/fifo", f.path);
	cr_assert_eq(mkfifo(p, 0600), 0);
	free(p);
	p = xasprintf("%s/cur/dangling", f.path);
	cr_assert_eq(symlink("/nonexistent/ferry", p), 0);
	free(p);

	scan(&f, &s);
	cr_assert_eq(s.count, 8, "got %zu", s.count);
	cr_assert_eq(s.strays, 4, "got %zu", s.strays);

	ent = maildir_snapshot_find(&s, "1.a,S=5");
	cr_assert_not_null(ent);
	cr_assert_eq(ent->flags, MAILDIR_FLAG_SEEN);
	cr_assert_eq(ent->size, 5);
	cr_assert_eq(ent->sub, MAILDIR_SUB_CUR);
	cr_assert_eq(ent->odd, 0);

	ent = maildir_snapshot_find(&s, "2.b");
	cr_assert_not_null(ent);
	cr_assert_eq(ent->sub, MAILDIR_SUB_NEW);
	cr_assert_eq(ent->odd, 0, "new/ without info is normal");
	cr_assert_eq(ent->size, MAILDIR_SIZE_UNKNOWN);

	ent = maildir_snapshot_find(&s, "3.c");
	cr_assert(ent->odd & MAILDIR_ODD_NO_INFO);
	ent = maildir_snapshot_find(&s, "4.d");
	cr_assert(ent->odd & MAILDIR_ODD_OTHER_INFO);
	cr_assert_eq(ent->flags, 0);
	ent = maildir_snapshot_find(&s, "5.e");
	cr_assert(ent->odd & MAILDIR_ODD_UNKNOWN_LETTERS);
	cr_assert_eq(ent->flags, MAILDIR_FLAG_SEEN);
	cr_assert_eq(ent->keywords, 0, "z has no keyword in the table");
	ent = maildir_snapshot_find(&s, "6.\xff\xfe");
	cr_assert_not_null(ent);
	cr_assert(ent->odd & MAILDIR_ODD_NOT_UTF8);
	cr_assert_eq(ent->flags, MAILDIR_FLAG_REPLIED);
	cr_assert_not_null(maildir_snapshot_find(&s, "7.zero"));
	cr_assert_not_null(maildir_snapshot_find(&s, "8.lf"));
	cr_assert_null(maildir_snapshot_find(&s, "9.none"));
	for (size_t i = 1; i < s.count; i++) {
		const struct maildir_entry *x = &s.entries[i - 1], *y = &s.entries[i];

		cr_assert(x->key < y->key || (x->key == y->key && strcmp(x->uniq, y->uniq) < 0),
			  "snapshot order");
		cr_assert_eq(y->key, maildir_uniq_key(y->uniq));
	}
	maildir_snapshot_release(&s);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* A name that cannot take its new flags says so (the hint depends on it). */
Test(maildir, flag_rename_past_the_name_limit_says_why)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct err e;
	char uniq[253], *name = NULL;

	memset(uniq, '7', sizeof(uniq) - 1);
	uniq[sizeof(uniq) - 1] = '\0';
	memcpy(uniq, "1700000000.", 11);
	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	{
		char *file = xasprintf("%s:2,", uniq);

		touch_at(&f, "cur", file, "Subject: x\n\nbody\n");
		free(file);
	}
	scan(&f, &s);
	cr_assert_eq(s.count, 1);
	cr_assert_eq(maildir_entry_set_flags(&f, &s.entries[0], MAILDIR_FLAG_FLAGGED, 0, &name, &e), -1);
	cr_assert_eq(e.sys, ENAMETOOLONG);
	cr_assert(strstr(e.msg, "too long for the file system"), "%s", e.msg);
	cr_assert_null(name);
	maildir_snapshot_release(&s);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, renames_keep_unknown_letters_and_drop_old_info_form)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct err e;
	char *name;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	touch_at(&f, "cur", "5.e:2,SQz", "x");
	touch_at(&f, "cur", "4.d:1,xyz", "y");
	touch_at(&f, "cur", "3.c", "z");
	scan(&f, &s);
	cr_assert_eq(maildir_entry_set_flags(&f, maildir_snapshot_find(&s, "5.e"),
					     MAILDIR_FLAG_FLAGGED, 0, &name, &e), 0);
	cr_assert_str_eq(name, "5.e:2,FQz");
	free(name);
	cr_assert_eq(maildir_entry_set_flags(&f, maildir_snapshot_find(&s, "4.d"),
					     MAILDIR_FLAG_SEEN, 0, &name, &e), 0);
	cr_assert_str_eq(name, "4.d:2,S");
	free(name);
	cr_assert_eq(maildir_entry_set_flags(&f, maildir_snapshot_find(&s, "3.c"), 0, 0, &name, &e), 0);
	cr_assert_str_eq(name, "3.c:2,");
	free(name);
	/* The file is gone since the scan: "not found", not an error. */
	cr_assert_eq(maildir_entry_set_flags(&f, maildir_snapshot_find(&s, "3.c"), 0, 0, NULL, &e), 1);
	cr_assert_eq(maildir_entry_remove(&f, maildir_snapshot_find(&s, "3.c"), &e), 1);
	maildir_snapshot_release(&s);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, duplicate_unique_names_are_marked_and_reported_new)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct maildir_known known[] = { { "1.dup", MAILDIR_FLAG_SEEN, NULL, 0 } };
	struct maildir_change *ch;
	struct arena a;
	size_t n;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	touch_at(&f, "new", "1.dup", "a");
	touch_at(&f, "cur", "1.dup:2,S", "a");
	scan(&f, &s);
	cr_assert_eq(s.count, 2);
	cr_assert_eq(s.entries[0].sub, MAILDIR_SUB_CUR, "the cur/ copy comes first");
	cr_assert_eq(s.entries[0].odd & MAILDIR_ODD_DUPLICATE, 0);
	cr_assert(s.entries[1].odd & MAILDIR_ODD_DUPLICATE);
	cr_assert_eq(maildir_snapshot_find(&s, "1.dup"), &s.entries[0]);
	arena_init(&a, 0);
	maildir_diff(&s, known, 1, &a, &ch, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(ch[0].kind, MAILDIR_CHANGE_NEW);
	cr_assert_eq(ch[0].entry, &s.entries[1]);
	arena_release(&a);
	maildir_snapshot_release(&s);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* ---- keywords ---- */

static char *read_all(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *data = xcalloc(1, 65536);

	if (fp != NULL) {
		size_t n = fread(data, 1, 65535, fp);

		data[n] = '\0';
		fclose(fp);
	}
	return data;
}

Test(maildir, keywords_use_dovecot_letters_and_round_trip)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct err e;
	const char *names[] = { "work", "$Junk", "new-one" };
	const char **got;
	bool stored[3];
	uint32_t mask;
	struct arena a;
	char *p, *data, *name;
	size_t n;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	p = xasprintf("%s/dovecot-keywords", f.path);
	write_file(p, "0 $Junk\n1 work\r\nbogus line\n30 out-of-range\n");
	cr_assert_eq(maildir_keywords_reload(&f, &e), 0);
	cr_assert_str_eq(f.keywords[0], "$Junk");
	cr_assert_str_eq(f.keywords[1], "work");
	cr_assert_null(f.keywords[2]);

	cr_assert_eq(maildir_keywords_assign(&f, names, 3, &mask, stored, &e), 0, "%s", e.msg);
	cr_assert_eq(mask, 0x7u);
	cr_assert(stored[0] && stored[1] && stored[2]);
	data = read_all(p);
	cr_assert_str_eq(data, "0 $Junk\n1 work\n2 new-one\n");
	free(data);

	name = deliver(&f, "m", MAILDIR_FLAG_SEEN, mask, 0, false);
	cr_assert(strstr(name, ":2,Sabc") != NULL, "%s", name);
	free(name);
	scan(&f, &s);
	cr_assert_eq(s.count, 1);
	cr_assert_eq(s.entries[0].keywords, 0x7u);
	arena_init(&a, 0);
	n = maildir_entry_keyword_names(&s, &s.entries[0], &a, &got);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(got[0], "$Junk");
	cr_assert_str_eq(got[1], "work");
	cr_assert_str_eq(got[2], "new-one");
	/* Drop "work" by rename; the file now says a and c. */
	cr_assert_eq(maildir_entry_set_flags(&f, &s.entries[0], MAILDIR_FLAG_SEEN, 0x5u, &name, &e), 0);
	cr_assert(strstr(name, ":2,Sac") != NULL, "%s", name);
	free(name);
	maildir_snapshot_release(&s);
	scan(&f, &s);
	cr_assert_eq(s.entries[0].keywords, 0x5u);
	maildir_snapshot_release(&s);
	arena_release(&a);
	free(p);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/*
 * A letter that files still carry but the keywords file no longer names
 * (truncated, edited) is not given to a new keyword: it would land on
 * those files too.
 */
Test(maildir, new_keyword_skips_letters_files_still_carry)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	const char *names[] = { "urgent" };
	bool stored[1];
	uint32_t mask;
	char *p, *data;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	touch_at(&f, "cur", "1700000000.M1P1.h:2,Sa", "Subject: a\n\nx\n");
	touch_at(&f, "new", "1700000001.M1P1.h:2,c", "Subject: c\n\nx\n");
	p = xasprintf("%s/dovecot-keywords", f.path);
	write_file(p, "");      /* it named a "alpha" and c "gamma" */
	cr_assert_eq(maildir_keywords_reload(&f, &e), 0);
	cr_assert_eq(maildir_keywords_assign(&f, names, 1, &mask, stored, &e), 0, "%s", e.msg);
	cr_assert(stored[0]);
	cr_assert_eq(mask, 1u << 1, "took letter %#x", mask);
	data = read_all(p);
	cr_assert_str_eq(data, "1 urgent\n");
	free(data);
	free(p);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, keywords_beyond_26_are_reported_unstored)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	char *names[30];
	bool stored[30];
	uint32_t mask;
	const char *bad[] = { "has space", "" };
	bool bad_stored[2];

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	for (int i = 0; i < 30; i++)
		names[i] = xasprintf("kw%02d", i);
	cr_assert_eq(maildir_keywords_assign(&f, (const char *const *)names, 30, &mask, stored, &e), 0);
	cr_assert_eq(mask, (1u << 26) - 1);
	for (int i = 0; i < 30; i++)
		cr_assert_eq(stored[i], i < 26, "keyword %d", i);
	/* A reopened folder reads the same table back. */
	maildir_folder_close(&f);
	open_folder(&md, "INBOX", &f);
	cr_assert_str_eq(f.keywords[25], "kw25");
	cr_assert_eq(maildir_keywords_assign(&f, bad, 2, &mask, bad_stored, &e), 0);
	cr_assert(!bad_stored[0] && !bad_stored[1]);
	cr_assert_eq(mask, 0);
	for (int i = 0; i < 30; i++)
		free(names[i]);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* ---- diff ---- */

Test(maildir, diff_reports_new_gone_and_flag_changes_only)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct maildir_change *ch;
	struct arena a;
	struct err e;
	const char *kw_work[] = { "work" };
	const char *kw_beyond[] = { "beyond-26-only-in-state" };
	size_t n;
	char *p;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	p = xasprintf("%s/dovecot-keywords", f.path);
	write_file(p, "0 work\n");
	free(p);
	touch_at(&f, "cur", "b.same:2,S", "");
	touch_at(&f, "cur", "c.flags:2,FS", "");
	touch_at(&f, "cur", "d.kwgone:2,S", "");
	touch_at(&f, "cur", "e.kwkept:2,Sa", "");
	touch_at(&f, "new", "f.new", "");
	touch_at(&f, "cur", "g.beyond:2,S", "");
	scan(&f, &s);
	/* Unsorted on purpose. */
	struct maildir_known known[] = {
		{ "g.beyond", MAILDIR_FLAG_SEEN, kw_beyond, 1 },
		{ "e.kwkept", MAILDIR_FLAG_SEEN, kw_work, 1 },
		{ "a.gone", 0, NULL, 0 },
		{ "c.flags", MAILDIR_FLAG_SEEN, NULL, 0 },
		{ "b.same", MAILDIR_FLAG_SEEN, NULL, 0 },
		{ "d.kwgone", MAILDIR_FLAG_SEEN, kw_work, 1 },
	};
	arena_init(&a, 0);
	maildir_diff(&s, known, 6, &a, &ch, &n);
	cr_assert_eq(n, 4, "got %zu", n);
	for (size_t i = 0; i < n; i++) {
		switch (ch[i].kind) {
		case MAILDIR_CHANGE_GONE:
			cr_assert_eq(ch[i].known_index, 2);
			cr_assert_null(ch[i].entry);
			break;
		case MAILDIR_CHANGE_NEW:
			cr_assert_str_eq(ch[i].entry->uniq, "f.new");
			break;
		case MAILDIR_CHANGE_FLAGS:
			cr_assert(strcmp(ch[i].entry->uniq, "c.flags") == 0 ||
				  strcmp(ch[i].entry->uniq, "d.kwgone") == 0, "%s", ch[i].entry->uniq);
			cr_assert_str_eq(known[ch[i].known_index].uniq, ch[i].entry->uniq);
			break;
		}
		/* Changes follow the snapshot order. */
		if (i > 0 && ch[i].entry != NULL && ch[i - 1].entry != NULL)
			cr_assert_lt(ch[i - 1].entry, ch[i].entry);
	}
	{
		int kinds[3] = { 0, 0, 0 };

		for (size_t i = 0; i < n; i++)
			kinds[ch[i].kind]++;
		cr_assert_eq(kinds[MAILDIR_CHANGE_NEW], 1);
		cr_assert_eq(kinds[MAILDIR_CHANGE_GONE], 1);
		cr_assert_eq(kinds[MAILDIR_CHANGE_FLAGS], 2);
	}
	/* Nothing known: everything is new. */
	maildir_diff(&s, NULL, 0, &a, &ch, &n);
	cr_assert_eq(n, s.count);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ch[i].kind, MAILDIR_CHANGE_NEW);
	arena_release(&a);
	maildir_snapshot_release(&s);
	(void)e;
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, moves_between_folders_keep_the_unique_name)
{
	struct maildir md;
	struct maildir_folder fa, fb;
	struct maildir_snapshot sa, sb;
	struct maildir_change *ch;
	struct maildir_known known;
	struct arena a;
	struct err e;
	char *name;
	size_t n, len;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "A", &fa);
	open_folder(&md, "B", &fb);
	name = deliver(&fa, "Message-ID: <m@x>\n\nhi\n", MAILDIR_FLAG_SEEN, 0, 0, false);
	len = strcspn(name, ":");
	name[len] = '\0';
	scan(&fa, &sa);
	cr_assert_eq(maildir_entry_move(&fa, &sa.entries[0], &fb, &e), 0, "%s", e.msg);
	cr_assert_eq(maildir_entry_move(&fa, &sa.entries[0], &fb, &e), 1, "second move: gone");
	maildir_snapshot_release(&sa);
	scan(&fa, &sa);
	scan(&fb, &sb);
	known = (struct maildir_known){ name, MAILDIR_FLAG_SEEN, NULL, 0 };
	arena_init(&a, 0);
	maildir_diff(&sa, &known, 1, &a, &ch, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(ch[0].kind, MAILDIR_CHANGE_GONE);
	/* The caller's cross-folder lookup: */
	cr_assert_not_null(maildir_snapshot_find(&sb, known.uniq));
	cr_assert_eq(maildir_snapshot_find(&sb, known.uniq)->flags, MAILDIR_FLAG_SEEN);
	arena_release(&a);
	maildir_snapshot_release(&sa);
	maildir_snapshot_release(&sb);
	free(name);
	maildir_folder_close(&fa);
	maildir_folder_close(&fb);
	maildir_release(&md);
}

/* ---- the unchanged marker ---- */

static void sleep_past_tick(void)
{
	struct timespec ts = { MAILDIR_MARKER_TICK_NS / 1000000000LL, 200000000L };

	nanosleep(&ts, NULL);
}

Test(maildir, marker_skips_unchanged_folders_and_never_misses_a_change)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct maildir_scan_marker m;
	const char *kw[] = { "late" };
	uint32_t mask;
	struct err e;
	bool same;
	char *name;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	free(deliver(&f, "a", 0, 0, 0, true));
	/* A scan in the same tick as the change is not trusted. */
	scan(&f, &s);
	m = s.marker;
	maildir_snapshot_release(&s);
	cr_assert_eq(m.trusted, 0);
	cr_assert_eq(maildir_check_unchanged(&f, &m, &same, &e), 0);
	cr_assert(!same, "an untrusted marker must force a rescan");
	cr_assert_eq(maildir_check_unchanged(&f, NULL, &same, &e), 0);
	cr_assert(!same);

	sleep_past_tick();
	scan(&f, &s);
	m = s.marker;
	cr_assert_eq(m.trusted, 1);
	cr_assert_eq(maildir_check_unchanged(&f, &m, &same, &e), 0);
	cr_assert(same);

	/* A flag change (rename new/ -> cur/) is seen at once. */
	cr_assert_eq(maildir_entry_set_flags(&f, &s.entries[0], MAILDIR_FLAG_SEEN, 0, &name, &e), 0);
	free(name);
	maildir_snapshot_release(&s);
	cr_assert_eq(maildir_check_unchanged(&f, &m, &same, &e), 0);
	cr_assert(!same);

	/* A new keyword in dovecot-keywords is a change too. */
	sleep_past_tick();
	scan(&f, &s);
	m = s.marker;
	maildir_snapshot_release(&s);
	cr_assert_eq(maildir_check_unchanged(&f, &m, &same, &e), 0);
	cr_assert(same);
	cr_assert_eq(maildir_keywords_assign(&f, kw, 1, &mask, NULL, &e), 0);
	cr_assert_eq(maildir_check_unchanged(&f, &m, &same, &e), 0);
	cr_assert(!same);

	/* Restoring the directory mtime cannot hide a delivery (ctime). */
	sleep_past_tick();
	scan(&f, &s);
	m = s.marker;
	maildir_snapshot_release(&s);
	free(deliver(&f, "b", 0, 0, 0, true));
	{
		char *p = xasprintf("%s/new", f.path);
		struct timespec ts[2] = { { 0, UTIME_OMIT },
					  { m.new_.mtime_ns / 1000000000LL, m.new_.mtime_ns % 1000000000LL } };

		cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
		free(p);
	}
	cr_assert_eq(maildir_check_unchanged(&f, &m, &same, &e), 0);
	cr_assert(!same);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* An untrusted marker (taken right after a change) is confirmed by the
 * folder's names alone, and only while they are the scan's. */
Test(maildir, untrusted_marker_is_confirmed_by_the_names_and_only_by_them)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct maildir_scan_marker m, now, forged;
	const char *kw[] = { "late" };
	uint32_t mask;
	struct err e;
	bool same;
	char *name;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	free(deliver(&f, "a", 0, 0, 0, true));
	free(deliver(&f, "b", 0, 0, 0, false));
	scan(&f, &s);
	m = s.marker;
	cr_assert_eq(m.trusted, 0);
	cr_assert_eq(m.files, 2);
	cr_assert_eq(maildir_confirm_unchanged(&f, &m, &same, &now, &e), 0, "%s", e.msg);
	cr_assert(same, "the same files were not confirmed");
	cr_assert_eq(now.files, 2);
	cr_assert_eq(now.digest_sum, m.digest_sum);
	cr_assert_eq(now.digest_xor, m.digest_xor);
	cr_assert_eq(now.cur.mtime_ns, m.cur.mtime_ns);

	/* Same stamps, other names (what a change in the same tick looks like). */
	forged = m;
	forged.digest_sum ^= 1;
	cr_assert_eq(maildir_confirm_unchanged(&f, &forged, &same, &now, &e), 0);
	cr_assert(!same, "a different digest was confirmed");
	forged = m;
	forged.files = 3;
	cr_assert_eq(maildir_confirm_unchanged(&f, &forged, &same, &now, &e), 0);
	cr_assert(!same, "a different file count was confirmed");

	/* A rename (flag change) and a new keyword are changes. */
	cr_assert_eq(maildir_entry_set_flags(&f, &s.entries[0], MAILDIR_FLAG_SEEN, 0, &name, &e), 0);
	free(name);
	maildir_snapshot_release(&s);
	cr_assert_eq(maildir_confirm_unchanged(&f, &m, &same, &now, &e), 0);
	cr_assert(!same, "a rename was confirmed as no change");
	scan(&f, &s);
	m = s.marker;
	maildir_snapshot_release(&s);
	cr_assert_eq(maildir_confirm_unchanged(&f, &m, &same, &now, &e), 0);
	cr_assert(same);
	cr_assert_eq(maildir_keywords_assign(&f, kw, 1, &mask, NULL, &e), 0);
	cr_assert_eq(maildir_confirm_unchanged(&f, &m, &same, &now, &e), 0);
	cr_assert(!same, "a new keyword was confirmed as no change");

	/* Past the tick, the read's marker is trusted. */
	scan(&f, &s);
	m = s.marker;
	maildir_snapshot_release(&s);
	sleep_past_tick();
	cr_assert_eq(maildir_confirm_unchanged(&f, &m, &same, &now, &e), 0);
	cr_assert(same);
	cr_assert_eq(now.trusted, 1);
	cr_assert_eq(maildir_check_unchanged(&f, &now, &same, &e), 0);
	cr_assert(same);
	maildir_folder_close(&f);
	maildir_release(&md);
}

/* ---- reading and fingerprints ---- */

Test(maildir, zero_byte_and_bare_lf_files_read_and_fingerprint)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct sync_fp_value fp, want;
	struct err e;
	int fd;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "INBOX", &f);
	touch_at(&f, "cur", "1.zero:2,", "");
	touch_at(&f, "cur", "2.lf:2,S", "Message-ID: <lf@x>\n\nbare\nlf\n");
	scan(&f, &s);
	cr_assert_eq(s.count, 2);
	cr_assert_eq(maildir_entry_open(&f, maildir_snapshot_find(&s, "1.zero"), &fd, &e), 0);
	cr_assert_eq(sync_fp_fd(fd, &fp, &e), 0);
	close(fd);
	cr_assert_eq(fp.size, 0);
	cr_assert_eq(maildir_entry_open(&f, maildir_snapshot_find(&s, "2.lf"), &fd, &e), 0);
	cr_assert_eq(sync_fp_fd(fd, &fp, &e), 0);
	close(fd);
	{
		const char *crlf = "Message-ID: <lf@x>\r\n\r\nbare\r\nlf\r\n";
		struct sync_fp_ctx c;

		cr_assert_eq(sync_fp_init(&c, &e), 0);
		sync_fp_update(&c, crlf, strlen(crlf));
		sync_fp_final(&c, &want);
	}
	cr_assert_eq(memcmp(fp.bytes, want.bytes, SYNC_FP_BYTES), 0);
	cr_assert_str_eq(fp.message_id, "<lf@x>");
	cr_assert_eq(fp.size, 32);
	cr_assert_eq(maildir_entry_remove(&f, maildir_snapshot_find(&s, "1.zero"), &e), 0);
	cr_assert_eq(maildir_entry_open(&f, maildir_snapshot_find(&s, "1.zero"), &fd, &e), 1);
	maildir_snapshot_release(&s);
	maildir_folder_close(&f);
	maildir_release(&md);
}

Test(maildir, move_across_file_systems_fails_and_keeps_the_source)
{
	char other[64] = "/dev/shm/ferry-test-maildir-XXXXXX";
	struct maildir md, md2;
	struct maildir_config cfg;
	struct maildir_folder fa, fb;
	struct maildir_snapshot s;
	struct stat st1, st2;
	struct err e;

	if (mkdtemp(other) == NULL)
		cr_skip_test("no /dev/shm");
	cfg = (struct maildir_config){ other, NULL, MAILDIR_LAYOUT_VERBATIM, '/', "h" };
	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	cr_assert_eq(maildir_open(&md2, &cfg, &e), 0);
	open_folder(&md, "A", &fa);
	open_folder(&md2, "B", &fb);
	if (fstat(fa.dir_fd, &st1) == 0 && fstat(fb.dir_fd, &st2) == 0 && st1.st_dev == st2.st_dev) {
		maildir_folder_close(&fa);
		maildir_folder_close(&fb);
		maildir_release(&md);
		maildir_release(&md2);
		nftw(other, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		cr_skip_test("/dev/shm is on the same file system");
	}
	free(deliver(&fa, "x", 0, 0, 0, false));
	scan(&fa, &s);
	cr_assert_eq(maildir_entry_move(&fa, &s.entries[0], &fb, &e), -1);
	cr_assert_eq(e.code, ERR_IO);
	cr_assert_eq(count_sub(&fa, "cur"), 1);
	cr_assert_eq(count_sub(&fb, "cur"), 0);
	maildir_snapshot_release(&s);
	maildir_folder_close(&fa);
	maildir_folder_close(&fb);
	maildir_release(&md);
	maildir_release(&md2);
	nftw(other, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- folder rename ---- */

static ino_t inode_of(const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	cr_assert_eq(stat(p, &st), 0, "no %s", p);
	return st.st_ino;
}

static bool exists_rel(const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return stat(p, &st) == 0;
}

Test(maildir, folder_rename_moves_the_directory_and_its_verbatim_children)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;
	ino_t cur, sub;

	open_md(&md, MAILDIR_LAYOUT_VERBATIM, '/');
	open_folder(&md, "A", &f);
	maildir_folder_close(&f);
	open_folder(&md, "A/x", &f);
	maildir_folder_close(&f);
	cur = inode_of("A/cur");
	sub = inode_of("A/x/cur");
	cr_assert_eq(maildir_folder_rename(&md, "A", "New/B", &e), 0, "%s", e.msg);
	cr_assert(!exists_rel("A"));
	cr_assert_eq(inode_of("New/B/cur"), cur);
	cr_assert_eq(inode_of("New/B/x/cur"), sub, "the child did not move with its parent");
	/* the source is gone now: 1, nothing done */
	cr_assert_eq(maildir_folder_rename(&md, "A", "C", &e), 1);
	cr_assert(!exists_rel("C"));
	maildir_release(&md);
}

Test(maildir, folder_rename_refuses_an_existing_target_and_inbox)
{
	struct maildir md;
	struct maildir_folder f;
	struct err e;

	open_md(&md, MAILDIR_LAYOUT_MAILDIRPP, '/');
	open_folder(&md, "A", &f);
	maildir_folder_close(&f);
	open_folder(&md, "B", &f);
	maildir_folder_close(&f);
	open_folder(&md, "A/x", &f);
	maildir_folder_close(&f);
	cr_assert_eq(maildir_folder_rename(&md, "A", "B", &e), -1);
	cr_assert_eq(e.code, ERR_IO);
	cr_assert_eq(e.sys, EEXIST);
	cr_assert(exists_rel(".A/cur") && exists_rel(".B/cur"), "a refused rename changed something");
	cr_assert_eq(maildir_folder_rename(&md, "INBOX", "Old", &e), -1);
	cr_assert_eq(e.code, ERR_PROTO);
	cr_assert_eq(maildir_folder_rename(&md, "A", "inbox", &e), -1);
	/* maildir++: the child is a folder of its own and stays */
	cr_assert_eq(maildir_folder_rename(&md, "A", "C", &e), 0, "%s", e.msg);
	cr_assert(exists_rel(".C/cur") && !exists_rel(".A"));
	cr_assert(exists_rel(".A.x/cur"), "a maildir++ child moved");
	maildir_release(&md);
}
