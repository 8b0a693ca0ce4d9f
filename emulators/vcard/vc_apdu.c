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
