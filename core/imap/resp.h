/*
 * resp.h - typed results read out of parsed IMAP responses: the capability
 * set, LIST entries with their special-use role, STATUS data and the data a
 * SELECT reports.  Pure: no I/O.
 *
 * Ownership: a struct imap_caps owns its raw capability names (heap);
 * imap_caps_release() frees them.  A struct imap_mailbox_list owns its
 * entries and their strings (an arena); imap_mailbox_list_release() frees
 * them all.  Nothing here keeps a pointer into a parsed response.
 */
#ifndef FERRY_IMAP_RESP_H
#define FERRY_IMAP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "err.h"
#include "parse.h"

/* Capabilities ferry knows; the bit for each is (1 << value) in imap_caps.bits. */
enum imap_cap {
	IMAP_CAP_IMAP4REV1 = 0,
	IMAP_CAP_IMAP4REV2,
	IMAP_CAP_STARTTLS,
	IMAP_CAP_LOGINDISABLED,
	IMAP_CAP_SASL_IR,
	IMAP_CAP_LITERAL_PLUS,
	IMAP_CAP_LITERAL_MINUS,
	IMAP_CAP_ENABLE,
	IMAP_CAP_ID,
	IMAP_CAP_IDLE,
	IMAP_CAP_NAMESPACE,
	IMAP_CAP_UIDPLUS,
	IMAP_CAP_MOVE,
	IMAP_CAP_CONDSTORE,
	IMAP_CAP_QRESYNC,
	IMAP_CAP_SPECIAL_USE,
	IMAP_CAP_LIST_EXTENDED,
	IMAP_CAP_LIST_STATUS,
	IMAP_CAP_COMPRESS_DEFLATE,
	IMAP_CAP_UTF8_ACCEPT,       /* also set by UTF8=ONLY */
	IMAP_CAP_OBJECTID,
	IMAP_CAP_BINARY,
	IMAP_CAP_ESEARCH,
	IMAP_CAP_UNSELECT,
	IMAP_CAP_AUTH_PLAIN,
	IMAP_CAP_AUTH_LOGIN,
	IMAP_CAP_AUTH_SCRAM_SHA_1,
	IMAP_CAP_AUTH_SCRAM_SHA_256,
	IMAP_CAP_AUTH_XOAUTH2,
	IMAP_CAP_AUTH_OAUTHBEARER,
	IMAP_CAP_COUNT
};

struct imap_caps {
	uint64_t bits;              /* known capabilities */
	char **names;               /* every capability as the server spelled it */
	size_t n;
};

void imap_caps_release(struct imap_caps *caps);
bool imap_caps_has(const struct imap_caps *caps, enum imap_cap cap);
/* The canonical spelling ("LITERAL+", "AUTH=SCRAM-SHA-256"). */
const char *imap_cap_name(enum imap_cap cap);
/*
 * Replace caps with the atoms in args (from "* CAPABILITY ..." or a
 * "[CAPABILITY ...]" code).  At most 1024 names of at most 256 bytes;
 * beyond that ERR_PROTO.  On error caps is left empty.
 */
int imap_caps_parse(struct imap_caps *caps, const struct imap_arg *args, size_t nargs,
		    struct err *e);
/* "IMAP4rev1 SASL-IR ..." into out (for ferry check). */
int imap_caps_format(const struct imap_caps *caps, struct buf *out, struct err *e);

enum imap_mbox_attr {
	IMAP_MBOX_NOSELECT = 1u << 0,
	IMAP_MBOX_NOINFERIORS = 1u << 1,
	IMAP_MBOX_HASCHILDREN = 1u << 2,
	IMAP_MBOX_HASNOCHILDREN = 1u << 3,
	IMAP_MBOX_MARKED = 1u << 4,
	IMAP_MBOX_UNMARKED = 1u << 5,
	IMAP_MBOX_NONEXISTENT = 1u << 6,
	IMAP_MBOX_SUBSCRIBED = 1u << 7,
	IMAP_MBOX_REMOTE = 1u << 8,
};

/* RFC 6154 (and RFC 8457 \Important) special-use roles. */
enum imap_mbox_role {
	IMAP_ROLE_NONE = 0,
	IMAP_ROLE_ALL,
	IMAP_ROLE_ARCHIVE,
	IMAP_ROLE_DRAFTS,
	IMAP_ROLE_FLAGGED,
	IMAP_ROLE_JUNK,
	IMAP_ROLE_SENT,
	IMAP_ROLE_TRASH,
	IMAP_ROLE_IMPORTANT,
};

/* "sent", "trash" ...; "" for IMAP_ROLE_NONE. */
const char *imap_mbox_role_name(enum imap_mbox_role role);

enum imap_status_have {
	IMAP_STATUS_HAVE_MESSAGES = 1u << 0,
	IMAP_STATUS_HAVE_UIDNEXT = 1u << 1,
	IMAP_STATUS_HAVE_UIDVALIDITY = 1u << 2,
	IMAP_STATUS_HAVE_UNSEEN = 1u << 3,
	IMAP_STATUS_HAVE_HIGHESTMODSEQ = 1u << 4,
};

struct imap_status_data {
	unsigned have;              /* enum imap_status_have */
	uint32_t messages, uidnext, uidvalidity, unseen;
	uint64_t highestmodseq;
};

struct imap_mailbox {
	const char *name;           /* UTF-8; "INBOX" always spelled so */
	const char *wire_name;      /* as on the wire (modified UTF-7 unless UTF8=ACCEPT) */
	char delim;                 /* hierarchy delimiter, '\0' if none (NIL) */
	unsigned attrs;             /* enum imap_mbox_attr */
	enum imap_mbox_role role;
	struct imap_status_data status;   /* filled with LIST-STATUS */
};

struct imap_mailbox_list {
	struct arena arena;         /* the strings */
	struct imap_mailbox *items; /* heap array */
	size_t n, cap;
};

void imap_mailbox_list_init(struct imap_mailbox_list *l);
void imap_mailbox_list_release(struct imap_mailbox_list *l);
/*
 * Once the LIST is answered: a name listed more than once ("dup" twice,
 * "Inbox" next to INBOX) is kept once, its last entry, with a warning for
 * each left out.  O(n log n).  Returns how many were left out.
 */
size_t imap_mailbox_list_dedupe(struct imap_mailbox_list *l);
/* The entry with this wire name, or NULL. */
struct imap_mailbox *imap_mailbox_list_find(struct imap_mailbox_list *l, const char *wire_name);

/*
 * Add the mailbox in a "* LIST (attrs) delim name ..." response.  utf8:
 * names are UTF-8 on the wire (UTF8=ACCEPT enabled), else modified UTF-7.
 * A malformed response is ERR_PROTO (-1).  A mailbox that cannot be taken
 * (its name does not decode, its delimiter is not one byte) is left out:
 * 1, with the reason in e, for the caller to warn.  At most max_entries
 * entries (ERR_LIMIT).
 */
int imap_resp_list_add(const struct imap_resp *r, bool utf8, size_t max_entries,
		       struct imap_mailbox_list *l, struct err *e);

/* A "* STATUS name (items)" response: *wire_name_out points into r. */
int imap_resp_status(const struct imap_resp *r, const char **wire_name_out,
		     struct imap_status_data *out, struct err *e);

struct imap_select_info {
	uint32_t exists;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;     /* 0 if none */
	bool nomodseq;
	bool read_only;
};

/*
 * Fold one response received during SELECT/EXAMINE into info: "* N
 * EXISTS", "* OK [UIDVALIDITY n]", "[UIDNEXT n]", "[HIGHESTMODSEQ n]",
 * "[NOMODSEQ]", and the tagged "[READ-ONLY]".  Returns 1 if it was one of
 * those, 0 if not; -1 (ERR_PROTO) if one of those is malformed.
 */
int imap_resp_select_item(const struct imap_resp *r, struct imap_select_info *info,
			  struct err *e);

#endif
