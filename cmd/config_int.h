/*
 * config_int.h - private to cmd/config*.c: the YAML node tree and the
 * scalar value parsers the schema table uses.
 */
#ifndef FERRY_CONFIG_INT_H
#define FERRY_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "config.h"
#include "err.h"

enum cfg_node_kind {
	CFG_NODE_SCALAR,
	CFG_NODE_SEQ,
	CFG_NODE_MAP,
};

/*
 * One YAML node.  Children are a linked list; a mapping's children
 * alternate key, value, key, value ...  Marks are 1-based.
 */
struct cfg_node {
	enum cfg_node_kind kind;
	unsigned line, col;
	bool plain;             /* scalar written without quotes */
	char *text;             /* scalar, NUL-terminated, no NUL inside */
	size_t len;
	struct cfg_node *first, *last, *next;
	size_t n_children;
};

/* A parsed document: all nodes live in `arena`. */
struct cfg_tree {
	struct arena arena;
	struct cfg_node *root;  /* NULL for an empty document */
	size_t n_nodes;
};

/*
 * Parse YAML into `tree` (caller's; cfg_tree_release() it on success).
 * Errors are ERR_CONFIG "NAME:LINE:COL: ...".  On failure nothing is left
 * to release.
 */
int cfg_tree_parse(struct cfg_tree *tree, const char *name, const char *data,
		   size_t len, struct err *e);
/* Wipe every scalar (the tree may hold a password) and free the arena. */
void cfg_tree_release(struct cfg_tree *tree);

/* A plain empty, "~" or "null" scalar. */
bool cfg_node_is_null(const struct cfg_node *n);
/* "a string", "a list", "a mapping", "null" - for "got ..." in messages. */
const char *cfg_node_kind_name(const struct cfg_node *n);

/*
 * Scalar parsers (formats in config.h).  Each returns 0, or -1 when `s` is
 * not valid; the caller builds the message with position and key path.
 * cfg_parse_fingerprint() also says why in `why` (a static string).
 */
int cfg_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);
int cfg_parse_bool(const char *s, bool *out);
int cfg_parse_duration(const char *s, unsigned *seconds_out);
int cfg_parse_size(const char *s, uint64_t *bytes_out);
int cfg_parse_percent(const char *s, unsigned *out);
int cfg_parse_date(const char *s, struct cfg_date *out);
int cfg_parse_fingerprint(const char *s, unsigned char out[32], const char **why);

/*
 * Expand `~`, `~user`, `$VAR`, `${VAR}` and `$$` in `s`.  On success
 * *out is the caller's to free().  On failure -1 and `why` describes the
 * problem (heap string, the caller's to free()).
 */
int cfg_expand_path(const char *s, char **out, char **why);
/* The home directory: $HOME, else the password database.  NULL if none. */
const char *cfg_home_dir(char *buf, size_t size);

/* `s` quoted for a message: escaped and cut to `max` bytes.  Caller frees. */
char *cfg_quote(const char *s, size_t len, size_t max);

#endif
