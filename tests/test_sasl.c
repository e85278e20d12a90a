/* Unit tests for core/imap/sasl: PLAIN, SCRAM-SHA-1/256, XOAUTH2, OAUTHBEARER, base64. */
#include <criterion/criterion.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "sasl.h"

#define OUT_MAX 8192

/* RFC 5802 §5 */
#define SHA1_NONCE "fyko+d2lbbFgONRv9qkxdawL"
#define SHA1_SERVER_FIRST "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define SHA1_CLIENT_FINAL "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j," \
	"p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define SHA1_SERVER_FINAL "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

/* RFC 7677 §3 */
#define SHA256_NONCE "rOprNGfwEbeRWgbNEkqO"
#define SHA256_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define SHA256_CLIENT_FINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SHA256_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static struct sasl *new_session(enum sasl_mech mech, const char *user, const char *secret,
				const char *nonce)
{
	struct sasl_opts o = { .mech = mech, .user = user, .secret = secret,
			       .test_nonce = nonce };
	struct err e;
	struct sasl *s = sasl_new(&o, &e);

	cr_assert_not_null(s, "sasl_new: %s", e.msg);
	return s;
}

static void assert_no_secret(const struct err *e, const char *secret)
{
	cr_assert(strstr(e->msg, secret) == NULL, "secret in error message \"%s\"", e->msg);
}

static void step_ok(struct sasl *s, const char *challenge, struct buf *out)
{
	struct err e;

	buf_release_secret(out);
	cr_assert_eq(sasl_step(s, challenge, strlen(challenge), out, &e), 0, "step: %s",
		     e.msg);
}

/* Start a SCRAM session and feed it server-first; the step's rc is returned. */
static int scram_until_first(enum sasl_mech mech, const char *nonce, const char *password,
			     const char *server_first, struct sasl **s_out, struct buf *out,
			     struct err *e)
{
	struct sasl *s = new_session(mech, "user", password, nonce);

	cr_assert_eq(sasl_start(s, out, e), 0);
	buf_release(out);
	*s_out = s;
	return sasl_step(s, server_first, strlen(server_first), out, e);
}

/* ---- SCRAM: RFC vectors ---- */

Test(sasl_scram, sha1_rfc5802_example_proves_and_verifies)
{
	struct sasl *s = new_session(SASL_SCRAM_SHA_1, "user", "pencil", SHA1_NONCE);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	cr_assert_str_eq(buf_cstr(&out), "n,,n=user,r=" SHA1_NONCE);
	step_ok(s, SHA1_SERVER_FIRST, &out);
	cr_assert_str_eq(buf_cstr(&out), SHA1_CLIENT_FINAL);
	step_ok(s, SHA1_SERVER_FINAL, &out);
	cr_assert_eq(out.len, 0, "answer to server-final must be empty");
	cr_assert_eq(sasl_finish(s, NULL, 0, &e), 0, "%s", e.msg);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_scram, sha256_rfc7677_example_proves_and_verifies)
{
	struct sasl *s = new_session(SASL_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	cr_assert_str_eq(buf_cstr(&out), "n,,n=user,r=" SHA256_NONCE);
	step_ok(s, SHA256_SERVER_FIRST, &out);
	cr_assert_str_eq(buf_cstr(&out), SHA256_CLIENT_FINAL);
	step_ok(s, SHA256_SERVER_FINAL, &out);
	cr_assert_eq(out.len, 0);
	cr_assert_eq(sasl_finish(s, NULL, 0, &e), 0, "%s", e.msg);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_scram, server_final_in_success_data_is_verified)
{
	struct sasl *s;
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(scram_until_first(SASL_SCRAM_SHA_256, SHA256_NONCE, "pencil",
				       SHA256_SERVER_FIRST, &s, &out, &e), 0);
	cr_assert_eq(sasl_finish(s, SHA256_SERVER_FINAL, strlen(SHA256_SERVER_FINAL), &e), 0,
		     "%s", e.msg);
	sasl_free(s);

	cr_assert_eq(scram_until_first(SASL_SCRAM_SHA_256, SHA256_NONCE, "pencil",
				       SHA256_SERVER_FIRST, &s, &out, &e), 0);
	cr_assert_eq(sasl_finish(s, SHA1_SERVER_FINAL, strlen(SHA1_SERVER_FINAL), &e), -1);
	cr_assert_eq(e.code, ERR_AUTH);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_scram, user_name_is_escaped_in_client_first)
{
	struct sasl *s = new_session(SASL_SCRAM_SHA_256, "a,b=c", "pencil", "abc");
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	cr_assert_str_eq(buf_cstr(&out), "n,,n=a=2Cb=3Dc,r=abc");
	buf_release(&out);
	sasl_free(s);
}

Test(sasl_scram, random_nonces_are_printable_and_differ)
{
	struct sasl *a = new_session(SASL_SCRAM_SHA_1, "user", "pencil", NULL);
	struct sasl *b = new_session(SASL_SCRAM_SHA_1, "user", "pencil", NULL);
	struct buf oa = BUF_INIT(OUT_MAX), ob = BUF_INIT(OUT_MAX);
	struct err e;
	size_t i;

	cr_assert_eq(sasl_start(a, &oa, &e), 0);
	cr_assert_eq(sasl_start(b, &ob, &e), 0);
	cr_assert_eq(strncmp(buf_cstr(&oa), "n,,n=user,r=", 12), 0);
	cr_assert_geq(oa.len, 12 + 24);
	for (i = 12; i < oa.len; i++)
		cr_assert(oa.data[i] > 0x20 && oa.data[i] < 0x7f && oa.data[i] != ',');
	cr_assert_str_neq(buf_cstr(&oa), buf_cstr(&ob));
	buf_release(&oa);
	buf_release(&ob);
	sasl_free(a);
	sasl_free(b);
}

Test(sasl_scram, password_is_normalised_before_hashing)
{
	/* "e" + COMBINING ACUTE and the precomposed U+00E9 are one OpaqueString. */
	struct sasl *a = new_session(SASL_SCRAM_SHA_256, "user", "caf\x65\xcc\x81", "n1");
	struct sasl *b = new_session(SASL_SCRAM_SHA_256, "user", "caf\xc3\xa9", "n1");
	struct sasl *c = new_session(SASL_SCRAM_SHA_256, "user", "cafe", "n1");
	struct buf oa = BUF_INIT(OUT_MAX), ob = BUF_INIT(OUT_MAX), oc = BUF_INIT(OUT_MAX);
	const char *first = "r=n1xyz,s=QSXCR+Q6sek8bf92,i=4096";
	struct err e;

	cr_assert_eq(sasl_start(a, &oa, &e), 0);
	cr_assert_eq(sasl_start(b, &ob, &e), 0);
	cr_assert_eq(sasl_start(c, &oc, &e), 0);
	step_ok(a, first, &oa);
	step_ok(b, first, &ob);
	step_ok(c, first, &oc);
	cr_assert_str_eq(buf_cstr(&oa), buf_cstr(&ob));
	cr_assert_str_neq(buf_cstr(&oa), buf_cstr(&oc));
	buf_release_secret(&oa);
	buf_release_secret(&ob);
	buf_release_secret(&oc);
	sasl_free(a);
	sasl_free(b);
	sasl_free(c);
}

Test(sasl_scram, non_utf8_password_is_used_as_it_is)
{
	struct sasl *s = new_session(SASL_SCRAM_SHA_1, "user", "\xff\xfe-latin1", "n1");
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	step_ok(s, "r=n1xyz,s=QSXCR+Q6sek8bf92,i=4096", &out);
	cr_assert_eq(strncmp(buf_cstr(&out), "c=biws,r=n1xyz,p=", 17), 0);
	buf_release_secret(&out);
	sasl_free(s);
}

/* ---- SCRAM: refusals ---- */

#define SECRET "Tr0ub4dor&3-pencil"

static void assert_first_refused(enum sasl_mech mech, const char *nonce,
				 const char *server_first, const char *why)
{
	struct sasl *s;
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(scram_until_first(mech, nonce, SECRET, server_first, &s, &out, &e), -1,
		     "server-first \"%s\" (%s) was accepted", server_first, why);
	cr_assert_eq(e.code, ERR_AUTH, "\"%s\": code %d (%s)", server_first, e.code, e.msg);
	cr_assert(strstr(e.msg, why) != NULL, "\"%s\": message \"%s\" lacks \"%s\"",
		  server_first, e.msg, why);
	assert_no_secret(&e, SECRET);
	cr_assert_eq(out.len, 0, "a refused challenge produced a response");
	/* The session is dead: a further step fails too. */
	cr_assert_eq(sasl_step(s, SHA1_SERVER_FINAL, strlen(SHA1_SERVER_FINAL), &out, &e), -1);
	cr_assert_eq(sasl_finish(s, NULL, 0, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_scram, server_nonce_must_extend_client_nonce)
{
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=gyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,"
			     "i=4096", "does not extend");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=" SHA1_NONCE ",s=QSXCR+Q6sek8bf92,i=4096", "does not extend");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=fyko+d2lbbFgONRv9qkx,s=QSXCR+Q6sek8bf92,i=4096", "does not extend");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=,s=QSXCR+Q6sek8bf92,i=4096", "invalid nonce");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=" SHA1_NONCE "\x7f,s=QSXCR+Q6sek8bf92,i=4096", "invalid nonce");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "s=QSXCR+Q6sek8bf92,r=" SHA1_NONCE "x,i=4096", "no nonce");
}

Test(sasl_scram, bad_salt_is_refused)
{
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=" SHA1_NONCE "x,s=QSXCR+Q6sek8bf9,i=4096", "invalid salt");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=" SHA1_NONCE "x,s=QSXC*+Q6sek8bf92,i=4096", "invalid salt");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=" SHA1_NONCE "x,s=Zh==,i=4096", "invalid salt");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=" SHA1_NONCE "x,s=,i=4096", "no salt");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=" SHA1_NONCE "x,i=4096", "no salt");
}

Test(sasl_scram, iteration_count_out_of_range_is_refused)
{
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "below 4096");
	assert_first_refused(SASL_SCRAM_SHA_1, SHA1_NONCE,
			     "r=" SHA1_NONCE "x,s=QSXCR+Q6sek8bf92,i=1", "below 4096");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
			     "above the limit");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
			     "i=99999999999999999999999", "above the limit");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096",
			     "invalid iteration count");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096",
			     "invalid iteration count");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=",
			     "no iteration count");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==",
			     "no iteration count");
}

Test(sasl_scram, server_error_and_malformed_first_are_refused)
{
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE, "e=unknown-user",
			     "server refused SCRAM authentication in server-first-message: "
			     "\"unknown-user\"");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "m=ext,r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			     "unsupported SCRAM extension");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,",
			     "malformed extension");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE,
			     "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x",
			     "invalid iteration count");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE, "", "no nonce");
	assert_first_refused(SASL_SCRAM_SHA_256, SHA256_NONCE, "e=bad " SECRET " here",
			     "(withheld: it contains the password)");
}

Test(sasl_scram, extensions_after_iteration_count_are_ignored)
{
	struct sasl *s;
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(scram_until_first(SASL_SCRAM_SHA_1, SHA1_NONCE, "pencil",
				       SHA1_SERVER_FIRST ",x=future", &s, &out, &e), 0, "%s", e.msg);
	cr_assert_eq(strncmp(buf_cstr(&out), "c=biws,r=", 9), 0);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_scram, nul_in_server_first_is_refused)
{
	static const char msg[] = "r=" SHA1_NONCE "x\0,s=QSXCR+Q6sek8bf92,i=4096";
	struct sasl *s = new_session(SASL_SCRAM_SHA_1, "user", SECRET, SHA1_NONCE);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	buf_release(&out);
	cr_assert_eq(sasl_step(s, msg, sizeof(msg) - 1, &out, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH);
	sasl_free(s);
}

/* Run the RFC 7677 exchange up to server-final and feed `server_final`. */
static void assert_final_refused(const char *server_final, const char *why)
{
	struct sasl *s;
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(scram_until_first(SASL_SCRAM_SHA_256, SHA256_NONCE, "pencil",
				       SHA256_SERVER_FIRST, &s, &out, &e), 0);
	buf_release_secret(&out);
	cr_assert_eq(sasl_step(s, server_final, strlen(server_final), &out, &e), -1,
		     "server-final \"%s\" was accepted", server_final);
	cr_assert_eq(e.code, ERR_AUTH);
	cr_assert(strstr(e.msg, why) != NULL, "message \"%s\" lacks \"%s\"", e.msg, why);
	assert_no_secret(&e, "pencil");
	cr_assert_eq(sasl_finish(s, NULL, 0, &e), -1, "finish after a failed verification");
	cr_assert_eq(e.code, ERR_AUTH);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_scram, wrong_server_signature_is_auth_error)
{
	/* The last byte differs. */
	assert_final_refused("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=", "invalid server");
	assert_final_refused("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G0=", "mismatch");
	/* The SHA-1 signature (wrong length) and a well-formed wrong one. */
	assert_final_refused(SHA1_SERVER_FINAL, "invalid server signature");
	assert_final_refused("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "mismatch");
	assert_final_refused("v=", "invalid server signature");
	assert_final_refused("x=" "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
			     "no server signature");
	assert_final_refused("e=invalid-proof", "\"invalid-proof\"");
}

Test(sasl_scram, missing_final_verification_fails_finish)
{
	struct sasl *s;
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	/* OK right after client-final, never having seen v=. */
	cr_assert_eq(scram_until_first(SASL_SCRAM_SHA_1, SHA1_NONCE, "pencil",
				       SHA1_SERVER_FIRST, &s, &out, &e), 0);
	cr_assert_eq(sasl_finish(s, NULL, 0, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH);
	cr_assert(strstr(e.msg, "without proving") != NULL, "%s", e.msg);
	sasl_free(s);

	/* OK right after client-first. */
	s = new_session(SASL_SCRAM_SHA_1, "user", "pencil", SHA1_NONCE);
	buf_release_secret(&out);
	cr_assert_eq(sasl_start(s, &out, &e), 0);
	cr_assert_eq(sasl_finish(s, NULL, 0, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_scram, challenge_after_verification_is_protocol_error)
{
	struct sasl *s = new_session(SASL_SCRAM_SHA_1, "user", "pencil", SHA1_NONCE);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	step_ok(s, SHA1_SERVER_FIRST, &out);
	step_ok(s, SHA1_SERVER_FINAL, &out);
	cr_assert_eq(sasl_step(s, "again", 5, &out, &e), -1);
	cr_assert_eq(e.code, ERR_PROTO);
	buf_release_secret(&out);
	sasl_free(s);
}

/* ---- PLAIN ---- */

Test(sasl_plain, initial_response_has_empty_authzid_and_nul_separators)
{
	struct sasl *s = new_session(SASL_PLAIN, "tim", "tanstaaftanstaaf", NULL);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	cr_assert_eq(out.len, 21);
	cr_assert(memcmp(out.data, "\0tim\0tanstaaftanstaaf", 21) == 0);
	cr_assert_eq(sasl_finish(s, NULL, 0, &e), 0);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_plain, further_challenge_is_protocol_error)
{
	struct sasl *s = new_session(SASL_PLAIN, "tim", SECRET, NULL);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	buf_release_secret(&out);
	cr_assert_eq(sasl_step(s, "huh", 3, &out, &e), -1);
	cr_assert_eq(e.code, ERR_PROTO);
	assert_no_secret(&e, SECRET);
	cr_assert_eq(out.len, 0);
	/* The exchange is dead: a later OK is not taken as success. */
	cr_assert_eq(sasl_finish(s, NULL, 0, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH);
	sasl_free(s);
}

Test(sasl_plain, output_over_cap_fails_without_writing)
{
	struct sasl *s = new_session(SASL_PLAIN, "tim", SECRET, NULL);
	struct buf out = BUF_INIT(8);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	cr_assert_eq(out.len, 0);
	assert_no_secret(&e, SECRET);
	buf_release(&out);
	sasl_free(s);
}

Test(sasl_plain, empty_user_or_password_is_refused)
{
	struct sasl_opts o = { .mech = SASL_PLAIN, .user = "", .secret = "x" };
	struct err e;

	cr_assert_null(sasl_new(&o, &e));
	cr_assert_eq(e.code, ERR_CONFIG);
	o.user = "tim";
	o.secret = "";
	cr_assert_null(sasl_new(&o, &e));
	cr_assert_eq(e.code, ERR_AUTH);
	o.secret = NULL;
	cr_assert_null(sasl_new(&o, &e));
	o.user = "bad\x01user";
	o.secret = "x";
	cr_assert_null(sasl_new(&o, &e));
	cr_assert_eq(e.code, ERR_CONFIG);
	o.user = "bad\xffuser";
	cr_assert_null(sasl_new(&o, &e));
	cr_assert_eq(e.code, ERR_CONFIG);
}

/* ---- XOAUTH2 ---- */

#define TOKEN "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"

Test(sasl_xoauth2, initial_response_is_byte_exact)
{
	static const char want[] = "user=someone@example.com\001auth=Bearer " TOKEN "\001\001";
	struct sasl *s = new_session(SASL_XOAUTH2, "someone@example.com", TOKEN, NULL);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	cr_assert_eq(out.len, sizeof(want) - 1);
	cr_assert(memcmp(out.data, want, out.len) == 0);
	cr_assert_null(sasl_error_detail(s));
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_xoauth2, error_challenge_gets_empty_answer_and_summary)
{
	static const char json[] =
		"{\"status\":\"400\",\"schemes\":\"Bearer\",\"scope\":\"https://mail.google.com/\"}";
	struct sasl *s = new_session(SASL_XOAUTH2, "someone@example.com", TOKEN, NULL);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	buf_release_secret(&out);
	cr_assert_eq(sasl_step(s, json, sizeof(json) - 1, &out, &e), 0);
	cr_assert_eq(out.len, 0);
	cr_assert_str_eq(sasl_error_detail(s),
			 "status 400, schemes Bearer, scope https://mail.google.com/");
	/* A second challenge is not part of the mechanism. */
	cr_assert_eq(sasl_step(s, json, sizeof(json) - 1, &out, &e), -1);
	cr_assert_eq(e.code, ERR_PROTO);
	assert_no_secret(&e, TOKEN);
	buf_release(&out);
	sasl_free(s);
}

static const char *summary_of(enum sasl_mech mech, const char *json, struct sasl **s_out)
{
	struct sasl *s = new_session(mech, "someone@example.com", TOKEN, NULL);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	buf_release_secret(&out);
	cr_assert_eq(sasl_step(s, json, strlen(json), &out, &e), 0);
	buf_release(&out);
	*s_out = s;
	cr_assert_not_null(sasl_error_detail(s));
	cr_assert(strstr(sasl_error_detail(s), TOKEN) == NULL);
	return sasl_error_detail(s);
}

Test(sasl_xoauth2, summary_handles_odd_json)
{
	struct sasl *s;

	cr_assert_str_eq(summary_of(SASL_XOAUTH2, " { \"scope\" : \"a b\", \"status\": 401, "
				    "\"x\": {\"y\": [1, \"}\", {\"z\": null}]}, \"schemes\": "
				    "\"Bearer\\u0020x\" } ", &s),
			 "status 401, schemes Bearer?x, scope a b");
	sasl_free(s);
	cr_assert_str_eq(summary_of(SASL_XOAUTH2, "{}", &s), "error challenge without status");
	sasl_free(s);
	cr_assert_str_eq(summary_of(SASL_XOAUTH2, "{\"status\":\"400\"", &s),
			 "malformed error challenge (15 bytes)");
	sasl_free(s);
	cr_assert_str_eq(summary_of(SASL_XOAUTH2, "{\"status\":\"400\",\"x\":}", &s),
			 "malformed error challenge (21 bytes)");
	sasl_free(s);
	cr_assert_str_eq(summary_of(SASL_XOAUTH2, "not json", &s),
			 "malformed error challenge (8 bytes)");
	sasl_free(s);
	cr_assert_str_eq(summary_of(SASL_XOAUTH2, "{\"status\":\"\x1b[31mred\"}", &s),
			 "malformed error challenge (21 bytes)");
	sasl_free(s);
	cr_assert_str_eq(summary_of(SASL_XOAUTH2, "{\"status\":\"r\xc3\xa9\"}", &s),
			 "status r??");
	sasl_free(s);
}

Test(sasl_xoauth2, echoed_token_is_withheld_from_summary)
{
	struct sasl *s;

	cr_assert_str_eq(summary_of(SASL_XOAUTH2, "{\"status\":\"400\",\"token\":\"" TOKEN "\"}",
				    &s),
			 "error challenge (details withheld: they contain the token)");
	sasl_free(s);
}

Test(sasl_xoauth2, token_with_control_character_is_refused_without_quoting_it)
{
	struct sasl_opts o = { .mech = SASL_XOAUTH2, .user = "u",
			       .secret = "secret-tok\001en" };
	struct err e;

	cr_assert_null(sasl_new(&o, &e));
	cr_assert_eq(e.code, ERR_AUTH);
	assert_no_secret(&e, "secret-tok");
}

/* ---- OAUTHBEARER ---- */

Test(sasl_oauthbearer, initial_response_matches_rfc7628_example)
{
	static const char want[] = "n,a=user@example.com,\001host=server.example.com\001"
				   "port=143\001auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
				   "\001\001";
	struct sasl_opts o = { .mech = SASL_OAUTHBEARER, .user = "user@example.com",
			       .secret = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
			       .host = "server.example.com", .port = 143 };
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;
	struct sasl *s = sasl_new(&o, &e);

	cr_assert_not_null(s);
	cr_assert_eq(sasl_start(s, &out, &e), 0);
	cr_assert_eq(out.len, sizeof(want) - 1);
	cr_assert(memcmp(out.data, want, out.len) == 0);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_oauthbearer, user_is_escaped_and_host_is_optional)
{
	static const char want[] = "n,a=a=2Cb=3Dc,\001auth=Bearer " TOKEN "\001\001";
	struct sasl *s = new_session(SASL_OAUTHBEARER, "a,b=c", TOKEN, NULL);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	cr_assert_eq(out.len, sizeof(want) - 1);
	cr_assert(memcmp(out.data, want, out.len) == 0);
	buf_release_secret(&out);
	sasl_free(s);
}

Test(sasl_oauthbearer, error_challenge_is_answered_with_ctrl_a)
{
	static const char json[] =
		"{\"status\":\"invalid_token\",\"scope\":\"example_scope\","
		"\"openid-configuration\":\"https://example.com/.well-known/openid-configuration\"}";
	struct sasl *s = new_session(SASL_OAUTHBEARER, "user@example.com", TOKEN, NULL);
	struct buf out = BUF_INIT(OUT_MAX);
	struct err e;

	cr_assert_eq(sasl_start(s, &out, &e), 0);
	buf_release_secret(&out);
	cr_assert_eq(sasl_step(s, json, sizeof(json) - 1, &out, &e), 0);
	cr_assert_eq(out.len, 1);
	cr_assert_eq(out.data[0], '\001');
	cr_assert_str_eq(sasl_error_detail(s), "status invalid_token, scope example_scope");
	buf_release(&out);
	sasl_free(s);
}

/* ---- names and base64 ---- */

Test(sasl_names, lookup_is_case_insensitive_and_round_trips)
{
	enum sasl_mech m;
	int i;

	cr_assert_eq(sasl_mech_from_name("scram-sha-256", &m), 0);
	cr_assert_eq(m, SASL_SCRAM_SHA_256);
	cr_assert_eq(sasl_mech_from_name("LOGIN", &m), -1);
	cr_assert_eq(sasl_mech_from_name("SCRAM-SHA-256-PLUS", &m), -1);
	for (i = SASL_PLAIN; i <= SASL_OAUTHBEARER; i++) {
		cr_assert_eq(sasl_mech_from_name(sasl_mech_name((enum sasl_mech)i), &m), 0);
		cr_assert_eq((int)m, i);
	}
	cr_assert(sasl_mech_is_plaintext(SASL_PLAIN));
	cr_assert_not(sasl_mech_is_plaintext(SASL_SCRAM_SHA_1));
	cr_assert_not(sasl_mech_is_plaintext(SASL_XOAUTH2));
}

Test(sasl_b64, rfc4648_vectors_round_trip)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };
	struct buf b = BUF_INIT(64);
	struct err e;
	size_t i;

	for (i = 0; i < 7; i++) {
		buf_reset(&b);
		cr_assert_eq(sasl_b64_encode(plain[i], strlen(plain[i]), &b, &e), 0);
		cr_assert_str_eq(buf_cstr(&b), enc[i]);
		buf_reset(&b);
		cr_assert_eq(sasl_b64_decode(enc[i], strlen(enc[i]), &b, &e), 0);
		cr_assert_eq(b.len, strlen(plain[i]));
		cr_assert_str_eq(buf_cstr(&b), plain[i]);
	}
	buf_reset(&b);
	cr_assert_eq(sasl_b64_encode("\xff\xfe\x00", 3, &b, &e), 0);
	cr_assert_str_eq(buf_cstr(&b), "//4A");
	buf_release(&b);
}

Test(sasl_b64, decoding_is_strict)
{
	static const char *const bad[] = { "Zg=", "Zg", "Zh==", "Zm9=", "Z===", "====", "=Zg=",
					   "Zg==Zg==", "Zm 9v", "Zm9v\n", "Zm9-", "Zm,v", "Zg=a" };
	struct buf b = BUF_INIT(64);
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		cr_assert_eq(buf_adds(&b, "kept", &e), 0);
		cr_assert_eq(sasl_b64_decode(bad[i], strlen(bad[i]), &b, &e), -1,
			     "\"%s\" accepted", bad[i]);
		cr_assert_eq(e.code, ERR_PROTO);
		cr_assert_str_eq(buf_cstr(&b), "kept");
	}
	buf_release(&b);
}
