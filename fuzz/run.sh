#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for N seconds each, one after the other, at the
# lowest CPU priority, and prints one line per target: executions, seconds, and whether it
# crashed. Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   fuzz/run.sh 600                      # every target, 10 minutes each
#   fuzz/run.sh 60 budget outcome        # two targets, a minute each
#
# Crashes land in fuzz/artifacts/<target>/ (fuzz/filter/artifacts/ for the filter target), logs
# in fuzz/logs/<target>.log; the corpus grows in fuzz/corpus/<target>/ and is reused by the next
# run. See fuzz/README.md for reproducing a crash.

set -uo pipefail

seconds=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

core=(policy_parse policy_structured breaker_codec breaker_transitions budget outcome retry_after)
all=("${core[@]}" filter_exchange)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all[@]}")
fi

mkdir -p fuzz/logs
failed=0
summary=()
for target in "${targets[@]}"; do
    log="fuzz/logs/$target.log"
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    case "$target" in
    filter_exchange)
        # wasmtime is built in the dev profile (never release here) and without a sanitizer:
        # ASan's signal handling and wasmtime's trap handling do not mix.
        args=(--fuzz-dir fuzz/filter --dev -s none "$target" "$corpus" --
            -timeout=60 -max_len=4096 -len_control=0 -rss_limit_mb=4096)
        ;;
    policy_parse)
        args=("$target" "$corpus" fuzz/seeds/policy_parse --
            -dict=fuzz/dict/policy.dict -timeout=10)
        ;;
    *)
        args=("$target" "$corpus" -- -timeout=10)
        ;;
    esac
    echo "== $target: ${seconds}s" >&2
    nice -n 19 cargo +nightly fuzz run "${args[@]}" -max_total_time="$seconds" >"$log" 2>&1
    status=$?
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)
    if [ $status -eq 0 ]; then
        summary+=("$target: ${runs:-no summary} — no crash")
    else
        failed=1
        crash=$(grep -Eo 'Test unit written to [^ ]+' "$log" | tail -1)
        summary+=("$target: CRASHED (exit $status) ${crash:-see $log}")
    fi
done

printf '%s\n' "${summary[@]}"
exit $failed
