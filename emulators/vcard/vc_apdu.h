/*
 * ISO 7816-4 command APDU parsing and response building for the virtual
 * card: short and extended length, the four cases. No I/O here; the fuzz
 * target and the unit tests feed these directly.
 */
#ifndef TR_EMULATORS_VCARD_VC_APDU_H
#define TR_EMULATORS_VCARD_VC_APDU_H

#include <stddef.h>
#include <stdint.h>

#include "common/tlv.h"

/* The largest response the vpcd framing can carry: 16-bit length. */
#define VC_APDU_MAX_RESP 65535
/* Largest command data we accept, after chaining (an RSA block is ~270; SM2 E9 messages are larger). */
#define VC_APDU_MAX_DATA 32768

/* ISO 7816-4 status words the card uses. */
enum vc_sw {
	VC_SW_OK = 0x9000,
	VC_SW_BYTES_LEFT = 0x6100,      /* | remaining (00 = 256 or more) */
	VC_SW_WARN_TRIES = 0x63C0,      /* | tries left */
	VC_SW_MEMORY = 0x6581,
	VC_SW_WRONG_LENGTH = 0x6700,
	VC_SW_LAST_IN_CHAIN = 0x6883,   /* chain broken by another command */
	VC_SW_CHAIN_UNSUPPORTED = 0x6884,
	VC_SW_SECURITY = 0x6982,
	VC_SW_BLOCKED = 0x6983,
	VC_SW_CONDITIONS = 0x6985,
	VC_SW_WRONG_DATA = 0x6A80,
	VC_SW_FUNC_UNSUPPORTED = 0x6A81,
	VC_SW_NOT_FOUND = 0x6A82,
	VC_SW_NO_MEMORY = 0x6A84,
	VC_SW_WRONG_P1P2 = 0x6A86,
	VC_SW_REF_NOT_FOUND = 0x6A88,
	VC_SW_WRONG_P1P2_6B = 0x6B00,
	VC_SW_INS_UNSUPPORTED = 0x6D00,
	VC_SW_CLA_UNSUPPORTED = 0x6E00,
	VC_SW_UNKNOWN = 0x6F00,
};

typedef struct vc_apdu {
	uint8_t cla, ins, p1, p2;
	const uint8_t *data;  /* points into the parsed buffer */
	size_t lc;
	size_t le;            /* Ne: 0 when absent, 256 / 65536 for "00" */
	int has_le;
	int extended;
} vc_apdu;

/*
 * Parses a command APDU. Returns 0, or the status word (> 0) the card
 * answers a malformed one with (6700 for any length inconsistency).
 */
int vc_apdu_parse(vc_apdu *out, const uint8_t *buf, size_t len);

/*
 * The card's BER-TLV is common/tlv.h (shared with the harness's PIV
 * driver: tags of 1-3 bytes, lengths up to 83 LLL, 80 refused). These are
 * its older names, kept for the callers that read one level at a time:
 * vc_tlv_next returns 1 with tag, val and vlen set, 0 at the end, -1 when
 * malformed; vc_tlv_put is tr_tlv_put.
 */
typedef tr_tlv_reader vc_tlv_reader;

static inline void vc_tlv_init(vc_tlv_reader *r, const uint8_t *buf, size_t len)
{
	tr_tlv_reader_init(r, buf, len);
}

static inline int vc_tlv_next(vc_tlv_reader *r, unsigned *tag, const uint8_t **val,
			      size_t *vlen)
{
	tr_tlv t;
	int rc = tr_tlv_next(r, &t);

	if (rc == 1) {
		*tag = t.tag;
		*val = t.val;
		*vlen = t.len;
	}
	return rc < 0 ? -1 : rc;
}

static inline int vc_tlv_put(uint8_t *buf, size_t cap, size_t *off, unsigned tag,
			     const uint8_t *val, size_t vlen)
{
	return tr_tlv_put(buf, cap, off, tag, val, vlen);
}

static inline size_t vc_tlv_header_len(unsigned tag, size_t vlen)
{
	return tr_tlv_header_len(tag, vlen);
}

#endif
