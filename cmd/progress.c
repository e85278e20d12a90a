#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"

bool progress_wanted(const struct cli *cli, int fd)
{
	const char *term = getenv("TERM");

	if (cli->json || cli->verbosity != 0 || cli->dry_run)
		return false;
	if (term != NULL && strcmp(term, "dumb") == 0)
		return false;
	return isatty(fd) == 1;
}

static void clear_cb(void *ctx)
{
	progress_clear(ctx);
}

void progress_init(struct progress *p, int fd, bool enabled)
{
	const char *knob = getenv("FERRY_PROGRESS_INTERVAL_MS");

	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->enabled = enabled;
	p->interval_ms = PROGRESS_INTERVAL_MS;
	if (knob != NULL && *knob != '\0') {
		char *end;
		unsigned long v = strtoul(knob, &end, 10);

		if (*end == '\0' && v <= 60000)
			p->interval_ms = (unsigned)v;
	}
	if (enabled)
		log_set_before_line(clear_cb, p);
}

void progress_release(struct progress *p)
{
	progress_clear(p);
	if (p->enabled)
		log_set_before_line(NULL, NULL);
}

void progress_begin(struct progress *p, const char *account)
{
	p->account = account;
	p->started = false;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, s, n);

		if (k <= 0)
			return;         /* a terminal that went away: nothing to save */
		s += k;
		n -= (size_t)k;
	}
}

void progress_clear(struct progress *p)
{
	static const char erase[] = "\r\033[K";

	if (!p->shown)
		return;
	write_all(p->fd, erase, sizeof(erase) - 1);
	p->shown = false;
}

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static unsigned term_width(int fd)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return PROGRESS_DEFAULT_WIDTH;
}

void progress_event(void *ctx, const struct sync_progress *sp)
{
	struct progress *p = ctx;
	char line[1024];
	struct timespec now;
	size_t n;

	if (!p->enabled)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!p->started) {
		p->started = true;
		p->t0 = p->last = now;
		if (p->interval_ms > 0)
			return;
	}
	if (since(&p->last, &now) * 1000.0 < (double)p->interval_ms)
		return;
	p->last = now;
	memcpy(line, "\r", 1);
	n = 1 + progress_format(p->account, sp, since(&p->t0, &now), term_width(p->fd), line + 1,
				sizeof(line) - 1);
	if (n + 3 < sizeof(line)) {
		memcpy(line + n, "\033[K", 3);
		n += 3;
	}
	write_all(p->fd, line, n);
	p->shown = true;
}

void progress_bytes(uint64_t n, char *out, size_t size)
{
	double v = (double)n;

	if (n >= 1ull << 30)
		snprintf(out, size, "%.1f GB", v / (double)(1ull << 30));
	else if (n >= 10ull << 20)
		snprintf(out, size, "%.0f MB", v / (double)(1ull << 20));
	else if (n >= 1ull << 20)
		snprintf(out, size, "%.1f MB", v / (double)(1ull << 20));
	else if (n >= 1ull << 10)
		snprintf(out, size, "%.0f KB", v / (double)(1ull << 10));
	else
		snprintf(out, size, "%llu B", (unsigned long long)n);
}

/* Bytes in the UTF-8 character at u (1 for a byte that starts none). */
static size_t char_len(const unsigned char *u)
{
	size_t len = *u >= 0xf0 && *u <= 0xf4 ? 4 : *u >= 0xe0 ? 3 : *u >= 0xc2 ? 2 : 1;

	for (size_t i = 1; i < len; i++)
		if ((u[i] & 0xc0) != 0x80)
			return 1;
	return len;
}

/*
 * Append s to out[n..size), whole characters only, at most *cols of them;
 * control characters and stray bytes become '?'.  Returns the new length.
 */
static size_t put_text(char *out, size_t size, size_t n, const char *s, size_t *cols)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u && *cols > 0) {
		size_t len = char_len(u);

		if (n + len >= size)
			break;
		if (len == 1) {
			out[n++] = *u < 0x20 || *u >= 0x7f ? '?' : (char)*u;
		} else {
			memcpy(out + n, u, len);
			n += len;
		}
		u += len;
		--*cols;
	}
	out[n] = '\0';
	return n;
}

size_t progress_format(const char *account, const struct sync_progress *sp, double seconds,
		       unsigned width, char *out, size_t size)
{
	char done[32], total[32], rate[32], head[160];
	size_t cols = width > 1 ? width - 1 : 0;
	size_t n = 0;

	progress_bytes(sp->bytes_done, done, sizeof(done));
	if (sp->bytes_total > 0) {
		progress_bytes(sp->bytes_total, total, sizeof(total));
		snprintf(head, sizeof(head), "%s %zu/%zu msgs  %s/%s", sp->upload ? "pushing" : "pulling",
			 sp->msgs_done, sp->msgs_total, done, total);
	} else {
		snprintf(head, sizeof(head), "%s %zu/%zu msgs  %s", sp->upload ? "pushing" : "pulling",
			 sp->msgs_done, sp->msgs_total, done);
	}
	n = put_text(out, size, n, head, &cols);
	if (seconds >= 0.1) {
		progress_bytes((uint64_t)((double)sp->bytes_done / seconds), rate, sizeof(rate));
		snprintf(head, sizeof(head), "  %s/s", rate);
		n = put_text(out, size, n, head, &cols);
	}
	n = put_text(out, size, n, "  ", &cols);
	n = put_text(out, size, n, account ? account : "", &cols);
	if (sp->mailbox) {
		n = put_text(out, size, n, "/", &cols);
		n = put_text(out, size, n, sp->mailbox, &cols);
	}
	while (n > 0 && out[n - 1] == ' ')      /* a cut right after a gap */
		out[--n] = '\0';
	return n;
}
