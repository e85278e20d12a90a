/*
 * bench_floor - the raw floor of ferry's benchmark: the least work any
 * client can do to copy a mailbox.  See bench/README.md.
 *
 *   bench_floor -p PORT -u USER -w PASSFILE [-o DIR] [-s | -S] FOLDER[=FROMUID]...
 *
 * Connects to 127.0.0.1:PORT without TLS, logs in, and for each FOLDER
 * sends one SELECT and one "UID FETCH FROMUID:* (FLAGS BODY.PEEK[])"
 * (FROMUID defaults to 1), writing every body to its own file
 * DIR/<folder index>/<n> (open, write, close; no fsync).  With -s it sends
 * one "STATUS FOLDER (MESSAGES UIDNEXT UIDVALIDITY)" per folder instead: the
 * least a "nothing to do" sync can cost without CONDSTORE tricks.  With -S
 * the files are made durable before it exits, the cheapest way we know of:
 * one syncfs() of DIR's file system after the last body (every file's data
 * and directory entry at once, one cache flush), where ferry must also
 * record each message and move it from tmp/ into place.  That is only a
 * reference for ferry's durability (bench/README.md); the floor without -S
 * stays the one issue 6 judges against.
 *
 * A tight standalone client: one 1 MiB read buffer, literals written
 * straight from it, no parsing beyond line ends and literal sizes.  Prints
 * "messages N bytes N" on stdout; exits non-zero on any error or a tagged
 * NO/BAD.  It trusts nothing it reads: lines and literals are bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define RBUF_SIZE (1u << 20)
#define LINE_MAX_LEN 65536u
#define LITERAL_MAX (4ull << 30)

struct reader {
	int fd;
	char *buf;
	size_t start, end;
};

struct floor_run {
	struct reader r;
	const char *dir;
	unsigned long long messages, bytes;
	unsigned tag;
};

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("bench_floor: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("cannot send: %s", strerror(errno));
		}
		s += w;
		n -= (size_t)w;
	}
}

/* Read more bytes after r->end; compacts first.  Dies at EOF. */
static void fill(struct reader *r)
{
	ssize_t n;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == RBUF_SIZE)
		die("line longer than %u bytes", LINE_MAX_LEN);
	do
		n = read(r->fd, r->buf + r->end, RBUF_SIZE - r->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die("cannot receive: %s", strerror(errno));
	if (n == 0)
		die("the server closed the connection");
	r->end += (size_t)n;
}

/* The next line without its CRLF, NUL-terminated in the buffer; valid until the next read. */
static char *read_line(struct reader *r, size_t *len_out)
{
	for (;;) {
		char *p = memchr(r->buf + r->start, '\n', r->end - r->start);

		if (p != NULL) {
			char *line = r->buf + r->start;
			size_t len = (size_t)(p - line);

			r->start += len + 1;
			if (len > 0 && line[len - 1] == '\r')
				len--;
			line[len] = '\0';
			*len_out = len;
			return line;
		}
		if (r->end - r->start > LINE_MAX_LEN)
			die("line longer than %u bytes", LINE_MAX_LEN);
		fill(r);
	}
}

/* A literal announced at the end of a line ("{N}"), or -1. */
static long long literal_size(const char *line, size_t len)
{
	size_t i;
	unsigned long long n = 0;

	if (len < 3 || line[len - 1] != '}')
		return -1;
	i = len - 1;
	if (line[i - 1] == '+')
		i--;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == 0 || line[i - 1] != '{' || i == len - 1)
		return -1;
	for (; line[i] >= '0' && line[i] <= '9'; i++) {
		n = n * 10 + (unsigned)(line[i] - '0');
		if (n > LITERAL_MAX)
			die("literal larger than %llu bytes", LITERAL_MAX);
	}
	return (long long)n;
}

/* Copy n literal bytes to fd (or drop them when fd < 0). */
static void take_literal(struct reader *r, unsigned long long n, int fd)
{
	while (n > 0) {
		size_t have = r->end - r->start, k;

		if (have == 0) {
			r->start = r->end = 0;
			fill(r);
			have = r->end;
		}
		k = have < n ? have : (size_t)n;
		if (fd >= 0) {
			const char *p = r->buf + r->start;
			size_t left = k;

			while (left > 0) {
				ssize_t w = write(fd, p, left);

				if (w < 0) {
					if (errno == EINTR)
						continue;
					die("cannot write a message file: %s", strerror(errno));
				}
				p += w;
				left -= (size_t)w;
			}
		}
		r->start += k;
		n -= k;
	}
}

/*
 * Send one command and read to its tagged answer.  Literals in untagged
 * responses become files in folder_dir (when not NULL).
 */
static void command(struct floor_run *fr, const char *folder_dir, const char *fmt, ...)
{
	char cmd[4096], tag[16];
	size_t len, taglen;
	va_list ap;
	int n;

	snprintf(tag, sizeof(tag), "a%u", ++fr->tag);
	taglen = strlen(tag);
	n = snprintf(cmd, sizeof(cmd), "%s ", tag);
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd) - 2)
		die("command too long");
	memcpy(cmd + n, "\r\n", 2);
	send_all(fr->r.fd, cmd, (size_t)n + 2);
	for (;;) {
		char *line = read_line(&fr->r, &len);
		long long lit;

		if (strncmp(line, tag, taglen) == 0 && line[taglen] == ' ') {
			if (strncmp(line + taglen + 1, "OK", 2) != 0)
				die("\"%.*s\" failed: %s", (int)strcspn(cmd, "\r"), cmd, line);
			return;
		}
		while ((lit = literal_size(line, len)) >= 0) {
			int fd = -1;

			if (folder_dir != NULL) {
				char path[4096];

				snprintf(path, sizeof(path), "%s/%llu", folder_dir, fr->messages);
				fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
				if (fd < 0)
					die("cannot create \"%s\": %s", path, strerror(errno));
				fr->messages++;
				fr->bytes += (unsigned long long)lit;
			}
			take_literal(&fr->r, (unsigned long long)lit, fd);
			if (fd >= 0 && close(fd) < 0)
				die("cannot close a message file: %s", strerror(errno));
			line = read_line(&fr->r, &len);     /* the rest of the response */
		}
	}
}

static int dial(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot connect to 127.0.0.1:%d: %s", port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static char *read_secret(const char *path)
{
	static char pw[256];
	FILE *f = fopen(path, "r");

	if (f == NULL || fgets(pw, sizeof(pw), f) == NULL)
		die("cannot read the password file \"%s\"", path);
	fclose(f);
	pw[strcspn(pw, "\r\n")] = '\0';
	if (strpbrk(pw, "\"\\") != NULL)
		die("the password must not hold quotes or backslashes");
	return pw;
}

int main(int argc, char **argv)
{
	struct floor_run fr = { 0 };
	const char *user = NULL, *pwfile = NULL;
	int port = 0, opt, status_only = 0, durable = 0;
	size_t len;

	while ((opt = getopt(argc, argv, "p:u:w:o:sS")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'u': user = optarg; break;
		case 'w': pwfile = optarg; break;
		case 'o': fr.dir = optarg; break;
		case 's': status_only = 1; break;
		case 'S': durable = 1; break;
		default: return 2;
		}
	}
	if (port <= 0 || user == NULL || pwfile == NULL || optind == argc ||
	    (!status_only && fr.dir == NULL) || (status_only && durable)) {
		fprintf(stderr, "usage: bench_floor -p PORT -u USER -w PASSFILE [-o DIR] [-s | -S] FOLDER[=FROMUID]...\n");
		return 2;
	}
	fr.r.buf = malloc(RBUF_SIZE + 1);
	if (fr.r.buf == NULL)
		die("out of memory");
	fr.r.fd = dial(port);
	read_line(&fr.r, &len);                     /* the greeting */
	command(&fr, NULL, "LOGIN \"%s\" \"%s\"", user, read_secret(pwfile));
	for (int i = optind; i < argc; i++) {
		char name[1024], sub[4200];
		const char *eq = strrchr(argv[i], '=');
		unsigned long from = 1;
		size_t nlen = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);

		if (nlen >= sizeof(name))
			die("folder name too long");
		memcpy(name, argv[i], nlen);
		name[nlen] = '\0';
		if (eq)
			from = strtoul(eq + 1, NULL, 10);
		if (strpbrk(name, "\"\\") != NULL)
			die("folder names must not hold quotes or backslashes");
		if (status_only) {
			command(&fr, NULL, "STATUS \"%s\" (MESSAGES UIDNEXT UIDVALIDITY)", name);
			continue;
		}
		snprintf(sub, sizeof(sub), "%s/%d", fr.dir, i - optind);
		if (mkdir(sub, 0700) < 0 && errno != EEXIST)
			die("cannot create \"%s\": %s", sub, strerror(errno));
		command(&fr, NULL, "SELECT \"%s\"", name);
		command(&fr, sub, "UID FETCH %lu:* (FLAGS BODY.PEEK[])", from ? from : 1);
	}
	command(&fr, NULL, "LOGOUT");
	close(fr.r.fd);
	if (durable) {
		int dfd = open(fr.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0 || syncfs(dfd) < 0)
			die("cannot sync \"%s\": %s", fr.dir, strerror(errno));
		close(dfd);
	}
	free(fr.r.buf);
	printf("messages %llu bytes %llu\n", fr.messages, fr.bytes);
	return 0;
}
