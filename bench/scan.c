/*
 * bench_scan - how fast does ferry notice what changed in a big Maildir
 * folder?  See bench/README.md.
 *
 *   bench_scan [-n COUNT] [-r RUNS] [-k] [DIR]
 *
 * Creates a verbatim Maildir in DIR (default: a new folder under $TMPDIR or
 * /tmp) with one folder of COUNT (100000) messages in cur/, then reports the
 * median wall time of RUNS (5) runs of:
 *   find          `find FOLDER -type f | wc -l` (a shell pipeline)
 *   readdir       a bare opendir/readdir loop over cur/ and new/
 *   marker        maildir_check_unchanged() with the last scan's marker
 *   scan          maildir_scan(): a full snapshot
 *   scan+diff     maildir_scan() + maildir_diff() against the known records
 * then renames 1000 files (toggles F) and times scan+diff again,
 * checking that exactly those 1000 are reported.  -k keeps DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "err.h"
#include "maildir.h"
#include "xalloc.h"

#define RUNS_MAX 101
#define RENAMED 1000

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* CPU time (user + system) of this process, or of its waited-for children. */
static double cpu_ms(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, const struct err *e)
{
	fprintf(stderr, "bench_scan: %s: %s\n", what, e != NULL ? e->msg : strerror(errno));
	exit(1);
}

static long count_find(const char *dir)
{
	char *cmd = xasprintf("find '%s' -type f | wc -l", dir);
	FILE *p = popen(cmd, "r");
	long n = -1;

	if (p == NULL || fscanf(p, "%ld", &n) != 1)
		die("find", NULL);
	pclose(p);
	free(cmd);
	return n;
}

static long count_readdir(const char *dir)
{
	static const char *subs[] = { "cur", "new" };
	long n = 0;

	for (int i = 0; i < 2; i++) {
		char *p = xasprintf("%s/%s", dir, subs[i]);
		DIR *d = opendir(p);
		struct dirent *de;

		if (d == NULL)
			die("opendir", NULL);
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				n++;
		closedir(d);
		free(p);
	}
	return n;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Copy the snapshot into "known" records, as the state would hold them. */
static struct maildir_known *known_from(const struct maildir_snapshot *s, struct arena *a)
{
	struct maildir_known *k = ARENA_NEW_ARRAY(a, struct maildir_known, s->count + 1);

	for (size_t i = 0; i < s->count; i++) {
		k[i].uniq = arena_strdup(a, s->entries[i].uniq);
		k[i].flags = s->entries[i].flags;
	}
	return k;
}

static void create_messages(struct maildir_folder *f, long count)
{
	char name[128];

	for (long i = 0; i < count; i++) {
		int fd;

		snprintf(name, sizeof(name), "%ld.M%06ldP4242Q%ldR%016lx.bench.host,S=0:2,S",
			 1700000000L + i / 100, i % 1000000, i, (unsigned long)i * 2654435761u);
		fd = openat(f->cur_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			die("create", NULL);
		close(fd);
	}
}

int main(int argc, char **argv)
{
	struct maildir md;
	struct maildir_folder f;
	struct maildir_snapshot s;
	struct maildir_change *ch;
	struct maildir_known *known;
	struct arena ka, da;
	struct err e;
	double t_find[RUNS_MAX], t_readdir[RUNS_MAX], t_marker[RUNS_MAX], t_scan[RUNS_MAX];
	double t_diff[RUNS_MAX], t_renamed[RUNS_MAX];
	double c_find[RUNS_MAX], c_readdir[RUNS_MAX], c_scan[RUNS_MAX], c_diff[RUNS_MAX];
	double c_renamed[RUNS_MAX], c0;
	long count = 100000, found = 0;
	int runs = 5, opt;
	bool keep = false, made = false;
	char dir[512];
	size_t nch = 0, known_count;

	while ((opt = getopt(argc, argv, "n:r:k")) != -1) {
		if (opt == 'n')
			count = atol(optarg);
		else if (opt == 'r')
			runs = atoi(optarg);
		else if (opt == 'k')
			keep = true;
		else
			return 2;
	}
	if (count < RENAMED || runs < 1 || runs > RUNS_MAX) {
		fprintf(stderr, "bench_scan: need -n >= %d and 1 <= -r <= %d\n", RENAMED, RUNS_MAX);
		return 2;
	}
	if (optind < argc) {
		snprintf(dir, sizeof(dir), "%s", argv[optind]);
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/ferry-bench-scan-XXXXXX", tmp ? tmp : "/tmp");
		if (mkdtemp(dir) == NULL)
			die("mkdtemp", NULL);
		made = true;
	}
	struct maildir_config cfg = { dir, NULL, MAILDIR_LAYOUT_VERBATIM, '/', "bench.host" };

	if (maildir_open(&md, &cfg, &e) < 0)
		die("open", &e);
	if (maildir_folder_open(&md, "INBOX", true, &f, &e) < 0)
		die("folder", &e);
	printf("folder %s, %ld messages, %d runs, warm cache\n", f.path, count, runs);
	if (count_readdir(f.path) == 0) {
		double t0 = now_ms();

		create_messages(&f, count);
		printf("created in %.0f ms\n", now_ms() - t0);
	}
	/* Let the directory times age past the marker's tick. */
	sleep(3);

	if (maildir_scan(&f, &s, &e) < 0)
		die("scan", &e);
	if (!s.marker.trusted)
		fprintf(stderr, "bench_scan: warning: marker not trusted\n");
	arena_init(&ka, 1 << 20);
	known = known_from(&s, &ka);
	known_count = s.count;
	struct maildir_scan_marker marker = s.marker;

	maildir_snapshot_release(&s);

	for (int r = 0; r < runs; r++) {
		double t0 = now_ms();
		bool same;

		c0 = cpu_ms(RUSAGE_CHILDREN);
		found = count_find(f.path);
		t_find[r] = now_ms() - t0;
		c_find[r] = cpu_ms(RUSAGE_CHILDREN) - c0;
		t0 = now_ms();
		c0 = cpu_ms(RUSAGE_SELF);
		if (count_readdir(f.path) != count)
			die("readdir count", NULL);
		t_readdir[r] = now_ms() - t0;
		c_readdir[r] = cpu_ms(RUSAGE_SELF) - c0;
		t0 = now_ms();
		if (maildir_check_unchanged(&f, &marker, &same, &e) < 0)
			die("check", &e);
		t_marker[r] = now_ms() - t0;
		if (!same)
			die("marker says changed", NULL);
		t0 = now_ms();
		c0 = cpu_ms(RUSAGE_SELF);
		if (maildir_scan(&f, &s, &e) < 0)
			die("scan", &e);
		t_scan[r] = now_ms() - t0;
		c_scan[r] = cpu_ms(RUSAGE_SELF) - c0;
		maildir_snapshot_release(&s);
		t0 = now_ms();
		c0 = cpu_ms(RUSAGE_SELF);
		if (maildir_scan(&f, &s, &e) < 0)
			die("scan", &e);
		arena_init(&da, 0);
		maildir_diff(&s, known, known_count, &da, &ch, &nch);
		t_diff[r] = now_ms() - t0;
		c_diff[r] = cpu_ms(RUSAGE_SELF) - c0;
		if (nch != 0)
			die("unexpected changes", NULL);
		arena_release(&da);
		maildir_snapshot_release(&s);
	}
	if (found != count)
		fprintf(stderr, "bench_scan: find counted %ld\n", found);

	/* Rename RENAMED files: toggle \Flagged. */
	if (maildir_scan(&f, &s, &e) < 0)
		die("scan", &e);
	for (size_t i = 0; i < RENAMED; i++) {
		const struct maildir_entry *ent = &s.entries[i * (s.count / RENAMED)];

		if (maildir_entry_set_flags(&f, ent, ent->flags ^ MAILDIR_FLAG_FLAGGED, 0, NULL, &e) != 0)
			die("rename", &e);
	}
	maildir_snapshot_release(&s);
	for (int r = 0; r < runs; r++) {
		bool same;
		double t0;

		if (maildir_check_unchanged(&f, &marker, &same, &e) < 0 || same)
			die("marker missed the renames", &e);
		t0 = now_ms();
		c0 = cpu_ms(RUSAGE_SELF);
		if (maildir_scan(&f, &s, &e) < 0)
			die("scan", &e);
		arena_init(&da, 0);
		maildir_diff(&s, known, known_count, &da, &ch, &nch);
		t_renamed[r] = now_ms() - t0;
		c_renamed[r] = cpu_ms(RUSAGE_SELF) - c0;
		for (size_t i = 0; i < nch; i++)
			if (ch[i].kind != MAILDIR_CHANGE_FLAGS ||
			    ch[i].entry->flags != (known[ch[i].known_index].flags ^ MAILDIR_FLAG_FLAGGED))
				die("wrong change reported", NULL);
		if (nch != RENAMED) {
			fprintf(stderr, "bench_scan: %zu changes reported, expected %d\n", nch, RENAMED);
			return 1;
		}
		arena_release(&da);
		maildir_snapshot_release(&s);
	}

	printf("%-34s %10s %10s\n", "median of runs", "wall ms", "cpu ms");
	printf("%-34s %10.2f %10.2f\n", "find DIR -type f | wc -l", median(t_find, runs),
	       median(c_find, runs));
	printf("%-34s %10.2f %10.2f\n", "bare readdir of cur/ + new/", median(t_readdir, runs),
	       median(c_readdir, runs));
	printf("%-34s %10.3f %10s\n", "unchanged check (marker)", median(t_marker, runs), "-");
	printf("%-34s %10.2f %10.2f\n", "full scan", median(t_scan, runs), median(c_scan, runs));
	printf("%-34s %10.2f %10.2f\n", "scan + diff, no change", median(t_diff, runs),
	       median(c_diff, runs));
	printf("%-34s %10.2f %10.2f   (%zu flag changes reported)\n", "scan + diff, 1000 renamed",
	       median(t_renamed, runs), median(c_renamed, runs), nch);
	arena_release(&ka);
	maildir_folder_close(&f);
	maildir_release(&md);
	if (made && !keep)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
