#!/usr/bin/env bash
# Fuzz every cargo-fuzz target in tests/fuzz for SECONDS each (default 60), on nightly.
#
#   bash tests/fuzz/run.sh [SECONDS]
#
# Builds once with `cargo +nightly fuzz build` (address sanitizer, release with debug
# assertions), then runs each built target binary with libFuzzer's -max_total_time (what
# `cargo fuzz run` does, without rebuilding before every target), seeded from the committed
# corpus in tests/fuzz/corpus/<target>/ (read only). What the fuzzer learns goes to a scratch
# corpus outside the clone, kept between runs on one machine; crash inputs go next to it. Prints, per target, the runs executed and
# whether anything was found; exits non-zero if any target crashed, leaked, timed out or failed
# to build.
#
# Environment: FXPD_FUZZ_TARGET_DIR (cargo target dir, default /var/tmp/fxpd-target-fuzz),
# FXPD_FUZZ_WORK (scratch corpus and artifacts, default /var/tmp/fxpd-fuzz),
# FXPD_FUZZ_TARGETS (space-separated subset of targets; default all).
# Reproduce a crash: cargo +nightly fuzz run --fuzz-dir tests/fuzz TARGET ARTIFACT_FILE
# (the committed corpus also runs on stable in `cargo test --test properties`).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 [SECONDS]  (seconds per target, a positive integer)" >&2
    exit 2
fi

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir="${FXPD_FUZZ_TARGET_DIR:-/var/tmp/fxpd-target-fuzz}"
work="${FXPD_FUZZ_WORK:-/var/tmp/fxpd-fuzz}"
# The main build's CARGO_TARGET_DIR (set by .ci/run) must not receive sanitizer builds.
unset CARGO_TARGET_DIR

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

fuzz=(cargo +nightly fuzz)
host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$host/release"

if [ -n "${FXPD_FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FXPD_FUZZ_TARGETS"
else
    mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir "$fuzz_dir")
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no targets found in $fuzz_dir" >&2
    exit 2
fi

start=$SECONDS
echo "fuzz: building ${#targets[@]} targets (${targets[*]}) into $target_dir"
if ! "${fuzz[@]}" build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" --target "$host"; then
    echo "fuzz: FAILED: the fuzz targets do not build" >&2
    exit 1
fi
echo "fuzz: build took $((SECONDS - start)) s"

failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    artifacts="$work/artifacts/$target"
    log="$work/logs/$target.log"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    # Only this run's findings count (older ones stay in the work dir's history below).
    if compgen -G "$artifacts/*" >/dev/null; then
        mkdir -p "$work/artifacts-old/$target"
        mv "$artifacts"/* "$work/artifacts-old/$target/"
    fi
    t0=$SECONDS
    rc=0
    # New inputs go to the first corpus directory (the scratch one), never to the committed one.
    ASAN_OPTIONS="detect_odr_violation=0" "$bin_dir/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" "$fuzz_dir/corpus/$target" >"$log" 2>&1 || rc=$?
    took=$((SECONDS - t0))
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [ -z "$runs" ]; then
        # No final stats (the run was cut short by a crash): the last status line's count.
        runs="$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)"
    fi
    found=()
    if compgen -G "$artifacts/*" >/dev/null; then
        mapfile -t found < <(ls -1 "$artifacts"/*)
    fi
    if [ "$rc" -eq 0 ] && [ "${#found[@]}" -eq 0 ]; then
        line="$target: ${runs:-?} runs in ${took} s, nothing found (corpus $(ls -1 "$corpus" | wc -l) files)"
    else
        failed+=("$target")
        line="$target: ${runs:-?} runs in ${took} s, FOUND a problem (exit $rc)"
        echo "---- $target: end of $log"
        grep -E -A2 'panicked at' "$log" | head -n 12 || true
        grep -E 'ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 8 || true
        for f in "${found[@]}"; do
            echo "---- reproducer $f ($(wc -c <"$f") bytes, hex):"
            od -An -tx1 -v "$f" | head -n 20
            echo "---- reproduce: cargo +nightly fuzz run --fuzz-dir tests/fuzz $target $f"
        done
    fi
    echo "fuzz: $line"
    summary+=("$line")
done

echo "fuzz: summary (${seconds} s per target, total $((SECONDS - start)) s including the build)"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (logs and inputs in $work)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
