/*
 * The card image: everything a virtual PIV card keeps across power cycles
 * (keys, certificates, PIN, PUK, retry counters, serial, profile), in one
 * versioned text file. Every change of a counter or a reference value is
 * written at once and atomically (temporary file, fsync, rename), so a card
 * killed at any moment leaves the old or the new image, and a card pulled
 * and inserted again keeps its counters. Format: README.md of this folder.
 */
#ifndef TR_EMULATORS_VCARD_VC_IMAGE_H
#define TR_EMULATORS_VCARD_VC_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define VC_IMAGE_VERSION 1
#define VC_SERIAL_LEN 16      /* the CHUID GUID */
#define VC_REF_LEN 8          /* PIN / PUK, padded with 0xFF */
#define VC_TRIES_MAX 15       /* 63Cx has four bits */

typedef struct vc_image vc_image;

typedef enum vc_profile {
	VC_PROFILE_BLUE,    /* RSA only: a card that cannot take SM2 */
	VC_PROFILE_SILVER,  /* RSA, P-256 and SM2 */
} vc_profile;

/* Key algorithms, valued as their PIV algorithm identifiers. */
typedef enum vc_alg {
	VC_ALG_NONE = 0x00,
	VC_ALG_RSA2048 = 0x07,
	VC_ALG_P256 = 0x11,
	VC_ALG_SM2 = 0xE8,      /* vendor: SM2-with-SM3, host sends e */
	VC_ALG_SM2_MSG = 0xE9,  /* vendor: same key, card hashes Z || M */
} vc_alg;

/* PIV key slots the card has. */
typedef enum vc_slot {
	VC_SLOT_9A,   /* PIV authentication */
	VC_SLOT_9C,   /* digital signature (PIN always) */
	VC_SLOT_9D,   /* key management (Hunan's encryption certificate) */
	VC_SLOT_9E,   /* card authentication (no PIN) */
	VC_SLOT_COUNT
} vc_slot;

typedef enum vc_ref {
	VC_REF_PIN,   /* key reference 80 */
	VC_REF_PUK,   /* key reference 81 */
} vc_ref;

/* Outcomes of vc_image_check_ref (besides negative TR_E* errors). */
enum vc_check_result {
	VC_CHECK_OK = 0,
	VC_CHECK_WRONG = 1,     /* counter decremented (and saved) */
	VC_CHECK_BLOCKED = 2,   /* counter already 0: nothing compared */
};

/* A new image in memory (no file yet): PIN 123456, PUK 12345678, 6/10. */
int vc_image_new(vc_image **out, vc_profile profile,
		 const uint8_t serial[VC_SERIAL_LEN]);

/* Reads an image; later changes are saved back to path. */
int vc_image_load(vc_image **out, const char *path);

/*
 * Writes the image to path atomically; path becomes where later changes
 * are saved. NULL path: save again where it was loaded from (0 when the
 * image has no file, e.g. in unit tests).
 */
int vc_image_save(vc_image *img, const char *path);

/* The file the image saves itself to (NULL when none). */
const char *vc_image_path(const vc_image *img);

void vc_image_free(vc_image *img);

/* Serialises to a malloc'd NUL-terminated text (what the file holds). */
int vc_image_format(const vc_image *img, char **out, size_t *len);
/* Parses that text. */
int vc_image_parse(vc_image **out, const char *text, size_t len);

vc_profile vc_image_profile(const vc_image *img);
const char *vc_profile_name(vc_profile profile);
int vc_profile_from_name(const char *name, vc_profile *out);
const uint8_t *vc_image_serial(const vc_image *img);

/* Sets PIN or PUK (1-8 printable ASCII characters) and resets its counter. */
int vc_image_set_ref(vc_image *img, vc_ref ref, const char *value);
/* Sets the limit of a counter (1..15) and refills it. */
int vc_image_set_limit(vc_image *img, vc_ref ref, unsigned max);
void vc_image_tries(const vc_image *img, vc_ref ref, unsigned *left,
		    unsigned *max);

/*
 * Compares a padded 8-byte value with PIN or PUK. Wrong: the counter drops
 * and the image is saved before returning. Right: the counter refills
 * (saved only when it changed). *left receives the tries left.
 */
int vc_image_check_ref(vc_image *img, vc_ref ref,
		       const uint8_t value[VC_REF_LEN], unsigned *left);
/* Replaces PIN or PUK with a padded value and refills its counter; saved. */
int vc_image_change_ref(vc_image *img, vc_ref ref,
			const uint8_t value[VC_REF_LEN]);
/* 1 when a padded value is a valid PIN/PUK: 6-8 printable, then 0xFF. */
int vc_ref_valid(const uint8_t value[VC_REF_LEN]);

/*
 * Puts a key (and its certificate, may be NULL) into a slot; both are
 * referenced, not copied. The key must match the certificate and the
 * profile (blue takes RSA-2048 only). TR_EINVAL otherwise.
 */
int vc_image_set_slot(vc_image *img, vc_slot slot, EVP_PKEY *key, X509 *cert);

/*
 * The same without the key/certificate check: a card's certificate object
 * is data, and the rig's TK-E07 cards hold one of another key (provisioning,
 * and images loaded back).
 */
int vc_image_set_slot_any(vc_image *img, vc_slot slot, EVP_PKEY *key, X509 *cert);

/* VC_ALG_NONE for an empty slot; SM2 keys report VC_ALG_SM2. */
vc_alg vc_image_slot_alg(const vc_image *img, vc_slot slot);
EVP_PKEY *vc_image_slot_key(const vc_image *img, vc_slot slot);
/* The certificate DER (NULL, 0 when the slot has none). */
void vc_image_slot_cert(const vc_image *img, vc_slot slot,
			const uint8_t **der, size_t *len);

/* The slot of a PIV key reference (9A, 9C, 9D, 9E), -1 when none. */
int vc_slot_from_ref(unsigned keyref);
unsigned vc_slot_ref(vc_slot slot);

#endif
