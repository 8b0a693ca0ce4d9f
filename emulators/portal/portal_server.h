/*
 * HTTPS front of a portal: one libmicrohttpd daemon per portal on
 * 127.0.0.1, feeding requests to pt_portal_handle().
 */
#ifndef TR_PORTAL_SERVER_H
#define TR_PORTAL_SERVER_H

#include "portal.h"

typedef struct pt_server pt_server;

/* What one client may hold of a server (libmicrohttpd options). */
typedef struct pt_server_limits {
	unsigned connections;  /* open connections in all */
	unsigned per_ip;       /* of them from one address */
	unsigned idle_seconds; /* inactivity (handshake included) before close */
} pt_server_limits;

/* 1024 connections, 512 per address, 10 s (API.md). */
extern const pt_server_limits pt_server_defaults;

/*
 * Starts serving portal (borrowed; must outlive the server) on 127.0.0.1
 * port (0: ephemeral) with the TLS key and certificate PEM files given.
 */
int pt_server_start(pt_server **out, pt_portal *portal, unsigned port,
		    const char *key_path, const char *cert_path);

/* The same with other limits (tests). */
int pt_server_start_ex(pt_server **out, pt_portal *portal, unsigned port,
		       const char *key_path, const char *cert_path,
		       const pt_server_limits *lim);

/* The port the server listens on. */
unsigned pt_server_port(const pt_server *s);

/* Stops serving (waits for the daemon's threads) and frees. */
void pt_server_stop(pt_server *s);

#endif
