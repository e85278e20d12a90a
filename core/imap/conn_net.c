/*
 * conn_net.c - the bottom of an IMAP connection: resolving and connecting
 * with a timeout, the GnuTLS session and its certificate checks (trust
 * store, host name, CA file, SHA-256 pin), and the deflate streams.
 */
#include "conn_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

/* ---- TCP ------------------------------------------------------------------ */

static bool addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_UNIX)
		return true;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		const uint8_t *a = in6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && a[12] == 127;
	}
	return false;
}

static void note_peer(struct imap_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	c->local_peer = !c->assume_remote &&
			getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0 &&
			addr_is_loopback(&ss);
}

bool imap_conn_peer_is_local(const struct imap_conn *c)
{
	return c->local_peer;
}

/* Poll one fd for events until the connection's timeout; 1 ready, 0 timed out, -1 error. */
static int poll_one(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { fd, events, 0 };
		int64_t left = deadline - clock_now_ms();
		int rc;

		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* Connect one address: 0 connected (fd set), -1 with e filled. */
static int connect_addr(struct imap_conn *c, const struct addrinfo *ai, struct err *e)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	int soerr = 0, one = 1, rc;
	socklen_t len = sizeof(soerr);

	if (fd < 0)
		return err_sys(e, ERR_NET, errno, "cannot create a socket");
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			err_sys(e, ERR_NET, errno, "cannot connect to \"%s\" port %u", c->host, c->port);
			close(fd);
			return -1;
		}
		rc = poll_one(fd, POLLOUT, clock_now_ms() + c->timeout_ms);
		if (rc <= 0) {
			if (rc == 0)
				err_set(e, ERR_TIMEOUT, "connecting to \"%s\" port %u timed out after %u s",
					c->host, c->port, (c->timeout_ms + 999) / 1000);
			else
				err_sys(e, ERR_NET, errno, "cannot connect to \"%s\"", c->host);
			close(fd);
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
			err_sys(e, ERR_NET, soerr ? soerr : errno, "cannot connect to \"%s\" port %u",
				c->host, c->port);
			close(fd);
			return -1;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	return 0;
}

static int tcp_connect(struct imap_conn *c, struct err *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", c->port);
	rc = getaddrinfo(c->host, port, &hints, &res);
	if (rc != 0) {
		err_set(e, ERR_NET, "cannot resolve \"%s\": %s", c->host, gai_strerror(rc));
		e->retry = true;
		return -1;
	}
	rc = -1;
	for (ai = res; ai && rc < 0; ai = ai->ai_next) {
		rc = connect_addr(c, ai, e);
		if (rc < 0)
			log_debug(LOG_CAT_NET, "%s", e->msg);
	}
	freeaddrinfo(res);
	if (rc < 0)
		e->retry = true;
	return rc;
}

int imap_conn_attach_fd(struct imap_conn *c, int fd, struct err *e)
{
	int fl = fcntl(fd, F_GETFL);

	if (c->state != IMAP_CONN_IDLE)
		return err_set(e, ERR_INTERNAL, "connection already started");
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return err_sys(e, ERR_NET, errno, "cannot make the socket non-blocking");
	c->fd = fd;
	note_peer(c);
	c->last_activity = clock_now_ms();
	conn_set_state(c, IMAP_CONN_GREETING);
	return 0;
}

int imap_conn_connect(struct imap_conn *c, struct err *e)
{
	if (c->state != IMAP_CONN_IDLE)
		return err_set(e, ERR_INTERNAL, "connection already started");
	conn_set_state(c, IMAP_CONN_CONNECTING);
	if (tcp_connect(c, e) < 0)
		return conn_fail(c, e);
	note_peer(c);
	log_debug(LOG_CAT_NET, "connected to \"%s\" port %u", c->host, c->port);
	if (c->tls_mode == IMAP_TLS_IMPLICIT && conn_tls_handshake(c, e) < 0)
		return conn_fail(c, e);
	c->last_activity = clock_now_ms();
	conn_set_state(c, IMAP_CONN_GREETING);
	return 0;
}

void conn_transport_close(struct imap_conn *c)
{
	if (c->session) {
		if (c->fd >= 0 && c->tls)
			gnutls_bye(c->session, GNUTLS_SHUT_WR);     /* best effort, non-blocking */
		gnutls_deinit(c->session);
		c->session = NULL;
	}
	if (c->cred) {
		gnutls_certificate_free_credentials(c->cred);
		c->cred = NULL;
	}
	if (c->zactive) {
		inflateEnd(&c->zin);
		deflateEnd(&c->zout);
		c->zactive = false;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

/* ---- reading and writing ---------------------------------------------- */

ssize_t conn_transport_read(struct imap_conn *c, char *p, size_t n, struct err *e)
{
	ssize_t r;

	if (!c->tls) {
		r = recv(c->fd, p, n, 0);
		if (r > 0)
			return r;
		if (r == 0)
			return CONN_EOF;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		err_sys(e, ERR_NET, errno, "cannot read from \"%s\"", c->host);
		e->retry = true;
		return -1;
	}
	r = gnutls_record_recv(c->session, p, n);
	if (r > 0)
		return r;
	if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION)
		return CONN_EOF;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)r))
		return 0;
	err_set(e, ERR_TLS, "TLS error reading from \"%s\": %s", c->host,
		gnutls_strerror((int)r));
	e->lib = (int)r;
	return -1;
}

ssize_t conn_transport_write(struct imap_conn *c, const char *p, size_t n, struct err *e)
{
	ssize_t r;

	if (!c->tls) {
		r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		err_sys(e, ERR_NET, errno, "cannot write to \"%s\"", c->host);
		e->retry = true;
		return -1;
	}
	/* After GNUTLS_E_AGAIN, GnuTLS wants the same call again: it holds the data. */
	if (c->tls_wpending)
		r = gnutls_record_send(c->session, NULL, 0);
	else
		r = gnutls_record_send(c->session, p, n);
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
		if (!c->tls_wpending)
			c->tls_wpending = n;
		return 0;
	}
	c->tls_wpending = 0;
	if (r >= 0)
		return r;
	err_set(e, ERR_TLS, "TLS error writing to \"%s\": %s", c->host, gnutls_strerror((int)r));
	e->lib = (int)r;
	return -1;
}

bool conn_transport_wants_write(const struct imap_conn *c)
{
	return c->tls_wpending > 0;
}

bool conn_transport_has_pending(const struct imap_conn *c)
{
	return c->tls && c->session && gnutls_record_check_pending(c->session) > 0;
}

/* ---- TLS -------------------------------------------------------------------- */

static bool host_is_ip_literal(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* "sha256:AB:CD:..." of the peer's certificate into c->fingerprint; false if none. */
static bool peer_fingerprint(struct imap_conn *c)
{
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(c->session, &n);
	unsigned char md[32];
	size_t i, pos;

	c->fingerprint[0] = '\0';
	if (certs == NULL || n == 0)
		return false;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, md) < 0)
		return false;
	pos = (size_t)snprintf(c->fingerprint, sizeof(c->fingerprint), "sha256:");
	for (i = 0; i < sizeof(md); i++)
		pos += (size_t)snprintf(c->fingerprint + pos, sizeof(c->fingerprint) - pos, "%s%02X",
					i ? ":" : "", md[i]);
	return true;
}

/* Normalise a configured pin to 64 upper-case hex digits; -1 if malformed. */
static int pin_normalise(const char *pin, char hex_out[65])
{
	size_t n = 0;

	if (strncasecmp(pin, "sha256:", 7) == 0)
		pin += 7;
	for (; *pin; pin++) {
		if (*pin == ':' || *pin == ' ')
			continue;
		if (!isxdigit((unsigned char)*pin) || n == 64)
			return -1;
		hex_out[n++] = (char)toupper((unsigned char)*pin);
	}
	hex_out[n] = '\0';
	return n == 64 ? 0 : -1;
}

static int check_pin(struct imap_conn *c, struct err *e)
{
	char want[65], got[65];

	if (pin_normalise(c->pinned, want) < 0)
		return err_set(e, ERR_CONFIG, "tls_fingerprint \"%.120s\" is not a SHA-256 "
			       "fingerprint (sha256: and 64 hex digits)", c->pinned);
	if (!peer_fingerprint(c) || pin_normalise(c->fingerprint, got) < 0)
		return err_set(e, ERR_TLS, "server \"%s\" sent no certificate", c->host);
	if (strcmp(want, got) != 0)
		return err_set(e, ERR_TLS, "certificate for \"%s\" does not match the pinned "
			       "fingerprint: expected %s, got %s", c->host, c->pinned, c->fingerprint);
	log_info("certificate for \"%s\" accepted by its pinned fingerprint", c->host);
	return 0;
}

/* The reasons in a verification status, as words. */
static void status_reasons(unsigned status, char *out, size_t size)
{
	static const struct { unsigned bit; const char *text; } reasons[] = {
		{ GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not found" },
		{ GNUTLS_CERT_UNEXPECTED_OWNER, "issued for another name" },
		{ GNUTLS_CERT_EXPIRED, "expired" },
		{ GNUTLS_CERT_NOT_ACTIVATED, "not yet valid" },
		{ GNUTLS_CERT_REVOKED, "revoked" },
		{ GNUTLS_CERT_SIGNER_NOT_CA, "signer is not a CA" },
		{ GNUTLS_CERT_INSECURE_ALGORITHM, "insecure algorithm" },
		{ GNUTLS_CERT_SIGNATURE_FAILURE, "bad signature" },
		{ GNUTLS_CERT_PURPOSE_MISMATCH, "not for TLS servers" },
	};
	size_t i, pos = 0;

	out[0] = '\0';
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]) && pos < size; i++)
		if (status & reasons[i].bit)
			pos += (size_t)snprintf(out + pos, size - pos, "%s%s", pos ? ", " : "",
						reasons[i].text);
	if (out[0] == '\0')
		snprintf(out, size, "verification failed (status 0x%x)", status);
}

static int cert_error(struct imap_conn *c, struct err *e)
{
	unsigned status = gnutls_session_get_verify_cert_status(c->session);
	char why[256];

	status_reasons(status, why, sizeof(why));
	if (peer_fingerprint(c))
		err_set(e, ERR_TLS, "certificate for \"%s\" is not trusted: %s; set tls_ca_file "
			"or tls_fingerprint: %s", c->host, why, c->fingerprint);
	else
		err_set(e, ERR_TLS, "certificate for \"%s\" is not trusted: %s", c->host, why);
	e->lib = GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
	return -1;
}

static int tls_error(struct imap_conn *c, int rc, const char *what, struct err *e)
{
	err_set(e, ERR_TLS, "TLS %s with \"%s\" failed: %s", what, c->host, gnutls_strerror(rc));
	e->lib = rc;
	return -1;
}

static int tls_setup(struct imap_conn *c, struct err *e)
{
	int rc = gnutls_certificate_allocate_credentials(&c->cred);

	if (rc < 0)
		return tls_error(c, rc, "set-up", e);
	rc = gnutls_certificate_set_x509_system_trust(c->cred);
	if (rc < 0)
		log_warn("cannot load the system's trusted certificates: %s", gnutls_strerror(rc));
	if (c->ca_file) {
		rc = gnutls_certificate_set_x509_trust_file(c->cred, c->ca_file, GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			err_set(e, ERR_TLS, "cannot load tls_ca_file \"%s\": %s", c->ca_file,
				rc == 0 ? "no certificate in it" : gnutls_strerror(rc));
			e->lib = rc;
			return -1;
		}
	}
	rc = gnutls_init(&c->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc < 0)
		return tls_error(c, rc, "set-up", e);
	if ((rc = gnutls_set_default_priority(c->session)) < 0 ||
	    (rc = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, c->cred)) < 0)
		return tls_error(c, rc, "set-up", e);
	if (!host_is_ip_literal(c->host) &&
	    (rc = gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, c->host,
					 strlen(c->host))) < 0)
		return tls_error(c, rc, "set-up", e);
	/* With a pin, the pin decides (after the handshake); else GnuTLS verifies. */
	if (c->pinned == NULL)
		gnutls_session_set_verify_cert(c->session, c->host, 0);
	gnutls_transport_set_int(c->session, c->fd);
	return 0;
}

int conn_tls_handshake(struct imap_conn *c, struct err *e)
{
	int64_t deadline = clock_now_ms() + c->timeout_ms;
	int rc;

	conn_set_state(c, IMAP_CONN_HANDSHAKE);
	if (tls_setup(c, e) < 0)
		return -1;
	for (;;) {
		rc = gnutls_handshake(c->session);
		if (rc == GNUTLS_E_SUCCESS)
			break;
		if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
			return cert_error(c, e);
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal(rc))
			return tls_error(c, rc, "handshake", e);
		rc = poll_one(c->fd, gnutls_record_get_direction(c->session) ? POLLOUT : POLLIN,
			      deadline);
		if (rc == 0)
			return err_set(e, ERR_TIMEOUT, "TLS handshake with \"%s\" timed out after %u s",
				       c->host, (c->timeout_ms + 999) / 1000);
		if (rc < 0)
			return err_sys(e, ERR_NET, errno, "poll");
	}
	if (c->pinned && check_pin(c, e) < 0)
		return -1;
	if (c->pinned == NULL)
		peer_fingerprint(c);
	c->tls = true;
	log_debug(LOG_CAT_NET, "TLS with \"%s\": %s, certificate %s", c->host,
		  gnutls_protocol_get_name(gnutls_protocol_get_version(c->session)),
		  c->fingerprint);
	return 0;
}

/* ---- deflate (RFC 4978: raw deflate, a sync flush per write batch) -------- */

int conn_zlib_init(struct imap_conn *c, struct err *e)
{
	memset(&c->zin, 0, sizeof(c->zin));
	memset(&c->zout, 0, sizeof(c->zout));
	if (inflateInit2(&c->zin, -15) != Z_OK)
		return err_set(e, ERR_INTERNAL, "cannot start inflate");
	if (deflateInit2(&c->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&c->zin);
		return err_set(e, ERR_INTERNAL, "cannot start deflate");
	}
	c->zactive = true;
	return 0;
}

int conn_deflate(struct imap_conn *c, const char *p, size_t n, struct err *e)
{
	z_stream *z = &c->zout;

	z->next_in = (Bytef *)(uintptr_t)p;
	z->avail_in = (uInt)n;
	do {
		size_t room = 16384 + n / 2;
		int rc;

		if (buf_reserve(&c->out, room, e) < 0)
			return -1;
		z->next_out = (Bytef *)c->out.data + c->out.len;
		z->avail_out = (uInt)room;
		rc = deflate(z, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return err_set(e, ERR_INTERNAL, "deflate failed (%d)", rc);
		c->out.len += room - z->avail_out;
		c->out.data[c->out.len] = '\0';
	} while (z->avail_in > 0 || z->avail_out == 0);
	return 0;
}

int conn_inflate(struct imap_conn *c, struct err *e)
{
	z_stream *z = &c->zin;
	size_t room = 16384, produced = 0;

	if (buf_reserve(&c->zplain, room, e) < 0)
		return -1;
	/* Loop while input is eaten without output (flush markers, block headers). */
	while (produced == 0 && c->rin.len > 0) {
		size_t before_in = c->rin.len;
		int rc;

		z->next_in = (Bytef *)c->rin.data;
		z->avail_in = (uInt)c->rin.len;
		z->next_out = (Bytef *)c->zplain.data + c->zplain.len;
		z->avail_out = (uInt)room;
		rc = inflate(z, Z_SYNC_FLUSH);
		/* Z_STREAM_END: the server finished its stream as it closes (after BYE). */
		if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
			err_set(e, ERR_PROTO, "server \"%s\" sent corrupt compressed data", c->host);
			e->lib = rc;
			return -1;
		}
		produced = room - z->avail_out;
		buf_consume(&c->rin, before_in - z->avail_in);
		c->zplain.len += produced;
		c->zplain.data[c->zplain.len] = '\0';
		if (before_in == z->avail_in && produced == 0)
			break;
	}
	return (int)produced;
}
