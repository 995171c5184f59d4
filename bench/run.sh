#!/usr/bin/env bash
# The benchmark, in one command, on a Debian machine with a Rust toolchain:
#
#   bench/run.sh            # the measured run (about 16 minutes), writes bench/RESULTS.md
#   bench/run.sh --quick    # a smoke run (about 2 minutes), same report, not a measurement
#
# It installs what is missing (nginx and wrk from Debian, oha from crates.io
# into bench/.tools), builds the gateway and the bench programs with the
# `production` profile (what the Dockerfile ships), then runs, in this order:
#   1. the criterion micro-benchmark of the request path (benches/request_path.rs);
#   2. the scale checks (bench/programs/scale.rs): memory, invalid-token flood,
#      single flight;
#   3. the load benchmark (bench/programs/driver.rs): direct, nginx and the
#      gateway, interleaved, which writes bench/RESULTS.md with all of it.
# Everything talks to 127.0.0.1 only. Needs 2 CPUs or more: the proxy under
# test gets CPU 0, the load tool and the upstream CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

QUICK=()
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=(--quick) ;;
        *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
    esac
done

if [ "$(nproc)" -lt 2 ]; then
    echo "bench/run.sh needs at least 2 CPUs (proxy on CPU 0, load on CPU 1)" >&2
    exit 1
fi

# 1. Tools.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]} from Debian"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
OHA_VERSION=1.16.0
OHA="$REPO/bench/.tools/bin/oha"
if ! [ -x "$OHA" ] || ! "$OHA" --version | grep -q "$OHA_VERSION"; then
    echo "==> installing oha $OHA_VERSION into bench/.tools"
    cargo install oha --version "$OHA_VERSION" --locked --root "$REPO/bench/.tools"
fi

# 2. Build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
# The gateway is built with the `production` profile (fat LTO, one codegen
# unit): what the Dockerfile ships, so what is measured. The load-side
# programs only need to be fast, not to be measured: plain release.
echo "==> building (gateway: production profile; bench programs: release)"
cargo build --profile production --locked --bin wix-elevator
cargo build --release --locked \
    --example bench_upstream --example bench_driver --example bench_scale
GATEWAY="$CARGO_TARGET_DIR/production/wix-elevator"
BIN="$CARGO_TARGET_DIR/release"

# 10,000 idle connections need as many file descriptors.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard"
if [ "$hard" -lt 12000 ]; then
    echo "warning: ulimit -n is $hard; the 10,000-connection check needs more" >&2
fi

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

# 3. Micro-benchmarks.
echo "==> criterion: benches/request_path.rs"
rm -rf "$CARGO_TARGET_DIR/criterion/request_path"
if [ "${#QUICK[@]}" -gt 0 ]; then CRITERION=(--warm-up-time 1 --measurement-time 1)
else CRITERION=(--warm-up-time 1 --measurement-time 3); fi
cargo bench --locked --bench request_path -- "${CRITERION[@]}"

# 4. Scale checks.
echo "==> scale checks"
"$BIN/examples/bench_scale" --gateway-bin "$GATEWAY" --repo "$REPO" \
    --json-out "$OUT/scale.json" "${QUICK[@]}"

# 5. Load benchmark, and the report. The driver (and the sandbox in it) sits
# on the load CPU with the load tool and the upstream.
echo "==> load benchmark"
taskset -c 1 "$BIN/examples/bench_driver" --repo "$REPO" --out "$REPO/bench/RESULTS.md" \
    --gateway-bin "$GATEWAY" --upstream-bin "$BIN/examples/bench_upstream" \
    --oha "$OHA" --wrk "$(command -v wrk)" --nginx "$NGINX" \
    --criterion-dir "$CARGO_TARGET_DIR/criterion" --scale-json "$OUT/scale.json" \
    --command "bench/run.sh${QUICK:+ ${QUICK[*]}}" "${QUICK[@]}"
echo "==> wrote bench/RESULTS.md"
