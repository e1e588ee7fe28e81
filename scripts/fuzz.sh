#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a while (cargo-fuzz, libFuzzer):
#
#   bash scripts/fuzz.sh [seconds-per-target] [target…]
#
# Default 3 seconds a target (what CI spends); all targets unless some are named. Installs
# cargo-fuzz when missing. Works on stable Rust: the targets are built without a sanitizer
# (the SDK forbids unsafe code; the fuzzing looks for panics, hangs and failed checks). With
# FUZZ_SANITIZER=address (or leak, memory, thread) they are built with that sanitizer instead,
# which needs nightly features: RUSTC_BOOTSTRAP=1 unlocks them on the stable compiler.
#
# Each target starts from its committed seed corpus, fuzz/corpus/<target>/, which it only reads;
# new inputs go to fuzz/work/<target>/ (kept between runs, ignored by git) and a crash to
# fuzz/artifacts/<target>/, and the script fails. Builds go to the workspace's target directory
# ($CARGO_TARGET_DIR when set, else target/): the fuzz build names its target triple, so its
# instrumented code stays apart from ordinary builds there while build scripts and proc macros
# are shared with them.
#
# To grow the committed corpus after a long run: copy it with fuzz/work/<target>/ to a scratch
# directory, `cargo fuzz cmin <target> <dir> -- -use_counters=0` (edge coverage), and add what
# it keeps, less the seeds (which it renames to their hashes), to fuzz/corpus/<target>/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_TARGET="${1:-3}"
shift || true
SANITIZER="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

args=(--sanitizer "$SANITIZER")
if [ "$SANITIZER" != none ]; then
  export RUSTC_BOOTSTRAP=1
fi
args+=(--target-dir "${CARGO_TARGET_DIR:-$ROOT/target}")

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build "${args[@]}"
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t" "fuzz/corpus/$t" "fuzz/artifacts/$t"
  printf '==== fuzz %s (%ss)\n' "$t" "$SECONDS_PER_TARGET"
  log="fuzz/work/$t.log"
  # The first corpus directory receives the new inputs: the work one, never the seeds.
  # -timeout: one input that takes seconds is a hang. -rss_limit_mb: a small machine.
  # libFuzzer's progress lines go to the log; its summary, or the crash, is printed.
  if ! cargo fuzz run "${args[@]}" "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 80 "$log" >&2
    printf 'fuzz: %s failed (the whole output: %s)\n' "$t" "$log" >&2
    exit 1
  fi
  grep -E '^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' "$log" || true
done
printf '\nfuzz: %d targets, %ss each, no crash\n' "${#targets[@]}" "$SECONDS_PER_TARGET"
