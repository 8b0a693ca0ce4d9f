/*
 * certify --readers: what certify reads of a card besides the token layer
 * (harness/token.h has no reader enumeration, ATR or CHUID): the readers
 * holding a card, and a card's ATR and CHUID GUID (its serial). Every
 * PC/SC call runs on a thread of its own and is waited for with a deadline,
 * as in the PC/SC backend: SCardTransmit has no timeout of its own.
 */
#include "harness/certify.h"

#include "common/clock.h"
#include "common/error.h"
#include "harness/token.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winscard.h>

#define CARD_TIMEOUT_MS 10000

typedef struct card_job {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, refs;
	int list;                  /* 1: list the readers, 0: one card's facts */
	char reader[256];
	char readers[4096];        /* NUL-separated names of readers holding a card */
	size_t readers_len;
	char atr[2 * 33 + 1], guid[2 * 16 + 1];
	char err[256];
	int rc;
} card_job;

static void job_release(card_job *j)
{
	int last;

	pthread_mutex_lock(&j->mu);
	last = --j->refs == 0;
	pthread_mutex_unlock(&j->mu);
	if (last) {
		pthread_cond_destroy(&j->cv);
		pthread_mutex_destroy(&j->mu);
		free(j);
	}
}

static void hex_into(const unsigned char *v, size_t n, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && o + 3 <= len; i++)
		o += (size_t)snprintf(out + o, len - o, "%02x", v[i]);
}

int tr_certify_chuid_guid(const unsigned char *ans, size_t len, char *hex, size_t hex_len)
{
	size_t i = 0, end = len;

	hex[0] = '\0';
	/* 53 L { ... 34 10 GUID ... }, L in BER short or long form. */
	if (len >= 2 && ans[0] == 0x53) {
		size_t l = ans[1], hdr = 2;

		if (ans[1] == 0x81 && len >= 3) {
			l = ans[2];
			hdr = 3;
		} else if (ans[1] == 0x82 && len >= 4) {
			l = (size_t)ans[2] << 8 | ans[3];
			hdr = 4;
		} else if (ans[1] & 0x80) {
			return TR_EPARSE;
		}
		if (hdr + l > len)
			return TR_EPARSE;
		i = hdr;
		end = hdr + l;
	}
	while (i + 2 <= end) {
		unsigned tag = ans[i];
		size_t l = ans[i + 1], hdr = 2;

		if (l == 0x81 && i + 3 <= end) {
			l = ans[i + 2];
			hdr = 3;
		} else if (l == 0x82 && i + 4 <= end) {
			l = (size_t)ans[i + 2] << 8 | ans[i + 3];
			hdr = 4;
		} else if (l & 0x80) {
			return TR_EPARSE;
		}
		if (i + hdr + l > end)
			return TR_EPARSE;
		if (tag == 0x34 && l == 16) {
			hex_into(ans + i + hdr, l, hex, hex_len);
			return 0;
		}
		i += hdr + l;
	}
	return TR_ENOTFOUND;
}

static void card_facts(card_job *j, SCARDCONTEXT ctx)
{
	static const unsigned char select_piv[] = { 0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00,
						     0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00 };
	static const unsigned char get_chuid[] = { 0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03,
						   0x5F, 0xC1, 0x02, 0x00 };
	SCARDHANDLE h;
	DWORD proto, state, rlen = 0, atr_len = MAX_ATR_SIZE, n;
	BYTE atr[MAX_ATR_SIZE], resp[512];
	const SCARD_IO_REQUEST *pci;
	LONG rv;

	rv = SCardConnect(ctx, j->reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
			  &h, &proto);
	if (rv != SCARD_S_SUCCESS) {
		snprintf(j->err, sizeof(j->err), "SCardConnect %.120s: %s", j->reader,
			 pcsc_stringify_error(rv));
		j->rc = TR_TOKEN_ENOTOKEN;
		return;
	}
	if (SCardStatus(h, NULL, &rlen, &state, &proto, atr, &atr_len) == SCARD_S_SUCCESS)
		hex_into(atr, atr_len, j->atr, sizeof(j->atr));
	pci = proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
	n = sizeof(resp);
	if (SCardTransmit(h, pci, select_piv, sizeof(select_piv), NULL, resp, &n) ==
	    SCARD_S_SUCCESS && n >= 2 && resp[n - 2] == 0x90) {
		n = sizeof(resp);
		/* The CHUID fits a short answer; a 61xx would mean more, not the GUID. */
		if (SCardTransmit(h, pci, get_chuid, sizeof(get_chuid), NULL, resp, &n) ==
		    SCARD_S_SUCCESS && n >= 2 && resp[n - 2] == 0x90)
			tr_certify_chuid_guid(resp, n - 2, j->guid, sizeof(j->guid));
	}
	SCardDisconnect(h, SCARD_LEAVE_CARD);
}

static void list_readers(card_job *j, SCARDCONTEXT ctx)
{
	char *names = NULL;
	DWORD len = SCARD_AUTOALLOCATE;
	LONG rv = SCardListReaders(ctx, NULL, (LPSTR)&names, &len);

	if (rv == SCARD_E_NO_READERS_AVAILABLE) {
		j->readers_len = 0;
		return;
	}
	if (rv != SCARD_S_SUCCESS) {
		snprintf(j->err, sizeof(j->err), "SCardListReaders: %s", pcsc_stringify_error(rv));
		j->rc = TR_TOKEN_ENOTOKEN;
		return;
	}
	for (const char *r = names; r && *r; r += strlen(r) + 1) {
		SCARD_READERSTATE st = { .szReader = r, .dwCurrentState = SCARD_STATE_UNAWARE };
		size_t l = strlen(r) + 1;

		/* Only readers with a card in them: a batch is cards. */
		if (SCardGetStatusChange(ctx, 0, &st, 1) != SCARD_S_SUCCESS ||
		    !(st.dwEventState & SCARD_STATE_PRESENT))
			continue;
		if (j->readers_len + l < sizeof(j->readers)) {
			memcpy(j->readers + j->readers_len, r, l);
			j->readers_len += l;
		}
	}
	SCardFreeMemory(ctx, names);
}

static void *job_thread(void *arg)
{
	card_job *j = arg;
	SCARDCONTEXT ctx;
	LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);

	if (rv != SCARD_S_SUCCESS) {
		snprintf(j->err, sizeof(j->err), "no PC/SC daemon reachable (PCSCLITE_CSOCK_NAME=%s): "
			 "%s", getenv("PCSCLITE_CSOCK_NAME") ? getenv("PCSCLITE_CSOCK_NAME") :
			 "(unset)", pcsc_stringify_error(rv));
		j->rc = TR_TOKEN_ENOTOKEN;
	} else {
		if (j->list)
			list_readers(j, ctx);
		else
			card_facts(j, ctx);
		SCardReleaseContext(ctx);
	}
	pthread_mutex_lock(&j->mu);
	j->done = 1;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	job_release(j);
	return NULL;
}

/* Runs j on its own thread; past the deadline the thread is left to finish alone. */
static int job_run(card_job *j, const char *what)
{
	uint64_t deadline = tr_deadline_after_ms(CARD_TIMEOUT_MS);
	pthread_t t;
	int done;

	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->refs = 2;
	if (pthread_create(&t, NULL, job_thread, j) != 0) {
		j->refs = 1;
		return tr_error_set(TR_EIO, "%s: no thread", what);
	}
	pthread_detach(t);
	pthread_mutex_lock(&j->mu);
	while (!j->done && !tr_deadline_passed(deadline)) {
		pthread_mutex_unlock(&j->mu);
		tr_poll_pause(deadline, 10);
		pthread_mutex_lock(&j->mu);
	}
	done = j->done;
	pthread_mutex_unlock(&j->mu);
	if (!done)
		return tr_error_set(TR_ETIMEDOUT, "%s: no answer within %d ms", what, CARD_TIMEOUT_MS);
	if (j->rc < 0)
		return tr_error_set(j->rc, "%s", j->err);
	return 0;
}

int tr_certify_readers(char *names, size_t len, size_t *n)
{
	card_job *j = calloc(1, sizeof(*j));
	int error;

	*n = 0;
	if (!j)
		return tr_error_set(TR_ENOMEM, "out of memory");
	j->list = 1;
	if ((error = job_run(j, "listing the PC/SC readers")) == 0) {
		if (j->readers_len > len)
			error = tr_error_set(TR_EINVAL, "too many readers");
		else
			memcpy(names, j->readers, j->readers_len);
		for (size_t i = 0; !error && i < j->readers_len; i++)
			*n += j->readers[i] == '\0';
	}
	job_release(j);
	return error;
}

int tr_certify_card_facts(const char *reader, char *atr, size_t atr_len, char *guid,
			  size_t guid_len)
{
	card_job *j = calloc(1, sizeof(*j));
	int error;

	atr[0] = guid[0] = '\0';
	if (!j)
		return tr_error_set(TR_ENOMEM, "out of memory");
	snprintf(j->reader, sizeof(j->reader), "%s", reader);
	if ((error = job_run(j, reader)) == 0) {
		snprintf(atr, atr_len, "%s", j->atr);
		snprintf(guid, guid_len, "%s", j->guid);
	}
	job_release(j);
	return error;
}

int tr_certify_mgmt_key_valid(const char *hex)
{
	size_t n = hex ? strlen(hex) : 0;

	if (n != 48)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", hex[i]))
			return 0;
	return 1;
}
