#include "emulators/vcard/vc_image.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An image of several RSA keys and certificates is ~20 KB of hex. */
#define IMAGE_MAX_BYTES (1024 * 1024)

typedef struct image_slot {
	vc_alg alg;
	EVP_PKEY *key;
	uint8_t *cert;
	size_t cert_len;
} image_slot;

struct vc_image {
	char *path;
	vc_profile profile;
	uint8_t serial[VC_SERIAL_LEN];
	uint8_t ref[2][VC_REF_LEN];
	unsigned left[2], max[2];
	image_slot slots[VC_SLOT_COUNT];
};

static const unsigned slot_refs[VC_SLOT_COUNT] = { 0x9A, 0x9C, 0x9D, 0x9E };

int vc_slot_from_ref(unsigned keyref)
{
	for (int i = 0; i < VC_SLOT_COUNT; i++)
		if (slot_refs[i] == keyref)
			return i;
	return -1;
}

unsigned vc_slot_ref(vc_slot slot)
{
	return slot < VC_SLOT_COUNT ? slot_refs[slot] : 0;
}

const char *vc_profile_name(vc_profile profile)
{
	return profile == VC_PROFILE_BLUE ? "blue" : "silver";
}

int vc_profile_from_name(const char *name, vc_profile *out)
{
	if (strcmp(name, "blue") == 0)
		*out = VC_PROFILE_BLUE;
	else if (strcmp(name, "silver") == 0)
		*out = VC_PROFILE_SILVER;
	else
		return tr_error_set(TR_EINVAL, "unknown card profile '%s' (blue, silver)", name);
	return 0;
}

static const char *alg_name(vc_alg alg)
{
	switch (alg) {
	case VC_ALG_RSA2048: return "rsa2048";
	case VC_ALG_P256: return "p256";
	case VC_ALG_SM2: return "sm2";
	default: return "none";
	}
}

static vc_alg alg_from_name(const char *name)
{
	if (strcmp(name, "rsa2048") == 0)
		return VC_ALG_RSA2048;
	if (strcmp(name, "p256") == 0)
		return VC_ALG_P256;
	if (strcmp(name, "sm2") == 0)
		return VC_ALG_SM2;
	return VC_ALG_NONE;
}

/* What a key is, as far as this card cares; NONE when unsupported. */
static vc_alg key_alg(EVP_PKEY *key)
{
	char group[64];

	if (EVP_PKEY_is_a(key, "RSA"))
		return EVP_PKEY_get_bits(key) == 2048 ? VC_ALG_RSA2048 : VC_ALG_NONE;
	if (EVP_PKEY_is_a(key, "SM2"))
		return VC_ALG_SM2;
	if (EVP_PKEY_is_a(key, "EC") &&
	    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
					   sizeof(group), NULL) == 1 &&
	    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
		return VC_ALG_P256;
	return VC_ALG_NONE;
}

static void pad_ref(uint8_t out[VC_REF_LEN], const char *value)
{
	size_t n = strlen(value);

	memset(out, 0xff, VC_REF_LEN);
	memcpy(out, value, n > VC_REF_LEN ? VC_REF_LEN : n);
}

int vc_image_new(vc_image **out, vc_profile profile,
		 const uint8_t serial[VC_SERIAL_LEN])
{
	vc_image *img = calloc(1, sizeof(*img));

	if (!img)
		return tr_error_set(TR_ENOMEM, "out of memory");
	img->profile = profile;
	memcpy(img->serial, serial, VC_SERIAL_LEN);
	pad_ref(img->ref[VC_REF_PIN], "123456");
	pad_ref(img->ref[VC_REF_PUK], "12345678");
	img->left[VC_REF_PIN] = img->max[VC_REF_PIN] = 6;
	img->left[VC_REF_PUK] = img->max[VC_REF_PUK] = 10;
	*out = img;
	return 0;
}

void vc_image_free(vc_image *img)
{
	if (!img)
		return;
	for (int i = 0; i < VC_SLOT_COUNT; i++) {
		EVP_PKEY_free(img->slots[i].key);
		free(img->slots[i].cert);
	}
	OPENSSL_cleanse(img->ref, sizeof(img->ref));
	free(img->path);
	free(img);
}

vc_profile vc_image_profile(const vc_image *img) { return img->profile; }
const uint8_t *vc_image_serial(const vc_image *img) { return img->serial; }

int vc_ref_valid(const uint8_t value[VC_REF_LEN])
{
	size_t n = 0;

	while (n < VC_REF_LEN && value[n] != 0xff) {
		if (value[n] < 0x20 || value[n] > 0x7e)
			return 0;
		n++;
	}
	for (size_t i = n; i < VC_REF_LEN; i++)
		if (value[i] != 0xff)
			return 0;
	return n >= 6;
}

int vc_image_set_ref(vc_image *img, vc_ref ref, const char *value)
{
	uint8_t padded[VC_REF_LEN];

	if (strlen(value) > VC_REF_LEN)
		return tr_error_set(TR_EINVAL, "%s longer than 8 characters",
				    ref == VC_REF_PIN ? "PIN" : "PUK");
	pad_ref(padded, value);
	if (!vc_ref_valid(padded))
		return tr_error_set(TR_EINVAL, "%s must be 6-8 printable ASCII characters",
				    ref == VC_REF_PIN ? "PIN" : "PUK");
	memcpy(img->ref[ref], padded, VC_REF_LEN);
	img->left[ref] = img->max[ref];
	return 0;
}

int vc_image_set_limit(vc_image *img, vc_ref ref, unsigned max)
{
	if (max < 1 || max > VC_TRIES_MAX)
		return tr_error_set(TR_EINVAL, "retry limit %u not in 1..15", max);
	img->max[ref] = img->left[ref] = max;
	return 0;
}

void vc_image_tries(const vc_image *img, vc_ref ref, unsigned *left,
		    unsigned *max)
{
	if (left)
		*left = img->left[ref];
	if (max)
		*max = img->max[ref];
}

int vc_image_check_ref(vc_image *img, vc_ref ref,
		       const uint8_t value[VC_REF_LEN], unsigned *left)
{
	int error;

	if (img->left[ref] == 0) {
		*left = 0;
		return VC_CHECK_BLOCKED;
	}
	if (CRYPTO_memcmp(img->ref[ref], value, VC_REF_LEN) != 0) {
		img->left[ref]--;
		*left = img->left[ref];
		/* The decrement must be on disk before the host hears about it. */
		if ((error = vc_image_save(img, NULL)) < 0)
			return error;
		return VC_CHECK_WRONG;
	}
	*left = img->max[ref];
	if (img->left[ref] != img->max[ref]) {
		img->left[ref] = img->max[ref];
		if ((error = vc_image_save(img, NULL)) < 0)
			return error;
	}
	return VC_CHECK_OK;
}

int vc_image_change_ref(vc_image *img, vc_ref ref,
			const uint8_t value[VC_REF_LEN])
{
	if (!vc_ref_valid(value))
		return tr_error_set(TR_EINVAL, "invalid reference data");
	memcpy(img->ref[ref], value, VC_REF_LEN);
	img->left[ref] = img->max[ref];
	return vc_image_save(img, NULL);
}

static int set_slot(vc_image *img, vc_slot slot, EVP_PKEY *key, X509 *cert, int check);

int vc_image_set_slot(vc_image *img, vc_slot slot, EVP_PKEY *key, X509 *cert)
{
	return set_slot(img, slot, key, cert, 1);
}

int vc_image_set_slot_any(vc_image *img, vc_slot slot, EVP_PKEY *key, X509 *cert)
{
	return set_slot(img, slot, key, cert, 0);
}

static int set_slot(vc_image *img, vc_slot slot, EVP_PKEY *key, X509 *cert, int check)
{
	image_slot *s;
	uint8_t *der = NULL;
	int der_len = 0;
	vc_alg alg;

	if (slot >= VC_SLOT_COUNT || !key)
		return tr_error_set(TR_EINVAL, "bad slot or key");
	alg = key_alg(key);
	if (alg == VC_ALG_NONE)
		return tr_error_set(TR_EINVAL, "key type not supported by the card "
				    "(RSA-2048, P-256, SM2)");
	if (img->profile == VC_PROFILE_BLUE && alg != VC_ALG_RSA2048)
		return tr_error_set(TR_EINVAL, "a blue card takes RSA-2048 keys only, not %s",
				    alg_name(alg));
	if (cert) {
		EVP_PKEY *pub = X509_get0_pubkey(cert);

		if (!pub || (check && EVP_PKEY_eq(pub, key) != 1))
			return tr_error_set(TR_EINVAL, "certificate is not the key's");
		if ((der_len = i2d_X509(cert, &der)) <= 0)
			return tr_error_set_openssl(TR_ECRYPTO, "certificate DER");
	}
	if (!EVP_PKEY_up_ref(key)) {
		OPENSSL_free(der);
		return tr_error_set_openssl(TR_ECRYPTO, "key reference");
	}
	s = &img->slots[slot];
	EVP_PKEY_free(s->key);
	free(s->cert);
	s->cert = NULL;
	s->cert_len = 0;
	if (der) {
		s->cert = malloc((size_t)der_len);
		if (s->cert) {
			memcpy(s->cert, der, (size_t)der_len);
			s->cert_len = (size_t)der_len;
		}
		OPENSSL_free(der);
		if (!s->cert) {
			EVP_PKEY_free(key);
			s->key = NULL;
			s->alg = VC_ALG_NONE;
			return tr_error_set(TR_ENOMEM, "out of memory");
		}
	}
	s->key = key;
	s->alg = alg;
	return 0;
}

vc_alg vc_image_slot_alg(const vc_image *img, vc_slot slot)
{
	return slot < VC_SLOT_COUNT ? img->slots[slot].alg : VC_ALG_NONE;
}

EVP_PKEY *vc_image_slot_key(const vc_image *img, vc_slot slot)
{
	return slot < VC_SLOT_COUNT ? img->slots[slot].key : NULL;
}

void vc_image_slot_cert(const vc_image *img, vc_slot slot,
			const uint8_t **der, size_t *len)
{
	*der = slot < VC_SLOT_COUNT ? img->slots[slot].cert : NULL;
	*len = slot < VC_SLOT_COUNT ? img->slots[slot].cert_len : 0;
}

/* --- text form ------------------------------------------------------- */

static void put_hex(tr_buf *b, const uint8_t *d, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char chunk[128];
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		chunk[k++] = digits[d[i] >> 4];
		chunk[k++] = digits[d[i] & 15];
		if (k == sizeof(chunk)) {
			tr_buf_put(b, chunk, k);
			k = 0;
		}
	}
	tr_buf_put(b, chunk, k);
}

static int key_der(EVP_PKEY *key, uint8_t **out, int *len)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);

	*out = NULL;
	*len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, out) : -1;
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (*len <= 0)
		return tr_error_set_openssl(TR_ECRYPTO, "key to PKCS#8");
	return 0;
}

int vc_image_format(const vc_image *img, char **out, size_t *len)
{
	tr_buf b = TR_BUF_INIT;
	int error = 0;

	tr_buf_printf(&b, "tokenrig-vcard-image %d\nprofile %s\nserial ", VC_IMAGE_VERSION,
		      vc_profile_name(img->profile));
	put_hex(&b, img->serial, VC_SERIAL_LEN);
	tr_buf_puts(&b, "\npin ");
	put_hex(&b, img->ref[VC_REF_PIN], VC_REF_LEN);
	tr_buf_puts(&b, "\npuk ");
	put_hex(&b, img->ref[VC_REF_PUK], VC_REF_LEN);
	tr_buf_printf(&b, "\npin-tries %u %u\npuk-tries %u %u\n", img->left[VC_REF_PIN],
		      img->max[VC_REF_PIN], img->left[VC_REF_PUK], img->max[VC_REF_PUK]);
	for (int i = 0; i < VC_SLOT_COUNT; i++) {
		const image_slot *s = &img->slots[i];
		uint8_t *der = NULL;
		int der_len;

		if (!s->key)
			continue;
		if ((error = key_der(s->key, &der, &der_len)) < 0)
			goto out;
		tr_buf_printf(&b, "slot %02x %s ", slot_refs[i], alg_name(s->alg));
		put_hex(&b, der, (size_t)der_len);
		OPENSSL_clear_free(der, (size_t)der_len);
		tr_buf_puts(&b, " ");
		if (s->cert)
			put_hex(&b, s->cert, s->cert_len);
		else
			tr_buf_puts(&b, "-");
		tr_buf_puts(&b, "\n");
	}
	tr_buf_puts(&b, "end\n");
	if ((error = tr_buf_check(&b, "the card image")) < 0)
		goto out;
	*out = b.data;
	*len = b.len;
	b.data = NULL;
out:
	/* The text holds the private keys and the PIN. */
	if (b.data)
		OPENSSL_cleanse(b.data, b.cap);
	tr_buf_free(&b);
	return error;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex into a malloc'd buffer (exact length when want != 0). */
static int unhex(const char *s, size_t want, uint8_t **out, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *d;

	if (n == 0 || n % 2 || (want && n / 2 != want))
		return -1;
	if (!(d = malloc(n / 2)))
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(d);
			return -1;
		}
		d[i] = (uint8_t)(hi << 4 | lo);
	}
	*out = d;
	*len = n / 2;
	return 0;
}

static int unhex_fixed(const char *s, uint8_t *dst, size_t n)
{
	uint8_t *d;
	size_t len;

	if (!s || unhex(s, n, &d, &len) < 0)
		return -1;
	memcpy(dst, d, n);
	OPENSSL_cleanse(d, n);
	free(d);
	return 0;
}

static int parse_slot(vc_image *img, char *args, unsigned lineno)
{
	char *save = NULL, *ref_s, *alg_s, *key_s, *cert_s;
	uint8_t *der = NULL;
	const uint8_t *p;
	size_t der_len = 0;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	int slot, error = 0;
	unsigned long ref;
	vc_alg alg;

	ref_s = strtok_r(args, " ", &save);
	alg_s = strtok_r(NULL, " ", &save);
	key_s = strtok_r(NULL, " ", &save);
	cert_s = strtok_r(NULL, " ", &save);
	if (!cert_s || strtok_r(NULL, " ", &save))
		return tr_error_set(TR_EPARSE, "image line %u: slot wants 4 fields", lineno);
	ref = strtoul(ref_s, NULL, 16);
	if ((slot = vc_slot_from_ref((unsigned)ref)) < 0)
		return tr_error_set(TR_EPARSE, "image line %u: no slot %s", lineno, ref_s);
	if ((alg = alg_from_name(alg_s)) == VC_ALG_NONE)
		return tr_error_set(TR_EPARSE, "image line %u: algorithm %s", lineno, alg_s);
	if (unhex(key_s, 0, &der, &der_len) < 0) {
		error = tr_error_set(TR_EPARSE, "image line %u: key is not hex", lineno);
		goto out;
	}
	p = der;
	if (!(p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der_len)) ||
	    !(key = EVP_PKCS82PKEY(p8))) {
		error = tr_error_set_openssl(TR_EPARSE, "image line %u: key", lineno);
		goto out;
	}
	OPENSSL_clear_free(der, der_len);
	der = NULL;
	if (strcmp(cert_s, "-") != 0) {
		if (unhex(cert_s, 0, &der, &der_len) < 0) {
			error = tr_error_set(TR_EPARSE, "image line %u: certificate is not hex",
					     lineno);
			goto out;
		}
		p = der;
		if (!(cert = d2i_X509(NULL, &p, (long)der_len))) {
			error = tr_error_set_openssl(TR_EPARSE, "image line %u: certificate",
						     lineno);
			goto out;
		}
	}
	if (key_alg(key) != alg) {
		error = tr_error_set(TR_EPARSE, "image line %u: key is not %s", lineno, alg_s);
		goto out;
	}
	/* An image may hold a certificate of another key (TK-E07's cards). */
	if ((error = vc_image_set_slot_any(img, (vc_slot)slot, key, cert)) < 0)
		error = tr_error_set(TR_EPARSE, "image line %u: %s", lineno,
				     tr_error_last());
out:
	if (der)
		OPENSSL_clear_free(der, der_len);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(key);
	X509_free(cert);
	return error;
}

static int parse_tries(const char *args, unsigned *left, unsigned *max)
{
	if (!args || sscanf(args, "%u %u", left, max) != 2 || *max < 1 ||
	    *max > VC_TRIES_MAX || *left > *max)
		return -1;
	return 0;
}

int vc_image_parse(vc_image **out, const char *text, size_t len)
{
	static const uint8_t zero[VC_SERIAL_LEN];
	vc_image *img = NULL;
	char *copy = NULL, *line, *save = NULL;
	unsigned lineno = 0, seen = 0;
	int error = 0, ended = 0, version;

	if (!(copy = malloc(len + 1)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	memcpy(copy, text, len);
	copy[len] = '\0';
	if ((error = vc_image_new(&img, VC_PROFILE_SILVER, zero)) < 0)
		goto out;
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *args = strchr(line, ' ');

		lineno++;
		if (args)
			*args++ = '\0';
		if (ended) {
			error = tr_error_set(TR_EPARSE, "image line %u: data after 'end'", lineno);
			goto out;
		}
		if (lineno == 1) {
			if (strcmp(line, "tokenrig-vcard-image") != 0 || !args ||
			    sscanf(args, "%d", &version) != 1) {
				error = tr_error_set(TR_EPARSE, "not a tokenrig-vcard image");
				goto out;
			}
			if (version != VC_IMAGE_VERSION) {
				error = tr_error_set(TR_EPARSE, "image version %d; this card reads %d",
						     version, VC_IMAGE_VERSION);
				goto out;
			}
			continue;
		}
		if (strcmp(line, "profile") == 0 && args) {
			if ((error = vc_profile_from_name(args, &img->profile)) < 0) {
				error = TR_EPARSE;
				goto out;
			}
			seen |= 1;
		} else if (strcmp(line, "serial") == 0) {
			if (unhex_fixed(args, img->serial, VC_SERIAL_LEN) < 0)
				goto bad;
			seen |= 2;
		} else if (strcmp(line, "pin") == 0 || strcmp(line, "puk") == 0) {
			vc_ref r = line[1] == 'i' ? VC_REF_PIN : VC_REF_PUK;

			if (unhex_fixed(args, img->ref[r], VC_REF_LEN) < 0)
				goto bad;
			seen |= r == VC_REF_PIN ? 4 : 8;
		} else if (strcmp(line, "pin-tries") == 0) {
			if (parse_tries(args, &img->left[0], &img->max[0]) < 0)
				goto bad;
			seen |= 16;
		} else if (strcmp(line, "puk-tries") == 0) {
			if (parse_tries(args, &img->left[1], &img->max[1]) < 0)
				goto bad;
			seen |= 32;
		} else if (strcmp(line, "slot") == 0 && args) {
			if ((error = parse_slot(img, args, lineno)) < 0)
				goto out;
		} else if (strcmp(line, "end") == 0 && !args) {
			ended = 1;
		} else {
			goto bad;
		}
		continue;
bad:
		error = tr_error_set(TR_EPARSE, "image line %u: bad '%s' line", lineno, line);
		goto out;
	}
	if (lineno == 0) {
		error = tr_error_set(TR_EPARSE, "empty image");
		goto out;
	}
	if (!ended || seen != 63) {
		error = tr_error_set(TR_EPARSE, "image incomplete (no 'end' or a field missing)");
		goto out;
	}
	*out = img;
	img = NULL;
out:
	vc_image_free(img);
	OPENSSL_clear_free(copy, len + 1);
	return error;
}

int vc_image_load(vc_image **out, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	vc_image *img = NULL;
	int error;

	if ((error = tr_fs_read_all(path, IMAGE_MAX_BYTES, &text, &len)) < 0)
		return error;
	error = vc_image_parse(&img, text, len);
	OPENSSL_clear_free(text, len);
	if (error < 0)
		return tr_error_set(error, "%s: %s", path, tr_error_last());
	if (!(img->path = strdup(path))) {
		vc_image_free(img);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	*out = img;
	return 0;
}

const char *vc_image_path(const vc_image *img)
{
	return img->path;
}

int vc_image_save(vc_image *img, const char *path)
{
	char *text = NULL, *copy = NULL;
	size_t len = 0;
	int error;

	if (!path && !img->path)
		return 0;
	if (path && (!img->path || strcmp(path, img->path) != 0) &&
	    !(copy = strdup(path)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = vc_image_format(img, &text, &len)) < 0)
		goto out;
	if ((error = tr_fs_write_atomic(path ? path : img->path, text, len, 0600)) < 0)
		goto out;
	if (copy) {
		free(img->path);
		img->path = copy;
		copy = NULL;
	}
out:
	free(copy);
	if (text)
		OPENSSL_clear_free(text, len);
	return error;
}
