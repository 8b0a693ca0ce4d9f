#include "harness/pcsc/apdu.h"

#include "common/error.h"
#include "harness/token.h"

#include <stdlib.h>
#include <string.h>

#define SHORT_MAX 255
#define CMD_MAX (4 + 3 + 65535 + 2)
#define ANSWER_MAX (64 * 1024)      /* an answer collected over GET RESPONSE */

struct tr_apdu_chan {
	tr_apdu_transmit_fn transmit;
	void *ctx;
	char *where;
	int extended;               /* extended-length APDUs accepted so far */
	const unsigned char *resp;  /* the last response APDU, the transport's */
	unsigned char cmd[CMD_MAX];
};

int tr_apdu_chan_new(tr_apdu_chan **out, tr_apdu_transmit_fn transmit, void *ctx,
		     const char *where, int extended)
{
	tr_apdu_chan *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c || !(c->where = strdup(where ? where : ""))) {
		free(c);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	c->transmit = transmit;
	c->ctx = ctx;
	c->extended = extended;
	*out = c;
	return 0;
}

void tr_apdu_chan_free(tr_apdu_chan *c)
{
	if (!c)
		return;
	free(c->where);
	free(c);
}

const char *tr_apdu_where(const tr_apdu_chan *c)
{
	return c->where;
}

int tr_apdu_extended(const tr_apdu_chan *c)
{
	return c->extended;
}

/* One APDU already in c->cmd; the answer's data stay at c->resp. */
static int xfer(tr_apdu_chan *c, const char *what, size_t cmd_len, size_t *data_len,
		unsigned *sw)
{
	const unsigned char *r = NULL;
	size_t len = 0;
	int error;

	if ((error = c->transmit(c->ctx, c->cmd, cmd_len, &r, &len, what)) < 0)
		return error;
	/* vpcd answers a card gone mid-command with success and no bytes. */
	if (len == 0)
		return tr_error_set(TR_TOKEN_EREMOVED, "%s on %s: no answer at all (the card went "
				    "away during the command)", what, c->where);
	if (len < 2)
		return tr_error_set(TR_EIO, "%s on %s: an answer of %zu bytes, no status word",
				    what, c->where, len);
	*sw = (unsigned)r[len - 2] << 8 | r[len - 1];
	*data_len = len - 2;
	c->resp = r;
	return 0;
}

/*
 * The command goes in one extended-length APDU when the card takes them
 * and it needs one, else in short APDUs chained with CLA 10; the answer is
 * collected across 61xx (GET RESPONSE).
 */
int tr_apdu_exchange(tr_apdu_chan *t, const char *what, const unsigned char hdr[4],
		     const unsigned char *data, size_t len, enum tr_apdu_le le, tr_buf *out,
		     unsigned *sw)
{
	unsigned char *c = t->cmd;
	size_t n, dlen = 0, off = 0;
	unsigned rounds = 0;
	int error, ext = t->extended && (len > SHORT_MAX || le == TR_APDU_LE_LONG);

	if (len > 65535)
		return tr_error_set(TR_EINVAL, "%s: %zu bytes of data, more than an APDU carries",
				    what, len);
	if (ext) {
		memcpy(c, hdr, 4);
		n = 4;
		c[n++] = 0x00;
		if (len) {
			c[n++] = (unsigned char)(len >> 8);
			c[n++] = (unsigned char)len;
			memcpy(c + n, data, len);
			n += len;
		}
		if (le != TR_APDU_LE_NONE || !len) {
			c[n++] = 0x00;
			c[n++] = 0x00;
		}
		if ((error = xfer(t, what, n, &dlen, sw)) < 0)
			return error;
		if (*sw == 0x6700) {
			/* Wrong length: no extended APDUs on this card (or reader). */
			t->extended = 0;
			return tr_apdu_exchange(t, what, hdr, data, len, le, out, sw);
		}
	} else {
		do {
			size_t piece = len - off > SHORT_MAX ? SHORT_MAX : len - off;
			int last = off + piece == len;

			c[0] = (unsigned char)(last ? hdr[0] : hdr[0] | 0x10);
			memcpy(c + 1, hdr + 1, 3);
			n = 4;
			if (piece) {
				c[n++] = (unsigned char)piece;
				memcpy(c + n, data + off, piece);
				n += piece;
			}
			if (last && le != TR_APDU_LE_NONE)
				c[n++] = 0x00;
			off += piece;
			if ((error = xfer(t, what, n, &dlen, sw)) < 0)
				return error;
			if (!last && *sw != 0x9000)
				return 0;
		} while (off < len);
	}
	for (;;) {
		tr_buf_put(out, (const char *)t->resp, dlen);
		if ((error = tr_buf_check(out, "a card's answer")) < 0)
			return error;
		if (out->len > ANSWER_MAX)
			return tr_error_set(TR_EIO, "%s on %s: the card answers more than %d bytes",
					    what, t->where, ANSWER_MAX);
		if ((*sw & 0xFF00) != 0x6100)
			return 0;
		if (++rounds > ANSWER_MAX / 256 + 2)
			return tr_error_set(TR_EIO, "%s on %s: 61xx without end", what, t->where);
		c[0] = 0x00;
		c[1] = 0xC0;
		c[2] = c[3] = 0x00;
		c[4] = (unsigned char)(*sw & 0xFF);
		if ((error = xfer(t, "GET RESPONSE", 5, &dlen, sw)) < 0)
			return error;
	}
}

const char *tr_apdu_sw_meaning(unsigned sw)
{
	switch (sw) {
	case 0x6700: return "wrong length";
	case 0x6881: return "logical channel not supported";
	case 0x6882: return "secure messaging not supported";
	case 0x6883: return "last command of the chain expected";
	case 0x6884: return "chaining not supported";
	case 0x6982: return "security status not satisfied";
	case 0x6983: return "authentication method blocked";
	case 0x6985: return "conditions of use not satisfied";
	case 0x6A80: return "incorrect data";
	case 0x6A81: return "function not supported";
	case 0x6A82: return "not found";
	case 0x6A86: return "incorrect P1/P2";
	case 0x6A88: return "referenced data not found";
	case 0x6D00: return "instruction not supported";
	case 0x6E00: return "class not supported";
	case 0x6F00: return "no precise diagnosis";
	case 0x6581: return "memory failure";
	default:
		return (sw & 0xFFF0) == 0x63C0 ? "verification failed" : "unexpected status";
	}
}

/* A status word other than 9000 as a token outcome. */
int tr_apdu_sw_error(const tr_apdu_chan *t, unsigned sw, const char *what)
{
	int code;

	if (sw == 0x9000)
		return 0;
	if ((sw & 0xFFF0) == 0x63C0)
		code = TR_TOKEN_EPIN_INCORRECT;
	else if (sw == 0x6983)
		code = TR_TOKEN_EPIN_LOCKED;
	else if (sw == 0x6982)
		code = TR_TOKEN_ENOT_LOGGED_IN;
	else if (sw == 0x6A82 || sw == 0x6A88)
		code = TR_ENOTFOUND;
	else
		code = TR_EIO;
	if ((sw & 0xFFF0) == 0x63C0)
		return tr_error_set(code, "%s on %s: %04X (%s, %u tries left)", what, t->where,
				    sw, tr_apdu_sw_meaning(sw), sw & 0x0F);
	return tr_error_set(code, "%s on %s: %04X (%s)", what, t->where, sw, tr_apdu_sw_meaning(sw));
}

int tr_apdu_command(tr_apdu_chan *c, const char *what, unsigned char ins, unsigned char p1,
		    unsigned char p2, const unsigned char *data, size_t len, unsigned *sw)
{
	const unsigned char hdr[4] = { 0x00, ins, p1, p2 };
	tr_buf ans = TR_BUF_INIT;
	int error = tr_apdu_exchange(c, what, hdr, data, len, TR_APDU_LE_NONE, &ans, sw);

	tr_buf_free(&ans);
	return error;
}
