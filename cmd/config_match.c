/*
 * config_match.c - IMAP LIST-style mailbox patterns (RFC 3501 §6.3.8):
 * `*` matches any run of characters, `%` any run without the hierarchy
 * separator.  Matching is a dynamic programme over (pattern, name), so its
 * cost is O(len(pattern) * len(name)) whatever the wildcards: no
 * exponential backtracking on patterns such as "*a*a*a*a*b".
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "xalloc.h"

/* Length of a leading "INBOX" component (case-insensitive), else 0. */
static size_t inbox_prefix(const char *s, char sep)
{
	if (strncasecmp(s, "INBOX", 5) != 0)
		return 0;
	if (s[5] == '\0' || (sep != '\0' && s[5] == sep))
		return 5;
	return 0;
}

static bool chars_equal(char p, char n, bool fold)
{
	if (p == n)
		return true;
	if (!fold)
		return false;
	if (p >= 'a' && p <= 'z')
		p = (char)(p - 'a' + 'A');
	if (n >= 'a' && n <= 'z')
		n = (char)(n - 'a' + 'A');
	return p == n;
}

bool cfg_pattern_match(const char *pattern, const char *name, char separator)
{
	size_t plen = strlen(pattern), nlen = strlen(name);
	size_t p_inbox = inbox_prefix(pattern, separator);
	size_t n_inbox = inbox_prefix(name, separator);
	bool small_prev[256], small_cur[256];
	bool *prev = small_prev, *cur = small_cur, *tmp;
	bool result;
	size_t i, j;

	if (nlen + 1 > sizeof(small_prev) / sizeof(small_prev[0])) {
		prev = xmalloc(nlen + 1);
		cur = xmalloc(nlen + 1);
	}
	/* prev[j]: pattern[0..i) matches name[0..j). */
	prev[0] = true;
	for (j = 1; j <= nlen; j++)
		prev[j] = false;
	for (i = 0; i < plen; i++) {
		char pc = pattern[i];

		cur[0] = prev[0] && (pc == '*' || pc == '%');
		for (j = 1; j <= nlen; j++) {
			char nc = name[j - 1];

			if (pc == '*')
				cur[j] = prev[j] || cur[j - 1];
			else if (pc == '%')
				cur[j] = prev[j] ||
					 (cur[j - 1] && (separator == '\0' || nc != separator));
			else
				cur[j] = prev[j - 1] &&
					 chars_equal(pc, nc, i < p_inbox && j - 1 < n_inbox);
		}
		tmp = prev;
		prev = cur;
		cur = tmp;
	}
	result = prev[nlen];
	if (prev != small_prev && prev != small_cur) {
		free(prev);
		free(cur);
	}
	return result;
}

bool cfg_mailbox_selected(const struct cfg_account *a, const char *utf8_name, char separator)
{
	const struct cfg_mailboxes *m = &a->mailboxes;
	bool included = false;
	size_t i;

	for (i = 0; i < m->include.n && !included; i++)
		included = cfg_pattern_match(m->include.v[i], utf8_name, separator);
	if (!included)
		return false;
	for (i = 0; i < m->exclude.n; i++)
		if (cfg_pattern_match(m->exclude.v[i], utf8_name, separator))
			return false;
	return true;
}
