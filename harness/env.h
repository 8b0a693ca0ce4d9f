/*
 * The rig's environment: fixture PKI, emulated tokens and mock portals in
 * one run folder. `tokenrig run` brings one up for itself; `tokenrig env up`
 * brings one up for people and leaves it running until `env down`.
 *
 * Files in DIR:
 *   pki/            fixture PKI (fixtures/pki.h)
 *   softhsm/        SoftHSM2 config and token folder of this run
 *   p11shim.conf    the interposer's configuration (every SoftHSM token is
 *                   used through it), p11shim.state its PIN counters
 *   tokens.json     every token: kind, algorithm, portal, role, URI, unit
 *   env.sh          exports for people (PINs included: it is for poking the
 *                   tokens by hand, never copied into reports)
 *   pids            processes started, "name pid starttime", for env down;
 *                   a run's env adds "owner pid starttime" (the run itself),
 *                   so a later run cleans up after one that was killed
 *   portal.log      the portal's request log
 *   worker.state    a provision_only env: the tokens for its workers (0600)
 *   wN/             worker N's own env (tr_env_worker_up), wN.log its output
 */
#ifndef TR_HARNESS_ENV_H
#define TR_HARNESS_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "fixtures/ident.h"
#include "common/paths.h"

typedef struct tr_env tr_env;

/* One provisioned token that scenarios can use. */
typedef struct tr_token_ref {
	char kind[16];       /* "softhsm" */
	char algorithm[16];  /* "p256", "rsa2048" */
	char portal[16];     /* the portal whose CA issued it */
	char role[16];       /* the profile of suites/tokens.conf: "a", "expired" */
	char label[33];
	char module[4096];
	char uri[256];
	char token_uri[256];    /* the token alone, for a choice by unit; "" = any */
	fx_unit unit;
	char pin[32];
	char so_pin[32];
	char ca[24];            /* the CA that issued its certificate */
	char cert_serial[80];   /* upper-case hex */
	char enc_serial[80];    /* "" without an encryption certificate */
	unsigned char *cert_der; /* as provisioned: what every case starts from */
	size_t cert_len;
	int card;               /* virtual card kinds: its reader, else -1 */
	char reader[64];
	char image[4200];       /* the card's pristine image */
} tr_token_ref;

/* OpenSC's PKCS#11 module as p11-kit registers it (common/paths.h). */
#define TR_OPENSC_MODULE tr_paths_get(TR_PATH_OPENSC)

typedef struct tr_env_opts {
	const char *dir;
	int detach;          /* env up: processes outlive this one */
	uint64_t seed;       /* identity data */
	const char *profiles; /* token profiles; default suites/tokens.conf */
	int no_cards;        /* SoftHSM tokens only, no virtual cards */
	int foreign;         /* certification: PKI and portals only, tokens added after */
	/*
	 * Regenerate the fixtures (PKI, SoftHSM tokens, card images) instead of
	 * copying them from the fixture cache (harness/fixture_cache.h), and
	 * replace the cache's entry with them.
	 */
	int fresh;
	/*
	 * Certification: every portal also trusts the certificates of the PEM
	 * file trust (certify --trust) and the chain of the fixture CA
	 * trust_ca (the CA certify issues a card's own key from), appended
	 * to each portal's chain.pem before the portals start.
	 */
	const char *trust, *trust_ca;
	/*
	 * tokenrig run's env with worker processes: PKI, SoftHSM tokens and
	 * card images only, no process started; every worker brings up its
	 * own env from them (tr_env_worker_up).
	 */
	int provision_only;
} tr_env_opts;

/* The interposer's configuration every case starts from (module path). */
#define TR_ENV_SHIM_BASE \
	"# tokenrig: the interposer in front of the rig's SoftHSM2 tokens\n" \
	"module = %s\n" \
	"state = p11shim.state\n" \
	"max_tries = 3\n"

int tr_env_up(tr_env **out, const tr_env_opts *opts);

/*
 * The deepest folder an environment may be made in, as an absolute path:
 * SoftHSM2 reads its configuration in lines of at most 1023 bytes, and the
 * line naming the token folder is "directories.tokendir = DIR/run/wN/
 * softhsm/tokens" below a run's --out, deeper below bench's and certify's.
 */
#define TR_ENV_DIR_MAX 900

/* 0, or TR_EINVAL (error set, saying both lengths) when dir is deeper. */
int tr_env_dir_check(const char *dir);

/* Stops what this env started (when not detached) and frees it. */
void tr_env_free(tr_env *env);

/*
 * 1 when a process the rig started for this env (portal, pcscd, a virtual
 * card) is no longer alive, with "rig fault: the portal process (PID n)
 * died" in buf: a case that failed then is the rig's error, not the product's.
 */
int tr_env_rig_fault(tr_env *env, char *buf, size_t len);

/* Stops what `env up` started in dir, by the PIDs it recorded. */
int tr_env_down(const char *dir);

/*
 * A worker's own env in dir, from the provision_only env of master_dir:
 * copies of its PKI and SoftHSM token folder, its own interposer state,
 * portal process, pcscd and cards (the pristine card images are shared,
 * read-only). Call it before any PC/SC use in the process: pcsc-lite reads
 * PCSCLITE_CSOCK_NAME once. Its processes die with this one. no_cards:
 * no pcscd or cards (the card cases go to another worker).
 */
int tr_env_worker_up(tr_env **out, const char *master_dir, const char *dir, int no_cards);

/*
 * 1 when no mount namespace could be made and the cards' pcscd serves the
 * standard socket (a container): there is room for one pcscd, so only one
 * worker may show cards (no_cards for the others).
 */
int tr_env_cards_on_standard_socket(const tr_env *env);

/*
 * Rewrites DIR/pids: this env's processes, then extra (lines "name pid
 * starttime": the workers and their envs' processes), then the owner, so
 * that env down and a later run stop every one of them by PID.
 */
int tr_env_record_pids(tr_env *env, const char *extra);

const char *tr_env_dir(const tr_env *env);
const char *tr_env_ca_bundle(const tr_env *env);
/* The fixture PKI folder (fixtures/pki.h), for the rig acting as the CA. */
const char *tr_env_pki_dir(const tr_env *env);
/*
 * Puts the CAs' CRLs back as they were after env up (a case may revoke a
 * certificate); the portals re-read a changed CRL.
 */
int tr_env_restore_crls(tr_env *env);
/* The interposer's configuration file (TOKENRIG_SHIM_CONF). */
const char *tr_env_shim_conf(const tr_env *env);
/* The interposer's path, and the configuration text every case starts from. */
const char *tr_env_shim(const tr_env *env);
const char *tr_env_shim_base(const tr_env *env);
/* Base URL of a portal, NULL when it does not run. */
const char *tr_env_portal_url(const tr_env *env, const char *portal);
const tr_token_ref *tr_env_tokens(const tr_env *env, size_t *n);

/* Adds a token the rig did not make (certify); ref->cert_der is copied. */
int tr_env_add_token(tr_env *env, const tr_token_ref *ref);

/* After the added tokens' certificates were issued: their CRLs are the start. */
int tr_env_tokens_ready(tr_env *env);

/*
 * The i-th portal the rig serves, NULL past the last; its legacy CA (or
 * NULL) and whether its tokens carry an encryption certificate too.
 */
const char *tr_env_portal_name(size_t i, const char **legacy_ca, int *dual);

/*
 * Virtual cards: shows the cards of one portal and algorithm in the readers
 * (no-op when they are already shown), or puts the shown ones back as
 * provisioned; a control command to a card. TR_EDEPEND when the env has no
 * cards.
 */
int tr_env_show_cards(tr_env *env, const char *portal, const char *algorithm);
int tr_env_reset_cards(tr_env *env);
int tr_env_card_command(tr_env *env, int card, const char *command);
/* Waits until pcscd sees the card in or out of its reader. */
int tr_env_wait_card(tr_env *env, int card, int present);
/* Where env up's time went, phase by phase: "pki 0.03 s, softhsm tokens 1.2 s, ...". */
const char *tr_env_startup(const tr_env *env);

/* Why the env has no virtual cards ("" when it has them). */
const char *tr_env_cards_missing(const tr_env *env);

/*
 * The i-th kind and algorithm the virtual cards give a portal (vcard on
 * every card algorithm, opensc where OpenSC knows it), whether or not this
 * env has cards: a run without them lists those columns as skipped.
 * -1 past the last.
 */
int tr_env_card_column(size_t i, const char **kind, const char **algorithm);

#endif
