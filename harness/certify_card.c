/*
 * certify --readers: what certify reads of a card besides the token layer
 * (harness/token.h has no reader enumeration, ATR or CHUID): the readers
 * holding a card, and a card's ATR and CHUID GUID (its serial). Through the
 * PC/SC backend's own link (every call bounded by tr_pcsc_timeout_ms) and
 * APDU channel (a CHUID of a real card, signed, is longer than a short
 * answer: 61xx and GET RESPONSE are followed there).
 */
#include "harness/certify.h"

#include "common/buf.h"
#include "common/error.h"
#include "harness/pcsc/apdu.h"
#include "harness/pcsc/link.h"
#include "harness/pcsc/piv.h"
#include "harness/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The card in reader, connected: a link of its own (closed by the caller). */
static int connect_card(const char *reader, tr_pcsc_link **l)
{
	int error;

	if ((error = tr_pcsc_link_new(l, reader, tr_pcsc_timeout_ms())) < 0)
		return error;
	if ((error = tr_pcsc_link_establish(*l)) < 0 || (error = tr_pcsc_link_connect(*l)) < 0) {
		tr_pcsc_link_close(*l);
		*l = NULL;
	}
	return error;
}

int tr_certify_readers(char *names, size_t len, size_t *n)
{
	tr_pcsc_link *l = NULL;
	const char *all;
	size_t used = 0;
	int error;

	*n = 0;
	if ((error = tr_pcsc_link_new(&l, NULL, tr_pcsc_timeout_ms())) < 0)
		return error;
	if ((error = tr_pcsc_link_establish(l)) < 0)
		goto out;
	if ((error = tr_pcsc_link_readers(l, &all)) < 0) {
		if (error == TR_TOKEN_ENOTOKEN)
			error = 0; /* no readers: no cards */
		goto out;
	}
	for (const char *r = all; *r; r += strlen(r) + 1) {
		tr_pcsc_link *card = NULL;
		size_t rl = strlen(r) + 1;

		/* Only readers with a card in them: a batch is cards. */
		if (connect_card(r, &card) < 0)
			continue;
		tr_pcsc_link_close(card);
		if (used + rl > len) {
			error = tr_error_set(TR_EINVAL, "too many readers (%zu bytes of names)", len);
			goto out;
		}
		memcpy(names + used, r, rl);
		used += rl;
		(*n)++;
	}
out:
	tr_pcsc_link_close(l);
	return error;
}

int tr_certify_card_facts(const char *reader, char *atr, size_t atr_len, char *guid,
			  size_t guid_len)
{
	static const unsigned char get_data[4] = { 0x00, 0xCB, 0x3F, 0xFF };
	static const unsigned char chuid[] = { 0x5C, 0x03, 0x5F, 0xC1, 0x02 };
	const unsigned char *a;
	tr_pcsc_link *l = NULL;
	tr_apdu_chan *c = NULL;
	tr_buf ans = TR_BUF_INIT;
	unsigned sw;
	size_t n;
	int error;

	atr[0] = guid[0] = '\0';
	if ((error = connect_card(reader, &l)) < 0)
		return error;
	n = tr_pcsc_link_atr(l, &a);
	hex_into(a, n, atr, atr_len);
	/* A card without PIV or a CHUID keeps reader-N as its serial: no error. */
	if (tr_apdu_chan_new(&c, tr_pcsc_link_transmit, l, reader, 0) == 0 &&
	    tr_piv_select(c) == 0 &&
	    tr_apdu_exchange(c, "GET DATA CHUID", get_data, chuid, sizeof(chuid), TR_APDU_LE_LONG,
			     &ans, &sw) == 0 && sw == 0x9000)
		tr_certify_chuid_guid((const unsigned char *)tr_buf_cstr(&ans), ans.len, guid,
				      guid_len);
	tr_buf_free(&ans);
	tr_apdu_chan_free(c);
	tr_pcsc_link_close(l);
	return 0;
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
