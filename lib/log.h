/*
 * log.h - levelled, categorised logging to stderr.
 *
 * Levels: error, warn, notice, info, debug.  The default threshold is
 * notice; -q lowers it to error, -v raises it to info, -vv to debug (with
 * the protocol trace).  Debug lines carry a category so that a trace can be
 * filtered.  Every line names its account and mailbox when a context is set.
 *
 * Nothing that reaches these functions may contain a secret: callers redact
 * credentials before logging (the IMAP trace does so itself).
 *
 * The logger is process-global by nature (one stderr); its state is set once
 * by cmd/ at start-up and by the sync loop when it changes mailbox.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN,
	LOG_NOTICE,
	LOG_INFO,
	LOG_DEBUG,
};

enum log_cat {
	LOG_CAT_GENERAL = 0,
	LOG_CAT_NET,
	LOG_CAT_SYNC,
	LOG_CAT_MAILDIR,
	LOG_CAT_STATE,
	LOG_CAT_CONFIG,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/*
 * Show debug lines of one category even below LOG_DEBUG (-v shows the
 * protocol trace, LOG_CAT_NET, without every other debug line).
 */
void log_enable_category(enum log_cat cat);
/* True if a line of this level could be shown (for debug: in some category). */
bool log_enabled(enum log_level level);
bool log_cat_enabled(enum log_level level, enum log_cat cat);
/* Context printed at the start of each line; NULL clears.  Strings are copied. */
void log_set_context(const char *account, const char *mailbox);

/*
 * Called just before each line is written to stderr, e.g. to erase a live
 * progress line so the log line does not mangle it (cmd/progress.h); the
 * line redraws itself later.  NULL removes it.  One at a time.
 */
void log_set_before_line(void (*fn)(void *ctx), void *ctx);

void log_msg(enum log_level level, enum log_cat cat, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERROR, LOG_CAT_GENERAL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, LOG_CAT_GENERAL, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, LOG_CAT_GENERAL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, LOG_CAT_GENERAL, __VA_ARGS__)
#define log_debug(cat, ...) log_msg(LOG_DEBUG, (cat), __VA_ARGS__)

#endif
