/*
 * The PC/SC backend of the token layer: a PIV card (NIST SP 800-73-4)
 * driven in APDUs through libpcsclite, behind the same tr_token interface
 * and outcomes as the PKCS#11 backend (token_p11.c).
 *
 * This file is the glue between tr_token and the card backend's layers in
 * harness/pcsc/ (one header each, see harness/pcsc/link.h): link (PC/SC
 * calls on a worker thread with deadlines), apdu (exchange, chaining,
 * status words), piv (the PIV commands and the parsers of their answers).
 * What stays here is the token's own state: the PIN status and counters,
 * the reader driver model of the rig's card kinds, and opening by reader
 * or by unit.
 *
 * What a PIV card cannot tell: the key's public half (no public key object
 * outside of key generation), so a certificate that is not 9A's key is not
 * refused at open as the PKCS#11 backend does; the first login's probe
 * signature finds it (tr_token_login).
 */
#include "harness/token.h"

#include "common/error.h"
#include "harness/pcsc/apdu.h"
#include "harness/pcsc/link.h"
#include "harness/pcsc/piv.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winscard.h>

typedef struct pcsc_token {
	tr_token base;
	tr_pcsc_link *link;
	tr_apdu_chan *chan;
	char reader[256];           /* for messages */
	int logged_in;
	int pin_tries;              /* last count the card told, -1 unknown */
	/*
	 * The highest count seen: after a right PIN (or a PUK reset) the counter
	 * is back at its maximum, which PIV does not tell, but a fresh card
	 * showed it once.
	 */
	int max_tries_seen;
} pcsc_token;

static int pcsc_logout(tr_token *tok);

static void pcsc_close(tr_token *tok)
{
	pcsc_token *t = (pcsc_token *)tok;

	/*
	 * A PIV card keeps its PIN verified until reset, across connections:
	 * whoever opens it next must not find it logged in. Best effort (the
	 * card may be gone; the exchange has its deadline).
	 */
	if (t->logged_in && t->chan)
		(void)pcsc_logout(tok);
	tr_apdu_chan_free(t->chan);
	tr_pcsc_link_close(t->link);
	free(t->base.cert_der);
	free(t);
}

static const tr_token_ops pcsc_ops;

static int pcsc_pin_tries(tr_token *tok);

/* --- the reader driver model (tr_token_pcsc_set_driver) ----------------- */

enum { DRV_PRESENT, DRV_MISSING, DRV_EMPTY };

#define DRV_MAX 64

static struct {
	char reader[64];
	int state, fault;
} drivers[DRV_MAX];
static pthread_mutex_t drivers_lock = PTHREAD_MUTEX_INITIALIZER;

/* The entry of reader, made when make; with drivers_lock held. */
static int driver_slot(const char *reader, int make)
{
	int free_slot = -1;

	for (int i = 0; i < DRV_MAX; i++) {
		if (drivers[i].reader[0] && !strcmp(drivers[i].reader, reader))
			return i;
		if (!drivers[i].reader[0] && free_slot < 0)
			free_slot = i;
	}
	if (!make || free_slot < 0 || strlen(reader) >= sizeof(drivers[0].reader))
		return -1;
	snprintf(drivers[free_slot].reader, sizeof(drivers[0].reader), "%s", reader);
	drivers[free_slot].state = DRV_PRESENT;
	drivers[free_slot].fault = 0;
	return free_slot;
}

int tr_token_pcsc_set_driver(const char *reader, const char *state)
{
	int st, i;

	if (!reader || !state)
		return tr_error_set(TR_EINVAL, "no reader or driver state");
	st = !strcmp(state, "present") ? DRV_PRESENT : !strcmp(state, "missing") ? DRV_MISSING :
	     !strcmp(state, "empty") ? DRV_EMPTY : -1;
	if (st < 0)
		return tr_error_set(TR_EINVAL, "driver '%s': present, missing or empty", state);
	pthread_mutex_lock(&drivers_lock);
	i = driver_slot(reader, st != DRV_PRESENT);
	if (i >= 0 && st == DRV_PRESENT)
		drivers[i].reader[0] = '\0'; /* as installed, fault gone too */
	else if (i >= 0)
		drivers[i].state = st;
	pthread_mutex_unlock(&drivers_lock);
	return i < 0 && st != DRV_PRESENT ?
	       tr_error_set(TR_EINVAL, "reader '%s': no room for its driver state", reader) : 0;
}

int tr_token_pcsc_fault_once(const char *reader)
{
	int i;

	pthread_mutex_lock(&drivers_lock);
	if ((i = driver_slot(reader ? reader : "", 1)) >= 0)
		drivers[i].fault = 1;
	pthread_mutex_unlock(&drivers_lock);
	return i < 0 ? tr_error_set(TR_EINVAL, "reader '%s': no room for a fault", reader) : 0;
}

/* The driver state of reader; a pending fault is taken (once). */
static int driver_state(const char *reader, int *fault)
{
	int i, st = DRV_PRESENT;

	pthread_mutex_lock(&drivers_lock);
	*fault = 0;
	if ((i = driver_slot(reader, 0)) >= 0) {
		st = drivers[i].state;
		*fault = drivers[i].fault;
		drivers[i].fault = 0;
	}
	pthread_mutex_unlock(&drivers_lock);
	return st;
}

/* pcscd's readers as the installed drivers show them: reader listed or not. */
static int reader_listed(pcsc_token *t)
{
	const char *names;
	int error;

	if ((error = tr_pcsc_link_readers(t->link, &names)) < 0)
		return error;
	for (const char *p = names; *p; p += strlen(p) + 1)
		if (!strcmp(p, t->reader))
			return 1;
	return 0;
}

static int open_reader(pcsc_token **out, const char *reader)
{
	int fault, drv;
	pcsc_token *t;
	int error;

	*out = NULL;
	if (!reader || !*reader)
		return tr_error_set(TR_EINVAL, "no reader name");
	if (!(t = calloc(1, sizeof(*t))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	t->base.ops = &pcsc_ops;
	t->pin_tries = -1;
	t->max_tries_seen = -1;
	snprintf(t->reader, sizeof(t->reader), "%s", reader);
	if ((error = tr_pcsc_link_new(&t->link, reader, tr_pcsc_timeout_ms())) < 0) {
		free(t);
		return error;
	}
	if ((error = tr_pcsc_link_establish(t->link)) < 0)
		goto out;
	drv = driver_state(t->reader, &fault);
	if (fault) {
		error = tr_error_set(TR_EIO, "SCardListReaders: %s (0x%08lX): the rig's fault, once",
				     pcsc_stringify_error(SCARD_F_INTERNAL_ERROR),
				     (unsigned long)SCARD_F_INTERNAL_ERROR);
		goto out;
	}
	if (drv == DRV_MISSING) {
		/* pcscd has the reader; without its driver the system would not. */
		if ((error = reader_listed(t)) >= 0)
			error = tr_error_set(TR_TOKEN_ENODRIVER, "reader '%s' %s: its reader driver "
					     "is not installed", t->reader,
					     error ? "hidden" : "not listed either");
		goto out;
	}
	if ((error = tr_pcsc_link_connect(t->link)) < 0)
		goto out;
	if (drv == DRV_EMPTY) {
		/* The card is in (connected), the driver blind to it (JS-E01). */
		error = tr_error_set(TR_TOKEN_ENODRIVER, "a card is in reader '%s' (connected), "
				     "its driver enumerates no token: it does not recognise the key",
				     t->reader);
		goto out;
	}
	if ((error = tr_apdu_chan_new(&t->chan, tr_pcsc_link_transmit, t->link, t->reader,
				      tr_pcsc_link_t1(t->link) &&
				      !getenv("TOKENRIG_PCSC_SHORT_APDUS"))) < 0 ||
	    (error = tr_piv_select(t->chan)) < 0 ||
	    (error = tr_piv_read_certificate(t->chan, &t->base.cert_der, &t->base.cert_len,
					     &t->base.alg)) < 0)
		goto out;
	/* Learns the counter (the full count, on a card nobody mistyped on). */
	pcsc_pin_tries(&t->base);
out:
	if (error < 0)
		pcsc_close(&t->base);
	else
		*out = t;
	return error;
}

int tr_token_open_pcsc(tr_token **out, const char *reader)
{
	pcsc_token *t;
	int error = open_reader(&t, reader);

	*out = error < 0 ? NULL : &t->base;
	return error;
}

int tr_token_open_pcsc_unit(tr_token **out, const char *unit_name)
{
	tr_pcsc_link *l = NULL;
	pcsc_token *t = NULL;
	unsigned readers = 0, cards = 0, hidden = 0;
	const char *names;
	char other[512] = "";
	int error;

	*out = NULL;
	if (!unit_name || !*unit_name)
		return tr_error_set(TR_EINVAL, "no unit name");
	if ((error = tr_pcsc_link_new(&l, NULL, tr_pcsc_timeout_ms())) < 0)
		return error;
	if ((error = tr_pcsc_link_establish(l)) < 0 ||
	    (error = tr_pcsc_link_readers(l, &names)) < 0)
		goto out;
	error = TR_ENOTFOUND;
	/* Valid certificates first, as a user picks a usable one by company. */
	for (int valid_only = 1; valid_only >= 0 && error == TR_ENOTFOUND; valid_only--) {
		readers = cards = hidden = 0;
		for (const char *r = names; *r && error == TR_ENOTFOUND; r += strlen(r) + 1) {
			int e = open_reader(&t, r);

			readers++;
			if (e == TR_TOKEN_ENOTOKEN || e == TR_TOKEN_ENODRIVER) {
				/* Not listed: no card, or a reader driver that hides it. */
				hidden += e == TR_TOKEN_ENODRIVER;
				continue;
			}
			if (e < 0) {
				/* A card that fails is skipped; its reason is kept for the end. */
				snprintf(other, sizeof(other), "%s: %s", r, tr_error_last());
				continue;
			}
			cards++;
			if (tr_cert_of_unit(t->base.cert_der, t->base.cert_len, unit_name, valid_only)) {
				*out = &t->base;
				error = 0;
			} else {
				pcsc_close(&t->base);
			}
			t = NULL;
		}
	}
	if (error == TR_ENOTFOUND && cards == 0 && !other[0] && hidden)
		error = tr_error_set(TR_TOKEN_ENODRIVER, "no PIV card listed in the %u reader(s): "
				     "%u hidden by a reader driver missing or blind", readers, hidden);
	else if (error == TR_ENOTFOUND && cards == 0 && !other[0])
		error = tr_error_set(TR_TOKEN_ENOTOKEN, "no PIV card in any of the %u reader(s)",
				     readers);
	else if (error == TR_ENOTFOUND)
		error = tr_error_set(TR_ENOTFOUND, "no certificate of '%s' on the %u card(s) in %u "
				     "reader(s)%s%s", unit_name, cards, readers,
				     other[0] ? "; failed: " : "", other);
out:
	tr_pcsc_link_close(l);
	return error;
}

/* --- operations -------------------------------------------------------- */

static int known_max(pcsc_token *t, int seen);

/* Keeps the PIN counter the card told in a status word. */
static void note_tries(pcsc_token *t, unsigned sw)
{
	if ((sw & 0xFFF0) == 0x63C0)
		t->pin_tries = (int)(sw & 0x0F);
	else if (sw == 0x6983)
		t->pin_tries = 0;
	/* Every count is remembered for the card, not only this handle's. */
	t->max_tries_seen = known_max(t, t->pin_tries > t->max_tries_seen ? t->pin_tries :
					 t->max_tries_seen);
}

/*
 * The maximum counts seen, per card (reader and certificate) for the life of
 * the process: every login opens the card anew, and a card first seen after
 * a wrong PIN would otherwise never tell its full count again. A ring: a
 * long run writes many certificates, and the oldest cards are the ones
 * nobody opens again.
 */
#define MAX_KNOWN 64

static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char reader[256];
	unsigned char cert_md[32];
	int max;
} known[MAX_KNOWN];
static size_t n_known, next_known;

static void card_md(const pcsc_token *t, unsigned char md[32])
{
	memset(md, 0, 32);
	if (t->base.cert_der)
		EVP_Digest(t->base.cert_der, t->base.cert_len, md, NULL, EVP_sha256(), NULL);
}

static int known_max(pcsc_token *t, int seen)
{
	unsigned char md[32];
	size_t i;
	int max = seen;

	card_md(t, md);
	pthread_mutex_lock(&known_lock);
	for (i = 0; i < n_known; i++)
		if (!strcmp(known[i].reader, t->reader) && !memcmp(known[i].cert_md, md, 32))
			break;
	if (i == n_known) {
		i = next_known;
		next_known = (next_known + 1) % MAX_KNOWN;
		if (n_known < MAX_KNOWN)
			n_known++;
		snprintf(known[i].reader, sizeof(known[i].reader), "%s", t->reader);
		memcpy(known[i].cert_md, md, 32);
		known[i].max = -1;
	}
	if (seen > known[i].max)
		known[i].max = seen;
	max = known[i].max;
	pthread_mutex_unlock(&known_lock);
	return max;
}

/* After a right PIN or a reset: the maximum, when the card showed it. */
static void tries_full(pcsc_token *t)
{
	int max = known_max(t, t->max_tries_seen);

	t->pin_tries = max > 0 ? max : -1;
}

static int pcsc_login(tr_token *tok, const char *pin)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned sw;
	int error;

	if ((error = tr_piv_verify(t->chan, pin, &sw)) < 0)
		return error;
	note_tries(t, sw);
	if (sw != 0x9000) {
		/* A refused VERIFY drops the PIN status on a PIV card. */
		t->logged_in = 0;
		return tr_apdu_sw_error(t->chan, sw, "VERIFY");
	}
	t->logged_in = 1;
	tries_full(t);
	return 0;
}

static int pcsc_logout(tr_token *tok)
{
	pcsc_token *t = (pcsc_token *)tok;

	if (!t->logged_in)
		return 0;
	t->logged_in = 0;
	return tr_piv_unverify(t->chan);
}

static int pcsc_pin_tries(tr_token *tok)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned sw;

	if (tr_piv_verify(t->chan, NULL, &sw) < 0)
		return -1;
	if (sw == 0x9000)
		return t->pin_tries;
	note_tries(t, sw);
	if ((sw & 0xFFF0) == 0x63C0 || sw == 0x6983)
		return t->pin_tries;
	tr_apdu_sw_error(t->chan, sw, "VERIFY (tries)");
	return -1;
}

static int pcsc_change_pin(tr_token *tok, const char *old_pin, const char *new_pin)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned sw;
	int error;

	if ((error = tr_piv_change_pin(t->chan, 0, old_pin, new_pin, &sw)) < 0)
		return error;
	note_tries(t, sw);
	if ((sw & 0xFFF0) == 0x63C0 || sw == 0x6983)
		t->logged_in = 0;
	if (sw == 0x6A80)
		return tr_error_set(TR_EINVAL, "CHANGE REFERENCE DATA on %s: 6A80 (the card "
				    "refuses the new PIN: 6-8 characters)", t->reader);
	return tr_apdu_sw_error(t->chan, sw, "CHANGE REFERENCE DATA");
}

static int pcsc_reset_pin(tr_token *tok, const char *puk, const char *new_pin)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned sw;
	int error;

	if ((error = tr_piv_change_pin(t->chan, 1, puk, new_pin, &sw)) < 0)
		return error;
	/* 63Cx / 6983 here count the PUK's tries, not the PIN's. */
	if (sw == 0x9000) {
		t->logged_in = 0;
		tries_full(t);
	}
	if (sw == 0x6A80)
		return tr_error_set(TR_EINVAL, "RESET RETRY COUNTER on %s: 6A80 (the card "
				    "refuses the new PIN: 6-8 characters)", t->reader);
	return tr_apdu_sw_error(t->chan, sw, "RESET RETRY COUNTER (PUK)");
}

static int pcsc_sign(tr_token *tok, const unsigned char *data, size_t len,
		     unsigned char **sig, size_t *sig_len, uint64_t *token_ns)
{
	pcsc_token *t = (pcsc_token *)tok;
	int error;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "sign before login");
	error = tr_piv_sign(t->chan, t->base.alg, data, len, sig, sig_len, token_ns);
	if (error == TR_TOKEN_ENOT_LOGGED_IN)
		t->logged_in = 0;
	return error;
}

/*
 * A new key in 9A replaces the old one at once, as on a real card; the
 * certificate follows with pcsc_write_certificate.
 */
static int pcsc_generate_key(tr_token *tok, tr_keygen alg, unsigned char **spki,
			     size_t *spki_len)
{
	pcsc_token *t = (pcsc_token *)tok;
	int error;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "key generation before login");
	if ((error = tr_piv_mgmt_authenticate(t->chan)) < 0)
		return error;
	return tr_piv_generate(t->chan, alg, spki, spki_len);
}

/* The token's copy of its certificate and algorithm follow the card's. */
static int adopt_certificate(pcsc_token *t, const unsigned char *der, size_t len)
{
	unsigned char *copy = malloc(len);
	tr_sign_alg alg;
	int error;

	if (!copy)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = tr_piv_cert_alg(der, len, &alg)) < 0) {
		free(copy);
		return error;
	}
	memcpy(copy, der, len);
	free(t->base.cert_der);
	t->base.cert_der = copy;
	t->base.cert_len = len;
	t->base.alg = alg;
	return 0;
}

static int pcsc_write_certificate(tr_token *tok, const unsigned char *der, size_t len)
{
	pcsc_token *t = (pcsc_token *)tok;
	tr_sign_alg alg;
	int error;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "writing a certificate before login");
	/* Refused before anything reaches the card: not a certificate it can use. */
	if ((error = tr_piv_cert_alg(der, len, &alg)) < 0)
		return error;
	if ((error = tr_piv_mgmt_authenticate(t->chan)) < 0 ||
	    (error = tr_piv_put_certificate(t->chan, der, len)) < 0)
		return error;
	return adopt_certificate(t, der, len);
}

/*
 * Puts the provisioned certificate back. A card cannot take its old key
 * back (PIV has no key import): after a GENERATE only the rig's reload of
 * the card image restores it, and this says so.
 */
static int pcsc_restore(tr_token *tok, const unsigned char *der, size_t len)
{
	pcsc_token *t = (pcsc_token *)tok;
	int error;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "restoring before login");
	if (t->base.cert_der && t->base.cert_len == len && !memcmp(t->base.cert_der, der, len))
		return 0;
	if ((error = tr_piv_mgmt_authenticate(t->chan)) < 0)
		return error;
	if ((error = tr_piv_put_certificate(t->chan, der, len)) == TR_TOKEN_EKEY_MISMATCH)
		return tr_error_set(error, "the card in %s holds a new key: a PIV card cannot take "
				    "the old one back (the rig reloads its virtual cards instead)",
				    t->reader);
	if (error < 0)
		return error;
	return adopt_certificate(t, der, len);
}

static const tr_token_ops pcsc_ops = {
	.kind = "pcsc",
	.probe_key_at_login = 1,
	.login = pcsc_login,
	.logout = pcsc_logout,
	.pin_tries = pcsc_pin_tries,
	.change_pin = pcsc_change_pin,
	.reset_pin = pcsc_reset_pin,
	.sign = pcsc_sign,
	.generate_key = pcsc_generate_key,
	.write_certificate = pcsc_write_certificate,
	.restore = pcsc_restore,
	.close = pcsc_close,
};
