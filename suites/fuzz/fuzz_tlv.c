/*
 * libFuzzer target over common/tlv, the BER-TLV reader of the PIV driver
 * and the virtual card: every level of the input is read, checked at
 * several depths, searched, and every object read is written back and
 * must read again the same (the reader and the writer agree).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/tlv.h"

/* Reads one level; recurses into constructed objects (bounded by depth). */
static void walk(const uint8_t *buf, size_t len, unsigned depth)
{
	static uint8_t out[TR_TLV_MAX_HEADER + 65536];
	tr_tlv_reader r;
	tr_tlv t, back;
	int rc;

	tr_tlv_reader_init(&r, buf, len);
	while ((rc = tr_tlv_next(&r, &t)) == 1) {
		size_t off = 0;

		if (t.val < buf || t.val + t.len > buf + len || t.offset >= len)
			abort();
		if (t.len <= 65536) {
			if (tr_tlv_put(out, sizeof(out), &off, t.tag, t.val, t.len) != 0 ||
			    off != tr_tlv_header_len(t.tag, t.len) + t.len ||
			    tr_tlv_one(out, off, t.tag, &back) != 0 || back.len != t.len ||
			    memcmp(back.val, t.val, t.len) != 0 || back.constructed != t.constructed)
				abort();
		}
		if (t.constructed && depth < 16)
			walk(t.val, t.len, depth + 1);
	}
	if (rc == 0 && !tr_tlv_reader_done(&r))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tr_tlv t;

	walk(data, size, 0);
	for (unsigned d = 0; d < 10; d += 3)
		(void)tr_tlv_check(data, size, d);
	if (size >= 1) {
		(void)tr_tlv_find(data + 1, size - 1, data[0], &t);
		(void)tr_tlv_one(data + 1, size - 1, data[0], &t);
	}
	return 0;
}
