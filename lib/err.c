#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void err_clear(struct err *e)
{
	if (e == NULL)
		return;
	e->code = ERR_NONE;
	e->scope = ERR_SCOPE_ACCOUNT;
	e->retry = false;
	e->sys = 0;
	e->lib = 0;
	e->msg[0] = '\0';
}

void text_scrub(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			p[0] = p[1] = '?';      /* U+0080-U+009F: C1 controls */
	}
}

static void err_vset(struct err *e, enum err_code code, const char *fmt, va_list ap)
{
	err_clear(e);
	e->code = code;
	e->retry = code == ERR_NET || code == ERR_TIMEOUT || code == ERR_LOCKED;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	text_scrub(e->msg);
}

int err_set(struct err *e, enum err_code code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	err_vset(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

int err_sys(struct err *e, enum err_code code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	err_vset(e, code, fmt, ap);
	va_end(ap);
	e->sys = errnum;
	n = strlen(e->msg);
	if (n < sizeof(e->msg))
		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(errnum));
	return -1;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
	char head[ERR_MSG_MAX];
	char old[ERR_MSG_MAX];
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	text_scrub(head);
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", head, old);
	return -1;
}

int err_exit_code(const struct err *e)
{
	switch (e->code) {
	case ERR_NONE:
		return 0;
	case ERR_USAGE:
	case ERR_CONFIG:
		return 2;
	case ERR_AUTH:
	case ERR_EXEC:  /* the password or token command failed: no credentials */
		return 3;
	case ERR_NET:
	case ERR_TLS:
	case ERR_TIMEOUT:
		return 4;
	case ERR_SAFETY:
		return 5;
	case ERR_LOCKED:
		return 6;
	default:
		return 1;
	}
}

const char *err_code_name(enum err_code code)
{
	static const char *const names[] = {
		[ERR_NONE] = "none",         [ERR_USAGE] = "usage",
		[ERR_CONFIG] = "config",     [ERR_AUTH] = "auth",
		[ERR_NET] = "network",       [ERR_TLS] = "tls",
		[ERR_TIMEOUT] = "timeout",   [ERR_PROTO] = "protocol",
		[ERR_SERVER] = "server",     [ERR_LIMIT] = "limit",
		[ERR_IO] = "io",             [ERR_STATE] = "state",
		[ERR_LOCKED] = "locked",     [ERR_SAFETY] = "safety",
		[ERR_EXEC] = "exec",         [ERR_INTERNAL] = "internal",
	};
	if ((size_t)code < sizeof(names) / sizeof(names[0]) && names[code] != NULL)
		return names[code];
	return "unknown";
}
