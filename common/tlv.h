/*
 * BER-TLV as smart cards use it (ISO/IEC 7816-4 5.2, the PIV data model of
 * SP 800-73-4): the one reader and writer of the harness's PIV driver and
 * the virtual card.
 *
 * What is accepted, on both sides:
 *  - tags of 1 to 3 bytes: a first byte with the low five bits 11111 is
 *    followed by bytes whose bit 8 says another follows (5F2F, 7F49,
 *    5FC105 as a tag); a fourth tag byte is malformed;
 *  - lengths in short form (00..7F) or long form 81 L, 82 LL, 83 LLL
 *    (non-minimal forms such as 81 05 are read as BER allows);
 *  - never the indefinite form 80 (no end-of-contents in 7816-4), never
 *    84 and above, never a value that runs past the buffer.
 * Constructed objects (bit 6 of the first tag byte) are checked inside by
 * tr_tlv_check, to a depth the caller bounds. The parsers never read out
 * of the buffer and never allocate.
 */
#ifndef TR_COMMON_TLV_H
#define TR_COMMON_TLV_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define TR_TLV_MAX_TAG_BYTES 3
#define TR_TLV_MAX_LEN 0xFFFFFFu    /* 83 LLL */
#define TR_TLV_MAX_HEADER (TR_TLV_MAX_TAG_BYTES + 4)

/* One object: its tag (1-3 bytes, as written: 0x7F49), value and where it started. */
typedef struct tr_tlv {
	unsigned tag;
	const uint8_t *val;
	size_t len;
	int constructed;    /* bit 6 of the first tag byte */
	size_t offset;      /* of its first tag byte, from the reader's start */
} tr_tlv;

/* A reader over the objects of one level of a buffer (not copied). */
typedef struct tr_tlv_reader {
	const uint8_t *start, *p, *end;
} tr_tlv_reader;

void tr_tlv_reader_init(tr_tlv_reader *r, const void *buf, size_t len);

/*
 * The next object: 1 with *out set, 0 at the end of the buffer, or
 * TR_EPARSE (message naming the offset and what is wrong) when the rest is
 * malformed; the reader then stays where it was.
 */
int tr_tlv_next(tr_tlv_reader *r, tr_tlv *out);

/* 1 when the reader has consumed its whole buffer. */
int tr_tlv_reader_done(const tr_tlv_reader *r);

/*
 * buf is exactly one object of tag and nothing after it: 0, or TR_EPARSE
 * (a malformed object, another tag, bytes after it).
 */
int tr_tlv_one(const void *buf, size_t len, unsigned tag, tr_tlv *out);

/*
 * The first object of tag among the objects of buf (one level): 1 with
 * *out set, 0 when there is none, TR_EPARSE when buf is malformed before
 * it was found.
 */
int tr_tlv_find(const void *buf, size_t len, unsigned tag, tr_tlv *out);

/*
 * 0 when buf is a sequence of well-formed objects and every constructed
 * one is, inside, as well, down to max_depth levels of nesting (a
 * constructed object deeper than that is refused: 1 allows constructed
 * objects at the top with primitive ones inside). TR_EPARSE otherwise.
 */
int tr_tlv_check(const void *buf, size_t len, unsigned max_depth);

/* Bytes the tag and length of an object take (a tag of 1-3 bytes). */
size_t tr_tlv_header_len(unsigned tag, size_t len);

/*
 * Appends tag + length + value to buf[*off..cap) and advances *off. With
 * val NULL only the header is written (the caller puts len bytes after
 * it). val may overlap buf (wrapping in place). 0, or -1 when it does not
 * fit, the tag has more than 3 bytes or len is above TR_TLV_MAX_LEN.
 */
int tr_tlv_put(uint8_t *buf, size_t cap, size_t *off, unsigned tag, const void *val,
	       size_t len);

/* The same, appended to a growable buffer (val not inside b): 0 or TR_EINVAL / TR_ENOMEM. */
int tr_tlv_buf_put(tr_buf *b, unsigned tag, const void *val, size_t len);

#endif
