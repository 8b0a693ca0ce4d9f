#include "harness/pcsc/link.h"

#include "common/error.h"
#include "harness/token.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <winscard.h>

#define PCSC_TIMEOUT_MS 10000u
#define PCSC_CLOSE_WAIT_MS 2000u
#define PCSCD_PATH "/usr/sbin/pcscd"
#define CMD_MAX (4 + 3 + 65535 + 2)
#define RESP_MAX (65536 + 2)

enum { JOB_NONE, JOB_ESTABLISH, JOB_LIST, JOB_CONNECT, JOB_TRANSMIT };

struct tr_pcsc_link {
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* job queued, job done, worker gone */
	pthread_t thread;
	int refs;                   /* the token and the worker */
	int job;                    /* queued, not yet taken */
	int running;                /* taken, inside the PC/SC call */
	unsigned long done;         /* jobs finished */
	int quit, exited;
	LONG rv;
	/* Used by the worker only while a job runs; by the caller otherwise. */
	SCARDCONTEXT ctx;
	SCARDHANDLE h;
	int have_ctx, have_h;
	DWORD proto;
	char *reader;
	char *names;                /* JOB_LIST: multi-string */
	DWORD names_len;
	unsigned char cmd[CMD_MAX];
	DWORD cmd_len;
	unsigned char resp[RESP_MAX];
	DWORD resp_len;
	unsigned char atr[MAX_ATR_SIZE]; /* JOB_CONNECT: the card's */
	DWORD atr_len;
	unsigned timeout_ms;
};

typedef struct tr_pcsc_link pcsc_link;

static LONG run_job(pcsc_link *l, int job)
{
	DWORD len = 0;
	LONG rv;

	switch (job) {
	case JOB_ESTABLISH:
		rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &l->ctx);
		l->have_ctx = rv == SCARD_S_SUCCESS;
		return rv;
	case JOB_LIST:
		free(l->names);
		l->names = NULL;
		l->names_len = 0;
		rv = SCardListReaders(l->ctx, NULL, NULL, &len);
		if (rv != SCARD_S_SUCCESS)
			return rv;
		if (!(l->names = malloc(len + 2)))
			return SCARD_E_NO_MEMORY;
		rv = SCardListReaders(l->ctx, NULL, l->names, &len);
		if (rv == SCARD_S_SUCCESS) {
			/* Always a terminated multi-string, whatever came back. */
			l->names[len] = '\0';
			l->names[len + 1] = '\0';
			l->names_len = len;
		}
		return rv;
	case JOB_CONNECT:
		rv = SCardConnect(l->ctx, l->reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1,
				  &l->h, &l->proto);
		if (rv == SCARD_E_PROTO_MISMATCH)
			rv = SCardConnect(l->ctx, l->reader, SCARD_SHARE_SHARED,
					  SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &l->h, &l->proto);
		l->have_h = rv == SCARD_S_SUCCESS;
		l->atr_len = 0;
		if (l->have_h) {
			DWORD name_len = 0, state, proto, atr_len = sizeof(l->atr);

			if (SCardStatus(l->h, NULL, &name_len, &state, &proto, l->atr, &atr_len) ==
			    SCARD_S_SUCCESS)
				l->atr_len = atr_len;
		}
		return rv;
	case JOB_TRANSMIT:
		l->resp_len = sizeof(l->resp);
		return SCardTransmit(l->h, l->proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 :
					   SCARD_PCI_T1, l->cmd, l->cmd_len, NULL, l->resp,
				     &l->resp_len);
	default:
		return SCARD_F_INTERNAL_ERROR;
	}
}

/* Drops one reference; called with l->mu held, returns with it released. */
static void link_unref(pcsc_link *l)
{
	int last = --l->refs == 0;

	pthread_mutex_unlock(&l->mu);
	if (!last)
		return;
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l->names);
	free(l->reader);
	free(l);
}

static void *worker(void *arg)
{
	pcsc_link *l = arg;
	int job;
	LONG rv;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->job && !l->quit)
			pthread_cond_wait(&l->cv, &l->mu);
		if (!l->job)
			break;
		job = l->job;
		l->job = JOB_NONE;
		l->running = 1;
		pthread_mutex_unlock(&l->mu);
		rv = run_job(l, job);
		pthread_mutex_lock(&l->mu);
		l->rv = rv;
		l->running = 0;
		l->done++;
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (l->have_h)
		SCardDisconnect(l->h, SCARD_LEAVE_CARD);
	if (l->have_ctx)
		SCardReleaseContext(l->ctx);
	l->have_h = l->have_ctx = 0;
	pthread_mutex_lock(&l->mu);
	l->exited = 1;
	pthread_cond_broadcast(&l->cv);
	link_unref(l);
	return NULL;
}

int tr_pcsc_link_new(pcsc_link **out, const char *reader, unsigned timeout_ms)
{
	pcsc_link *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!l || (reader && !(l->reader = strdup(reader)))) {
		free(l);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	l->timeout_ms = timeout_ms;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	l->refs = 2;
	rc = pthread_create(&l->thread, NULL, worker, l);
	if (rc != 0) {
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		free(l->reader);
		free(l);
		return tr_error_set(TR_ERROR, "starting the PC/SC worker thread: %s", strerror(rc));
	}
	*out = l;
	return 0;
}

/*
 * Ends the worker: joined when it finishes within PCSC_CLOSE_WAIT_MS (it
 * disconnects and releases the context), else left to free the link
 * itself once its PC/SC call comes back.
 */
void tr_pcsc_link_close(pcsc_link *l)
{
	struct timespec ts;
	int exited;

	if (!l)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += PCSC_CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&l->mu);
	l->quit = 1;
	pthread_cond_broadcast(&l->cv);
	/* A call that already missed its deadline is not waited for again. */
	while (!l->exited && !l->running && !l->job)
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT)
			break;
	exited = l->exited;
	pthread_mutex_unlock(&l->mu);
	if (exited)
		pthread_join(l->thread, NULL);
	else
		pthread_detach(l->thread);
	pthread_mutex_lock(&l->mu);
	link_unref(l);
}

/*
 * Runs one job on the worker and waits at most timeout_ms for it.
 * TR_ETIMEDOUT (message naming what and where) when it does not return in
 * time or an earlier call is still inside the PC/SC library.
 */
static int link_call(pcsc_link *l, int job, unsigned timeout_ms, LONG *rv,
		     const char *what, const char *where)
{
	struct timespec ts;
	unsigned long ticket;
	int late = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->mu);
	if (l->job || l->running || l->exited) {
		pthread_mutex_unlock(&l->mu);
		return tr_error_set(TR_ETIMEDOUT, "%s on %s: an earlier card exchange has not "
				    "come back yet (card mute or pcscd hung)", what, where);
	}
	l->job = job;
	ticket = l->done + 1;
	pthread_cond_broadcast(&l->cv);
	while (l->done < ticket)
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT && l->done < ticket) {
			late = 1;
			break;
		}
	*rv = l->rv;
	pthread_mutex_unlock(&l->mu);
	if (late)
		return tr_error_set(TR_ETIMEDOUT, "%s on %s: no answer within %u ms (card mute "
				    "or pcscd hung)", what, where, timeout_ms);
	return 0;
}

unsigned tr_pcsc_timeout_ms(void)
{
	const char *s = getenv("TOKENRIG_PCSC_TIMEOUT_MS");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return PCSC_TIMEOUT_MS;
	v = strtoul(s, &end, 10);
	return *end || v < 100 || v > 600000 ? PCSC_TIMEOUT_MS : (unsigned)v;
}

size_t tr_pcsc_link_atr(const tr_pcsc_link *l, const unsigned char **atr)
{
	*atr = l->atr;
	return l->have_h ? l->atr_len : 0;
}

const char *tr_pcsc_link_reader(const pcsc_link *l)
{
	return l->reader ? l->reader : "";
}

int tr_pcsc_link_t1(const pcsc_link *l)
{
	return l->proto == SCARD_PROTOCOL_T1;
}

/* Context on a new worker; PC/SC unreachable is no token, no pcscd no driver. */
int tr_pcsc_link_establish(pcsc_link *l)
{
	const char *sock = getenv("PCSCLITE_CSOCK_NAME");
	LONG rv;
	int error;

	if ((error = link_call(l, JOB_ESTABLISH, l->timeout_ms, &rv, "SCardEstablishContext",
			       sock ? sock : "the system pcscd")) < 0)
		return error;
	if (rv == SCARD_S_SUCCESS)
		return 0;
	if (rv == SCARD_E_NO_SERVICE && access(PCSCD_PATH, X_OK) != 0)
		return tr_error_set(TR_TOKEN_ENODRIVER, "SCardEstablishContext: %s, and %s is "
				    "not installed (apt-get install pcscd)",
				    pcsc_stringify_error(rv), PCSCD_PATH);
	return tr_error_set(TR_TOKEN_ENOTOKEN, "SCardEstablishContext: pcscd unreachable at %s: "
			    "%s (0x%08lX)", sock ? sock : "/run/pcscd/pcscd.comm",
			    pcsc_stringify_error(rv), (unsigned long)rv);
}

int tr_pcsc_link_readers(pcsc_link *l, const char **names)
{
	LONG rv;
	int error;

	*names = "";
	if ((error = link_call(l, JOB_LIST, l->timeout_ms, &rv, "SCardListReaders", "pcscd")) < 0)
		return error;
	if (rv == SCARD_E_NO_READERS_AVAILABLE || (rv == SCARD_S_SUCCESS && !l->names_len) ||
	    (rv == SCARD_S_SUCCESS && !l->names[0]))
		return tr_error_set(TR_TOKEN_ENOTOKEN, "no PC/SC readers at all");
	if (rv != SCARD_S_SUCCESS)
		return tr_error_set(rv == SCARD_E_NO_SERVICE || rv == SCARD_E_SERVICE_STOPPED ?
				    TR_TOKEN_ENOTOKEN : TR_EIO, "SCardListReaders: %s (0x%08lX)",
				    pcsc_stringify_error(rv), (unsigned long)rv);
	*names = l->names;
	return 0;
}

/* Connect failures as open outcomes (naming the readers there are). */
static int connect_error(pcsc_link *l, LONG rv)
{
	const char *names, *reader = tr_pcsc_link_reader(l);
	char list[512] = "";
	size_t off = 0;

	switch (rv) {
	case SCARD_E_UNKNOWN_READER:
		if (tr_pcsc_link_readers(l, &names) == 0)
			for (const char *p = names; *p && off < sizeof(list) - 1;
			     p += strlen(p) + 1) {
				int n = snprintf(list + off, sizeof(list) - off, "%s'%s'",
						 off ? ", " : "", p);

				if (n < 0)
					break;
				off += (size_t)n;
			}
		else
			return tr_error_set(TR_TOKEN_ENOTOKEN, "no reader named '%s': %s", reader,
					    tr_error_last());
		return tr_error_set(TR_TOKEN_ENOTOKEN, "no reader named '%s' (readers: %s)",
				    reader, list);
	case SCARD_E_NO_READERS_AVAILABLE:
		return tr_error_set(TR_TOKEN_ENOTOKEN, "no PC/SC readers at all (looking for '%s')",
				    reader);
	case SCARD_E_NO_SMARTCARD:
	case SCARD_W_REMOVED_CARD:
	case SCARD_W_UNPOWERED_CARD:
	case SCARD_W_UNRESPONSIVE_CARD:
	case SCARD_E_READER_UNAVAILABLE:
		return tr_error_set(TR_TOKEN_ENOTOKEN, "no card in reader '%s': %s", reader,
				    pcsc_stringify_error(rv));
	case SCARD_E_NO_SERVICE:
	case SCARD_E_SERVICE_STOPPED:
		return tr_error_set(TR_TOKEN_ENOTOKEN, "SCardConnect %s: pcscd unreachable: %s",
				    reader, pcsc_stringify_error(rv));
	default:
		return tr_error_set(TR_EIO, "SCardConnect %s: %s (0x%08lX)", reader,
				    pcsc_stringify_error(rv), (unsigned long)rv);
	}
}

int tr_pcsc_link_connect(pcsc_link *l)
{
	LONG rv;
	int error;

	if ((error = link_call(l, JOB_CONNECT, l->timeout_ms, &rv, "SCardConnect",
			       tr_pcsc_link_reader(l))) < 0)
		return error;
	return rv == SCARD_S_SUCCESS ? 0 : connect_error(l, rv);
}

/* The PC/SC outcome of a call on an open card: gone, or an I/O failure. */
static int map_io(const pcsc_link *l, LONG rv, const char *what)
{
	switch (rv) {
	case SCARD_W_REMOVED_CARD:
	case SCARD_E_NO_SMARTCARD:
	case SCARD_W_RESET_CARD:
	case SCARD_W_UNPOWERED_CARD:
	case SCARD_W_UNRESPONSIVE_CARD:
	case SCARD_E_NOT_TRANSACTED:
	case SCARD_F_COMM_ERROR:
	case SCARD_E_COMM_DATA_LOST:
	case SCARD_E_READER_UNAVAILABLE:
	case SCARD_E_UNKNOWN_READER:
	case SCARD_E_INVALID_HANDLE:
	case SCARD_E_NO_SERVICE:
	case SCARD_E_SERVICE_STOPPED:
		return tr_error_set(TR_TOKEN_EREMOVED, "%s on %s: %s (0x%08lX)", what, tr_pcsc_link_reader(l),
				    pcsc_stringify_error(rv), (unsigned long)rv);
	default:
		return tr_error_set(TR_EIO, "%s on %s: %s (0x%08lX)", what, tr_pcsc_link_reader(l),
				    pcsc_stringify_error(rv), (unsigned long)rv);
	}
}

int tr_pcsc_link_transmit(void *link, const unsigned char *cmd, size_t len,
			  const unsigned char **resp, size_t *resp_len, const char *what)
{
	pcsc_link *l = link;
	LONG rv;
	int error;

	/* Into the link's own buffer: a worker left in a late call still reads it. */
	if (len > sizeof(l->cmd))
		return tr_error_set(TR_EINVAL, "%s: a command APDU of %zu bytes", what, len);
	memcpy(l->cmd, cmd, len);
	l->cmd_len = (DWORD)len;
	if ((error = link_call(l, JOB_TRANSMIT, l->timeout_ms, &rv, what,
			       tr_pcsc_link_reader(l))) < 0)
		return error;
	if (rv != SCARD_S_SUCCESS)
		return map_io(l, rv, what);
	*resp = l->resp;
	*resp_len = l->resp_len;
	return 0;
}
