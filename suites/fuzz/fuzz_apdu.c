/*
 * libFuzzer target over the virtual card's APDU handler. The input is a
 * sequence of frames [length byte][APDU], fed to one card in order, so
 * chains, GET RESPONSE and PIN state are reached; bit 0 of the first byte
 * verifies the PIN first to open the signing paths.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emulators/vcard/vc_apdu.h"
#include "emulators/vcard/vc_image.h"
#include "emulators/vcard/vc_piv.h"
#include "fixtures/pki.h"

static vc_image *img;
static vc_piv *piv;
static uint8_t resp[VC_APDU_MAX_RESP];

static void init(void)
{
	static const uint8_t serial[VC_SERIAL_LEN] = { 0x42 };
	EVP_PKEY *k = NULL;

	if (vc_image_new(&img, VC_PROFILE_SILVER, serial) < 0)
		abort();
	if (fx_key_generate(FX_KEY_RSA_2048, &k) < 0 ||
	    vc_image_set_slot(img, VC_SLOT_9A, k, NULL) < 0)
		abort();
	EVP_PKEY_free(k);
	if (fx_key_generate(FX_KEY_EC_P256, &k) < 0 ||
	    vc_image_set_slot(img, VC_SLOT_9C, k, NULL) < 0)
		abort();
	EVP_PKEY_free(k);
	if (fx_key_generate(FX_KEY_SM2, &k) < 0 ||
	    vc_image_set_slot(img, VC_SLOT_9D, k, NULL) < 0)
		abort();
	EVP_PKEY_free(k);
	if (vc_piv_new(&piv, img) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t verify[] = { 0x00, 0x20, 0x00, 0x80, 0x08, '1', '2', '3',
					  '4', '5', '6', 0xFF, 0xFF };
	size_t off = 1;

	if (!piv)
		init();
	/* Same start for every input: counters full, nothing pending. */
	vc_image_set_limit(img, VC_REF_PIN, 6);
	vc_image_set_limit(img, VC_REF_PUK, 10);
	vc_image_set_ref(img, VC_REF_PIN, "123456");
	vc_image_set_ref(img, VC_REF_PUK, "12345678");
	vc_piv_reset(piv);
	if (size == 0)
		return 0;
	if (data[0] & 1)
		vc_piv_process(piv, verify, sizeof(verify), resp);
	while (off < size) {
		size_t n = data[off++];
		size_t len;

		if (n > size - off)
			n = size - off;
		len = vc_piv_process(piv, data + off, n, resp);
		if (len < 2 || len > VC_APDU_MAX_RESP)
			abort();
		(void)vc_piv_classify(piv, data + off, n);
		off += n;
	}
	/* The whole input as one APDU too: extended lengths need > 255. */
	if (vc_piv_process(piv, data, size, resp) < 2)
		abort();
	return 0;
}
