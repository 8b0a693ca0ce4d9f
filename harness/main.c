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
#include "harness/merge.h"
#include "harness/nightly.h"
#include "harness/report.h"
#include "harness/token_ctl.h"
#include "harness/version.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SEED 20260921u

/* The whole command line, for what results.json records of the run. */
static int full_argc;
static char **full_argv;

/*
 * The commands: a row each, {name, usage, function}. `tokenrig help NAME`,
 * `tokenrig NAME --help` / `-h` print the row's usage (its first line is
 * the synopsis `tokenrig help` lists); a new command or option is a row or
 * a line here. NULL usage: the command prints its own (certify).
 */
static int cmd_run(int argc, char **argv);
static int cmd_env(int argc, char **argv);
static int cmd_bench(int argc, char **argv);
static int cmd_compare(int argc, char **argv);
static int cmd_coverage(int argc, char **argv);
static int cmd_history(int argc, char **argv);
static int cmd_report(int argc, char **argv);
static int cmd_merge(int argc, char **argv);
static int cmd_help(int argc, char **argv);

typedef struct command {
	const char *name;
	const char *synopsis; /* one line, for `tokenrig help` */
	const char *usage;    /* NULL: the command answers --help itself */
	int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
	{ "run", "run every scenario on every token kind",
	  "usage: tokenrig run [--suites DIR] [--out DIR] [--filter TEXT] [--seed N]\n"
	  "                    [--case-timeout MS] [--no-cards] [--require-kinds K1,K2]\n"
	  "                    [--fresh] [--jobs N] [--shard I/N|auto]\n"
	  "                    [--shard-durations RESULTS.json]\n"
	  "  Brings up tokens and portals in OUT/run, runs every scenario on\n"
	  "  every token kind, writes OUT/results.json and OUT/junit.xml.\n"
	  "  --jobs N (default: the online CPUs): cases run in N worker processes,\n"
	  "  each with its own tokens, portals and cards (OUT/run/wN); a case past\n"
	  "  --case-timeout or a crashed worker is an error of that case, and the\n"
	  "  run goes on with a fresh worker.\n"
	  "  --shard I/N runs the I-th of N slices of the case list (balanced by\n"
	  "  --shard-durations, an earlier results.json); `tokenrig merge` joins them.\n"
	  "  The fixtures come from the fixture cache once made (see env --help);\n"
	  "  --fresh makes them anew.\n"
	  "  Exit 0 only when every case passed (and every kind of\n"
	  "  --require-kinds, e.g. softhsm,vcard,opensc, ran some case).\n"
	  "  Exit 1 otherwise (a hung case is an error), 2 on bad input; SIGINT\n"
	  "  or SIGTERM: the case in flight finishes, the files are marked\n"
	  "  interrupted, exit 130 / 143.\n",
	  cmd_run },
	{ "certify", "certify a batch of tokens: a vendor's PKCS#11 module, or cards in PC/SC readers", NULL,
	  tr_certify_main },
	{ "env", "bring the emulated tokens and portals up, or down, for use by hand",
	  "usage: tokenrig env up [--dir DIR] [--seed N] [--no-cards] [--fresh]\n"
	  "       tokenrig env down [--dir DIR]\n"
	  "  up: starts the emulated tokens and portals and leaves them running;\n"
	  "  `source DIR/env.sh` (default out/env) to use them by hand.\n"
	  "  down: stops exactly what `env up` started in DIR.\n"
	  "  The fixtures (PKI, SoftHSM tokens, card images) of a seed are copied\n"
	  "  from the fixture cache ($TOKENRIG_CACHE, else $XDG_CACHE_HOME/tokenrig,\n"
	  "  else ~/.cache/tokenrig) once made; --fresh makes them anew.\n",
	  cmd_env },
	{ "bench", "signing latency per token kind and algorithm",
	  "usage: tokenrig bench [--json FILE] [--out DIR] [--count N] [--warmup N]\n"
	  "                      [--rounds R] [--threads K] [--latency 'C_Sign fixed 15us']\n"
	  "                      [--kinds softhsm,vcard,opensc] [--runs N]\n"
	  "  Signing latency per token kind and algorithm, with in-run\n"
	  "  baselines (raw OpenSSL, a direct C_Sign loop), percentiles,\n"
	  "  histograms and concurrency; --latency adds interposer latency.\n"
	  "  --runs N (default 3): N bench processes, each with fresh tokens\n"
	  "  and portal, merged into one file; --count is per run.\n",
	  cmd_bench },
	{ "coverage", "check the scenarios (and a run) against the catalog",
	  "usage: tokenrig coverage [--catalog FILE] [--suites DIR] [--results FILE]\n"
	  "  Every catalog ID has a scenario and no scenario names an unknown\n"
	  "  ID; with --results, every ID passed on some token kind. Exit 1\n"
	  "  otherwise. The catalog defaults to $TOKENRIG_CATALOG, else\n"
	  "  " TR_DEFAULT_CATALOG ".\n",
	  cmd_coverage },
	{ "compare", "compare two bench files: faster, slower or no change",
	  "usage: tokenrig compare BASE.json NEW.json [--threshold 0.10] [--min-us 1]\n"
	  "                        [--alpha 0.01] [--raw]\n"
	  "  Per metric faster / slower / no change over the files' runs, relative\n"
	  "  to each round's in-run baseline (--raw: absolute times); \"inconclusive:\n"
	  "  the machine was busy\" when too many rounds were disturbed, \"undecided\"\n"
	  "  with one run a side. Warns when the files' bench parameters differ.\n"
	  "  Exit 1 when a metric got significantly slower by more than the\n"
	  "  threshold, 2 on bad input.\n",
	  cmd_compare },
	{ "history", "import a run into the SQLite history",
	  "usage: tokenrig history add RESULTS.json [BENCH.json] [CERTIFICATION.json]\n"
	  "                            [--db FILE] [--label TEXT] [--revision SHA]\n"
	  "  Imports a run (with its bench file and certify verdict, told apart by\n"
	  "  their schema) into the SQLite history (default\n"
	  "  " TR_HISTORY_DEFAULT_DB "). The same results file twice is one run; bad\n"
	  "  input is refused (exit 2) and leaves the history unchanged.\n",
	  cmd_history },
	{ "report", "the nightly report of the history's last runs",
	  "usage: tokenrig report --html FILE [--db FILE] [--markdown FILE] [--last N]\n"
	  "                       [--catalog FILE]\n"
	  "  The nightly report of the history's last N runs (default 30): one\n"
	  "  self-contained HTML page (headline, changes since the previous run,\n"
	  "  flaky cases, the compatibility matrix, latency trends, the bench\n"
	  "  verdict) and a short Markdown summary for a CI job page.\n",
	  cmd_report },
	{ "merge", "merge the results of a run's shards into one run's",
	  "usage: tokenrig merge DIR... --out DIR\n"
	  "  Each DIR holds the results.json and junit.xml of one shard of a run\n"
	  "  (tokenrig run --shard I/N); writes OUT/results.json and OUT/junit.xml\n"
	  "  of the whole run, summary, coverage and latency computed again\n"
	  "  (percentiles of a column split across shards are approximate).\n"
	  "  Refused, exit 2: shards of different runs (suites, case list, seed,\n"
	  "  tokenrig version or revision, number of shards), a shard given\n"
	  "  twice, a case in two shards. Exit 1 when a shard is missing or did\n"
	  "  not finish (the files are written with what was given, and the\n"
	  "  missing shards named) or a case failed; 0 otherwise.\n",
	  cmd_merge },
	{ "help", "a command's options and what it does",
	  "usage: tokenrig help [COMMAND]\n"
	  "  Without COMMAND, the list of commands; with it, that command's usage\n"
	  "  (the same as `tokenrig COMMAND --help`).\n",
	  cmd_help },
};

static const command *command_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* `tokenrig help`: every command's synopsis. */
static void usage_all(FILE *f)
{
	fputs("usage: tokenrig COMMAND [options]\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].synopsis);
	fputs("\n`tokenrig help COMMAND` or `tokenrig COMMAND --help`: its options.\n"
	      "`tokenrig --version`: the version and the libraries found.\n", f);
}

/* -h, --help: the command's own usage, exit 0. */
static int help(const char *name)
{
	const command *cmd = command_find(name);
	char *av[] = { (char *)name, "--help", NULL };

	if (cmd && !cmd->usage) {
		optind = 1;
		return cmd->run(2, av);
	}
	fputs(cmd ? cmd->usage : "", stdout);
	return 0;
}

/*
 * A bad option or argument: one line naming it and where help is, exit 2
 * (getopt's own message is off: opterr = 0).
 */
static int bad_usage(const char *name, const char *what, const char *arg)
{
	fprintf(stderr, "tokenrig %s: %s%s%s%s (tokenrig %s --help)\n", name, what,
		arg ? " '" : "", arg ? arg : "", arg ? "'" : "", name);
	return 2;
}

/* After getopt_long returned ':' or '?' (optstring ":h"). */
static int bad_option(const char *name, int c, char **argv)
{
	char shortopt[3] = { '-', (char)optopt, '\0' };
	const char *last = optind > 0 ? argv[optind - 1] : "";
	const char *arg = !strncmp(last, "--", 2) || optopt <= ' ' || optopt > '~' ? last : shortopt;

	return bad_usage(name, c == ':' ? "option needs a value:" : "unknown option", arg);
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

/*
 * --out before the start-up: the folder, or the nearest one above it that
 * exists (nothing is created here), takes a new file. One line otherwise.
 */
/* A folder too deep for the rig's own tokens (tr_env_dir_check), said in one line. */
static int out_too_deep(const char *cmd, const char *opt, const char *out)
{
	char what[256];

	if (tr_env_dir_check(out) == 0)
		return 0;
	snprintf(what, sizeof(what), "%s: %s:", opt, tr_error_last());
	return bad_usage(cmd, what, out);
}

static int out_writable(const char *cmd, const char *out)
{
	char dir[PATH_MAX], probe[PATH_MAX + 32], *slash;
	struct stat st;
	int fd;

	if (out_too_deep(cmd, "--out", *out ? out : "."))
		return 2;
	if ((size_t)snprintf(dir, sizeof(dir), "%s", *out ? out : ".") >= sizeof(dir))
		return bad_usage(cmd, "--out: path too long:", out);
	while (stat(dir, &st) != 0 && (errno == ENOENT || errno == ENOTDIR) &&
	       strcmp(dir, ".") && strcmp(dir, "/")) {
		if (!(slash = strrchr(dir, '/')))
			snprintf(dir, sizeof(dir), ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "tokenrig %s: --out '%s': %s is not a folder\n", cmd, out, dir);
		return 2;
	}
	snprintf(probe, sizeof(probe), "%s/.tokenrig-probe-XXXXXX", dir);
	if ((fd = mkstemp(probe)) < 0) {
		fprintf(stderr, "tokenrig %s: --out '%s': cannot write in %s: %s\n", cmd, out, dir,
			strerror(errno));
		return 2;
	}
	close(fd);
	unlink(probe);
	return 0;
}

/*
 * A live line on a TTY while something takes seconds (env up, a bench run):
 * the seconds so far and what is known of the work, redrawn 4 times a
 * second by a thread until live_stop(). Off a TTY it draws nothing: the
 * caller prints plain lines.
 */
typedef struct live {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int running, done;
	uint64_t start;
	const char *label;
	const char *dir; /* an env folder: what it holds so far (env.h's layout) */
	const char *log; /* a log file: its last line */
} live;

/* Entries of dir whose name ends with suffix ("" for any). */
static size_t count_entries(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0, sl = strlen(suffix);

	while (d && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		if (e->d_name[0] != '.' && len >= sl && !strcmp(e->d_name + len - sl, suffix))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* The last non-empty line of a file, at most len - 1 bytes of it. */
static void last_line(const char *path, char *out, size_t len)
{
	char buf[1024];
	FILE *f = fopen(path, "r");
	long size;
	size_t n = 0;
	char *end, *start;

	out[0] = '\0';
	if (!f)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0) {
		fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
		n = fread(buf, 1, sizeof(buf) - 1, f);
	}
	fclose(f);
	buf[n] = '\0';
	for (end = buf + n; end > buf && (end[-1] == '\n' || end[-1] == '\r'); end--)
		;
	*end = '\0';
	start = strrchr(buf, '\n');
	start = start ? start + 1 : buf;
	if (strrchr(start, '\r'))
		start = strrchr(start, '\r') + 1;
	/* Cut to the live line's width on purpose. */
	n = strlen(start) < len ? strlen(start) : len - 1;
	memcpy(out, start, n);
	out[n] = '\0';
}

static void live_draw(live *l)
{
	char what[160] = "", path[PATH_MAX];
	double s = (double)(tr_clock_ns() - l->start) / 1e9;

	if (l->dir) {
		size_t tokens = 0, cards = 0;

		if (tr_fs_join(path, sizeof(path), l->dir, "softhsm/tokens") == 0)
			tokens = count_entries(path, "");
		if (tr_fs_join(path, sizeof(path), l->dir, "cards/img") == 0)
			cards = count_entries(path, ".img");
		snprintf(what, sizeof(what), "%zu SoftHSM tokens, %zu card images", tokens, cards);
	} else if (l->log) {
		last_line(l->log, what, 70);
	}
	printf("\r\033[K%s: %.1f s%s%s", l->label, s, *what ? "  " : "", what);
	fflush(stdout);
}

static void *live_main(void *arg)
{
	live *l = arg;

	pthread_mutex_lock(&l->lock);
	while (!l->done) {
		struct timespec until;

		live_draw(l);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&l->cond, &l->lock, &until);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

static void live_start(live *l, const char *label, const char *dir, const char *log)
{
	memset(l, 0, sizeof(*l));
	l->label = label;
	l->dir = dir;
	l->log = log;
	l->start = tr_clock_ns();
	if (!isatty(STDOUT_FILENO))
		return;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	/* Without the thread there is no live line, nothing else is lost. */
	l->running = pthread_create(&l->thread, NULL, live_main, l) == 0;
	if (!l->running) {
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
	}
}

/* Ends the live line (cleared) and returns its seconds. */
static double live_stop(live *l)
{
	if (l->running) {
		pthread_mutex_lock(&l->lock);
		l->done = 1;
		pthread_cond_signal(&l->cond);
		pthread_mutex_unlock(&l->lock);
		pthread_join(l->thread, NULL);
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
		printf("\r\033[K");
		fflush(stdout);
		l->running = 0;
	}
	return (double)(tr_clock_ns() - l->start) / 1e9;
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
		{ "fresh", no_argument, NULL, 'F' },
		{ "require-kinds", required_argument, NULL, 'R' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "shard", required_argument, NULL, 'D' },
		{ "shard-durations", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	tr_engine_opts opts = { .suites_dir = "suites", .out_dir = "out",
				.case_timeout_ms = 120000, .tty = isatty(STDOUT_FILENO),
				.stop = &run_signal, .interrupt_ends_run = 1,
				.jobs = cpus > 0 ? (unsigned)(cpus < 64 ? cpus : 64) : 1 };
	tr_env_opts env_opts = { .seed = DEFAULT_SEED, .provision_only = 1 };
	char run_dir[PATH_MAX];
	char profiles[PATH_MAX];
	tr_run_totals totals;
	tr_env *env = NULL;
	uint64_t start = tr_clock_ns();
	unsigned long long v;
	size_t n_files;
	int c, error;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
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
		case 'F': env_opts.fresh = 1; break;
		case 'R': opts.require_kinds = optarg; break;
		case 'j':
			if (number_arg("run", "jobs", optarg, 1, 64, &v) < 0)
				return 2;
			opts.jobs = (unsigned)v;
			break;
		case 'D':
			if (tr_shard_parse(optarg, &opts.shard) < 0) {
				/* The message names --shard and the value (tr_shard_parse). */
				fprintf(stderr, "tokenrig run: %s (tokenrig run --help)\n",
					tr_error_last());
				return 2;
			}
			break;
		case 'U': opts.shard_durations = optarg; break;
		case 'h': return help("run");
		default: return bad_option("run", c, argv);
		}
	}
	if (optind != argc)
		return bad_usage("run", "unexpected argument", argv[optind]);
	if (opts.require_kinds && tr_kind_list_check(opts.require_kinds, TR_KIND_RIG) < 0) {
		fprintf(stderr, "tokenrig run: --require-kinds: %s\n", tr_error_last());
		return 2;
	}
	/* Checked before the start-up, which takes seconds. */
	if (tr_engine_preflight(&opts, &n_files) < 0) {
		fprintf(stderr, "tokenrig run: %s\n", tr_error_last());
		return 2;
	}
	if (out_writable("run", opts.out_dir) != 0)
		return 2;
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
	if (tr_fs_join(run_dir, sizeof(run_dir), opts.out_dir, "run") < 0) {
		fprintf(stderr, "tokenrig run: --out: %s\n", tr_error_last());
		return 2;
	}
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
	printf("tokenrig: start-up: %s\n", tr_env_startup(env));
	fflush(stdout);
	if (run_signal) {
		/* A signal during the start-up: nothing ran, earlier results stay. */
		tr_env_free(env);
		fprintf(stderr, "tokenrig: interrupted by signal %d during the start-up\n", run_signal);
		return 128 + run_signal;
	}
	opts.startup_s = (double)(tr_clock_ns() - start) / 1e9;
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
		{ "fresh", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	tr_env_opts opts = { .dir = "out/env", .detach = 1, .seed = DEFAULT_SEED };
	const char *verb;
	tr_env *env;
	unsigned long long v;
	int c;

	if (argc < 2)
		return bad_usage("env", "up or down?", NULL);
	verb = argv[1];
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h"))
		return help("env");
	if (strcmp(verb, "up") && strcmp(verb, "down"))
		return bad_usage("env", "up or down, not", verb);
	optind = 2;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': opts.dir = optarg; break;
		case 'S':
			if (number_arg("env", "seed", optarg, 0, UINT64_MAX, &v) < 0)
				return 2;
			opts.seed = v;
			break;
		case 'N': opts.no_cards = 1; break;
		case 'F': opts.fresh = 1; break;
		case 'h': return help("env");
		default: return bad_option("env", c, argv);
		}
	}
	if (!strcmp(verb, "up")) {
		char self[PATH_MAX];
		ssize_t n;
		double secs;
		live l;
		int error;

		if (out_too_deep("env", "--dir", opts.dir))
			return 2;
		printf("tokenrig env up: bringing up tokens and portals in %s\n", opts.dir);
		fflush(stdout);
		live_start(&l, "env up", opts.dir, NULL);
		error = tr_env_up(&env, &opts);
		secs = live_stop(&l);
		if (error < 0) {
			fprintf(stderr, "tokenrig env up: %s\n", tr_error_last());
			return 1;
		}
		/* The hint works as printed, from any folder and any POSIX shell. */
		if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
			n = (ssize_t)snprintf(self, sizeof(self), "tokenrig");
		self[n] = '\0';
		printf("environment up in %s (%.1f s: %s)\n"
		       "  . %s/env.sh\n"
		       "  pkcs11-tool --module \"$TOKENRIG_P11_MODULE\" --token-label "
		       "\"$TOKENRIG_TOKEN_LABEL\" --login --pin \"$TOKENRIG_USER_PIN\" -O\n"
		       "  %s env down --dir %s\n",
		       tr_env_dir(env), secs, tr_env_startup(env), tr_env_dir(env), self,
		       tr_env_dir(env));
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
	return bad_usage("env", "up or down, not", verb);
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
		char log[PATH_MAX], label[64];
		live l;
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
		/* On a TTY a live line shows the run's own last line of output. */
		snprintf(label, sizeof(label), "bench run %u of %u", k + 1, runs);
		if (!isatty(STDOUT_FILENO))
			printf("%s started (%s)\n", label, log);
		fflush(stdout);
		live_start(&l, label, NULL, log);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		live_stop(&l);
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
	live l;
	int c, error;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
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
		case 'h': return help("bench");
		default: return bad_option("bench", c, argv);
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
	if (out_too_deep("bench", "--out", out))
		return 2;
	if (runs > 1)
		return bench_runs(&opts, runs, out);
	/* SoftHSM alone: no card is provisioned or shown. */
	env_opts.no_cards = !tr_bench_kinds_cards(opts.kinds);
	snprintf(dir, sizeof(dir), "%s/bench-run", out);
	env_opts.dir = dir;
	printf("tokenrig bench: bringing up tokens and portals in %s\n", dir);
	fflush(stdout);
	live_start(&l, "bench: env up", dir, NULL);
	error = tr_env_up(&env, &env_opts);
	live_stop(&l);
	if (error < 0) {
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

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': catalog = optarg; break;
		case 's': suites = optarg; break;
		case 'r': results = optarg; break;
		case 'h': return help("coverage");
		default: return bad_option("coverage", c, argv);
		}
	}
	if (optind != argc)
		return bad_usage("coverage", "unexpected argument", argv[optind]);
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

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
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
		case 'h': return help("compare");
		default: return bad_option("compare", c, argv);
		}
	}
	if (argc - optind != 2)
		return bad_usage("compare", "needs two bench files, BASE.json NEW.json", NULL);
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

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return help("history");
	if (argc < 2)
		return bad_usage("history", "what to do? (add)", NULL);
	if (strcmp(argv[1], "add"))
		return bad_usage("history", "the verb is add, not", argv[1]);
	optind = 2;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 'l': opts.label = optarg; break;
		case 'r': opts.revision = optarg; break;
		case 'h': return help("history");
		default: return bad_option("history", c, argv);
		}
	}
	if (argc - optind < 1 || argc - optind > 3)
		return bad_usage("history", "add takes RESULTS.json and at most a bench and a "
				 "certification file", NULL);
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

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
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
		case 'h': return help("report");
		default: return bad_option("report", c, argv);
		}
	}
	if (optind != argc)
		return bad_usage("report", "unexpected argument", argv[optind]);
	if (!opts.html_path)
		return bad_usage("report", "--html FILE is needed", NULL);
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

/* `tokenrig merge DIR... --out DIR` (harness/merge.h). */
static int cmd_merge(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *out = NULL;
	tr_merge_summary sum;
	int c, error;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'h': return help("merge");
		default: return bad_option("merge", c, argv);
		}
	}
	if (optind >= argc)
		return bad_usage("merge", "no shard folder given", NULL);
	if (!out)
		return bad_usage("merge", "--out DIR is needed", NULL);
	if ((error = out_writable("merge", out)) != 0)
		return error;
	if ((error = tr_merge_dirs((const char *const *)argv + optind, (size_t)(argc - optind), out,
				   &sum)) < 0) {
		fprintf(stderr, "tokenrig merge: %s\n", tr_error_last());
		return error == TR_EINVAL ? 2 : 1;
	}
	printf("merge: %u of %u shards, %zu cases: %ld passed, %ld failed, %ld skipped, "
	       "%ld errors -> %s/results.json, %s/junit.xml\n", sum.given, sum.total, sum.cases,
	       sum.passed, sum.failed, sum.skipped, sum.errors, out, out);
	if (*sum.incomplete)
		fprintf(stderr, "tokenrig merge: INCOMPLETE: %s\n", sum.incomplete);
	return *sum.incomplete || sum.failed || sum.errors ? 1 : 0;
}

/* `tokenrig help [COMMAND]`. */
static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		usage_all(stdout);
		return 0;
	}
	if (argc > 2)
		return bad_usage("help", "takes one command, not", argv[2]);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return help("help");
	if (!command_find(argv[1]))
		return bad_usage("help", "no such command", argv[1]);
	return help(argv[1]);
}

int main(int argc, char **argv)
{
	const command *cmd;

	full_argc = argc;
	full_argv = argv;
	/* Bad options are said in one line by each command (bad_option). */
	opterr = 0;
	if (argc < 2) {
		usage_all(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		tr_version_print(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(1, argv + 1);
	/* A worker process of `tokenrig run --jobs` (harness/worker.h); not for people. */
	if (!strcmp(argv[1], "__worker"))
		return tr_engine_worker_main(argc - 1, argv + 1);
	if (!(cmd = command_find(argv[1]))) {
		fprintf(stderr, "tokenrig: unknown command '%s' (tokenrig help)\n", argv[1]);
		return 2;
	}
	optind = 1;
	return cmd->run(argc - 1, argv + 1);
}
