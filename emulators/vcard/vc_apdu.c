#include "emulators/vcard/vc_apdu.h"

#include <string.h>

int vc_apdu_parse(vc_apdu *out, const uint8_t *buf, size_t len)
{
	size_t lc;

	memset(out, 0, sizeof(*out));
	if (!buf || len < 4)
		return VC_SW_WRONG_LENGTH;
	out->cla = buf[0];
	out->ins = buf[1];
	out->p1 = buf[2];
	out->p2 = buf[3];
	if (len == 4)
		return 0;                               /* case 1 */
	if (len == 5) {                                 /* case 2 short */
		out->has_le = 1;
		out->le = buf[4] ? buf[4] : 256;
		return 0;
	}
	if (buf[4] != 0) {                              /* short Lc */
		lc = buf[4];
		if (len == 5 + lc) {
			out->data = buf + 5;
			out->lc = lc;
			return 0;
		}
		if (len == 6 + lc) {
			out->data = buf + 5;
			out->lc = lc;
			out->has_le = 1;
			out->le = buf[len - 1] ? buf[len - 1] : 256;
			return 0;
		}
		return VC_SW_WRONG_LENGTH;
	}
	/* 00 first: extended length. */
	out->extended = 1;
	if (len == 7) {                                 /* case 2 extended */
		out->has_le = 1;
		out->le = ((size_t)buf[5] << 8) | buf[6];
		if (out->le == 0)
			out->le = 65536;
		return 0;
	}
	if (len < 8)
		return VC_SW_WRONG_LENGTH;
	lc = ((size_t)buf[5] << 8) | buf[6];
	if (lc == 0)
		return VC_SW_WRONG_LENGTH;
	if (len == 7 + lc) {
		out->data = buf + 7;
		out->lc = lc;
		return 0;
	}
	if (len == 9 + lc) {
		out->data = buf + 7;
		out->lc = lc;
		out->has_le = 1;
		out->le = ((size_t)buf[len - 2] << 8) | buf[len - 1];
		if (out->le == 0)
			out->le = 65536;
		return 0;
	}
	return VC_SW_WRONG_LENGTH;
}

void vc_tlv_init(vc_tlv_reader *r, const uint8_t *buf, size_t len)
{
	r->p = buf;
	r->end = buf ? buf + len : buf;
}

int vc_tlv_next(vc_tlv_reader *r, unsigned *tag, const uint8_t **val,
		size_t *vlen)
{
	const uint8_t *p = r->p;
	size_t left = (size_t)(r->end - p), n;
	unsigned t;

	if (!p || left == 0)
		return 0;
	t = *p++;
	left--;
	if ((t & 0x1f) == 0x1f) {
		if (left < 1 || (*p & 0x80))
			return -1;          /* tags longer than 2 bytes: not PIV */
		t = (t << 8) | *p++;
		left--;
	}
	if (left < 1)
		return -1;
	if (*p < 0x80) {
		n = *p++;
		left--;
	} else if (*p == 0x81) {
		if (left < 2)
			return -1;
		n = p[1];
		p += 2;
		left -= 2;
	} else if (*p == 0x82) {
		if (left < 3)
			return -1;
		n = ((size_t)p[1] << 8) | p[2];
		p += 3;
		left -= 3;
	} else {
		return -1;
	}
	if (n > left)
		return -1;
	*tag = t;
	*val = p;
	*vlen = n;
	r->p = p + n;
	return 1;
}

size_t vc_tlv_header_len(unsigned tag, size_t vlen)
{
	size_t n = tag > 0xff ? (tag > 0xffff ? 3 : 2) : 1;

	return n + (vlen < 0x80 ? 1 : vlen < 0x100 ? 2 : 3);
}

int vc_tlv_put(uint8_t *buf, size_t cap, size_t *off, unsigned tag,
	       const uint8_t *val, size_t vlen)
{
	size_t o = *off, need;

	if (vlen > 0xffff)
		return -1;
	need = vc_tlv_header_len(tag, vlen) + (val ? vlen : 0);
	if (o > cap || cap - o < need)
		return -1;
	if (tag > 0xffff)
		buf[o++] = (uint8_t)(tag >> 16);
	if (tag > 0xff)
		buf[o++] = (uint8_t)(tag >> 8);
	buf[o++] = (uint8_t)tag;
	if (vlen < 0x80) {
		buf[o++] = (uint8_t)vlen;
	} else if (vlen < 0x100) {
		buf[o++] = 0x81;
		buf[o++] = (uint8_t)vlen;
	} else {
		buf[o++] = 0x82;
		buf[o++] = (uint8_t)(vlen >> 8);
		buf[o++] = (uint8_t)vlen;
	}
	if (val && vlen) {
		memmove(buf + o, val, vlen);
		o += vlen;
	}
	*off = o;
	return 0;
}
