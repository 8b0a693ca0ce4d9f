#include "portal_server.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PEM_MAX (256 * 1024)

struct pt_server {
	struct MHD_Daemon *daemon;
	pt_portal *portal;
	char *key;  /* MHD keeps pointers to these until it stops */
	char *cert;
	unsigned port;
};

/* Per request: the body so far, then what its log line says. */
typedef struct request_state {
	uint64_t start_ns;
	char *body;
	size_t len;
	size_t cap;
	int too_large;
	int answered;         /* the fields below are set */
	unsigned status;
	char code[40];
	char method[32];      /* printable: client data */
	char url[300];
} request_state;

/* The Content-Length headers of a request. */
typedef struct lengths {
	const char *first;
	int differ;
} lengths;

/* A printable copy: method and path are client data and must not forge
 * log lines nor put bytes outside UTF-8 in the log. */
static const char *printable(const char *in, char *buf, size_t size)
{
	pt_escape(in, buf, size);
	return buf;
}

/*
 * What the log line of the request will say. It is written once the
 * answer went out (on_completed), as an access log is: a write to the log
 * is not on the way of the answer, and the time is the whole request's.
 */
static void note_answer(request_state *rs, const char *method, const char *url,
			const pt_response *resp)
{
	printable(method, rs->method, sizeof(rs->method));
	printable(url, rs->url, sizeof(rs->url));
	rs->status = resp->status;
	snprintf(rs->code, sizeof(rs->code), "%s", resp->code[0] ? resp->code : "-");
	rs->answered = 1;
}

static void log_request(const pt_server *s, const request_state *rs,
			enum MHD_RequestTerminationCode toe)
{
	double ms = (double)(tr_clock_ns() - rs->start_ns) / 1e6;

	/* Never the body: it may carry data derived from PINs. */
	fprintf(stderr, "portal %s: %s %s %u %s %.2fms%s\n", pt_portal_name(s->portal),
		rs->method, rs->url, rs->status, rs->code, ms,
		toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" :
		" (the connection ended before the answer was sent)");
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

/*
 * The portal's answer to a body over the cap, without running the route:
 * the request as it came with a stand-in body of the oversized length, so
 * the earlier checks (route, method, Content-Type: 415 before 413) answer
 * first, as API.md orders them.
 */
static void too_large(pt_server *s, struct MHD_Connection *conn,
		      const char *method, const char *url, pt_response *resp)
{
	char big[1];
	pt_request req = {
		.method = method, .path = url,
		.content_type = MHD_lookup_connection_value(conn,
			MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
		.authorization = MHD_lookup_connection_value(conn,
			MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
		.body = big, .body_len = PT_BODY_MAX + 1,
	};

	pt_portal_handle(s->portal, &req, resp);
}

/* A framing error the portal answers itself (JSON), closing after it. */
static void framing_error(pt_response *resp, unsigned status,
			  const char *code, const char *message)
{
	json_t *obj = json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code,
				"message", message);
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	memset(resp, 0, sizeof(*resp));
	resp->status = status;
	snprintf(resp->code, sizeof(resp->code), "%s", code);
	if (text && (resp->body = malloc(strlen(text) + 2))) {
		resp->body_len = (size_t)sprintf(resp->body, "%s\n", text);
	} else {
		resp->status = 500;
		snprintf(resp->code, sizeof(resp->code), "INTERNAL");
	}
	free(text);
}

static enum MHD_Result on_length(void *cls, enum MHD_ValueKind kind,
				 const char *key, const char *value)
{
	lengths *l = cls;

	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
		return MHD_YES;
	if (!l->first)
		l->first = value;
	else if (strcmp(l->first, value) != 0)
		l->differ = 1;
	return MHD_YES;
}

/* MHD's unescaping off: the portal decodes the path itself and refuses
 * what would cut it ("%00") or cannot be decoded ("%zz"). */
static size_t keep_escapes(void *cls, struct MHD_Connection *conn, char *s)
{
	return strlen(s);
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
		lengths cl = { NULL, 0 };

		if (!(rs = calloc(1, sizeof(*rs))))
			return MHD_NO;
		rs->start_ns = tr_clock_ns();
		*con_cls = rs;
		/* Two lengths that disagree leave the framing unknown (RFC
		 * 9112 6.3): refused, and the connection closed. */
		MHD_get_connection_values(conn, MHD_HEADER_KIND, on_length, &cl);
		if (cl.differ) {
			framing_error(&resp, 400, "BAD_CONTENT_LENGTH",
				      "Content-Length headers disagree");
			note_answer(rs, method, url, &resp);
			return queue(conn, &resp, 1);
		}
		/* A declared length over the cap answers at once; MHD then
		 * closes the connection instead of reading the body. */
		if (cl.first && strtoull(cl.first, NULL, 10) > PT_BODY_MAX) {
			too_large(s, conn, method, url, &resp);
			note_answer(rs, method, url, &resp);
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
		too_large(s, conn, method, url, &resp);
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
	note_answer(rs, method, url, &resp);
	ret = queue(conn, &resp, 0);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	request_state *rs = *con_cls;

	if (!rs)
		return;
	if (rs->answered)
		log_request(cls, rs, toe);
	free(rs->body);
	free(rs);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	fputs("portal: libmicrohttpd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

const pt_server_limits pt_server_defaults = {
	.connections = 1024,
	.per_ip = 512,
	.idle_seconds = 10,
};

int pt_server_start(pt_server **out, pt_portal *portal, unsigned port,
		    const char *key_path, const char *cert_path)
{
	return pt_server_start_ex(out, portal, port, key_path, cert_path,
				  &pt_server_defaults);
}

int pt_server_start_ex(pt_server **out, pt_portal *portal, unsigned port,
		       const char *key_path, const char *cert_path,
		       const pt_server_limits *lim)
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
		/* A stuck or silent client (TLS handshake included) is
		 * dropped after this much inactivity; one address cannot
		 * take every slot; idle sockets cost no thread (epoll). */
		MHD_OPTION_CONNECTION_TIMEOUT, lim->idle_seconds,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
		MHD_OPTION_CONNECTION_LIMIT, lim->connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, lim->per_ip,
		MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, s,
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
