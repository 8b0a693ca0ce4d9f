#include "harness/login.h"

#include "common/clock.h"
#include "common/error.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tr_base64(const unsigned char *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

void tr_login_result_clear(tr_login_result *res)
{
	tr_http_answer_clear(&res->answer);
	memset(res, 0, sizeof(*res));
}

static int is_token_outcome(int error)
{
	return error <= TR_TOKEN_EPIN_INCORRECT && error >= TR_TOKEN_ENOT_LOGGED_IN;
}

int tr_login_run(tr_portal_client *pc, tr_token *tok, const char *site,
		 const char *assistant, tr_login_unlock unlock, void *arg,
		 tr_login_result *res)
{
	return tr_login_run_signing(pc, tok, site, assistant, NULL, unlock, arg, res);
}

int tr_login_run_signing(tr_portal_client *pc, tr_token *tok, const char *site,
			 const char *assistant, const char *sign_text,
			 tr_login_unlock unlock, void *arg, tr_login_result *res)
{
	char path[256], *body = NULL, *sig64 = NULL, *cert64 = NULL;
	const unsigned char *der;
	unsigned char *sig = NULL;
	size_t der_len, sig_len;
	const char *challenge, *nonce;
	json_t *req = NULL;
	uint64_t start = tr_clock_ns();
	int error;

	memset(res, 0, sizeof(*res));
	snprintf(path, sizeof(path), "/%s/challenge", site);
	if ((error = tr_portal_client_request(pc, "POST", path, NULL, "{}", 2, &res->answer)) < 0)
		return error;
	challenge = json_string_value(json_object_get(res->answer.json, "challenge"));
	nonce = json_string_value(json_object_get(res->answer.json, "nonce"));
	if (!challenge || !nonce)
		return 0; /* the portal refused: its answer is the outcome */
	if (sign_text)
		challenge = sign_text;

	if ((unlock && (error = unlock(arg)) < 0) ||
	    (error = tr_token_sign(tok, (const unsigned char *)challenge, strlen(challenge),
				   &sig, &sig_len, &res->sign_ns)) < 0 ||
	    (error = tr_token_certificate(tok, &der, &der_len)) < 0) {
		if (is_token_outcome(error)) {
			res->token_error = error;
			tr_http_answer_clear(&res->answer);
			error = 0;
		}
		goto out;
	}
	sig64 = tr_base64(sig, sig_len);
	cert64 = tr_base64(der, der_len);
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "nonce", nonce, "certificate",
			cert64 ? cert64 : "", "signature", sig64 ? sig64 : "", "algorithm",
			tr_sign_alg_name(tr_token_sign_alg(tok)), "assistant", assistant);
	if (!sig64 || !cert64 || !req || !(body = json_dumps(req, JSON_COMPACT))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	tr_http_answer_clear(&res->answer);
	snprintf(path, sizeof(path), "/%s/login", site);
	if ((error = tr_portal_client_request(pc, "POST", path, NULL, body, strlen(body),
					      &res->answer)) < 0)
		goto out;
	res->total_ns = tr_clock_ns() - start;
out:
	json_decref(req);
	free(body);
	free(sig);
	free(sig64);
	free(cert64);
	return error;
}
