/* The PKCS#11 backend of the token layer. */
#include "harness/token.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/p11key.h"
#include "common/p11mod.h"
#include "fixtures/pki.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/uri.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct p11_token {
	tr_token base;
	tr_p11mod *mod;
	CK_FUNCTION_LIST *fn;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session;
	CK_OBJECT_HANDLE key;
	unsigned char id[64];
	CK_ULONG id_len;
	int logged_in;
	char cert_label[64];  /* CKA_LABEL of its certificate (the URI's object): "unit" */
	int foreign;          /* a token the rig did not make: touch only what it labelled */
} p11_token;

/* What the rig labels on a token it did not make (tokenrig certify). */
#define FOREIGN_PREFIX "tokenrig-"
#define FOREIGN_NEW_KEY "tokenrig-new"

static int map_rv(CK_RV rv, const char *what)
{
	switch (rv) {
	case CKR_OK:
		return 0;
	case CKR_PIN_INCORRECT:
		return tr_error_set(TR_TOKEN_EPIN_INCORRECT, "%s: %s", what, tr_p11_rv_name(rv));
	case CKR_PIN_LOCKED:
		return tr_error_set(TR_TOKEN_EPIN_LOCKED, "%s: %s", what, tr_p11_rv_name(rv));
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_ERROR:
	case CKR_GENERAL_ERROR: /* OpenSC, when the card drops mid-operation */
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
		return tr_error_set(TR_TOKEN_EREMOVED, "%s: %s", what, tr_p11_rv_name(rv));
	case CKR_USER_NOT_LOGGED_IN:
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "%s: %s", what, tr_p11_rv_name(rv));
	case CKR_FUNCTION_NOT_SUPPORTED:
		/* The module cannot (OpenSC on a PIV card: no key generation). */
		return tr_error_set(TR_EDEPEND, "%s: %s", what, tr_p11_rv_name(rv));
	default:
		return tr_error_set(TR_ERROR, "%s: %s", what, tr_p11_rv_name(rv));
	}
}

/*
 * Under certification rules (tr_token_set_strict) a module's refusal is its
 * failure: no "cannot" skip, and "removed" only with no token in the slot.
 */
static int map_rv_t(p11_token *t, CK_RV rv, const char *what)
{
	CK_SLOT_INFO si;

	if (!t->base.strict || rv == CKR_OK)
		return map_rv(rv, what);
	switch (rv) {
	case CKR_FUNCTION_NOT_SUPPORTED:
		return tr_error_set(TR_ERROR, "%s: %s: the module does not support a function the "
				    "catalog needs", what, tr_p11_rv_name(rv));
	case CKR_GENERAL_ERROR:
	case CKR_DEVICE_ERROR:
		if (t->fn->C_GetSlotInfo(t->slot, &si) == CKR_OK && (si.flags & CKF_TOKEN_PRESENT))
			return tr_error_set(TR_ERROR, "%s: %s: a token error (the slot still shows "
					    "the token, so it was not removed)", what,
					    tr_p11_rv_name(rv));
		return map_rv(rv, what);
	default:
		return map_rv(rv, what);
	}
}

static int find_one(p11_token *t, CK_ATTRIBUTE *tmpl, CK_ULONG n,
		    CK_OBJECT_HANDLE *out)
{
	CK_ULONG found = 0;
	CK_RV rv;

	rv = t->fn->C_FindObjectsInit(t->session, tmpl, n);
	if (rv != CKR_OK)
		return map_rv_t(t, rv, "C_FindObjectsInit");
	rv = t->fn->C_FindObjects(t->session, out, 1, &found);
	t->fn->C_FindObjectsFinal(t->session);
	if (rv != CKR_OK)
		return map_rv_t(t, rv, "C_FindObjects");
	return found == 1 ? 0 : TR_ENOTFOUND;
}

static int read_attr(p11_token *t, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
		     unsigned char **out, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_RV rv;

	rv = t->fn->C_GetAttributeValue(t->session, obj, &a, 1);
	if (rv != CKR_OK)
		return map_rv_t(t, rv, "C_GetAttributeValue");
	a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
	if (!a.pValue)
		return tr_error_set(TR_ENOMEM, "out of memory");
	rv = t->fn->C_GetAttributeValue(t->session, obj, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return map_rv_t(t, rv, "C_GetAttributeValue");
	}
	*out = a.pValue;
	*len = a.ulValueLen;
	return 0;
}

static int alg_of_cert(const unsigned char *der, size_t len, tr_sign_alg *alg)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *pub;
	int error = 0;

	if (!cert)
		return tr_error_set_openssl(TR_EINVAL, "the token's certificate is not DER X.509");
	pub = X509_get0_pubkey(cert);
	if (pub && EVP_PKEY_is_a(pub, "SM2"))
		*alg = TR_SIGN_SM2_SM3;
	else if (pub && EVP_PKEY_is_a(pub, "EC"))
		*alg = TR_SIGN_ECDSA_SHA256;
	else if (pub && EVP_PKEY_is_a(pub, "RSA"))
		*alg = TR_SIGN_RSA_PKCS1_SHA256;
	else
		error = tr_error_set(TR_EINVAL, "unsupported key type in the token's certificate");
	X509_free(cert);
	return error;
}


/*
 * Among the certificates the URI's id/label select on the open session,
 * takes the first (of unit_name's unit, when given) and keeps its CKA_ID.
 */
static int pick_certificate(p11_token *t, P11KitUri *uri, const char *unit_name,
			    int valid_only)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE tmpl[3] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE certs[16];
	CK_ULONG n = 1, found = 0;
	CK_ATTRIBUTE *a;
	CK_RV rv;
	int error = TR_ENOTFOUND;

	if ((a = p11_kit_uri_get_attribute(uri, CKA_ID)) != NULL)
		tmpl[n++] = *a;
	if ((a = p11_kit_uri_get_attribute(uri, CKA_LABEL)) != NULL) {
		tmpl[n++] = *a;
		/* The rig's own tokens keep "unit"; a foreign one's is the rig's label. */
		if (a->ulValueLen < sizeof(t->cert_label) && a->ulValueLen > strlen(FOREIGN_PREFIX) &&
		    !memcmp(a->pValue, FOREIGN_PREFIX, strlen(FOREIGN_PREFIX))) {
			memcpy(t->cert_label, a->pValue, a->ulValueLen);
			t->cert_label[a->ulValueLen] = '\0';
			t->foreign = 1;
		}
	}
	rv = t->fn->C_FindObjectsInit(t->session, tmpl, n);
	if (rv == CKR_OK) {
		rv = t->fn->C_FindObjects(t->session, certs, 16, &found);
		t->fn->C_FindObjectsFinal(t->session);
	}
	if (rv != CKR_OK)
		return map_rv_t(t, rv, "C_FindObjects");
	for (CK_ULONG i = 0; i < found && error == TR_ENOTFOUND; i++) {
		unsigned char *der = NULL, *id = NULL;
		CK_ULONG der_len = 0, id_len = 0;

		if ((error = read_attr(t, certs[i], CKA_VALUE, &der, &der_len)) < 0 ||
		    (error = read_attr(t, certs[i], CKA_ID, &id, &id_len)) < 0) {
			free(der);
			free(id);
			return error;
		}
		if ((unit_name && !tr_cert_of_unit(der, der_len, unit_name, valid_only)) ||
		    id_len > sizeof(t->id)) {
			free(der);
			free(id);
			error = TR_ENOTFOUND;
			continue;
		}
		t->base.cert_der = der;
		t->base.cert_len = der_len;
		memcpy(t->id, id, id_len);
		t->id_len = id_len;
		free(id);
		error = alg_of_cert(der, der_len, &t->base.alg);
	}
	return error;
}

/* The key's public half as the token holds it equals the certificate's. */
static int check_key_matches(p11_token *t)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, t->id, t->id_len },
	};
	const unsigned char *p = t->base.cert_der;
	X509 *cert = d2i_X509(NULL, &p, (long)t->base.cert_len);
	EVP_PKEY *pub = cert ? X509_get0_pubkey(cert) : NULL;
	CK_OBJECT_HANDLE key;
	unsigned char *value = NULL, point[256];
	CK_ULONG len = 0;
	size_t point_len = 0;
	BIGNUM *n = NULL, *mod = NULL;
	int error = 0, same = 1;

	if (!pub) {
		X509_free(cert);
		return tr_error_set_openssl(TR_EINVAL, "the token's certificate does not parse");
	}
	/* A token without public key objects gives nothing to compare. */
	if (find_one(t, tmpl, 2, &key) != 0)
		goto out;
	if (EVP_PKEY_is_a(pub, "RSA")) {
		if ((error = read_attr(t, key, CKA_MODULUS, &value, &len)) < 0)
			goto out;
		mod = BN_bin2bn(value, (int)len, NULL);
		same = EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n) && mod &&
		       BN_cmp(n, mod) == 0;
	} else {
		const unsigned char *q;
		ASN1_OCTET_STRING *os;

		if ((error = read_attr(t, key, CKA_EC_POINT, &value, &len)) < 0)
			goto out;
		q = value;
		os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);
		same = os && EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, point,
							      sizeof(point), &point_len) &&
		       (size_t)os->length == point_len && !memcmp(os->data, point, point_len);
		ASN1_OCTET_STRING_free(os);
	}
	if (!same)
		error = tr_error_set(TR_TOKEN_EKEY_MISMATCH,
				     "the certificate on the token does not belong to its key");
out:
	BN_free(n);
	BN_free(mod);
	free(value);
	X509_free(cert);
	return error;
}

/*
 * Nothing listed for the URI: no key (TK-E04), or a key plugged in that the
 * module does not show (JS-E01: an empty slot list while the key is in, a
 * driver that does not know it). A real assistant sees the USB device apart
 * from the PKCS#11 module; the interposer tells what is plugged in, other
 * modules cannot, and their empty list reads as no token.
 */
static int not_listed(p11_token *t, CK_ULONG listed, const char *what)
{
	long (*inserted)(void) = (long (*)(void))tr_p11mod_symbol(t->mod,
								   "tokenrig_shim_keys_inserted");
	long n = inserted ? inserted() : -1;

	if (n > (long)listed)
		return tr_error_set(TR_TOKEN_ENODRIVER,
				    "%ld key(s) plugged in, %lu listed by %s: its driver does not recognise the key",
				    n, (unsigned long)listed, tr_p11mod_path(t->mod));
	return tr_error_set(TR_TOKEN_ENOTOKEN, "%s", what);
}

/* Opens the first token the URI matches that holds a fitting certificate. */
static int select_token(p11_token *t, P11KitUri *uri, const char *unit_name, int valid_only)
{
	CK_SLOT_ID slots[TR_P11_MAX_SLOTS];
	CK_ULONG count = TR_P11_MAX_SLOTS;
	CK_TOKEN_INFO info;
	int error, matched = 0;
	CK_RV rv;

	if ((error = tr_p11mod_slot_list_once(t->mod, slots, &count)) < 0)
		return error;
	if (count == 0)
		return not_listed(t, count, "no token present: the slot list is empty");
	for (CK_ULONG i = 0; i < count; i++) {
		CK_SLOT_INFO slot_info;

		/* A reader is named by slot-description (RFC 7512 / p11-kit). */
		if (tr_p11mod_slot_identity(t->mod, slots[i], &slot_info) < 0 ||
		    !p11_kit_uri_match_slot_info(uri, &slot_info) ||
		    t->fn->C_GetTokenInfo(slots[i], &info) != CKR_OK ||
		    !p11_kit_uri_match_token_info(uri, &info))
			continue;
		matched++;
		t->slot = slots[i];
		/* Read-write: an SO login (PIN reset) is refused while RO sessions exist. */
		rv = t->fn->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					  &t->session);
		if (rv != CKR_OK)
			return map_rv_t(t, rv, "C_OpenSession");
		error = pick_certificate(t, uri, unit_name, valid_only);
		if (error == 0) {
			size_t n = sizeof(info.label);

			/* Kept raw: the harness names a label cut inside a character. */
			while (n && (info.label[n - 1] == ' ' || !info.label[n - 1]))
				n--;
			memcpy(t->base.label, info.label, n);
			t->base.label[n] = '\0';
			return check_key_matches(t);
		}
		t->fn->C_CloseSession(t->session);
		t->session = CK_INVALID_HANDLE;
		if (error != TR_ENOTFOUND)
			return error;
	}
	if (!matched)
		return not_listed(t, count, "no token matching the URI among those present");
	if (unit_name)
		return tr_error_set(TR_ENOTFOUND, "no certificate of '%s' on the %d token(s) matching the URI",
				    unit_name, matched);
	return tr_error_set(TR_ENOTFOUND, "no certificate on the token matches the URI");
}

static int p11_login(tr_token *tok, const char *pin)
{
	p11_token *t = (p11_token *)tok;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, t->id, t->id_len },
	};
	CK_RV rv;
	int error;

	rv = t->fn->C_Login(t->session, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		return map_rv_t(t, rv, "C_Login");
	t->logged_in = 1;
	error = find_one(t, tmpl, 2, &t->key);
	if (error == TR_ENOTFOUND)
		return tr_error_set(TR_TOKEN_EKEY_MISMATCH,
				    "no private key with the certificate's CKA_ID");
	return error;
}

static int p11_logout(tr_token *tok)
{
	p11_token *t = (p11_token *)tok;
	CK_RV rv;

	if (!t->logged_in)
		return 0;
	t->logged_in = 0;
	t->key = CK_INVALID_HANDLE;
	rv = t->fn->C_Logout(t->session);
	return rv == CKR_USER_NOT_LOGGED_IN ? 0 : map_rv_t(t, rv, "C_Logout");
}

static int p11_pin_tries(tr_token *tok)
{
	p11_token *t = (p11_token *)tok;
	int (*exact)(CK_SLOT_ID) = (int (*)(CK_SLOT_ID))tr_p11mod_symbol(t->mod,
									  "tokenrig_shim_pin_tries");
	CK_TOKEN_INFO info;

	if (exact)
		return exact(t->slot);

	if (t->fn->C_GetTokenInfo(t->slot, &info) != CKR_OK)
		return -1;
	if (info.flags & CKF_USER_PIN_LOCKED)
		return 0;
	if (info.flags & CKF_USER_PIN_FINAL_TRY)
		return 1;
	return -1;
}

/*
 * Whether the module is OpenSC configured to unblock a PIN as C_SetPIN(PUK,
 * new PIN) in a session nobody is logged in to: a line
 * "user_pin_unblock_style = set_pin_in_unlogged_session" in its
 * configuration (OPENSC_CONF, else Debian's). Only then is that call an
 * unblock; otherwise OpenSC would take it as a PIN change with the PUK as
 * the old PIN, and count a wrong PIN.
 */
static int opensc_unlogged_unblock(p11_token *t)
{
	const char *path = getenv("OPENSC_CONF");
	char line[512];
	CK_INFO info;
	FILE *f;
	int found = 0;

	if (t->fn->C_GetInfo(&info) != CKR_OK ||
	    memcmp(info.manufacturerID, "OpenSC", 6) != 0)
		return 0;
	if (!(f = fopen(path && *path ? path : "/etc/opensc/opensc.conf", "r")))
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#'), *key, *val;

		if (hash)
			*hash = '\0';
		key = strstr(line, "user_pin_unblock_style");
		val = key ? strchr(key, '=') : NULL;
		found = val && strstr(val, "set_pin_in_unlogged_session") != NULL;
	}
	fclose(f);
	return found;
}

static int p11_change_pin(tr_token *tok, const char *old_pin, const char *new_pin)
{
	p11_token *t = (p11_token *)tok;
	CK_SESSION_HANDLE rw;
	CK_RV rv;
	int ours = 0;

	/* C_SetPIN needs a read-write session; the signing one stays as it is. */
	rv = t->fn->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw);
	if (rv != CKR_OK)
		return map_rv_t(t, rv, "C_OpenSession");
	/*
	 * OpenSC with the unlogged unblock style takes C_SetPIN outside a login
	 * as an unblock (the old PIN as the PUK): change it logged in as the user.
	 */
	if (opensc_unlogged_unblock(t)) {
		rv = t->fn->C_Login(rw, CKU_USER, (CK_UTF8CHAR *)old_pin, strlen(old_pin));
		if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
			t->fn->C_CloseSession(rw);
			return map_rv_t(t, rv, "C_Login before C_SetPIN");
		}
		ours = rv == CKR_OK && !t->logged_in;
	}
	rv = t->fn->C_SetPIN(rw, (CK_UTF8CHAR *)old_pin, strlen(old_pin),
			     (CK_UTF8CHAR *)new_pin, strlen(new_pin));
	if (ours)
		t->fn->C_Logout(rw);
	t->fn->C_CloseSession(rw);
	return map_rv_t(t, rv, "C_SetPIN");
}

static int p11_reset_pin(tr_token *tok, const char *so_pin, const char *new_pin)
{
	p11_token *t = (p11_token *)tok;
	CK_SESSION_HANDLE rw;
	CK_RV rv;
	int error;

	/* Logging in as SO ends the user's login on every session of the token. */
	t->logged_in = 0;
	rv = t->fn->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw);
	if (rv != CKR_OK)
		return map_rv_t(t, rv, "C_OpenSession");
	t->fn->C_Logout(rw);
	if (opensc_unlogged_unblock(t)) {
		/* OpenSC's PIV driver refuses an SO login with the PUK: its unblock. */
		rv = t->fn->C_SetPIN(rw, (CK_UTF8CHAR *)so_pin, strlen(so_pin),
				     (CK_UTF8CHAR *)new_pin, strlen(new_pin));
		error = map_rv_t(t, rv, "C_SetPIN(PUK, new PIN) unlogged");
		goto out;
	}
	rv = t->fn->C_Login(rw, CKU_SO, (CK_UTF8CHAR *)so_pin, strlen(so_pin));
	if (rv != CKR_OK) {
		error = map_rv_t(t, rv, "C_Login(SO)");
		goto out;
	}
	rv = t->fn->C_InitPIN(rw, (CK_UTF8CHAR *)new_pin, strlen(new_pin));
	error = map_rv_t(t, rv, "C_InitPIN");
	t->fn->C_Logout(rw);
out:
	t->fn->C_CloseSession(rw);
	return error;
}

/* PKCS#11 ECDSA gives r||s; the portals (like X.509) want DER. */
static int ecdsa_raw_to_der(const unsigned char *raw, size_t len,
			    unsigned char **der, size_t *der_len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r, *s;
	unsigned char *p = NULL;
	int n;

	if (!sig || len == 0 || len % 2) {
		ECDSA_SIG_free(sig);
		return tr_error_set(TR_ECRYPTO, "bad ECDSA signature length %zu", len);
	}
	r = BN_bin2bn(raw, (int)(len / 2), NULL);
	s = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);
	if (!r || !s || !ECDSA_SIG_set0(sig, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return tr_error_set_openssl(TR_ECRYPTO, "ECDSA_SIG_set0");
	}
	n = i2d_ECDSA_SIG(sig, &p);
	ECDSA_SIG_free(sig);
	if (n <= 0)
		return tr_error_set_openssl(TR_ECRYPTO, "i2d_ECDSA_SIG");
	*der = p;
	*der_len = (size_t)n;
	return 0;
}

static int p11_sign(tr_token *tok, const unsigned char *data, size_t len,
		    unsigned char **sig, size_t *sig_len, uint64_t *token_ns)
{
	p11_token *t = (p11_token *)tok;
	CK_MECHANISM mech = { 0, NULL, 0 };
	unsigned char digest[32], raw[1024];
	const unsigned char *input = data;
	CK_ULONG input_len = len, raw_len = sizeof(raw);
	uint64_t start;
	CK_RV rv;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "sign before login");
	switch (t->base.alg) {
	case TR_SIGN_ECDSA_SHA256:
		/* SoftHSM 2.6 lacks CKM_ECDSA_SHA256: hash here, sign the digest. */
		if (!EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL))
			return tr_error_set_openssl(TR_ECRYPTO, "SHA-256");
		mech.mechanism = CKM_ECDSA;
		input = digest;
		input_len = sizeof(digest);
		break;
	case TR_SIGN_RSA_PKCS1_SHA256:
		mech.mechanism = CKM_SHA256_RSA_PKCS;
		break;
	default:
		return tr_error_set(TR_EINVAL, "%s signatures are not available through PKCS#11 here",
				    tr_sign_alg_name(t->base.alg));
	}

	start = tr_clock_ns();
	rv = t->fn->C_SignInit(t->session, &mech, t->key);
	if (rv == CKR_OK)
		rv = t->fn->C_Sign(t->session, (CK_BYTE *)input, input_len, raw, &raw_len);
	*token_ns = tr_clock_ns() - start;
	if (rv != CKR_OK)
		return map_rv_t(t, rv, "C_Sign");

	if (t->base.alg == TR_SIGN_ECDSA_SHA256)
		return ecdsa_raw_to_der(raw, raw_len, sig, sig_len);
	*sig = malloc(raw_len);
	if (!*sig)
		return tr_error_set(TR_ENOMEM, "out of memory");
	memcpy(*sig, raw, raw_len);
	*sig_len = raw_len;
	return 0;
}

/* Every object of a class (and CKA_LABEL when label is not NULL). */
static int find_all(p11_token *t, CK_OBJECT_CLASS cls, const char *label,
		    CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *n)
{
	CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_ULONG nt = 1;
	CK_RV rv;

	if (label)
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	*n = 0;
	rv = t->fn->C_FindObjectsInit(t->session, tmpl, nt);
	if (rv == CKR_OK) {
		rv = t->fn->C_FindObjects(t->session, out, max, n);
		t->fn->C_FindObjectsFinal(t->session);
	}
	return map_rv_t(t, rv, "C_FindObjects");
}

/* The CKA_ID of the key pair whose public key is pub, 0 when none. */
static unsigned char key_id_of(p11_token *t, EVP_PKEY *pub)
{
	CK_OBJECT_HANDLE keys[32];
	CK_ULONG n;
	unsigned char id = 0;

	if (find_all(t, CKO_PUBLIC_KEY, NULL, keys, 32, &n) < 0)
		return 0;
	for (CK_ULONG i = 0; i < n && !id; i++) {
		EVP_PKEY *k = NULL;
		unsigned char *v = NULL;
		CK_ULONG len = 0;

		if (tr_p11_public_key(t->fn, t->session, keys[i], &k) == 0 && EVP_PKEY_eq(k, pub) == 1 &&
		    read_attr(t, keys[i], CKA_ID, &v, &len) == 0 && len == 1)
			id = v[0];
		EVP_PKEY_free(k);
		free(v);
	}
	return id;
}

/* Keys written after provisioning get IDs from here on. */
#define FIRST_NEW_ID 0x10

/* SoftHSM2 and OpenSC hold no SM2: the upgrade's key is P-256 there. */
static int p11_generate_key(tr_token *tok, tr_keygen alg, unsigned char **spki,
			    size_t *spki_len)
{
	p11_token *t = (p11_token *)tok;
	CK_OBJECT_HANDLE keys[32], pub;
	CK_ULONG n;
	tr_p11_key spec = { .rsa = alg == TR_KEYGEN_RSA2048,
			    .label = t->foreign ? FOREIGN_NEW_KEY : "unit-new" };
	EVP_PKEY *k = NULL;
	int error, len;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "key generation before login");
	/* On a foreign token the rig counts only its own keys, IDs from 0xF0 on. */
	if ((error = find_all(t, CKO_PUBLIC_KEY, t->foreign ? FOREIGN_NEW_KEY : NULL, keys, 32,
			      &n)) < 0)
		return error;
	spec.id = (unsigned char)((t->foreign ? 0xF0 : FIRST_NEW_ID) + n);
	if ((error = tr_p11_generate_key(t->fn, t->session, &spec, &pub)) < 0 ||
	    (error = tr_p11_public_key(t->fn, t->session, pub, &k)) < 0) {
		if (error == TR_EDEPEND && t->base.strict)
			return tr_error_set(TR_ERROR, "%s", tr_error_last());
		return error;
	}
	*spki = NULL;
	len = i2d_PUBKEY(k, spki);
	EVP_PKEY_free(k);
	if (len <= 0)
		return tr_error_set_openssl(TR_ECRYPTO, "encoding the new public key");
	*spki_len = (size_t)len;
	return 0;
}

static int destroy_certificates(p11_token *t)
{
	CK_OBJECT_HANDLE certs[16];
	CK_ULONG n;
	int error;

	if ((error = find_all(t, CKO_CERTIFICATE, t->cert_label, certs, 16, &n)) < 0)
		return error;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_RV rv = t->fn->C_DestroyObject(t->session, certs[i]);

		if (rv != CKR_OK)
			return map_rv_t(t, rv, "C_DestroyObject(certificate)");
	}
	return 0;
}

/* Makes der current: stored with the ID of its key, the old one removed. */
static int install_certificate(p11_token *t, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	tr_p11_key spec = { .label = t->cert_label };
	unsigned char *copy = NULL;
	int error;

	if (!cert)
		return tr_error_set_openssl(TR_EINVAL, "the certificate to write is not DER X.509");
	spec.id = key_id_of(t, X509_get0_pubkey(cert));
	if (!spec.id) {
		error = tr_error_set(TR_TOKEN_EKEY_MISMATCH,
				     "the certificate to write certifies no key on the token");
		goto out;
	}
	spec.rsa = EVP_PKEY_is_a(X509_get0_pubkey(cert), "RSA");
	if (!(copy = malloc(len))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	if ((error = destroy_certificates(t)) < 0 ||
	    (error = tr_p11_import_cert(t->fn, t->session, &spec, cert)) < 0 ||
	    (error = alg_of_cert(der, len, &t->base.alg)) < 0)
		goto out;
	memcpy(copy, der, len);
	free(t->base.cert_der);
	t->base.cert_der = copy;
	t->base.cert_len = len;
	copy = NULL;
	t->id[0] = spec.id;
	t->id_len = 1;
	if (t->logged_in) {
		CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
		CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, t->id, 1 } };

		error = find_one(t, tmpl, 2, &t->key);
	}
out:
	free(copy);
	X509_free(cert);
	return error;
}

static int p11_write_certificate(tr_token *tok, const unsigned char *der, size_t len)
{
	p11_token *t = (p11_token *)tok;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "writing a certificate before login");
	return install_certificate(t, der, len);
}

static int p11_restore(tr_token *tok, const unsigned char *der, size_t len)
{
	p11_token *t = (p11_token *)tok;
	CK_OBJECT_CLASS classes[] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY };
	int error;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "restoring before login");
	/* Keys made since provisioning carry IDs from FIRST_NEW_ID on. */
	for (size_t c = 0; c < 2; c++) {
		CK_OBJECT_HANDLE objs[32];
		CK_ULONG n;

		/* On a foreign token: only the keys the rig generated, by their label. */
		if ((error = find_all(t, classes[c], t->foreign ? FOREIGN_NEW_KEY : NULL, objs, 32,
				      &n)) < 0)
			return error;
		for (CK_ULONG i = 0; i < n; i++) {
			unsigned char *id = NULL;
			CK_ULONG id_len = 0;

			if (t->foreign || (read_attr(t, objs[i], CKA_ID, &id, &id_len) == 0 &&
					   id_len == 1 && id[0] >= FIRST_NEW_ID))
				t->fn->C_DestroyObject(t->session, objs[i]);
			free(id);
		}
	}
	return install_certificate(t, der, len);
}

static void p11_close(tr_token *tok)
{
	p11_token *t = (p11_token *)tok;

	if (t->session != CK_INVALID_HANDLE)
		t->fn->C_CloseSession(t->session);
	tr_p11mod_release(t->mod);
	free(t->base.cert_der);
	free(t);
}

static const tr_token_ops p11_ops = {
	.kind = "pkcs11",
	.login = p11_login,
	.logout = p11_logout,
	.pin_tries = p11_pin_tries,
	.change_pin = p11_change_pin,
	.reset_pin = p11_reset_pin,
	.generate_key = p11_generate_key,
	.write_certificate = p11_write_certificate,
	.restore = p11_restore,
	.sign = p11_sign,
	.close = p11_close,
};

int tr_token_open_p11_unit(tr_token **out, const char *module_path, const char *uri_str,
			   const char *unit_name)
{
	P11KitUri *uri = p11_kit_uri_new();
	p11_token *t = NULL;
	int error, rc;

	*out = NULL;
	if (!uri)
		return tr_error_set(TR_ENOMEM, "out of memory");
	/* FOR_ANY: a reader named by slot-description is part of the selection too. */
	rc = p11_kit_uri_parse(uri_str, P11_KIT_URI_FOR_ANY, uri);
	if (rc != P11_KIT_URI_OK) {
		error = tr_error_set(TR_EINVAL, "bad PKCS#11 URI '%s': %s", uri_str,
				     p11_kit_uri_message(rc));
		goto out;
	}
	if (!module_path)
		module_path = p11_kit_uri_get_module_path(uri);
	if (!module_path) {
		error = tr_error_set(TR_EINVAL, "no PKCS#11 module: give one or module-path= in the URI");
		goto out;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	t->base.ops = &p11_ops;
	t->session = CK_INVALID_HANDLE;
	snprintf(t->cert_label, sizeof(t->cert_label), "unit");
	if ((error = tr_p11mod_load(&t->mod, module_path)) < 0) {
		error = TR_TOKEN_ENODRIVER;
		free(t);
		t = NULL;
		goto out;
	}
	t->fn = tr_p11mod_functions(t->mod);
	error = select_token(t, uri, unit_name, unit_name != NULL);
	if (error == TR_ENOTFOUND && unit_name)
		error = select_token(t, uri, unit_name, 0);
out:
	p11_kit_uri_free(uri);
	if (error < 0 && t)
		p11_close(&t->base);
	else if (t)
		*out = &t->base;
	return error;
}

int tr_token_open_p11(tr_token **out, const char *module_path, const char *uri)
{
	return tr_token_open_p11_unit(out, module_path, uri, NULL);
}
