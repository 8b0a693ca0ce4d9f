/* tokenrig: the command line. */
#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "harness/bench.h"
#include "harness/compare.h"
#include "harness/coverage.h"
#include "harness/engine.h"
#include "harness/env.h"
#include "harness/history.h"
#include "harness/certify.h"
#include "harness/kinds.h"
#include "harness/nightly.h"
#include "harness/report.h"
#include "harness/token_ctl.h"
#include "harness/version.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_SEED 20260921u

/* The whole command line, for what results.json records of the run. */
static int full_argc;
static char **full_argv;

static void usage(FILE *f)
{
	fputs("usage:\n"
	      "  tokenrig run [--suites DIR] [--out DIR] [--filter TEXT] [--seed N]\n"
	      "               [--case-timeout MS] [--no-cards] [--require-kinds K1,K2]\n"
	      "      Brings up tokens and portals in OUT/run, runs every scenario on\n"
	      "      every token kind, writes OUT/results.json and OUT/junit.xml.\n"
	      "      Exit 0 only when every case passed (and every kind of\n"
	      "      --require-kinds, e.g. softhsm,vcard,opensc, ran some case).\n"	      "      Exit 1 otherwise, 2 on bad input, 3 when a case hung; SIGINT\n"
	      "      or SIGTERM: the case in flight finishes, the files are marked\n"
	      "      interrupted, exit 130 / 143.\n"
	      "  tokenrig certify --module PATH|NAME --pin-env VAR --out DIR [options]\n"
	      "      Certifies every token of a vendor's PKCS#11 module (a path, or a\n"
	      "      name registered with p11-kit) against the catalog: a verdict per\n"
	      "      token in DIR/certification.json and DIR/junit.xml. Exit 0 only\n"
	      "      when every token is certified. `tokenrig certify --help`.\n"
	      "  tokenrig env up [--dir DIR] [--seed N] [--no-cards]\n"
	      "      Starts the emulated tokens and portals and leaves them running;\n"
	      "      `source DIR/env.sh` (default out/env) to use them by hand.\n"
	      "  tokenrig env down [--dir DIR]\n"
	      "      Stops exactly what `env up` started in DIR.\n"
	      "  tokenrig bench [--json FILE] [--out DIR] [--count N] [--warmup N]\n"
	      "                 [--rounds R] [--threads K] [--latency 'C_Sign fixed 15us']\n"
	      "                 [--kinds softhsm,vcard,opensc] [--runs N]\n"
	      "      Signing latency per token kind and algorithm, with in-run\n"
	      "      baselines (raw OpenSSL, a direct C_Sign loop), percentiles,\n"
	      "      histograms and concurrency; --latency adds interposer latency.\n"
	      "      --runs N (default 3): N bench processes, each with fresh tokens\n"
	      "      and portal, merged into one file; --count is per run.\n"
	      "  tokenrig coverage [--catalog FILE] [--suites DIR] [--results FILE]\n"
	      "      Every catalog ID has a scenario and no scenario names an unknown\n"
	      "      ID; with --results, every ID passed on some token kind. Exit 1\n"
	      "      otherwise. The catalog defaults to " TR_DEFAULT_CATALOG ".\n"
	      "  tokenrig compare BASE.json NEW.json [--threshold 0.10] [--min-us 1]\n"
	      "                 [--alpha 0.01] [--raw]\n"
	      "      Per metric faster / slower / no change over the files' runs, relative\n"
	      "      to each round's in-run baseline (--raw: absolute times); \"inconclusive:\n"
	      "      the machine was busy\" when too many rounds were disturbed, \"undecided\"\n"
	      "      with one run a side. Warns when the files' bench parameters differ.\n"
	      "      Exit 1 when a metric got significantly slower by more than the\n"
	      "      threshold, 2 on bad input.\n"
	      "  tokenrig history add RESULTS.json [BENCH.json] [CERTIFICATION.json]\n"
	      "                 [--db FILE] [--label TEXT] [--revision SHA]\n"
	      "      Imports a run (with its bench file and certify verdict, told apart by\n"
	      "      their schema) into the SQLite history (default\n"
	      "      " TR_HISTORY_DEFAULT_DB "). The same results file twice is one run; bad\n"
	      "      input is refused (exit 2) and leaves the history unchanged.\n"
	      "  tokenrig report --html FILE [--db FILE] [--markdown FILE] [--last N]\n"
	      "                 [--catalog FILE]\n"
	      "      The nightly report of the history's last N runs (default 30): one\n"
	      "      self-contained HTML page (headline, changes since the previous run,\n"
	      "      flaky cases, the compatibility matrix, latency trends, the bench\n"
	      "      verdict) and a short Markdown summary for a CI job page.\n"
	      "  tokenrig --version\n", f);
}

/*
 * A whole number option in min..max (decimal, or 0x hex for seeds): one
 * line naming the option otherwise, never a silent 0.
 */
static int number_arg(const char *cmd, const char *opt, const char *text,
		      unsigned long long min, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 0);
	if (!*text || *end || errno || text[strspn(text, " \t")] == '-' || *out < min ||
	    *out > max) {
		fprintf(stderr, "tokenrig %s: --%s '%s': a whole number from %llu to %llu "
			"(tokenrig %s --help)\n", cmd, opt, text, min, max, cmd);
		return -1;
	}
	return 0;
}

/*
 * A decimal option above min (or at it, with min_ok) and below max: one
 * line naming the option otherwise (NaN, "abc", "0.1x" included).
 */
static int float_arg(const char *cmd, const char *opt, const char *text, double min, int min_ok,
		     double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(text, &end);
	if (!*text || *end || errno || !(*out < max) || !(*out > min || (min_ok && *out == min))) {
		fprintf(stderr, "tokenrig %s: --%s '%s': a number %s %g and below %g "
			"(tokenrig %s --help)\n", cmd, opt, text, min_ok ? "from" : "above", min, max,
			cmd);
		return -1;
	}
	return 0;
}

/* SIGINT and SIGTERM end a run the same way: the case in flight finishes. */
static volatile int run_signal;

static void on_run_signal(int sig)
{
	run_signal = sig;
}

static void catch_run_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_run_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	/* Installed even where the shell ignored SIGINT (a background job). */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
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
		{ "require-kinds", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_engine_opts opts = { .suites_dir = "suites", .out_dir = "out",
				.case_timeout_ms = 120000, .tty = isatty(STDOUT_FILENO),
				.stop = &run_signal, .interrupt_ends_run = 1 };
	tr_env_opts env_opts = { .seed = DEFAULT_SEED };
	char run_dir[PATH_MAX];
	char profiles[PATH_MAX];
	tr_run_totals totals;
	tr_env *env = NULL;
	uint64_t start = tr_clock_ns();
	unsigned long long v;
	size_t n_files;
	int c, error;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': opts.suites_dir = optarg; break;
		case 'o': opts.out_dir = optarg; break;
		case 'f': opts.filter = optarg; break;
		case 'S':
			if (number_arg("run", "seed", optarg, 0, UINT64_MAX, &v) < 0)
				return 2;
			env_opts.seed = v;
			break;
		case 't':
			if (number_arg("run", "case-timeout", optarg, 1, 3600000, &v) < 0)
				return 2;
			opts.case_timeout_ms = (unsigned)v;
			break;
		case 'N': env_opts.no_cards = 1; break;
		case 'R': opts.require_kinds = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (opts.require_kinds && tr_kind_list_check(opts.require_kinds, TR_KIND_RIG) < 0) {
		fprintf(stderr, "tokenrig run: --require-kinds: %s\n", tr_error_last());
		return 2;
	}
	/* Checked before the start-up, which takes seconds. */
	if (tr_engine_preflight(&opts, &n_files) < 0) {
		fprintf(stderr, "tokenrig run: %s\n", tr_error_last());
		return 2;
	}
	/*
	 * The suites' own token profiles, wherever the run starts from; a
	 * suites folder without them uses ./suites/tokens.conf.
	 */
	if (tr_fs_join(profiles, sizeof(profiles), opts.suites_dir, "tokens.conf") < 0) {
		fprintf(stderr, "tokenrig run: %s\n", tr_error_last());
		return 2;
	}
	if (access(profiles, R_OK) == 0)
		env_opts.profiles = profiles;
	snprintf(run_dir, sizeof(run_dir), "%s/run", opts.out_dir);
	env_opts.dir = run_dir;
	tr_report_set_invocation(full_argc, full_argv, env_opts.seed);
	/*
	 * Results of an earlier run stay until this one can run: the engine's
	 * first write replaces them (atomically) with this run's files.
	 */
	catch_run_signals();
	printf("tokenrig: bringing up tokens and portals in %s\n", run_dir);
	fflush(stdout);
	if ((error = tr_env_up(&env, &env_opts)) < 0) {
		fprintf(stderr, "tokenrig: %s\n", tr_error_last());
		return 1;
	}
	printf("tokenrig: ready in %.2f s%s%s\n", (double)(tr_clock_ns() - start) / 1e9,
	       *tr_env_cards_missing(env) ? "; no virtual cards: " : "", tr_env_cards_missing(env));
	fflush(stdout);
	if (run_signal) {
		/* A signal during the start-up: nothing ran, earlier results stay. */
		tr_env_free(env);
		fprintf(stderr, "tokenrig: interrupted by signal %d during the start-up\n", run_signal);
		return 128 + run_signal;
	}
	error = tr_engine_run(env, &opts, &totals);
	/* The env comes down by the PIDs it recorded, interrupted or not. */
	tr_env_free(env);
	if (error < 0) {
		fprintf(stderr, "tokenrig: %s\n", tr_error_last());
		return totals.interrupted ? 128 + totals.interrupted : 1;
	}
	if (totals.interrupted) {
		printf("\ntokenrig: interrupted by %s after %d cases; the environment is down, "
		       "%s/results.json and junit.xml are marked interrupted\n",
		       totals.interrupted == SIGINT ? "SIGINT" : "SIGTERM",
		       totals.passed + totals.failed + totals.skipped + totals.errors, opts.out_dir);
		return 128 + totals.interrupted;
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
	if (totals.kinds_missing)
		printf("required token kinds: %d could not run at all (--require-kinds)\n",
		       totals.kinds_missing);
	return totals.failed + totals.errors || totals.kinds_missing ? 1 : 0;
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
	unsigned long long v;
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
		case 'S':
			if (number_arg("env", "seed", optarg, 0, UINT64_MAX, &v) < 0)
				return 2;
			opts.seed = v;
			break;
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

/*
 * `bench --runs N`: N bench processes one after the other, each with its own
 * tokens, portal and process layout (what one run shares among its rounds),
 * merged into one file. A child's table goes to DIR/run-K.log.
 */
static int bench_runs(const tr_bench_opts *opts, unsigned runs, const char *out)
{
	char dir[PATH_MAX / 2], paths[64][PATH_MAX], merged[PATH_MAX];
	const char *list[64];
	int error = 0;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/bench-runs", out) >= sizeof(dir)) {
		fprintf(stderr, "tokenrig bench: --out too long\n");
		return 2;
	}
	if (tr_fs_mkdirs(dir, 0755) < 0) {
		fprintf(stderr, "tokenrig bench: %s\n", tr_error_last());
		return 1;
	}
	for (unsigned k = 0; k < runs; k++) {
		char count[16], warmup[16], rounds[16], threads[16], sub[PATH_MAX];
		char log[PATH_MAX];
		const char *av[24];
		int n = 0, status = 0;
		pid_t pid;

		snprintf(count, sizeof(count), "%u", opts->count);
		snprintf(warmup, sizeof(warmup), "%u", opts->warmup);
		snprintf(rounds, sizeof(rounds), "%u", opts->rounds);
		snprintf(threads, sizeof(threads), "%u", opts->max_threads);
		snprintf(paths[k], sizeof(paths[k]), "%s/run-%u.json", dir, k + 1);
		snprintf(sub, sizeof(sub), "%s/run-%u", dir, k + 1);
		snprintf(log, sizeof(log), "%s/run-%u.log", dir, k + 1);
		av[n++] = "tokenrig";
		av[n++] = "bench";
		av[n++] = "--runs"; av[n++] = "1";
		av[n++] = "--json"; av[n++] = paths[k];
		av[n++] = "--out"; av[n++] = sub;
		av[n++] = "--count"; av[n++] = count;
		av[n++] = "--warmup"; av[n++] = warmup;
		av[n++] = "--rounds"; av[n++] = rounds;
		av[n++] = "--threads"; av[n++] = threads;
		if (opts->latency) {
			av[n++] = "--latency";
			av[n++] = opts->latency;
		}
		if (opts->kinds) {
			av[n++] = "--kinds";
			av[n++] = opts->kinds;
		}
		av[n] = NULL;
		unlink(paths[k]);
		fflush(NULL);
		if ((pid = fork()) < 0) {
			fprintf(stderr, "tokenrig bench: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid == 0) {
			int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execv("/proc/self/exe", (char *const *)av);
			_exit(127);
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "tokenrig bench: run %u of %u failed (see %s)\n", k + 1, runs,
				log);
			return 1;
		}
		printf("bench run %u of %u done (%s)\n", k + 1, runs, log);
		list[k] = paths[k];
	}
	snprintf(merged, sizeof(merged), "%s", opts->json_path ? opts->json_path : "");
	if (!opts->json_path)
		snprintf(merged, sizeof(merged), "%s/bench.json", dir);
	if ((error = tr_bench_merge(list, runs, merged, stdout)) < 0) {
		fprintf(stderr, "tokenrig bench: %s\n", tr_error_last());
		return 1;
	}
	return 0;
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
		{ "runs", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned runs = 3;
	tr_bench_opts opts = { .count = 2000, .warmup = 200, .rounds = 10,
			       .max_threads = 2 * (unsigned)sysconf(_SC_NPROCESSORS_ONLN) };
	tr_env_opts env_opts = { .seed = DEFAULT_SEED };
	const char *out = "out", *latency = NULL;
	char dir[PATH_MAX];
	tr_token_ctl *ctl = NULL;
	tr_env *env;
	unsigned long long v;
	int c, error;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': opts.json_path = optarg; break;
		case 'o': out = optarg; break;
		case 'n':
			if (number_arg("bench", "count", optarg, 1, 100000000, &v) < 0)
				return 2;
			opts.count = (unsigned)v;
			break;
		case 'w':
			if (number_arg("bench", "warmup", optarg, 0, 100000000, &v) < 0)
				return 2;
			opts.warmup = (unsigned)v;
			break;
		case 'r':
			if (number_arg("bench", "rounds", optarg, 1, 100000, &v) < 0)
				return 2;
			opts.rounds = (unsigned)v;
			break;
		case 'k':
			if (number_arg("bench", "threads", optarg, 1, 64, &v) < 0)
				return 2;
			opts.max_threads = (unsigned)v;
			break;
		case 'l': latency = optarg; break;
		case 'K': opts.kinds = optarg; break;
		case 'N':
			if (number_arg("bench", "runs", optarg, 1, 64, &v) < 0)
				return 2;
			runs = (unsigned)v;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || opts.count == 0 || opts.rounds == 0 || opts.count < opts.rounds ||
	    opts.max_threads == 0 || opts.max_threads > 64 || runs == 0 || runs > 64) {
		fprintf(stderr, "tokenrig bench: count >= rounds >= 1, 1..64 threads, 1..64 runs\n");
		return 2;
	}
	if (tr_bench_kinds_check(opts.kinds) < 0) {
		fprintf(stderr, "tokenrig bench: %s\n", tr_error_last());
		return 2;
	}
	opts.latency = latency;
	if (runs > 1)
		return bench_runs(&opts, runs, out);
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
		{ "raw", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_compare_opts opts = { .threshold = 0.10, .alpha = 0.01, .min_us = 1.0, .normalize = 1 };
	tr_compare_summary sum;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (float_arg("compare", "threshold", optarg, 0, 0, 1e6, &opts.threshold) < 0)
				return 2;
			break;
		case 'm':
			if (float_arg("compare", "min-us", optarg, 0, 1, 1e12, &opts.min_us) < 0)
				return 2;
			break;
		case 'a':
			if (float_arg("compare", "alpha", optarg, 0, 0, 1, &opts.alpha) < 0)
				return 2;
			break;
		case 'n': opts.normalize = 1; break;
		case 'R': opts.normalize = 0; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2 || opts.threshold <= 0 || opts.alpha <= 0 || opts.alpha >= 1) {
		usage(stderr);
		return 2;
	}
	if (tr_compare_files(argv[optind], argv[optind + 1], &opts, stdout, &sum) < 0) {
		fprintf(stderr, "tokenrig compare: %s\n", tr_error_last());
		return 2;
	}
	/* Inconclusive and undecided metrics are said, never an exit 1. */
	return sum.slower ? 1 : 0;
}

static int cmd_history(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "label", required_argument, NULL, 'l' },
		{ "revision", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_history_add_opts opts = { 0 };
	const char *db = TR_HISTORY_DEFAULT_DB;
	tr_history *h = NULL;
	long long id = 0;
	int c, added = 0;
	char dir[PATH_MAX], *slash;

	if (argc < 2 || strcmp(argv[1], "add")) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 'l': opts.label = optarg; break;
		case 'r': opts.revision = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind < 1 || argc - optind > 3) {
		usage(stderr);
		return 2;
	}
	/* The files beside the results are told apart by their schema. */
	for (int i = optind + 1; i < argc; i++) {
		json_t *doc = json_load_file(argv[i], 0, NULL);
		const char *schema = json_string_value(json_object_get(doc, "schema"));
		const char **slot = !schema ? NULL :
				    !strcmp(schema, "tokenrig-bench/1") ? &opts.bench_path :
				    !strcmp(schema, "tokenrig-certification/1") ?
					&opts.certification_path : NULL;

		json_decref(doc);
		if (!slot || *slot) {
			fprintf(stderr, "tokenrig history add: %s: %s\n", argv[i],
				slot ? "a second file of the same kind" :
				"not a bench (tokenrig-bench/1) or certification "
				"(tokenrig-certification/1) file, or not complete JSON");
			return 2;
		}
		*slot = argv[i];
	}
	snprintf(dir, sizeof(dir), "%s", db);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if (*dir && tr_fs_mkdirs(dir, 0755) < 0) {
			fprintf(stderr, "tokenrig history: %s\n", tr_error_last());
			return 1;
		}
	}
	if (tr_history_open(&h, db) < 0) {
		fprintf(stderr, "tokenrig history: %s\n", tr_error_last());
		return 1;
	}
	if (tr_history_add(h, argv[optind], &opts, &id, &added) < 0) {
		fprintf(stderr, "tokenrig history add: %s\n", tr_error_last());
		tr_history_free(h);
		return 2;
	}
	tr_history_free(h);
	printf("%s: run %lld %s\n", db, id, added ? "added" : "was already there (not added again)");
	return 0;
}

static int cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "html", required_argument, NULL, 'H' },
		{ "markdown", required_argument, NULL, 'm' },
		{ "last", required_argument, NULL, 'n' },
		{ "catalog", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_nightly_opts opts = { .last = 30,
				 .catalog_path = getenv("TOKENRIG_CATALOG") ? getenv("TOKENRIG_CATALOG") :
						 TR_DEFAULT_CATALOG };
	const char *db = TR_HISTORY_DEFAULT_DB;
	tr_history *h = NULL;
	char *end;
	int c, error;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 'H': opts.html_path = optarg; break;
		case 'm': opts.markdown_path = optarg; break;
		case 'n':
			opts.last = (size_t)strtoul(optarg, &end, 10);
			if (*end || opts.last == 0 || opts.last > 10000) {
				fprintf(stderr, "tokenrig report: --last takes 1..10000 runs\n");
				return 2;
			}
			break;
		case 'c': opts.catalog_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !opts.html_path) {
		usage(stderr);
		return 2;
	}
	/* Reading only: a missing history is an error, not a new empty file. */
	if (access(db, R_OK) < 0) {
		fprintf(stderr, "tokenrig report: %s: no such history (tokenrig history add first)\n",
			db);
		return 2;
	}
	if (tr_history_open(&h, db) < 0) {
		fprintf(stderr, "tokenrig report: %s\n", tr_error_last());
		return 1;
	}
	error = tr_nightly_write(h, &opts);
	tr_history_free(h);
	if (error < 0) {
		fprintf(stderr, "tokenrig report: %s\n", tr_error_last());
		return error == TR_ENOTFOUND ? 2 : 1;
	}
	printf("report: %s%s%s\n", opts.html_path, opts.markdown_path ? " " : "",
	       opts.markdown_path ? opts.markdown_path : "");
	return 0;
}

int main(int argc, char **argv)
{
	full_argc = argc;
	full_argv = argv;
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
	if (!strcmp(argv[1], "history"))
		return cmd_history(argc - 1, argv + 1);
	if (!strcmp(argv[1], "report"))
		return cmd_report(argc - 1, argv + 1);
	if (!strcmp(argv[1], "certify"))
		return tr_certify_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version")) {
		printf("tokenrig %s (revision %s)\n", tr_version(), tr_revision());
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "tokenrig: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
