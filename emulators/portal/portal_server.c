#include "portal_server.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEM_MAX (256 * 1024)

struct pt_server {
	struct MHD_Daemon *daemon;
	pt_portal *portal;
	char *key;  /* MHD keeps pointers to these until it stops */
	char *cert;
	unsigned port;
};

/* Per request: the body so far. */
typedef struct request_state {
	uint64_t start_ns;
	char *body;
	size_t len;
	size_t cap;
	int too_large;
} request_state;

/* A printable copy: a path is client data and must not forge log lines. */
static const char *printable(const char *in, char *buf, size_t size)
{
	size_t n = 0;

	for (; in && *in && n + 5 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c == 0x7f || c == '\\')
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return buf;
}

static void log_request(const pt_server *s, const char *method,
			const char *url, const pt_response *resp,
			uint64_t start_ns)
{
	double ms = (double)(tr_clock_ns() - start_ns) / 1e6;
	char m[32], u[300];

	/* Never the body: it may carry data derived from PINs. */
	fprintf(stderr, "portal %s: %s %s %u %s %.2fms\n",
		pt_portal_name(s->portal), printable(method, m, sizeof(m)),
		printable(url, u, sizeof(u)), resp->status,
		resp->code[0] ? resp->code : "-", ms);
}

static enum MHD_Result queue(struct MHD_Connection *conn, pt_response *resp,
			     int close_after)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(resp->body_len, resp->body,
					    MHD_RESPMEM_MUST_FREE);
	if (!r) {
		pt_response_clear(resp);
		return MHD_NO;
	}
	resp->body = NULL; /* MHD frees it */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/json; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (close_after)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The portal's own 413 answer, without running the route. */
static void too_large(pt_server *s, const char *method, const char *url,
		      pt_response *resp)
{
	char big[1];
	pt_request req = {
		.method = method, .path = url,
		.content_type = "application/json",
		.body = big, .body_len = PT_BODY_MAX + 1,
	};

	pt_portal_handle(s->portal, &req, resp);
	/* An unknown route or method answers 404/405 as it would anyway. */
}

static int append(request_state *rs, const char *data, size_t len)
{
	if (rs->too_large || rs->len + len > PT_BODY_MAX) {
		rs->too_large = 1;
		return 0; /* discard the rest */
	}
	if (rs->len + len > rs->cap) {
		size_t cap = rs->cap ? rs->cap : 1024;
		char *b;

		while (cap < rs->len + len)
			cap *= 2;
		if (!(b = realloc(rs->body, cap)))
			return -1;
		rs->body = b;
		rs->cap = cap;
	}
	memcpy(rs->body + rs->len, data, len);
	rs->len += len;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	pt_server *s = cls;
	request_state *rs = *con_cls;
	pt_response resp;
	pt_request req;
	enum MHD_Result ret;

	if (!rs) {
		const char *cl;

		if (!(rs = calloc(1, sizeof(*rs))))
			return MHD_NO;
		rs->start_ns = tr_clock_ns();
		*con_cls = rs;
		/* A declared length over the cap answers at once; MHD then
		 * closes the connection instead of reading the body. */
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > PT_BODY_MAX) {
			too_large(s, method, url, &resp);
			log_request(s, method, url, &resp, rs->start_ns);
			return queue(conn, &resp, 1);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (append(rs, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (rs->too_large) {
		too_large(s, method, url, &resp);
	} else {
		memset(&req, 0, sizeof(req));
		req.method = method;
		req.path = url;
		req.content_type = MHD_lookup_connection_value(conn,
			MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
		req.authorization = MHD_lookup_connection_value(conn,
			MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		req.body = rs->body;
		req.body_len = rs->len;
		pt_portal_handle(s->portal, &req, &resp);
	}
	log_request(s, method, url, &resp, rs->start_ns);
	ret = queue(conn, &resp, 0);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	request_state *rs = *con_cls;

	if (!rs)
		return;
	free(rs->body);
	free(rs);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	fputs("portal: libmicrohttpd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int pt_server_start(pt_server **out, pt_portal *portal, unsigned port,
		    const char *key_path, const char *cert_path)
{
	const union MHD_DaemonInfo *info;
	struct sockaddr_in addr;
	pt_server *s;
	size_t len;
	int err;

	*out = NULL;
	if (port > 65535)
		return tr_error_set(TR_EINVAL, "port %u out of range", port);
	if (!(s = calloc(1, sizeof(*s))))
		return tr_error_set(TR_ENOMEM, "server");
	s->portal = portal;
	if ((err = tr_fs_read_all(key_path, PEM_MAX, &s->key, &len)) < 0 ||
	    (err = tr_fs_read_all(cert_path, PEM_MAX, &s->cert, &len)) < 0) {
		char why[512];

		/* Copied: the message is the buffer tr_error_set writes. */
		snprintf(why, sizeof(why), "%s", tr_error_last());
		err = tr_error_set(err, "TLS key or certificate (--pki DIR/tls): %s",
				   why);
		goto out;
	}

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	s->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, s,
		/* First, or MHD logs the earlier options' errors itself. */
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_HTTPS_MEM_KEY, s->key,
		MHD_OPTION_HTTPS_MEM_CERT, s->cert,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_END);
	if (!s->daemon) {
		err = tr_error_set(TR_EIO,
				   "cannot serve portal %s on 127.0.0.1:%u (port in use, or bad TLS key/certificate %s, %s)",
				   pt_portal_name(portal), port, key_path,
				   cert_path);
		goto out;
	}
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		err = tr_error_set(TR_EIO, "cannot read the bound port");
		goto out;
	}
	s->port = info->port;
	*out = s;
	return 0;
out:
	pt_server_stop(s);
	return err;
}

unsigned pt_server_port(const pt_server *s)
{
	return s->port;
}

void pt_server_stop(pt_server *s)
{
	if (!s)
		return;
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	free(s->key);
	free(s->cert);
	free(s);
}
