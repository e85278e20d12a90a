#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static enum log_level threshold = LOG_NOTICE;
static unsigned debug_categories;       /* 1u << enum log_cat */
static char ctx_account[128];
static char ctx_mailbox[256];
static void (*before_line)(void *ctx);
static void *before_line_ctx;

static const char *const level_names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

static const char *const cat_names[] = {
	[LOG_CAT_GENERAL] = "", [LOG_CAT_NET] = "net",     [LOG_CAT_SYNC] = "sync",
	[LOG_CAT_MAILDIR] = "maildir", [LOG_CAT_STATE] = "state", [LOG_CAT_CONFIG] = "config",
};

void log_set_level(enum log_level level)
{
	threshold = level;
}

enum log_level log_get_level(void)
{
	return threshold;
}

void log_enable_category(enum log_cat cat)
{
	debug_categories |= 1u << cat;
}

bool log_enabled(enum log_level level)
{
	return level <= threshold || (level == LOG_DEBUG && debug_categories != 0);
}

bool log_cat_enabled(enum log_level level, enum log_cat cat)
{
	return level <= threshold || (level == LOG_DEBUG && (debug_categories & (1u << cat)));
}

void log_set_context(const char *account, const char *mailbox)
{
	snprintf(ctx_account, sizeof(ctx_account), "%s", account ? account : "");
	snprintf(ctx_mailbox, sizeof(ctx_mailbox), "%s", mailbox ? mailbox : "");
}

void log_set_before_line(void (*fn)(void *ctx), void *ctx)
{
	before_line = fn;
	before_line_ctx = ctx;
}

/* Whether fmt starts with `account "CTX"` (the context's account). */
static bool names_account(const char *fmt)
{
	size_t n = strlen(ctx_account);

	if (strncmp(fmt, "account \"", 9) != 0)
		return false;
	if (strncmp(fmt + 9, "%s", 2) == 0)
		return true;    /* the name comes as an argument: assume it is this one */
	return strncmp(fmt + 9, ctx_account, n) == 0 && fmt[9 + n] == '"';
}

void log_msg(enum log_level level, enum log_cat cat, const char *fmt, ...)
{
	char line[4096];
	size_t n = 0;
	va_list ap;

	if (!log_cat_enabled(level, cat))
		return;
	n += (size_t)snprintf(line, sizeof(line), "ferry: %s", level_names[level]);
	if (level == LOG_DEBUG && cat != LOG_CAT_GENERAL && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "(%s)", cat_names[cat]);
	if (n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ": ");
	/* a message that names its account itself does not get it twice */
	if (ctx_account[0] && n < sizeof(line) && !names_account(fmt))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s%s: ", ctx_account,
				      ctx_mailbox[0] ? "/" : "", ctx_mailbox);
	if (n < sizeof(line)) {
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
	}
	line[sizeof(line) - 2] = '\0';
	if (before_line)
		before_line(before_line_ctx);
	text_scrub(line);
	fprintf(stderr, "%s\n", line);
}
