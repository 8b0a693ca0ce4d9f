/* tokenrig: the command line. */
#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "harness/bench.h"
#include "harness/compare.h"
#include "harness/coverage.h"
#include "harness/engine.h"
#include "harness/env.h"
#include "harness/token_ctl.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SEED 20260921u

static void usage(FILE *f)
{
	fputs("usage:\n"
	      "  tokenrig run [--suites DIR] [--out DIR] [--filter TEXT] [--seed N]\n"
	      "               [--case-timeout MS] [--no-cards]\n"
	      "      Brings up tokens and portals in OUT/run, runs every scenario on\n"
	      "      every token kind, writes OUT/results.json and OUT/junit.xml.\n"
	      "      Exit 0 only when every case passed.\n"
	      "  tokenrig env up [--dir DIR] [--seed N] [--no-cards]\n"
	      "      Starts the emulated tokens and portals and leaves them running;\n"
	      "      `source DIR/env.sh` (default out/env) to use them by hand.\n"
	      "  tokenrig env down [--dir DIR]\n"
	      "      Stops exactly what `env up` started in DIR.\n"
	      "  tokenrig bench [--json FILE] [--out DIR] [--count N] [--warmup N]\n"
	      "                 [--rounds R] [--threads K] [--latency 'C_Sign fixed 15us']\n"
	      "      Signing latency per token kind and algorithm, with in-run\n"
	      "      baselines (raw OpenSSL, a direct C_Sign loop), percentiles,\n"
	      "      histograms and concurrency; --latency adds interposer latency.\n"
	      "  tokenrig coverage [--catalog FILE] [--suites DIR] [--results FILE]\n"
	      "      Every catalog ID has a scenario and no scenario names an unknown\n"
	      "      ID; with --results, every ID passed on some token kind. Exit 1\n"
	      "      otherwise. The catalog defaults to " TR_DEFAULT_CATALOG ".\n"
	      "  tokenrig compare BASE.json NEW.json [--threshold 0.10] [--min-us 1]\n"
	      "                 [--alpha 0.01] [--normalize]\n"
	      "      Per metric faster / slower / no change; exit 1 when a metric got\n"
	      "      significantly slower by more than the threshold, 2 on bad input.\n", f);
}

/* Pending catalog IDs are said on every run, not only by `coverage`. */
static int print_pending(void *arg, int line, const char *id, const char *why)
{
	printf("PENDING  %-14s %s\n", id, why);
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "suites", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "filter", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 'S' },
		{ "case-timeout", required_argument, NULL, 't' },
		{ "no-cards", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_engine_opts opts = { .suites_dir = "suites", .out_dir = "out",
				.case_timeout_ms = 120000, .tty = isatty(STDOUT_FILENO) };
	tr_env_opts env_opts = { .seed = DEFAULT_SEED };
	char run_dir[PATH_MAX];
	tr_run_totals totals;
	tr_env *env = NULL;
	uint64_t start = tr_clock_ns();
	int c, error;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': opts.suites_dir = optarg; break;
		case 'o': opts.out_dir = optarg; break;
		case 'f': opts.filter = optarg; break;
		case 'S': env_opts.seed = strtoull(optarg, NULL, 0); break;
		case 't': opts.case_timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'N': env_opts.no_cards = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	snprintf(run_dir, sizeof(run_dir), "%s/run", opts.out_dir);
	env_opts.dir = run_dir;
	/* Results of an earlier run must not pass for this one's. */
	if (tr_fs_mkdirs(opts.out_dir, 0755) == 0) {
		char p[PATH_MAX + 16];

		snprintf(p, sizeof(p), "%s/results.json", opts.out_dir);
		unlink(p);
		snprintf(p, sizeof(p), "%s/junit.xml", opts.out_dir);
		unlink(p);
	}
	printf("tokenrig: bringing up tokens and portals in %s\n", run_dir);
	fflush(stdout);
	if ((error = tr_env_up(&env, &env_opts)) < 0) {
		fprintf(stderr, "tokenrig: %s\n", tr_error_last());
		return 1;
	}
	printf("tokenrig: ready in %.2f s%s%s\n", (double)(tr_clock_ns() - start) / 1e9,
	       *tr_env_cards_missing(env) ? "; no virtual cards: " : "", tr_env_cards_missing(env));
	fflush(stdout);
	error = tr_engine_run(env, &opts, &totals);
	tr_env_free(env);
	if (error < 0) {
		fprintf(stderr, "tokenrig: %s\n", tr_error_last());
		return 1;
	}
	printf("\nwall time: %.2f s for the whole matrix, start-up included (cases: %.2f s)\n",
	       (double)(tr_clock_ns() - start) / 1e9, totals.wall_s);
	printf("results: %s/results.json %s/junit.xml\n", opts.out_dir, opts.out_dir);
	if (totals.errors)
		printf("errors: %d case(s) could not run\n", totals.errors);
	if (tr_pending_each(opts.suites_dir, print_pending, NULL) < 0)
		fprintf(stderr, "tokenrig: %s\n", tr_error_last());
	printf("scenarios: %d passed, %d failed, %d skipped\n", totals.passed,
	       totals.failed + totals.errors, totals.skipped);
	return totals.failed + totals.errors ? 1 : 0;
}

static int cmd_env(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'S' },
		{ "no-cards", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_env_opts opts = { .dir = "out/env", .detach = 1, .seed = DEFAULT_SEED };
	const char *verb;
	tr_env *env;
	int c;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	verb = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': opts.dir = optarg; break;
		case 'S': opts.seed = strtoull(optarg, NULL, 0); break;
		case 'N': opts.no_cards = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!strcmp(verb, "up")) {
		if (tr_env_up(&env, &opts) < 0) {
			fprintf(stderr, "tokenrig env up: %s\n", tr_error_last());
			return 1;
		}
		printf("environment up in %s\n  source %s/env.sh\n  tokenrig env down --dir %s\n",
		       tr_env_dir(env), tr_env_dir(env), opts.dir);
		tr_env_free(env);
		return 0;
	}
	if (!strcmp(verb, "down")) {
		if (tr_env_down(opts.dir) < 0) {
			fprintf(stderr, "tokenrig env down: %s\n", tr_error_last());
			return 1;
		}
		printf("environment in %s is down\n", opts.dir);
		return 0;
	}
	usage(stderr);
	return 2;
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", required_argument, NULL, 'j' },
		{ "out", required_argument, NULL, 'o' },
		{ "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 'k' },
		{ "latency", required_argument, NULL, 'l' },
		{ "kinds", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_bench_opts opts = { .count = 2000, .warmup = 200, .rounds = 10,
			       .max_threads = 2 * (unsigned)sysconf(_SC_NPROCESSORS_ONLN) };
	tr_env_opts env_opts = { .seed = DEFAULT_SEED };
	const char *out = "out", *latency = NULL;
	char dir[PATH_MAX];
	tr_token_ctl *ctl = NULL;
	tr_env *env;
	int c, error;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': opts.json_path = optarg; break;
		case 'o': out = optarg; break;
		case 'n': opts.count = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': opts.warmup = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': opts.rounds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'k': opts.max_threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'l': latency = optarg; break;
		case 'K': opts.kinds = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || opts.count == 0 || opts.rounds == 0 || opts.count < opts.rounds ||
	    opts.max_threads == 0 || opts.max_threads > 64) {
		fprintf(stderr, "tokenrig bench: count >= rounds >= 1 and 1..64 threads\n");
		return 2;
	}
	if (tr_bench_kinds_check(opts.kinds) < 0) {
		fprintf(stderr, "tokenrig bench: %s\n", tr_error_last());
		return 2;
	}
	/* SoftHSM alone: no card is provisioned or shown. */
	env_opts.no_cards = !tr_bench_kinds_cards(opts.kinds);
	snprintf(dir, sizeof(dir), "%s/bench-run", out);
	env_opts.dir = dir;
	if (tr_env_up(&env, &env_opts) < 0) {
		fprintf(stderr, "tokenrig bench: %s\n", tr_error_last());
		return 1;
	}
	/* A modelled slowdown, for checking that compare sees it. */
	if (latency && ((error = tr_token_ctl_new(&ctl, tr_env_shim(env), tr_env_shim_conf(env),
						  tr_env_shim_base(env))) < 0 ||
			(error = tr_token_ctl_set(ctl, "", "latency", latency)) < 0)) {
		fprintf(stderr, "tokenrig bench: --latency: %s\n", tr_error_last());
		tr_token_ctl_free(ctl);
		tr_env_free(env);
		return 2;
	}
	error = tr_bench_run(env, &opts);
	tr_token_ctl_free(ctl);
	tr_env_free(env);
	if (error < 0) {
		fprintf(stderr, "tokenrig bench: %s\n", tr_error_last());
		return 1;
	}
	return 0;
}

static int cmd_coverage(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "catalog", required_argument, NULL, 'c' },
		{ "suites", required_argument, NULL, 's' },
		{ "results", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *catalog = getenv("TOKENRIG_CATALOG") ? getenv("TOKENRIG_CATALOG") :
			      TR_DEFAULT_CATALOG;
	const char *suites = "suites", *results = NULL;
	int c, problems;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': catalog = optarg; break;
		case 's': suites = optarg; break;
		case 'r': results = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (tr_coverage_check(catalog, suites, results, stdout, &problems) < 0) {
		fprintf(stderr, "tokenrig coverage: %s\n", tr_error_last());
		return 2;
	}
	return problems ? 1 : 0;
}

static int cmd_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "threshold", required_argument, NULL, 't' },
		{ "min-us", required_argument, NULL, 'm' },
		{ "alpha", required_argument, NULL, 'a' },
		{ "normalize", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_compare_opts opts = { .threshold = 0.10, .alpha = 0.01, .min_us = 1.0 };
	int c, slower;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't': opts.threshold = strtod(optarg, NULL); break;
		case 'm': opts.min_us = strtod(optarg, NULL); break;
		case 'a': opts.alpha = strtod(optarg, NULL); break;
		case 'n': opts.normalize = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2 || opts.threshold <= 0 || opts.alpha <= 0 || opts.alpha >= 1) {
		usage(stderr);
		return 2;
	}
	if (tr_compare_files(argv[optind], argv[optind + 1], &opts, stdout, &slower) < 0) {
		fprintf(stderr, "tokenrig compare: %s\n", tr_error_last());
		return 2;
	}
	return slower ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "env"))
		return cmd_env(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(argc - 1, argv + 1);
	if (!strcmp(argv[1], "compare"))
		return cmd_compare(argc - 1, argv + 1);
	if (!strcmp(argv[1], "coverage"))
		return cmd_coverage(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "tokenrig: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
