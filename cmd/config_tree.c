/*
 * config_tree.c - YAML text to a bounded node tree with line/column marks.
 *
 * Built from libyaml's event API with an explicit stack (no recursion), so
 * nesting, node count, value size and input size are all bounded before
 * anything grows.  Aliases are refused outright, which also rules out
 * "billion laughs" expansion.
 */
#include <string.h>
#include <yaml.h>

#include "config_int.h"
#include "xalloc.h"

struct tree_builder {
	struct cfg_tree *tree;
	const char *name;
	struct cfg_node *stack[CFG_MAX_DEPTH];
	size_t depth;
	unsigned docs;
	struct err *e;
};

static int mark_err(struct tree_builder *b, yaml_mark_t m, const char *what)
{
	return err_set(b->e, ERR_CONFIG, "%s:%zu:%zu: %s", b->name,
		       m.line + 1, m.column + 1, what);
}

static int syntax_err(struct tree_builder *b, const yaml_parser_t *p)
{
	yaml_mark_t m = p->problem_mark;
	const char *problem = p->problem ? p->problem : "syntax error";

	if (p->error == YAML_READER_ERROR)
		m = p->mark;    /* reader errors carry only a byte offset */
	if (p->context != NULL)
		return err_set(b->e, ERR_CONFIG, "%s:%zu:%zu: invalid YAML: %s %s",
			       b->name, m.line + 1, m.column + 1, p->context, problem);
	return err_set(b->e, ERR_CONFIG, "%s:%zu:%zu: invalid YAML: %s", b->name,
		       m.line + 1, m.column + 1, problem);
}

static struct cfg_node *node_new(struct tree_builder *b, enum cfg_node_kind kind,
				 yaml_mark_t m)
{
	struct cfg_node *n;

	if (b->tree->n_nodes >= CFG_MAX_NODES) {
		mark_err(b, m, "too many YAML nodes (the limit is 20000)");
		return NULL;
	}
	n = ARENA_NEW(&b->tree->arena, struct cfg_node);
	n->kind = kind;
	n->line = (unsigned)(m.line + 1);
	n->col = (unsigned)(m.column + 1);
	b->tree->n_nodes++;
	return n;
}

/* Hang `n` under the innermost open collection, or make it the root. */
static int attach(struct tree_builder *b, struct cfg_node *n, yaml_mark_t m)
{
	struct cfg_node *parent;

	if (b->depth == 0) {
		b->tree->root = n;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == CFG_NODE_MAP && parent->n_children % 2 == 0 &&
	    n->kind != CFG_NODE_SCALAR)
		return mark_err(b, m, "mapping keys must be plain strings");
	if (parent->last != NULL)
		parent->last->next = n;
	else
		parent->first = n;
	parent->last = n;
	parent->n_children++;
	return 0;
}

static int check_tag(struct tree_builder *b, const yaml_char_t *tag, yaml_mark_t m)
{
	if (tag != NULL)
		return mark_err(b, m, "YAML tags are not supported");
	return 0;
}

static int on_scalar(struct tree_builder *b, yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct cfg_node *n;

	if (check_tag(b, ev->data.scalar.tag, ev->start_mark) < 0)
		return -1;
	if (len > CFG_MAX_SCALAR)
		return mark_err(b, ev->start_mark, "value longer than 8192 bytes");
	if (memchr(v, '\0', len) != NULL)
		return mark_err(b, ev->start_mark, "NUL character in a value");
	n = node_new(b, CFG_NODE_SCALAR, ev->start_mark);
	if (n == NULL)
		return -1;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->text = arena_strndup(&b->tree->arena, v, len);
	n->len = len;
	return attach(b, n, ev->start_mark);
}

static int on_open(struct tree_builder *b, enum cfg_node_kind kind,
		   const yaml_char_t *tag, yaml_mark_t m)
{
	struct cfg_node *n;

	if (check_tag(b, tag, m) < 0)
		return -1;
	if (b->depth >= CFG_MAX_DEPTH)
		return mark_err(b, m, "nested too deeply (the limit is 32 levels)");
	n = node_new(b, kind, m);
	if (n == NULL || attach(b, n, m) < 0)
		return -1;
	b->stack[b->depth++] = n;
	return 0;
}

/* Returns 1 at the end of the stream, 0 to go on, -1 on error. */
static int on_event(struct tree_builder *b, yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (b->docs++ > 0)
			return mark_err(b, ev->start_mark,
					"only one YAML document is allowed");
		return 0;
	case YAML_ALIAS_EVENT:
		return mark_err(b, ev->start_mark, "YAML aliases are not supported");
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_open(b, CFG_NODE_SEQ, ev->data.sequence_start.tag,
			       ev->start_mark);
	case YAML_MAPPING_START_EVENT:
		return on_open(b, CFG_NODE_MAP, ev->data.mapping_start.tag,
			       ev->start_mark);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	default:
		return 0;
	}
}

static void wipe_event(yaml_event_t *ev)
{
	if (ev->type == YAML_SCALAR_EVENT)
		wipe(ev->data.scalar.value, ev->data.scalar.length);
}

/* libyaml keeps copies of the input; the file may hold a password. */
static void wipe_parser(yaml_parser_t *p)
{
	if (p->buffer.start != NULL)
		wipe(p->buffer.start, (size_t)(p->buffer.end - p->buffer.start));
	if (p->raw_buffer.start != NULL)
		wipe(p->raw_buffer.start,
		     (size_t)(p->raw_buffer.end - p->raw_buffer.start));
}

int cfg_tree_parse(struct cfg_tree *tree, const char *name, const char *data,
		   size_t len, struct err *e)
{
	struct tree_builder b = { .tree = tree, .name = name, .e = e };
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0;

	if (len > CFG_MAX_FILE)
		return err_set(e, ERR_CONFIG, "%s: file larger than 1 MiB", name);
	arena_init(&tree->arena, 16384);
	tree->root = NULL;
	tree->n_nodes = 0;
	if (!yaml_parser_initialize(&parser)) {
		arena_release(&tree->arena);
		return err_set(e, ERR_INTERNAL, "%s: cannot initialise the YAML parser", name);
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = syntax_err(&b, &parser);
			break;
		}
		rc = on_event(&b, &ev);
		wipe_event(&ev);
		yaml_event_delete(&ev);
	}
	wipe_parser(&parser);
	yaml_parser_delete(&parser);
	if (rc < 0) {
		cfg_tree_release(tree);
		return -1;
	}
	return 0;
}

/* Recursion depth is bounded by CFG_MAX_DEPTH. */
static void wipe_nodes(struct cfg_node *n)
{
	for (; n != NULL; n = n->next) {
		if (n->kind == CFG_NODE_SCALAR)
			wipe(n->text, n->len);
		else
			wipe_nodes(n->first);
	}
}

void cfg_tree_release(struct cfg_tree *tree)
{
	wipe_nodes(tree->root);
	tree->root = NULL;
	arena_release(&tree->arena);
}

bool cfg_node_is_null(const struct cfg_node *n)
{
	return n->kind == CFG_NODE_SCALAR && n->plain &&
	       (n->len == 0 || strcmp(n->text, "~") == 0 ||
		strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
		strcmp(n->text, "NULL") == 0);
}

const char *cfg_node_kind_name(const struct cfg_node *n)
{
	if (n->kind == CFG_NODE_SEQ)
		return "a list";
	if (n->kind == CFG_NODE_MAP)
		return "a mapping";
	if (cfg_node_is_null(n))
		return "nothing";
	return "a string";
}
