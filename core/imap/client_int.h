/*
 * client_int.h - private to client.c (session) and client_auth.c
 * (mechanism choice, LOGIN, AUTHENTICATE).  Not for other modules.
 */
#ifndef FERRY_IMAP_CLIENT_INT_H
#define FERRY_IMAP_CLIENT_INT_H

#include <stdint.h>

#include "client.h"

struct imap_client {
	struct imap_client_opts opts;   /* strings point at the copies below */
	char *host, *user, *client_name, *client_version, *ca_file, *pin;
	enum imap_auth_mech *mechs;
	struct imap_conn *conn;
	enum imap_client_state state;
	struct imap_caps caps;
	bool have_caps;
	enum imap_auth_mech mech;
	uint64_t enabled;               /* bits of enum imap_cap */
	char *ns_prefix;
	char ns_delim, list_delim;
	bool have_ns;
};

void client_set_state(struct imap_client *cl, enum imap_client_state s);
int client_run(struct imap_client *cl, const struct imap_cmd_req *req,
	       struct imap_cmd **cmd_out, struct err *e);
int client_simple(struct imap_client *cl, const char *text, unsigned flags,
		  struct imap_cmd **cmd_out, struct err *e);
unsigned client_str_flags(const struct imap_client *cl);
int client_caps_from_code(struct imap_client *cl, const struct imap_resp *r, struct err *e);
int client_refresh_caps(struct imap_client *cl, struct err *e);

/* client_auth.c: choose a mechanism, get the secret, log in, refresh capabilities. */
int client_authenticate(struct imap_client *cl, struct err *e);

/* Tests: run the session over an already connected socket (plain text). */
int imap_client_attach_fd(struct imap_client *cl, int fd, struct err *e);

#endif
