#!/bin/sh
# The CI templates of ci/examples/ are what a team copies: each is valid
# YAML, has what README "Shards and merge" says (GitHub Actions: a matrix
# of 4 shards setting TOKENRIG_SHARD_INDEX/TOTAL, a merge job downloading
# the shards' artifacts, a nightly schedule running ci/nightly; GitLab:
# parallel: 4, a merge stage with a JUnit report), and calls only what
# exists: every script path is in the tree and executable, every
# `tokenrig SUBCOMMAND --option` is a command whose --help names the option.
# The checker is shown to catch a broken template first.
# timeout: 120
set -eu
tr=$BUILD/tokenrig
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
python3 -c 'import yaml' 2> /dev/null ||
	fail "python3-yaml is missing (ci/install-deps installs it)"

cat > "$tmp/check.py" <<'EOF'
import os, re, shlex, subprocess, sys
import yaml

tr, build = sys.argv[1], sys.argv[2]
files = sys.argv[3:]
problems = []
helps = {}


def help_of(sub):
    if sub not in helps:
        p = subprocess.run([tr, sub, "--help"], capture_output=True, text=True)
        helps[sub] = p.stdout if p.returncode == 0 else None
    return helps[sub]


commands = subprocess.run([tr, "help"], capture_output=True, text=True, check=True).stdout
known = set(re.findall(r"^  ([a-z]+) ", commands, re.M))


def scripts(node):
    """Every shell command string of a workflow: GitHub's run:, GitLab's *script:."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "run" and isinstance(v, str):
                yield v
            elif k in ("script", "before_script", "after_script"):
                for s in v if isinstance(v, list) else [v]:
                    if isinstance(s, str):
                        yield s
            else:
                yield from scripts(v)
    elif isinstance(node, list):
        for v in node:
            yield from scripts(v)


def check_command(f, words):
    if not words:
        return
    prog = words[0]
    if "/" in prog:
        if prog.startswith("build/"):
            # the Makefile's default BUILD folder; checked in this run's build
            if not os.access(os.path.join(build, prog[len("build/"):]), os.X_OK):
                problems.append(f"{f}: {prog} is not built by make")
        elif not (os.path.isfile(prog) and os.access(prog, os.X_OK)):
            problems.append(f"{f}: {prog}: no such executable script in the tree")
    for w in words[1:]:
        if re.match(r"^(ci|suites)/[\w./-]*$", w) and "*" not in w and not os.path.exists(w):
            problems.append(f"{f}: {w}: no such path in the tree")
    if os.path.basename(prog) != "tokenrig":
        return
    if len(words) < 2 or words[1] not in known:
        problems.append(f"{f}: tokenrig {words[1] if len(words) > 1 else ''}: no such command")
        return
    text = help_of(words[1])
    if text is None:
        problems.append(f"{f}: tokenrig {words[1]} --help failed")
        return
    for w in words[2:]:
        if w.startswith("--"):
            opt = w.split("=", 1)[0]
            if not re.search(re.escape(opt) + r"\b", text):
                problems.append(f"{f}: tokenrig {words[1]} {opt}: not an option of "
                                f"`tokenrig {words[1]} --help`")


def check_scripts(f, doc):
    called = []
    for s in scripts(doc):
        s = re.sub(r"\$\{\{[^}]*\}\}", "X", s)   # GitHub expressions
        for line in s.splitlines():
            for part in re.split(r"&&|\|\||;|\|", line):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError as e:
                    problems.append(f"{f}: cannot split '{part.strip()}': {e}")
                    continue
                # skip assignments before the command
                while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                    words = words[1:]
                check_command(f, words)
                called.append(words)
    return called


def calls(called, *needle):
    return any(all(n in w for n in needle) for w in called)


def check_github(f, doc, called):
    on = doc.get("on", doc.get(True)) or {}
    if "schedule" not in on:
        problems.append(f"{f}: no nightly schedule")
    jobs = doc.get("jobs", {})
    shard_jobs = [j for j in jobs.values()
                  if len(((j.get("strategy") or {}).get("matrix") or {}).get("shard", [])) == 4]
    if not shard_jobs:
        problems.append(f"{f}: no job with a matrix of 4 shards")
    for j in shard_jobs:
        env = j.get("env", {})
        if "matrix.shard" not in str(env.get("TOKENRIG_SHARD_INDEX", "")) or \
           str(env.get("TOKENRIG_SHARD_TOTAL")) != "4":
            problems.append(f"{f}: the shard job does not set TOKENRIG_SHARD_INDEX/TOTAL "
                            "from its matrix")
        if "actions/upload-artifact" not in str(j.get("steps")):
            problems.append(f"{f}: the shard job uploads no artifact")
    merge = [j for j in jobs.values() if j.get("needs")
             and "actions/download-artifact" in str(j.get("steps"))]
    if not merge:
        problems.append(f"{f}: no merge job downloading the shards' artifacts")
    if not calls(called, "--shard", "auto") or not calls(called, "merge", "--out"):
        problems.append(f"{f}: no `tokenrig run --shard auto` or `tokenrig merge`")
    if not calls(called, "ci/nightly"):
        problems.append(f"{f}: the schedule runs no ci/nightly")


def check_gitlab(f, doc, called):
    jobs = {k: v for k, v in doc.items() if isinstance(v, dict) and not k.startswith(".")
            and k not in ("default", "variables")}
    if "merge" not in doc.get("stages", []):
        problems.append(f"{f}: no merge stage")
    if not any(j.get("parallel") == 4 and "--shard auto" in str(j.get("script"))
               for j in jobs.values()):
        problems.append(f"{f}: no job with parallel: 4 running --shard auto")
    if not any(j.get("stage") == "merge" and
               ((j.get("artifacts") or {}).get("reports") or {}).get("junit")
               for j in jobs.values()):
        problems.append(f"{f}: no merge job with artifacts: reports: junit:")
    if not calls(called, "merge", "--out") or not calls(called, "ci/nightly"):
        problems.append(f"{f}: no `tokenrig merge` or ci/nightly")


for f in files:
    try:
        with open(f) as fh:
            doc = yaml.safe_load(fh)
    except yaml.YAMLError as e:
        problems.append(f"{f}: not valid YAML: {str(e).splitlines()[0]}")
        continue
    if not isinstance(doc, dict):
        problems.append(f"{f}: not a mapping")
        continue
    called = check_scripts(f, doc)
    if "github" in os.path.basename(f):
        check_github(f, doc, called)
    elif "gitlab" in os.path.basename(f):
        check_gitlab(f, doc, called)
    else:
        problems.append(f"{f}: neither a GitHub nor a GitLab template (name it so)")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF

# The checker catches what it should: a bad option, a missing script, bad YAML.
cp ci/examples/github-actions.yml "$tmp/github-bad.yml"
sed -i 's|tokenrig merge shards/shard-\* --out|tokenrig merge shards/shard-* --bogus-option --out|;
	s|run: ci/nightly|run: ci/no-such-script|' "$tmp/github-bad.yml"
printf 'stages: [test\nshards: {parallel: 4\n' > "$tmp/gitlab-bad.yml"
rc=0
python3 "$tmp/check.py" "$tr" "$BUILD" "$tmp/github-bad.yml" "$tmp/gitlab-bad.yml" > "$tmp/bad.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$tmp/bad.out"; fail "the checker passed broken templates (exit $rc)"; }
for want in "tokenrig merge --bogus-option: not an option" "ci/no-such-script: no such executable" \
	"gitlab-bad.yml: not valid YAML" "the schedule runs no ci/nightly"; do
	grep -qF -- "$want" "$tmp/bad.out" || { cat "$tmp/bad.out"; fail "the checker missed: $want"; }
done

# The templates themselves.
ls ci/examples/*.yml > /dev/null || fail "no templates in ci/examples"
python3 "$tmp/check.py" "$tr" "$BUILD" ci/examples/*.yml || fail "ci/examples: see above"
echo "ci-examples: $(ls ci/examples/*.yml | wc -l) templates valid YAML, calling existing commands, options and scripts"
