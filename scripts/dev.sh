#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Developer entry point: installs deps, configures and builds with Meson, runs an app or the tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Debian packages the build, the tests and the benchmarks need. cmake is listed because Debian's
# doctest-dev ships no pkg-config file: Meson finds doctest through its CMake package config.
# nginx-light, haproxy and systemd (systemd-socket-activate) are for tests/deploy, which runs
# docs/deployment.md's proxy configs and socket activation (the tests skip without them).
DEPS=(
    meson ninja-build pkg-config cmake g++ clang libclang-rt-14-dev
    liburing-dev libfmt-dev nlohmann-json3-dev doctest-dev zlib1g-dev
    python3 curl wrk libhttp-parser-dev
    nginx-light haproxy systemd
    prometheus python3-prometheus-client # promtool and the text parser for tests/metrics (skipped without)
)

# Build directories of the test matrix: name, extra environment, Meson options.
# Keep `build` identical between `run` and `test` so switching between them never reconfigures.
BUILD_OPTS=(-Dwerror=true)
ASAN_OPTS=('-Db_sanitize=address,undefined' -Db_lundef=false --buildtype=debug -Dwerror=true)
CLANG_OPTS=(-Dwerror=true -Dtests=true -Dapps=true -Dbenchmarks=true)
# libFuzzer targets (clang, ASan+UBSan on the fuzz targets only). `meson test --suite fuzz` builds
# just what the fuzz suite needs, so the unit tests of this dir are never compiled.
FUZZ_OPTS=(-Dfuzz=true -Dwerror=true -Dapps=false -Dbenchmarks=false)
# ThreadSanitizer (clang): only the `threads` suite runs there (the multi-threaded unit tests), and
# `meson test --suite threads` builds just those, so the rest of this dir is never compiled.
TSAN_OPTS=('-Db_sanitize=thread' -Db_lundef=false --buildtype=debugoptimized -Dwerror=true
    -Dapps=false -Dbenchmarks=false)

DRY_RUN=0

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'dev.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    cat <<'EOF'
Usage: scripts/dev.sh <command> [args...]

Commands:
  run [APP] [ARGS...]  Install deps if needed, configure and build `build/`, then exec
                       build/apps/APP/ringwork-APP ARGS... (APP defaults to `hello`,
                       which listens on 127.0.0.1:8080).
  test                 Install deps if needed, configure and build `build` (g++),
                       `build-asan` (g++, ASan+UBSan, debug) and `build-clang` (clang++),
                       run their test suites, run the multi-threaded tests (suite `threads`)
                       of `build-tsan` (clang++, ThreadSanitizer), run each libFuzzer target
                       of `build-fuzz` (clang++) for a bounded time and print a summary;
                       exits non-zero on any failure (a TSan report fails its test). The
                       last line is `N passed, M failed, K skipped`.
  deps [--dry-run]     Only check/install the Debian packages the project needs.
  help                 Show this help.

Environment:
  ASAN_OPTIONS / UBSAN_OPTIONS  Respected if set; otherwise `test` sets
                                detect_leaks=1 / print_stacktrace=1:halt_on_error=1.
  TSAN_OPTIONS                  Respected if set; otherwise `test` sets
                                halt_on_error=0:exitcode=66:second_deadlock_stack=1 (every
                                report is printed, and the test then exits 66: failed).
  RINGWORK_FUZZ_SECONDS         Seconds each fuzz target runs in `test` (default 30).
EOF
}

# --- dependencies -----------------------------------------------------------------------------

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ensure_deps: installs whichever of DEPS are missing (apt-get update runs once, only if needed).
ensure_deps() {
    local -a want=("${DEPS[@]}")
    command -v dpkg-query >/dev/null 2>&1 \
        || die "dpkg-query not found: this script supports Debian/Ubuntu hosts only"

    local -a missing=()
    local p
    for p in "${want[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        ((DRY_RUN)) && log "dry run: all ${#want[@]} Debian packages are installed, nothing to do"
        return 0
    fi

    log "missing Debian packages: ${missing[*]}"
    if ((DRY_RUN)); then
        log "dry run: would run 'apt-get update' then 'DEBIAN_FRONTEND=noninteractive" \
            "apt-get install -y --no-install-recommends ${missing[*]}'"
        return 0
    fi
    if ((EUID != 0)); then
        die "packages missing (${missing[*]}) and not running as root; install them with:
    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    fi
    apt-get update || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"

    for p in "${missing[@]}"; do
        pkg_installed "$p" || die "package '$p' is still not installed after apt-get install"
    done
}

# --- configure / build ------------------------------------------------------------------------

# option_keys OPTION...: prints the option name of each `-Dname=value` / `--name=value` argument.
option_keys() {
    local o k
    for o in "$@"; do
        case "$o" in
        -D*) k=${o#-D} ;;
        --*) k=${o#--}; k=${k//-/_} ;;
        *) k=$o ;;
        esac
        printf '%s\n' "${k%%=*}"
    done | sort -u
}

# setup_dir DIR CXX [MESON_OPTION...]
# Configures DIR with `meson setup --wrap-mode=nodownload` unless it is already configured with
# exactly the same compiler and options. Changed or added options use --reconfigure. A changed
# compiler (which --reconfigure cannot change), a dropped option (--reconfigure would keep its old
# value) or a broken build dir is wiped and set up from scratch.
setup_dir() {
    local dir=$1 cxx=$2
    shift 2
    local -a opts=(--wrap-mode=nodownload "$@")
    local stamp="$dir/.ringwork-setup"
    local want
    want="$(printf 'CXX=%s\n' "$cxx"; printf '%s\n' "${opts[@]}")"

    if [[ -f "$dir/meson-private/coredata.dat" ]]; then
        if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
            return 0 # configured as wanted; ninja regenerates by itself if meson.build changed
        fi
        local -a old_opts=()
        [[ -f "$stamp" ]] && mapfile -t old_opts < <(tail -n +2 "$stamp")
        local dropped=""
        if ((${#old_opts[@]})); then
            dropped="$(comm -23 <(option_keys "${old_opts[@]}") <(option_keys "${opts[@]}"))"
        fi
        if [[ -f "$stamp" && "$(head -n1 "$stamp")" == "CXX=$cxx" && -z "$dropped" ]]; then
            log "reconfiguring $dir (options changed)"
            CXX="$cxx" meson setup --reconfigure "$dir" "${opts[@]}" \
                || {
                    log "reconfigure of $dir failed; wiping it"
                    setup_fresh "$dir" "$cxx" "${opts[@]}"
                }
        else
            log "re-creating $dir (compiler changed, option dropped or unknown setup)"
            setup_fresh "$dir" "$cxx" "${opts[@]}"
        fi
    else
        if [[ -e "$dir" ]]; then
            log "$dir exists but is not a configured Meson build dir; re-creating it"
        fi
        setup_fresh "$dir" "$cxx" "${opts[@]}"
    fi
    printf '%s\n' "$want" >"$stamp"
}

setup_fresh() {
    local dir=$1 cxx=$2
    shift 2
    rm -rf -- "$dir"
    log "configuring $dir (CXX=$cxx)"
    CXX="$cxx" meson setup "$dir" "$@"
}

build_dir() {
    log "building $1"
    meson compile -C "$1"
}

# --- commands ---------------------------------------------------------------------------------

cmd_run() {
    local app=${1:-hello}
    if (($#)); then shift; fi
    [[ "$app" =~ ^[A-Za-z0-9_-]+$ ]] || die "bad app name '$app'"
    ensure_deps
    setup_dir build g++ "${BUILD_OPTS[@]}"
    build_dir build
    local bin="build/apps/$app/ringwork-$app"
    [[ -x "$bin" ]] || die "app binary '$bin' not found (is apps/$app built by Meson?)"
    log "exec $bin $*"
    exec "$bin" "$@"
}

cmd_test() {
    (($# == 0)) || die "test takes no arguments"
    ensure_deps
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:print_summary=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0:exitcode=66:second_deadlock_stack=1}"

    setup_dir build g++ "${BUILD_OPTS[@]}"
    setup_dir build-asan g++ "${ASAN_OPTS[@]}"
    setup_dir build-clang clang++ "${CLANG_OPTS[@]}"
    setup_dir build-fuzz clang++ "${FUZZ_OPTS[@]}"
    setup_dir build-tsan clang++ "${TSAN_OPTS[@]}"
    build_dir build
    build_dir build-asan
    build_dir build-clang

    # Run every matrix entry even when an earlier one fails; collect the exit codes.
    local rc_build=0 rc_asan=0 rc_clang=0 rc_tsan=0 rc_fuzz=0
    rm -f build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
        build-clang/meson-logs/testlog.json build-tsan/meson-logs/testlog.json \
        build-fuzz/meson-logs/testlog.json

    log "meson test: build"
    meson test -C build --print-errorlogs --num-processes 2 --no-suite benchmark || rc_build=$?
    log "meson test: build-asan"
    meson test -C build-asan --print-errorlogs --suite unit --suite integration || rc_asan=$?
    log "meson test: build-clang"
    meson test -C build-clang --print-errorlogs --suite unit || rc_clang=$?
    # Builds only what the threads suite needs (TSAN_OPTIONS above: any report fails its test).
    log "meson test: build-tsan (ThreadSanitizer, suite threads)"
    meson test -C build-tsan --print-errorlogs --num-processes 2 --suite threads || rc_tsan=$?
    # Each target fuzzes RINGWORK_FUZZ_SECONDS (default 30) and counts as one test.
    log "meson test: build-fuzz (${RINGWORK_FUZZ_SECONDS:-30} s per fuzz target)"
    meson test -C build-fuzz --print-errorlogs --suite fuzz || rc_fuzz=$?

    log "meson test exit codes: build=$rc_build build-asan=$rc_asan build-clang=$rc_clang" \
        "build-tsan=$rc_tsan build-fuzz=$rc_fuzz"
    local rc_summary=0
    python3 scripts/test_summary.py \
        --meson-rc "build=$rc_build" --meson-rc "build-asan=$rc_asan" \
        --meson-rc "build-clang=$rc_clang" --meson-rc "build-tsan=$rc_tsan" \
        --meson-rc "build-fuzz=$rc_fuzz" \
        build build-asan build-clang build-tsan build-fuzz || rc_summary=$?

    if ((rc_summary != 0 || rc_build != 0 || rc_asan != 0 || rc_clang != 0 ||
        rc_tsan != 0 || rc_fuzz != 0)); then
        return 1
    fi
    return 0
}

cmd_deps() {
    case "${1:-}" in
    --dry-run) DRY_RUN=1 ;;
    '') ;;
    *) die "unknown deps option '$1'" ;;
    esac
    ensure_deps
    ((DRY_RUN)) || log "all ${#DEPS[@]} Debian packages are installed"
    return 0
}

main() {
    local cmd=${1:-help}
    if (($#)); then shift; fi
    case "$cmd" in
    run) cmd_run "$@" ;;
    test) cmd_test "$@" ;;
    deps) cmd_deps "$@" ;;
    help | -h | --help) usage ;;
    *)
        usage >&2
        die "unknown command '$cmd'"
        ;;
    esac
}

main "$@"
