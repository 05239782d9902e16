#!/usr/bin/env bash
# Builds the sanitizer project (tests/fuzz/CMakeLists.txt) into build/fuzz, runs the native unit
# tests under ASan/UBSan, replays every committed crash reproducer, then fuzzes the targets on a
# copy of their seed corpora for 3 x FUZZ_SECONDS in all (default 60; 0 skips fuzzing), shared
# equally: the time of the three targets before the spec fuzzer joined them. Exits non-zero on any
# failure. Needs clang with its compiler runtime (Debian: clang, libclang-rt-14-dev) and cmake.
#   FUZZ_SECONDS=60 bash tests/fuzz/run.sh
#   FUZZ_CC=clang-15 bash tests/fuzz/run.sh      # another clang
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-60}
build=build/fuzz
started=$SECONDS
failures=()

if [[ -z ${FUZZ_CC:-} ]]; then
  for candidate in clang clang-{20..14}; do
    if command -v "$candidate" >/dev/null; then FUZZ_CC=$candidate; break; fi
  done
fi
if [[ -z ${FUZZ_CC:-} ]] || ! command -v "$FUZZ_CC" >/dev/null; then
  echo "run.sh: clang not found (install clang and libclang-rt-14-dev, or set FUZZ_CC)" >&2
  exit 2
fi

echo "== build ($FUZZ_CC) into $build"
# A build directory configured with another compiler cannot be reused.
if [[ -f $build/CMakeCache.txt ]] && ! grep -qxF "CMAKE_C_COMPILER:FILEPATH=$(command -v "$FUZZ_CC")" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
mkdir -p "$build"
if ! CC=$FUZZ_CC cmake -S tests/fuzz -B "$build" >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "run.sh: configuring tests/fuzz failed" >&2
  exit 2
fi
if ! cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >"$build/build.log" 2>&1; then
  cat "$build/build.log" >&2
  echo "run.sh: build failed" >&2
  exit 2
fi
grep -E 'warning:' "$build/build.log" || true

# Any sanitizer report is fatal (the code is also built with -fno-sanitize-recover=all).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== native unit tests under ASan/UBSan"
run_unit() { # name, then extra environment for it
  local name=$1
  shift
  if env "$@" "$build/$name" >"$build/$name.log" 2>&1; then
    echo "$name: ok ($(tail -n 1 "$build/$name.log"))"
  else
    cat "$build/$name.log"
    echo "$name: FAILED"
    failures+=("$name")
  fi
}
run_unit test_engine
run_unit test_gradcheck

targets=(records weights checkpoint spec)
# Largest input per target: a few bytes past the largest valid file (SimpleCNN's version 2
# checkpoint is 744,892 bytes; a spec of 256 nodes 10,320), so "too long" is explored.
declare -A max_len=([records]=16384 [weights]=248032 [checkpoint]=744900 [spec]=10400)
per_target=$((3 * seconds / ${#targets[@]}))
((seconds > 0 && per_target == 0)) && per_target=1
# A model is at most 1536 MiB (WT_MODEL_MAX_BYTES in src/spec.h). One allocation past that means
# a hostile spec got through to its arena: libFuzzer stops with "malloc limit" (the allocation
# is reported, not made). An accepted model, its whole arena touched, stays below the RSS limit.
memory_limits=(-malloc_limit_mb=1600 -rss_limit_mb=2560)

for target in "${targets[@]}"; do
  fuzzer=$build/fuzz_$target
  regressions=(tests/fuzz/regressions/$target/*)
  if [[ -e ${regressions[0]} ]]; then
    if "$fuzzer" "${memory_limits[@]}" "${regressions[@]}" >"$build/regressions_$target.log" 2>&1; then
      echo "fuzz_$target: ${#regressions[@]} regression input(s) ok"
    else
      cat "$build/regressions_$target.log"
      echo "fuzz_$target: a regression input FAILED"
      failures+=("fuzz_$target regressions")
    fi
  fi

  [[ $per_target == 0 ]] && continue
  # Fuzz a copy: new inputs land there, not in the committed corpus.
  work=$build/corpus/$target
  artifacts=$build/artifacts/$target
  rm -rf "$work" && mkdir -p "$work" "$artifacts"
  cp tests/fuzz/corpus/$target/* "$work/"
  seeds=$(ls "$work" | wc -l)
  log=$build/fuzz_$target.log
  echo "== fuzz_$target for ${per_target}s (log: $log)"
  "$fuzzer" -max_total_time="$per_target" -max_len="${max_len[$target]}" -timeout=30 "${memory_limits[@]}" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  if [[ $status == 0 ]]; then
    verdict=ok
  else
    verdict="FAILED (exit $status; reproducer in $artifacts/, add it to tests/fuzz/regressions/$target/)"
    grep -E 'ERROR|SUMMARY|fuzz_[a-z]+: |runtime error|Test unit written' "$log" | head -n 20
    failures+=("fuzz_$target")
  fi
  echo "fuzz_$target: ${runs:-?} runs in ${per_target}s, coverage ${cov:-?} edges, ${ft:-?} features, corpus $seeds -> ${corp:-?} inputs: $verdict"
done

echo "run.sh: $((SECONDS - started))s in all"
if ((${#failures[@]})); then
  echo "run.sh: FAILED: ${failures[*]}"
  exit 1
fi
echo "run.sh: all passed"
