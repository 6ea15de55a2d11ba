#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder that reads bytes from outside
# (libFuzzer through the libfuzzer-sys crate, on stable Rust: no cargo-fuzz,
# no nightly; the coverage instrumentation is plain -C flags).
#
#   fuzz/run.sh [SECONDS] [TARGET...]  fuzz each target for SECONDS (default 60),
#                                      one after the other; print executions
#                                      and crashes per target
#   fuzz/run.sh --corpus [TARGET...]   run each target once over its committed
#                                      corpus, no fuzzing (what CI does)
#   fuzz/run.sh --seeds                rewrite the seed corpus (fuzz/corpus/)
#   fuzz/run.sh --merge [TARGET...]    add to fuzz/corpus/ the found inputs that
#                                      reach code the corpus does not
#
# Targets: wire admission sync negentropy api enrollment scenario.
# Inputs found while fuzzing go to fuzz/target/corpus/<target>/ (not
# committed); crashing inputs to fuzz/artifacts/<target>/. A crash is
# reproduced by running the target binary on the file:
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/crash-…
# Extra libFuzzer options can be passed in FUZZ_ARGS (e.g. FUZZ_ARGS=-jobs=2);
# FUZZ_NO_BUILD=1 runs the binaries already built.
set -euo pipefail
cd "$(dirname "$0")"

ALL=(wire admission sync negentropy api enrollment scenario)

# Exactly what `cargo fuzz build -s none -a` passes (same flags, same
# order, same --target), so either builds what the other can reuse. The
# --target keeps the flags off build scripts and proc macros.
INSTRUMENT="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
-Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions \
-Ccodegen-units=1"
HOST=$(rustc -vV | sed -n 's/^host: //p')
BIN=target/$HOST/release

# Not --locked: the crate builds the node and simulations by path, and its
# Cargo.lock follows their dependencies (new ones resolve as in any build;
# pinned versions stay).
build() {
    [ -n "${FUZZ_NO_BUILD:-}" ] && return 0
    local bins=()
    for t in "$@"; do bins+=(--bin "$t"); done
    echo "== building fuzz targets: $*" >&2
    RUSTFLAGS="$INSTRUMENT" cargo build --release --target-dir target --target "$HOST" "${bins[@]}" >&2
}

targets() {
    if [ $# -eq 0 ]; then echo "${ALL[@]}"; else echo "$@"; fi
}

# Prints one summary line from a libFuzzer log; crashes are the inputs
# written to artifacts/ by this run (libFuzzer stops at the first one).
summary() {
    local target=$1 log=$2 status=$3 seconds=$4
    local runs rate units crashes
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    units=$(grep -o 'stat::new_units_added: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    crashes=$(grep -c 'Test unit written to' "$log" || true)
    [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
    printf '%-11s %12s execs  %7s/s  %5s s  %4s new inputs  %s crashes\n' \
        "$target" "${runs:-?}" "${rate:-?}" "$seconds" "${units:-?}" "$crashes"
    return "$status"
}

case "${1:-}" in
--seeds)
    # Plain build, no instrumentation: its own target directory.
    cargo run --release --example seeds --target-dir target/seeds
    ;;
--corpus)
    shift
    read -r -a list <<<"$(targets "$@")"
    build "${list[@]}"
    failed=0
    for t in "${list[@]}"; do
        log=$(mktemp)
        start=$SECONDS
        status=0
        # -runs=0: execute every corpus input once, fuzz nothing.
        "$BIN/$t" -runs=0 -print_final_stats=1 corpus/"$t" >"$log" 2>&1 || status=$?
        summary "$t" "$log" "$status" $((SECONDS - start)) || { failed=1; tail -40 "$log"; }
        rm -f "$log"
    done
    exit $failed
    ;;
--merge)
    # Adds to the committed corpus only the found inputs that reach code
    # it does not (seeds and regression inputs stay as they are).
    shift
    read -r -a list <<<"$(targets "$@")"
    build "${list[@]}"
    for t in "${list[@]}"; do
        mkdir -p target/corpus/"$t"
        before=$(ls corpus/"$t" | wc -l)
        "$BIN/$t" -set_cover_merge=1 corpus/"$t" target/corpus/"$t" >target/"$t".merge.log 2>&1
        echo "$t: $before -> $(ls corpus/"$t" | wc -l) inputs, $(du -sh --apparent-size corpus/"$t" | cut -f1)"
    done
    ;;
*)
    seconds=60
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds=$1; shift; fi
    read -r -a list <<<"$(targets "$@")"
    build "${list[@]}"
    failed=0
    for t in "${list[@]}"; do
        mkdir -p target/corpus/"$t" artifacts/"$t"
        log=target/"$t".log
        start=$SECONDS
        status=0
        dict=()
        [ -f dict/"$t".dict ] && dict=(-dict=dict/"$t".dict)
        # shellcheck disable=SC2086
        "$BIN/$t" -max_total_time="$seconds" -print_final_stats=1 \
            -artifact_prefix=artifacts/"$t"/ "${dict[@]}" ${FUZZ_ARGS:-} \
            target/corpus/"$t" corpus/"$t" >"$log" 2>&1 || status=$?
        summary "$t" "$log" "$status" $((SECONDS - start)) || failed=1
    done
    exit $failed
    ;;
esac
