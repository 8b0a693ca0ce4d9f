#include "common/tlv.h"

#include "common/error.h"

#include <string.h>

void tr_tlv_reader_init(tr_tlv_reader *r, const void *buf, size_t len)
{
	r->start = r->p = buf;
	r->end = buf ? r->p + len : r->p;
}

int tr_tlv_reader_done(const tr_tlv_reader *r)
{
	return r->p == r->end;
}

static int bad(const tr_tlv_reader *r, const uint8_t *at, const char *what)
{
	return tr_error_set(TR_EPARSE, "BER-TLV at offset %zu: %s", (size_t)(at - r->start), what);
}

int tr_tlv_next(tr_tlv_reader *r, tr_tlv *out)
{
	const uint8_t *p = r->p, *end = r->end, *first = r->p;
	unsigned tag, n;
	size_t len;

	if (!p || p >= end)
		return 0;
	tag = *p++;
	if ((tag & 0x1F) == 0x1F) {
		/* Subsequent tag bytes: bit 8 set on every one but the last. */
		for (n = 1;; n++) {
			if (p >= end)
				return bad(r, first, "the tag runs past the end");
			if (n == TR_TLV_MAX_TAG_BYTES)
				return bad(r, first, "a tag of more than 3 bytes");
			tag = tag << 8 | *p;
			if (!(*p++ & 0x80))
				break;
		}
	}
	if (p >= end)
		return bad(r, first, "no length");
	if (*p < 0x80) {
		len = *p++;
	} else {
		n = *p & 0x7F;
		if (n == 0)
			return bad(r, p, "indefinite length (80)");
		if (n > 3)
			return bad(r, p, "a length of more than 3 bytes");
		if ((size_t)(end - p - 1) < n)
			return bad(r, p, "the length runs past the end");
		for (p++, len = 0; n; n--)
			len = len << 8 | *p++;
	}
	if (len > (size_t)(end - p))
		return bad(r, first, "the value runs past the end");
	out->tag = tag;
	out->val = p;
	out->len = len;
	out->constructed = (*first & 0x20) != 0;
	out->offset = (size_t)(first - r->start);
	r->p = p + len;
	return 1;
}

int tr_tlv_one(const void *buf, size_t len, unsigned tag, tr_tlv *out)
{
	tr_tlv_reader r;
	int rc;

	tr_tlv_reader_init(&r, buf, len);
	if ((rc = tr_tlv_next(&r, out)) < 0)
		return rc;
	if (rc == 0)
		return tr_error_set(TR_EPARSE, "BER-TLV: nothing where a %X object was expected",
				    tag);
	if (out->tag != tag)
		return tr_error_set(TR_EPARSE, "BER-TLV: a %X object where %X was expected",
				    out->tag, tag);
	if (!tr_tlv_reader_done(&r))
		return tr_error_set(TR_EPARSE, "BER-TLV: %zu bytes after the %X object",
				    (size_t)(r.end - r.p), tag);
	return 0;
}

int tr_tlv_find(const void *buf, size_t len, unsigned tag, tr_tlv *out)
{
	tr_tlv_reader r;
	int rc;

	tr_tlv_reader_init(&r, buf, len);
	while ((rc = tr_tlv_next(&r, out)) == 1)
		if (out->tag == tag)
			return 1;
	return rc;
}

/* Offsets in messages count from top, the buffer tr_tlv_check was given. */
static int check(const uint8_t *top, const uint8_t *buf, size_t len, unsigned depth_left)
{
	tr_tlv_reader r;
	tr_tlv t;
	int rc;

	tr_tlv_reader_init(&r, buf, len);
	r.start = top;
	while ((rc = tr_tlv_next(&r, &t)) == 1) {
		if (!t.constructed)
			continue;
		if (depth_left == 0)
			return tr_error_set(TR_EPARSE, "BER-TLV at offset %zu: objects nested "
					    "deeper than allowed", t.offset);
		if ((rc = check(top, t.val, t.len, depth_left - 1)) < 0)
			return rc;
	}
	return rc;
}

int tr_tlv_check(const void *buf, size_t len, unsigned max_depth)
{
	return check(buf, buf, len, max_depth);
}

static size_t tag_bytes(unsigned tag)
{
	return tag > 0xFFFF ? 3 : tag > 0xFF ? 2 : 1;
}

size_t tr_tlv_header_len(unsigned tag, size_t len)
{
	return tag_bytes(tag) + (len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 4);
}

/* The header into h (TR_TLV_MAX_HEADER bytes); its length, 0 when it cannot be. */
static size_t header(uint8_t *h, unsigned tag, size_t len)
{
	size_t n = 0, tb = tag_bytes(tag), lb;

	if (tag > 0xFFFFFF || len > TR_TLV_MAX_LEN)
		return 0;
	for (size_t i = tb; i > 0; i--)
		h[n++] = (uint8_t)(tag >> (8 * (i - 1)));
	if (len < 0x80) {
		h[n++] = (uint8_t)len;
		return n;
	}
	lb = len < 0x100 ? 1 : len < 0x10000 ? 2 : 3;
	h[n++] = (uint8_t)(0x80 | lb);
	for (size_t i = lb; i > 0; i--)
		h[n++] = (uint8_t)(len >> (8 * (i - 1)));
	return n;
}

int tr_tlv_put(uint8_t *buf, size_t cap, size_t *off, unsigned tag, const void *val,
	       size_t len)
{
	uint8_t h[TR_TLV_MAX_HEADER];
	size_t hl = header(h, tag, len), o = *off, need;

	if (!hl || o > cap)
		return -1;
	need = hl + (val ? len : 0);
	if (cap - o < need)
		return -1;
	/* The value first: it may be the bytes the header is about to cover. */
	if (val && len)
		memmove(buf + o + hl, val, len);
	memcpy(buf + o, h, hl);
	*off = o + need;
	return 0;
}

int tr_tlv_buf_put(tr_buf *b, unsigned tag, const void *val, size_t len)
{
	uint8_t h[TR_TLV_MAX_HEADER];
	size_t hl = header(h, tag, len);

	if (!hl)
		return tr_error_set(TR_EINVAL, "BER-TLV: tag %X with %zu bytes cannot be encoded",
				    tag, len);
	tr_buf_put(b, (const char *)h, hl);
	if (val && len)
		tr_buf_put(b, val, len);
	return tr_buf_check(b, "a BER-TLV object");
}
