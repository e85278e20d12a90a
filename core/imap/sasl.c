/*
 * sasl.c - client SASL mechanisms: PLAIN (RFC 4616), SCRAM-SHA-1 and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), XOAUTH2 and OAUTHBEARER (RFC 7628).
 *
 * Each mechanism is a small state machine driven by sasl_start(),
 * sasl_step() and sasl_finish(); see sasl.h for the contract.  Crypto is
 * GnuTLS.  Every intermediate SCRAM secret (normalised password, salted
 * password, keys, signatures, proof) lives in a local array that is wiped
 * before the function returns.
 */
#include "sasl.h"

#include <assert.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mutf7.h"
#include "xalloc.h"

#define SASL_MSG_MAX        8192        /* longest server challenge we parse */
#define SASL_USER_MAX       1024        /* longest user name */
#define SASL_SECRET_MAX     16384       /* longest password or token */
#define SCRAM_NONCE_MAX     128         /* longest client nonce (test_nonce) */
#define SCRAM_NONCE_BYTES   24          /* random bytes in a client nonce */
#define SCRAM_SALT_MAX      1024        /* longest decoded salt */
#define SCRAM_HASH_MAX      32          /* SHA-256 */
#define SCRAM_ITER_MIN      4096        /* RFC 7677 §4; RFC 5802 §5.1 */
#define SCRAM_ITER_MAX      10000000    /* refuse more: a server could pin our CPU */
#define SASL_DETAIL_MAX     320
#define SASL_FIELD_MAX      96          /* longest JSON value kept in a summary */
#define SASL_QUOTE_MAX      120         /* longest server text quoted in a message */
#define JSON_DEPTH_MAX      16

enum sasl_state {
	SASL_STATE_INIT = 0,    /* sasl_start() not called yet */
	SASL_STATE_SENT,        /* initial response sent (PLAIN, OAuth) */
	SASL_STATE_OAUTH_ERROR, /* an OAuth error challenge was answered */
	SASL_STATE_SCRAM_FIRST, /* client-first sent; server-first expected */
	SASL_STATE_SCRAM_FINAL, /* client-final sent; server-final expected */
	SASL_STATE_VERIFIED,    /* SCRAM server signature checked */
	SASL_STATE_FAILED,      /* a step failed; the exchange is over */
};

struct scram_hash {
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t digest;
	size_t len;
};

struct sasl {
	enum sasl_mech mech;
	enum sasl_state state;
	char *user;
	char *secret;                   /* wiped by sasl_free() */
	size_t secret_len;
	char *host;                     /* OAUTHBEARER, or NULL */
	unsigned port;
	char nonce[SCRAM_NONCE_MAX + 1];        /* SCRAM client nonce */
	struct buf client_first_bare;   /* SCRAM "n=user,r=nonce" */
	unsigned char server_sig[SCRAM_HASH_MAX];       /* expected v= */
	char detail[SASL_DETAIL_MAX];   /* OAuth error summary, "" if none */
};

static const char *const mech_names[] = {
	[SASL_PLAIN] = "PLAIN",
	[SASL_SCRAM_SHA_1] = "SCRAM-SHA-1",
	[SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
	[SASL_XOAUTH2] = "XOAUTH2",
	[SASL_OAUTHBEARER] = "OAUTHBEARER",
};

#define MECH_COUNT (sizeof(mech_names) / sizeof(mech_names[0]))

const char *sasl_mech_name(enum sasl_mech mech)
{
	assert((size_t)mech < MECH_COUNT);
	return mech_names[mech];
}

int sasl_mech_from_name(const char *name, enum sasl_mech *mech_out)
{
	size_t i;

	for (i = 0; i < MECH_COUNT; i++) {
		if (strcasecmp(name, mech_names[i]) == 0) {
			*mech_out = (enum sasl_mech)i;
			return 0;
		}
	}
	return -1;
}

bool sasl_mech_is_plaintext(enum sasl_mech mech)
{
	return mech == SASL_PLAIN;
}

static bool mech_is_scram(enum sasl_mech mech)
{
	return mech == SASL_SCRAM_SHA_1 || mech == SASL_SCRAM_SHA_256;
}

static bool mech_is_oauth(enum sasl_mech mech)
{
	return mech == SASL_XOAUTH2 || mech == SASL_OAUTHBEARER;
}

static struct scram_hash scram_hash_of(enum sasl_mech mech)
{
	struct scram_hash h;

	if (mech == SASL_SCRAM_SHA_1) {
		h.mac = GNUTLS_MAC_SHA1;
		h.digest = GNUTLS_DIG_SHA1;
		h.len = 20;
	} else {
		h.mac = GNUTLS_MAC_SHA256;
		h.digest = GNUTLS_DIG_SHA256;
		h.len = 32;
	}
	return h;
}

/* ---- base64 (RFC 4648 §4, padded) ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int sasl_b64_encode(const void *data, size_t len, struct buf *out, struct err *e)
{
	const unsigned char *p = data;
	size_t groups = len / 3 + (len % 3 != 0);
	size_t i;
	char q[4];

	if (groups > (SIZE_MAX - 1) / 4)
		return err_set(e, ERR_LIMIT, "data too large for base64");
	if (buf_reserve(out, groups * 4, e) < 0)
		return -1;
	out->data[out->len] = '\0';    /* buf_reserve() may leave a new block unterminated */
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		q[0] = b64_alphabet[v >> 18];
		q[1] = b64_alphabet[(v >> 12) & 0x3f];
		q[2] = b64_alphabet[(v >> 6) & 0x3f];
		q[3] = b64_alphabet[v & 0x3f];
		buf_add(out, q, 4, e);
	}
	if (len - i == 1) {
		q[0] = b64_alphabet[p[i] >> 2];
		q[1] = b64_alphabet[(p[i] & 0x03) << 4];
		q[2] = '=';
		q[3] = '=';
		buf_add(out, q, 4, e);
	} else if (len - i == 2) {
		q[0] = b64_alphabet[p[i] >> 2];
		q[1] = b64_alphabet[(p[i] & 0x03) << 4 | p[i + 1] >> 4];
		q[2] = b64_alphabet[(p[i + 1] & 0x0f) << 2];
		q[3] = '=';
		buf_add(out, q, 4, e);
	}
	wipe(q, sizeof(q));
	return 0;
}

int sasl_b64_decode(const char *text, size_t len, struct buf *out, struct err *e)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t start_len = out->len;
	size_t i;

	if (len % 4 != 0)
		return err_set(e, ERR_PROTO, "invalid base64: length %zu is not a multiple of 4",
			       len);
	if (buf_reserve(out, len / 4 * 3, e) < 0)
		return -1;
	out->data[out->len] = '\0';    /* buf_reserve() may leave a new block unterminated */
	for (i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int v[4];
		size_t k, pad = 0;
		uint32_t w;
		unsigned char b[3];

		for (k = 0; k < 4; k++) {
			if (t[i + k] == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			v[k] = pad ? -1 : b64_value(t[i + k]);
			if (v[k] < 0) {
				buf_truncate(out, start_len);
				return err_set(e, ERR_PROTO,
					       "invalid base64: bad character at offset %zu", i + k);
			}
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		    (uint32_t)v[3];
		if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0)) {
			buf_truncate(out, start_len);
			return err_set(e, ERR_PROTO, "invalid base64: non-zero padding bits");
		}
		b[0] = (unsigned char)(w >> 16);
		b[1] = (unsigned char)(w >> 8);
		b[2] = (unsigned char)w;
		buf_add(out, b, 3 - pad, e);
		wipe(b, sizeof(b));
	}
	return 0;
}

/* ---- small helpers ---- */

/* Copy server text for an error message: printable ASCII only, capped. */
static void quote_server_text(const char *s, size_t len, char *dst, size_t dstsz)
{
	size_t i, n = 0;

	assert(dstsz > 4);
	for (i = 0; i < len && n + 4 < dstsz; i++) {
		unsigned char c = (unsigned char)s[i];

		dst[n++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
	}
	if (i < len) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

static bool has_control(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

/* Append a user name as an RFC 5802 saslname: ',' -> "=2C", '=' -> "=3D". */
static int saslname_add(struct buf *out, const char *s, struct err *e)
{
	for (; *s; s++) {
		const char *piece = *s == ',' ? "=2C" : *s == '=' ? "=3D" : NULL;

		if (piece ? buf_adds(out, piece, e) < 0 : buf_addc(out, *s, e) < 0)
			return -1;
	}
	return 0;
}

/* Length of a saslname-escaped string. */
static size_t saslname_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += (*s == ',' || *s == '=') ? 3 : 1;
	return n;
}

/* RFC 5802 "printable": %x21-2B / %x2D-7E. */
static bool nonce_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c > 0x7e || c == ',')
			return false;
	}
	return true;
}

/* ---- lifecycle ---- */

static int sasl_check_opts(const struct sasl_opts *opts, struct err *e)
{
	const char *name = sasl_mech_name(opts->mech);

	if (!opts->user || !*opts->user)
		return err_set(e, ERR_CONFIG, "%s: empty user name", name);
	if (strlen(opts->user) > SASL_USER_MAX)
		return err_set(e, ERR_CONFIG, "%s: user name longer than %d bytes", name,
			       SASL_USER_MAX);
	if (!utf8_valid(opts->user, strlen(opts->user)) || has_control(opts->user))
		return err_set(e, ERR_CONFIG,
			       "%s: user name is not UTF-8 or contains a control character", name);
	if (!opts->secret || !*opts->secret)
		return err_set(e, ERR_AUTH, "%s: empty %s", name,
			       mech_is_oauth(opts->mech) ? "token" : "password");
	if (strlen(opts->secret) > SASL_SECRET_MAX)
		return err_set(e, ERR_AUTH, "%s: %s longer than %d bytes", name,
			       mech_is_oauth(opts->mech) ? "token" : "password", SASL_SECRET_MAX);
	if (mech_is_oauth(opts->mech) && has_control(opts->secret))
		return err_set(e, ERR_AUTH, "%s: token contains a control character", name);
	if (opts->mech == SASL_OAUTHBEARER && opts->host &&
	    (has_control(opts->host) || strlen(opts->host) > 255))
		return err_set(e, ERR_CONFIG, "%s: bad host name", name);
	if (opts->test_nonce &&
	    (strlen(opts->test_nonce) > SCRAM_NONCE_MAX ||
	     !nonce_valid(opts->test_nonce, strlen(opts->test_nonce))))
		return err_set(e, ERR_INTERNAL, "%s: bad test nonce", name);
	return 0;
}

struct sasl *sasl_new(const struct sasl_opts *opts, struct err *e)
{
	struct sasl *s;

	assert((size_t)opts->mech < MECH_COUNT);
	if (sasl_check_opts(opts, e) < 0)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->mech = opts->mech;
	s->state = SASL_STATE_INIT;
	s->user = xstrdup(opts->user);
	s->secret_len = strlen(opts->secret);
	s->secret = xmemdup(opts->secret, s->secret_len + 1);
	s->host = opts->host && *opts->host ? xstrdup(opts->host) : NULL;
	s->port = opts->port;
	if (opts->test_nonce)
		memcpy(s->nonce, opts->test_nonce, strlen(opts->test_nonce) + 1);
	buf_init(&s->client_first_bare, SASL_MSG_MAX);
	return s;
}

void sasl_free(struct sasl *s)
{
	if (!s)
		return;
	free(s->user);
	free_secret(s->secret);
	free(s->host);
	buf_release(&s->client_first_bare);
	wipe(s, sizeof(*s));
	free(s);
}

const char *sasl_error_detail(const struct sasl *s)
{
	return s->detail[0] ? s->detail : NULL;
}

/* ---- initial responses ---- */

static int plain_start(struct sasl *s, struct buf *out, struct err *e)
{
	size_t ulen = strlen(s->user);

	/* Reserve first so the secret is never copied by a realloc. */
	if (buf_reserve(out, 2 + ulen + s->secret_len, e) < 0)
		return -1;
	buf_addc(out, '\0', e);
	buf_add(out, s->user, ulen, e);
	buf_addc(out, '\0', e);
	buf_add(out, s->secret, s->secret_len, e);
	return 0;
}

static int xoauth2_start(struct sasl *s, struct buf *out, struct err *e)
{
	static const char p1[] = "user=", p2[] = "\001auth=Bearer ", p3[] = "\001\001";
	size_t ulen = strlen(s->user);

	if (buf_reserve(out, sizeof(p1) - 1 + ulen + sizeof(p2) - 1 + s->secret_len +
			sizeof(p3) - 1, e) < 0)
		return -1;
	buf_adds(out, p1, e);
	buf_add(out, s->user, ulen, e);
	buf_adds(out, p2, e);
	buf_add(out, s->secret, s->secret_len, e);
	buf_adds(out, p3, e);
	return 0;
}

static int oauthbearer_start(struct sasl *s, struct buf *out, struct err *e)
{
	char port[32] = "";
	size_t need;

	if (s->host && s->port)
		snprintf(port, sizeof(port), "\001port=%u", s->port);
	need = strlen("n,a=,") + saslname_len(s->user) +
	       (s->host ? strlen("\001host=") + strlen(s->host) + strlen(port) : 0) +
	       strlen("\001auth=Bearer ") + s->secret_len + 2;
	if (buf_reserve(out, need, e) < 0)
		return -1;
	buf_adds(out, "n,a=", e);
	saslname_add(out, s->user, e);
	buf_addc(out, ',', e);
	if (s->host) {
		buf_adds(out, "\001host=", e);
		buf_adds(out, s->host, e);
		buf_adds(out, port, e);
	}
	buf_adds(out, "\001auth=Bearer ", e);
	buf_add(out, s->secret, s->secret_len, e);
	buf_adds(out, "\001\001", e);
	return 0;
}

static int scram_start(struct sasl *s, struct buf *out, struct err *e)
{
	struct buf *bare = &s->client_first_bare;

	if (!s->nonce[0]) {
		unsigned char raw[SCRAM_NONCE_BYTES];
		struct buf enc = BUF_INIT(SCRAM_NONCE_MAX);
		int rc = gnutls_rnd(GNUTLS_RND_NONCE, raw, sizeof(raw));

		if (rc < 0) {
			err_set(e, ERR_INTERNAL, "cannot make a SCRAM nonce: %s",
				gnutls_strerror(rc));
			e->lib = rc;
			return -1;
		}
		if (sasl_b64_encode(raw, sizeof(raw), &enc, e) < 0)
			return -1;
		memcpy(s->nonce, enc.data, enc.len + 1);
		buf_release(&enc);
	}
	buf_reset(bare);
	if (buf_adds(bare, "n=", e) < 0 || saslname_add(bare, s->user, e) < 0 ||
	    buf_adds(bare, ",r=", e) < 0 || buf_adds(bare, s->nonce, e) < 0)
		return -1;
	if (buf_reserve(out, 3 + bare->len, e) < 0)
		return -1;
	buf_adds(out, "n,,", e);
	buf_add(out, bare->data, bare->len, e);
	return 0;
}

int sasl_start(struct sasl *s, struct buf *out, struct err *e)
{
	int rc;

	assert(s->state == SASL_STATE_INIT);
	switch (s->mech) {
	case SASL_PLAIN:
		rc = plain_start(s, out, e);
		break;
	case SASL_XOAUTH2:
		rc = xoauth2_start(s, out, e);
		break;
	case SASL_OAUTHBEARER:
		rc = oauthbearer_start(s, out, e);
		break;
	default:
		rc = scram_start(s, out, e);
		break;
	}
	if (rc < 0)
		return -1;
	s->state = mech_is_scram(s->mech) ? SASL_STATE_SCRAM_FIRST : SASL_STATE_SENT;
	return 0;
}

/* ---- SCRAM ---- */

/* Parsed server-first-message; pointers into the caller's copy. */
struct scram_first {
	const char *nonce;
	size_t nonce_len;
	const char *salt_b64;
	size_t salt_b64_len;
	unsigned long iter;
};

/*
 * Find "NAME=value" at *p, ending at ',' or the end of the string.
 * Returns the value (and its length) and moves *p past the ',' if any.
 */
static const char *scram_attr(const char **p, char name, size_t *len_out)
{
	const char *v, *end;

	if ((*p)[0] != name || (*p)[1] != '=')
		return NULL;
	v = *p + 2;
	end = strchr(v, ',');
	if (!end)
		end = v + strlen(v);
	*len_out = (size_t)(end - v);
	*p = *end ? end + 1 : end;
	return v;
}

/*
 * A SCRAM server error "e=..." becomes ERR_AUTH with the quoted value,
 * unless the server put our password in it.
 */
static int scram_server_error(const struct sasl *s, const char *msg, const char *what,
			      struct err *e)
{
	char quoted[SASL_QUOTE_MAX];
	const char *end = strchr(msg + 2, ',');
	size_t len = end ? (size_t)(end - msg - 2) : strlen(msg + 2);

	if (memmem(msg + 2, len, s->secret, s->secret_len))
		snprintf(quoted, sizeof(quoted), "(withheld: it contains the password)");
	else
		quote_server_text(msg + 2, len, quoted, sizeof(quoted));
	return err_set(e, ERR_AUTH, "server refused SCRAM authentication in %s: \"%s\"",
		       what, quoted);
}

static int scram_parse_first(const struct sasl *s, const char *msg,
			     struct scram_first *f, struct err *e)
{
	const char *p = msg, *iter;
	size_t nlen = strlen(s->nonce), ilen, i;

	if (strncmp(p, "e=", 2) == 0)
		return scram_server_error(s, p, "server-first-message", e);
	if (strncmp(p, "m=", 2) == 0)
		return err_set(e, ERR_AUTH,
			       "server requires an unsupported SCRAM extension (m=)");
	f->nonce = scram_attr(&p, 'r', &f->nonce_len);
	if (!f->nonce)
		return err_set(e, ERR_AUTH, "bad SCRAM server-first-message: no nonce (r=)");
	if (!nonce_valid(f->nonce, f->nonce_len))
		return err_set(e, ERR_AUTH, "bad SCRAM server-first-message: invalid nonce");
	if (f->nonce_len <= nlen || memcmp(f->nonce, s->nonce, nlen) != 0)
		return err_set(e, ERR_AUTH,
			       "bad SCRAM server-first-message: server nonce does not extend "
			       "the client nonce");
	f->salt_b64 = scram_attr(&p, 's', &f->salt_b64_len);
	if (!f->salt_b64 || f->salt_b64_len == 0)
		return err_set(e, ERR_AUTH, "bad SCRAM server-first-message: no salt (s=)");
	iter = scram_attr(&p, 'i', &ilen);
	if (!iter || ilen == 0)
		return err_set(e, ERR_AUTH,
			       "bad SCRAM server-first-message: no iteration count (i=)");
	f->iter = 0;
	for (i = 0; i < ilen; i++) {
		if (iter[i] < '0' || iter[i] > '9' || (i == 0 && iter[i] == '0'))
			return err_set(e, ERR_AUTH,
				       "bad SCRAM server-first-message: invalid iteration count");
		f->iter = f->iter * 10 + (unsigned long)(iter[i] - '0');
		if (f->iter > SCRAM_ITER_MAX)
			return err_set(e, ERR_AUTH,
				       "SCRAM iteration count above the limit of %d refused",
				       SCRAM_ITER_MAX);
	}
	if (f->iter < SCRAM_ITER_MIN)
		return err_set(e, ERR_AUTH, "SCRAM iteration count %lu below %d refused",
			       f->iter, SCRAM_ITER_MIN);
	/* Anything after is an extension (RFC 5802 §7): ignored, but well formed. */
	if (iter[ilen] == ',' && !(((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) &&
				   p[1] == '='))
		return err_set(e, ERR_AUTH,
			       "bad SCRAM server-first-message: malformed extension");
	return 0;
}

/* Copy a challenge into a NUL-terminated string, refusing NULs and excess. */
static int scram_copy_challenge(const char *challenge, size_t len, struct buf *copy,
				const char *what, struct err *e)
{
	if (len > SASL_MSG_MAX)
		return err_set(e, ERR_AUTH, "SCRAM %s longer than %d bytes", what, SASL_MSG_MAX);
	if (memchr(challenge, '\0', len))
		return err_set(e, ERR_AUTH, "bad SCRAM %s: NUL byte", what);
	return buf_add(copy, challenge, len, e);
}

/* Secrets derived from the password, wiped together. */
struct scram_keys {
	unsigned char salted[SCRAM_HASH_MAX];
	unsigned char client_key[SCRAM_HASH_MAX];
	unsigned char stored_key[SCRAM_HASH_MAX];
	unsigned char client_sig[SCRAM_HASH_MAX];
	unsigned char proof[SCRAM_HASH_MAX];
	unsigned char server_key[SCRAM_HASH_MAX];
};

static int gnutls_fail(struct err *e, int rc, const char *what)
{
	err_set(e, ERR_INTERNAL, "SCRAM: %s failed: %s", what, gnutls_strerror(rc));
	e->lib = rc;
	return -1;
}

/*
 * SaltedPassword := Hi(Normalize(password), salt, i).  The password is
 * normalised with the RFC 8265 OpaqueString profile where that succeeds,
 * and used as it is otherwise (a non-UTF-8 password).
 */
static int scram_salt_password(const struct sasl *s, const struct scram_hash *h,
			       const struct buf *salt, unsigned long iter,
			       unsigned char *salted, struct err *e)
{
	gnutls_datum_t norm = { NULL, 0 };
	gnutls_datum_t key, sd;
	int rc;

	if (gnutls_utf8_password_normalize((const unsigned char *)s->secret,
					   (unsigned)s->secret_len, &norm, 0) == 0) {
		key = norm;
	} else {
		key.data = (unsigned char *)s->secret;
		key.size = (unsigned)s->secret_len;
	}
	sd.data = (unsigned char *)salt->data;
	sd.size = (unsigned)salt->len;
	rc = gnutls_pbkdf2(h->mac, &key, &sd, (unsigned)iter, salted, h->len);
	if (norm.data) {
		wipe(norm.data, norm.size);
		gnutls_free(norm.data);
	}
	if (rc < 0)
		return gnutls_fail(e, rc, "PBKDF2");
	return 0;
}

/* Derive the proof and the expected server signature over auth_message. */
static int scram_derive(struct sasl *s, const struct scram_hash *h, const struct buf *am,
			struct scram_keys *k, struct err *e)
{
	size_t i;
	int rc;

	rc = gnutls_hmac_fast(h->mac, k->salted, h->len, "Client Key", 10, k->client_key);
	if (rc >= 0)
		rc = gnutls_hash_fast(h->digest, k->client_key, h->len, k->stored_key);
	if (rc >= 0)
		rc = gnutls_hmac_fast(h->mac, k->stored_key, h->len, am->data, am->len,
				      k->client_sig);
	if (rc >= 0)
		rc = gnutls_hmac_fast(h->mac, k->salted, h->len, "Server Key", 10,
				      k->server_key);
	if (rc >= 0)
		rc = gnutls_hmac_fast(h->mac, k->server_key, h->len, am->data, am->len,
				      s->server_sig);
	if (rc < 0)
		return gnutls_fail(e, rc, "HMAC");
	for (i = 0; i < h->len; i++)
		k->proof[i] = k->client_key[i] ^ k->client_sig[i];
	return 0;
}

/* Build the client-final-message from a server-first-message. */
static int scram_client_final(struct sasl *s, const char *msg, struct buf *out,
			      struct err *e)
{
	struct scram_hash h = scram_hash_of(s->mech);
	struct scram_first f = { 0 };
	struct buf salt = BUF_INIT(SCRAM_SALT_MAX);
	struct buf am = BUF_INIT(3 * SASL_MSG_MAX);
	struct buf proof64 = BUF_INIT(64);
	struct buf final_wo_proof = BUF_INIT(SASL_MSG_MAX + 64);
	struct scram_keys k;
	int rc = -1;

	memset(&k, 0, sizeof(k));
	if (scram_parse_first(s, msg, &f, e) < 0)
		goto out;
	if (sasl_b64_decode(f.salt_b64, f.salt_b64_len, &salt, e) < 0 || salt.len == 0) {
		err_set(e, ERR_AUTH, "bad SCRAM server-first-message: invalid salt");
		goto out;
	}
	if (buf_adds(&final_wo_proof, "c=biws,r=", e) < 0 ||
	    buf_add(&final_wo_proof, f.nonce, f.nonce_len, e) < 0)
		goto out;
	if (buf_add(&am, s->client_first_bare.data, s->client_first_bare.len, e) < 0 ||
	    buf_addf(&am, e, ",%s,", msg) < 0 ||
	    buf_add(&am, final_wo_proof.data, final_wo_proof.len, e) < 0)
		goto out;
	if (scram_salt_password(s, &h, &salt, f.iter, k.salted, e) < 0 ||
	    scram_derive(s, &h, &am, &k, e) < 0 ||
	    sasl_b64_encode(k.proof, h.len, &proof64, e) < 0)
		goto out;
	if (buf_reserve(out, final_wo_proof.len + 3 + proof64.len, e) < 0)
		goto out;
	buf_add(out, final_wo_proof.data, final_wo_proof.len, e);
	buf_adds(out, ",p=", e);
	buf_add(out, proof64.data, proof64.len, e);
	rc = 0;
out:
	wipe(&k, sizeof(k));
	buf_release_secret(&proof64);
	buf_release(&salt);
	buf_release(&am);
	buf_release(&final_wo_proof);
	return rc;
}

/* Check a server-final-message: "v=" with the expected signature. */
static int scram_verify_final(struct sasl *s, const char *msg, struct err *e)
{
	struct scram_hash h = scram_hash_of(s->mech);
	struct buf sig = BUF_INIT(SCRAM_HASH_MAX + 3);
	struct err ignored;
	const char *p = msg, *v;
	size_t vlen;
	int rc = -1;

	if (strncmp(p, "e=", 2) == 0)
		return scram_server_error(s, p, "server-final-message", e);
	v = scram_attr(&p, 'v', &vlen);
	if (!v)
		return err_set(e, ERR_AUTH,
			       "bad SCRAM server-final-message: no server signature (v=)");
	if (sasl_b64_decode(v, vlen, &sig, &ignored) < 0 || sig.len != h.len) {
		err_set(e, ERR_AUTH, "bad SCRAM server-final-message: invalid server signature");
		goto out;
	}
	if (gnutls_memcmp(sig.data, s->server_sig, h.len) != 0) {
		err_set(e, ERR_AUTH,
			"SCRAM server signature mismatch: the server does not know the password");
		goto out;
	}
	rc = 0;
out:
	buf_release_secret(&sig);
	return rc;
}

static int scram_step(struct sasl *s, const char *challenge, size_t len, struct buf *out,
		      struct err *e)
{
	const char *what = s->state == SASL_STATE_SCRAM_FIRST ? "server-first-message" :
							       "server-final-message";
	struct buf copy = BUF_INIT(SASL_MSG_MAX);
	int rc;

	if (s->state == SASL_STATE_VERIFIED)
		return err_set(e, ERR_PROTO, "unexpected SASL challenge after SCRAM completed");
	if (scram_copy_challenge(challenge, len, &copy, what, e) < 0) {
		buf_release(&copy);
		return -1;
	}
	if (s->state == SASL_STATE_SCRAM_FIRST) {
		rc = scram_client_final(s, buf_cstr(&copy), out, e);
		s->state = rc < 0 ? SASL_STATE_FAILED : SASL_STATE_SCRAM_FINAL;
	} else {
		rc = scram_verify_final(s, buf_cstr(&copy), e);
		s->state = rc < 0 ? SASL_STATE_FAILED : SASL_STATE_VERIFIED;
	}
	buf_release(&copy);
	return rc;
}

/* ---- OAuth error challenges ---- */

struct json_cur {
	const char *p;
	const char *end;
};

static void json_ws(struct json_cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' ||
				 *c->p == '\r'))
		c->p++;
}

/*
 * Parse a JSON string at c->p; copy printable ASCII of it (escapes decoded,
 * anything else as '?') into dst, truncated.  dst may be NULL.
 */
static int json_string(struct json_cur *c, char *dst, size_t dstsz)
{
	size_t n = 0;

	if (c->p >= c->end || *c->p != '"')
		return -1;
	c->p++;
	while (c->p < c->end && *c->p != '"') {
		unsigned char ch = (unsigned char)*c->p++;

		if (ch < 0x20)
			return -1;
		if (ch == '\\') {
			if (c->p >= c->end)
				return -1;
			ch = (unsigned char)*c->p++;
			if (ch == 'u') {
				if (c->end - c->p < 4)
					return -1;
				c->p += 4;
				ch = '?';
			} else if (ch == 'n' || ch == 't' || ch == 'r' || ch == 'b' || ch == 'f') {
				ch = ' ';
			} else if (ch != '"' && ch != '\\' && ch != '/') {
				return -1;
			}
		}
		if (dst && n + 1 < dstsz)
			dst[n++] = (ch >= 0x20 && ch <= 0x7e) ? (char)ch : '?';
	}
	if (c->p >= c->end)
		return -1;
	c->p++;
	if (dst)
		dst[n] = '\0';
	return 0;
}

/* Skip any JSON value; copy a scalar's text (string or bare token) into dst. */
static int json_value(struct json_cur *c, char *dst, size_t dstsz, int depth)
{
	const char *start;
	size_t n = 0;

	json_ws(c);
	if (c->p >= c->end)
		return -1;
	if (*c->p == '"')
		return json_string(c, dst, dstsz);
	if (*c->p == '{' || *c->p == '[') {
		char close = *c->p == '{' ? '}' : ']';

		if (depth >= JSON_DEPTH_MAX)
			return -1;
		c->p++;
		json_ws(c);
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return 0;
		}
		for (;;) {
			if (close == '}') {
				json_ws(c);
				if (json_string(c, NULL, 0) < 0)
					return -1;
				json_ws(c);
				if (c->p >= c->end || *c->p++ != ':')
					return -1;
			}
			if (json_value(c, NULL, 0, depth + 1) < 0)
				return -1;
			json_ws(c);
			if (c->p >= c->end)
				return -1;
			if (*c->p == close) {
				c->p++;
				return 0;
			}
			if (*c->p++ != ',')
				return -1;
		}
	}
	/* A number, true, false or null: one run of token characters. */
	start = c->p;
	while (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || (*c->p >= 'a' &&
	       *c->p <= 'z') || *c->p == '-' || *c->p == '+' || *c->p == '.' ||
	       (*c->p >= 'A' && *c->p <= 'Z'))) {
		if (dst && n + 1 < dstsz)
			dst[n++] = *c->p;
		c->p++;
	}
	if (c->p == start)
		return -1;
	if (dst)
		dst[n] = '\0';
	return 0;
}

/* Summarise an OAuth error JSON into s->detail: "status 400, schemes Bearer, scope x". */
static void oauth_summarize(struct sasl *s, const char *json, size_t len)
{
	static const char *const keys[] = { "status", "schemes", "scope" };
	char vals[3][SASL_FIELD_MAX] = { "", "", "" };
	struct json_cur c = { json, json + len };
	size_t n = 0, i;
	bool ok = false;

	json_ws(&c);
	if (c.p < c.end && *c.p++ == '{') {
		json_ws(&c);
		ok = c.p < c.end && *c.p == '}';
		while (!ok) {
			char key[32];
			size_t k;

			json_ws(&c);
			if (json_string(&c, key, sizeof(key)) < 0)
				break;
			json_ws(&c);
			if (c.p >= c.end || *c.p++ != ':')
				break;
			for (k = 0; k < 3 && strcmp(key, keys[k]) != 0; k++)
				;
			if (json_value(&c, k < 3 ? vals[k] : NULL, SASL_FIELD_MAX, 0) < 0)
				break;
			json_ws(&c);
			if (c.p < c.end && *c.p == '}')
				ok = true;
			else if (c.p >= c.end || *c.p++ != ',')
				break;
		}
	}
	if (!ok) {
		snprintf(s->detail, sizeof(s->detail), "malformed error challenge (%zu bytes)",
			 len);
		return;
	}
	for (i = 0; i < 3; i++) {
		if (!vals[i][0])
			continue;
		n += (size_t)snprintf(s->detail + n, sizeof(s->detail) - n, "%s%s %s",
				      n ? ", " : "", keys[i], vals[i]);
		if (n >= sizeof(s->detail))
			n = sizeof(s->detail) - 1;
	}
	if (n == 0)
		snprintf(s->detail, sizeof(s->detail), "error challenge without status");
	/* A server that echoes the token must not get it into our messages. */
	if (memmem(json, len, s->secret, s->secret_len) || strstr(s->detail, s->secret))
		snprintf(s->detail, sizeof(s->detail),
			 "error challenge (details withheld: they contain the token)");
}

static int oauth_step(struct sasl *s, const char *challenge, size_t len, struct buf *out,
		      struct err *e)
{
	if (s->state != SASL_STATE_SENT)
		return err_set(e, ERR_PROTO, "unexpected second %s challenge",
			       sasl_mech_name(s->mech));
	oauth_summarize(s, challenge, len < SASL_MSG_MAX ? len : SASL_MSG_MAX);
	s->state = SASL_STATE_OAUTH_ERROR;
	if (s->mech == SASL_OAUTHBEARER)
		return buf_addc(out, '\001', e);
	return 0;
}

/* ---- steps ---- */

int sasl_step(struct sasl *s, const char *challenge, size_t len, struct buf *out,
	      struct err *e)
{
	int rc;

	assert(s->state != SASL_STATE_INIT);
	assert(challenge || len == 0);
	if (s->state == SASL_STATE_FAILED)
		return err_set(e, ERR_AUTH, "%s exchange already failed",
			       sasl_mech_name(s->mech));
	if (mech_is_scram(s->mech))
		rc = scram_step(s, challenge ? challenge : "", len, out, e);
	else if (mech_is_oauth(s->mech))
		rc = oauth_step(s, challenge ? challenge : "", len, out, e);
	else
		rc = err_set(e, ERR_PROTO, "unexpected challenge after the PLAIN response");
	if (rc < 0)
		s->state = SASL_STATE_FAILED;
	return rc;
}

int sasl_finish(struct sasl *s, const char *final, size_t len, struct err *e)
{
	assert(s->state != SASL_STATE_INIT);
	assert(final || len == 0);
	if (s->state == SASL_STATE_FAILED)
		return err_set(e, ERR_AUTH, "%s exchange already failed",
			       sasl_mech_name(s->mech));
	if (!mech_is_scram(s->mech))
		return 0;
	if (s->state == SASL_STATE_SCRAM_FINAL && len > 0) {
		struct buf none = BUF_INIT(0);

		if (scram_step(s, final, len, &none, e) < 0)
			return -1;
		buf_release(&none);
	}
	if (s->state != SASL_STATE_VERIFIED) {
		s->state = SASL_STATE_FAILED;
		return err_set(e, ERR_AUTH,
			       "server accepted %s without proving it knows the password "
			       "(no server signature)", sasl_mech_name(s->mech));
	}
	return 0;
}
