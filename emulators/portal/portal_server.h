/*
 * HTTPS front of a portal: one libmicrohttpd daemon per portal on
 * 127.0.0.1, feeding requests to pt_portal_handle().
 */
#ifndef TR_PORTAL_SERVER_H
#define TR_PORTAL_SERVER_H

#include "portal.h"

typedef struct pt_server pt_server;

/*
 * Starts serving portal (borrowed; must outlive the server) on 127.0.0.1
 * port (0: ephemeral) with the TLS key and certificate PEM files given.
 */
int pt_server_start(pt_server **out, pt_portal *portal, unsigned port,
		    const char *key_path, const char *cert_path);

/* The port the server listens on. */
unsigned pt_server_port(const pt_server *s);

/* Stops serving (waits for the daemon's threads) and frees. */
void pt_server_stop(pt_server *s);

#endif
