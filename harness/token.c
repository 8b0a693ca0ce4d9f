#include "harness/token.h"

#include "common/error.h"

#include "common/utf8.h"
#include "fixtures/pki.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

const char *tr_sign_alg_name(tr_sign_alg alg)
{
	switch (alg) {
	case TR_SIGN_ECDSA_SHA256: return "ecdsa-sha256";
	case TR_SIGN_RSA_PKCS1_SHA256: return "rsa-pkcs1-sha256";
	case TR_SIGN_SM2_SM3: return "sm2-sm3";
	default: return "none";
	}
}

const char *tr_token_error_name(int code)
{
	switch (code) {
	case 0: return "OK";
	case TR_TOKEN_EPIN_INCORRECT: return "PIN_INCORRECT";
	case TR_TOKEN_EPIN_LOCKED: return "PIN_LOCKED";
	case TR_TOKEN_ENOTOKEN: return "NO_TOKEN";
	case TR_TOKEN_ENODRIVER: return "DRIVER_MISSING";
	case TR_TOKEN_EREMOVED: return "TOKEN_REMOVED";
	case TR_TOKEN_EKEY_MISMATCH: return "KEY_MISMATCH";
	case TR_TOKEN_ENOT_LOGGED_IN: return "NOT_LOGGED_IN";
	case TR_ETIMEDOUT: return "TOKEN_TIMEOUT";
	default: return "TOKEN_ERROR";
	}
}

const char *tr_token_kind(const tr_token *tok)
{
	return tok->ops->kind;
}

void tr_token_set_strict(tr_token *tok, int strict)
{
	if (tok)
		tok->strict = strict;
}

/* 1 when sig over data verifies with the certificate's key, as portals verify. */
static int cert_verifies(const tr_token *tok, const unsigned char *data, size_t len,
			 const unsigned char *sig, size_t sig_len)
{
	const unsigned char *der = tok->cert_der;
	X509 *cert = der ? d2i_X509(NULL, &der, (long)tok->cert_len) : NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY *pub = cert ? X509_get0_pubkey(cert) : NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int sm2 = pub && EVP_PKEY_is_a(pub, "SM2"), ok;

	/* SM2-with-SM3 and the default distinguishing ID. */
	ok = md && pub &&
	     EVP_DigestVerifyInit(md, &pctx, sm2 ? EVP_sm3() : EVP_sha256(), NULL, pub) == 1 &&
	     (!sm2 || EVP_PKEY_CTX_set1_id(pctx, "1234567812345678", 16) > 0) &&
	     EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
	EVP_MD_CTX_free(md);
	X509_free(cert);
	return ok;
}

int tr_token_login(tr_token *tok, const char *pin)
{
	static const unsigned char probe[] = "tokenrig: is the certificate this key's?";
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	uint64_t ns = 0;
	int error;

	if ((error = tok->ops->login(tok, pin)) < 0 || !tok->ops->probe_key_at_login ||
	    tok->key_proven || !tok->cert_der)
		return error;
	/*
	 * The login worked; a probe that cannot be signed proves nothing
	 * either way, and the real signature will say why it fails.
	 */
	if (tok->ops->sign(tok, probe, sizeof(probe) - 1, &sig, &sig_len, &ns) < 0) {
		tok->key_proven = 1;
		return 0;
	}
	if (!cert_verifies(tok, probe, sizeof(probe) - 1, sig, sig_len))
		error = tr_error_set(TR_TOKEN_EKEY_MISMATCH, "a probe signed by the %s key does not "
				     "verify with its certificate: the certificate is not the key's",
				     tok->ops->kind);
	else
		tok->key_proven = 1;
	free(sig);
	return error;
}

int tr_token_logout(tr_token *tok)
{
	return tok->ops->logout(tok);
}

int tr_token_pin_tries(tr_token *tok)
{
	return tok->ops->pin_tries(tok);
}

int tr_token_change_pin(tr_token *tok, const char *old_pin, const char *new_pin)
{
	return tok->ops->change_pin(tok, old_pin, new_pin);
}

int tr_token_reset_pin(tr_token *tok, const char *so_secret, const char *new_pin)
{
	return tok->ops->reset_pin(tok, so_secret, new_pin);
}

int tr_token_generate_key(tr_token *tok, tr_keygen alg, unsigned char **spki,
			  size_t *spki_len)
{
	*spki = NULL;
	if (!tok->ops->generate_key)
		return tr_error_set(TR_EDEPEND, "a %s token cannot generate keys here", tok->ops->kind);
	return tok->ops->generate_key(tok, alg, spki, spki_len);
}

int tr_token_write_certificate(tr_token *tok, const unsigned char *der, size_t len)
{
	if (!tok->ops->write_certificate)
		return tr_error_set(TR_EDEPEND, "a %s token cannot take certificates here",
				    tok->ops->kind);
	return tok->ops->write_certificate(tok, der, len);
}

int tr_token_restore(tr_token *tok, const unsigned char *der, size_t len)
{
	if (!tok->ops->restore)
		return tr_error_set(TR_EDEPEND, "a %s token cannot be restored here", tok->ops->kind);
	return tok->ops->restore(tok, der, len);
}

int tr_token_certificate(tr_token *tok, const unsigned char **der, size_t *len)
{
	if (!tok->cert_der)
		return tr_error_set(TR_ENOTFOUND, "the token holds no certificate for this key");
	*der = tok->cert_der;
	*len = tok->cert_len;
	return 0;
}

tr_sign_alg tr_token_sign_alg(const tr_token *tok)
{
	return tok->alg;
}

int tr_token_sign(tr_token *tok, const unsigned char *data, size_t len,
		  unsigned char **sig, size_t *sig_len, uint64_t *token_ns)
{
	*sig = NULL;
	*sig_len = 0;
	*token_ns = 0;
	return tok->ops->sign(tok, data, len, sig, sig_len, token_ns);
}

const char *tr_token_label(const tr_token *tok)
{
	return tok ? tok->label : "";
}

int tr_token_label_utf8(const tr_token *tok)
{
	const char *label = tr_token_label(tok);

	return tr_utf8_valid(label, strlen(label));
}

void tr_token_close(tr_token *tok)
{
	if (tok)
		tok->ops->close(tok);
}

int tr_cert_of_unit(const unsigned char *der, size_t len, const char *unit_name,
		    int valid_only)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	char name[256];
	int match;

	if (!cert)
		return 0;
	match = fx_cert_unit_identity(cert, name, sizeof(name), NULL, 0) == 0 &&
		!strcmp(name, unit_name);
	if (match && valid_only)
		match = X509_cmp_current_time(X509_get0_notBefore(cert)) < 0 &&
			X509_cmp_current_time(X509_get0_notAfter(cert)) > 0;
	X509_free(cert);
	return match;
}
