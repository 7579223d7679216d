#!/usr/bin/env bash
# Benchmark (SPEC §12): `assent run -- /bin/true` with an instant scripted approver over a
# loopback relay, through the real setuid elevator, as the unprivileged `assent-agent` user:
# a fresh request and decision on every run (checked against the approver's count of
# decisions), then, as its own row, a cached timed grant reused without asking. Prints
# hyperfine's table, the fresh row's median overhead over the same `setpriv … /bin/true`
# baseline, and the cached row's median as `assent-bench time` measures the elevator alone.
#
# Needs: root, hyperfine, setpriv/unshare (util-linux), ssh-keygen, the `assent-agent` user
# (created by .ci/run), and release builds:
#   cargo build --release -p assent -p assent-relay -p assent-elevate -p assent-tests --bins
# Run: sudo request-shim/bench/run-true.sh [RUNS]
set -euo pipefail

# Inside the private mount namespace: bind the sandbox over the elevator's fixed paths, then
# measure as the agent user.
if [ "${1:-}" = "--inside" ]; then
    w=$2 runs=$3
    mount --bind "$w/etc" /etc/assent
    mount --bind "$w/lib" /var/lib/assent
    mount --bind "$w/log" /var/log/assent
    # PID 1's resource limits, which the elevator gives commands: this run's own, so that a
    # container whose root lacks CAP_SYS_RESOURCE (and whose callers have lower hard limits
    # than PID 1) can run it too.
    mount --bind "$w/root-limits" /proc/1/limits
    as="setpriv --reuid=assent-agent --regid=assent-agent --init-groups -- env -i HOME=$w/agent XDG_CONFIG_HOME=$w/agent/config XDG_STATE_HOME=$w/agent/state PATH=$w/bin:/usr/bin:/bin ASSENT_RELAY=$RELAY"
    cd "$w/agent"
    $as "$w/bin/assent" keygen >/dev/null
    warmup=5
    # A fresh request and a fresh decision on every run: nothing is cached yet, and a once
    # grant is never reused. The approver prints one line per decision, so its count proves it.
    before=$(wc -l <"$w/approver.out")
    hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$w/fresh.json" \
        -n "baseline: setpriv /bin/true" "$as /bin/true" \
        -n "assent run -- /bin/true" "$as $w/bin/assent run -- /bin/true"
    decided=$(($(wc -l <"$w/approver.out") - before))
    if [ "$decided" -ne $((warmup + runs)) ]; then
        echo "run-true.sh: the approver decided $decided requests for $((warmup + runs)) runs: not one fresh request per run" >&2
        exit 1
    fi
    echo "fresh requests decided: $decided of $((warmup + runs)) runs"
    # The cached path: approve one timed grant, which every later run reuses without asking.
    $as "$w/bin/assent" run --grant timed:1h -- /bin/true
    before=$(wc -l <"$w/approver.out")
    # Timed like the elevator alone in bench/run (`assent-bench time`, started as the agent),
    # so that the ratio compares the same thing: no setpriv or env starting on every run.
    $as "$w/bin/assent-bench" time --runs "$runs" --warmup "$warmup" -- \
        "$w/bin/assent" run --grant timed:1h -- /bin/true >"$w/cached.t"
    decided=$(($(wc -l <"$w/approver.out") - before))
    if [ "$decided" -ne 0 ]; then
        echo "run-true.sh: the approver decided $decided requests while the timed grant was cached" >&2
        exit 1
    fi
    exit 0
fi

runs=${1:-200}
top=$(cd "$(dirname "$0")/../.." && pwd)
release=${ASSENT_RELEASE_DIR:-$top/target/release}

if [ "$(id -u)" -ne 0 ]; then
    echo "run-true.sh: must run as root (it installs the elevator setuid in a private mount namespace)" >&2
    exit 1
fi
for tool in hyperfine setpriv unshare ssh-keygen; do
    command -v "$tool" >/dev/null || { echo "run-true.sh: $tool is missing" >&2; exit 1; }
done
for bin in assent assent-relay assent-elevate assent-test-approver assent-bench; do
    [ -x "$release/$bin" ] || {
        echo "run-true.sh: $release/$bin is missing; cargo build --release -p assent -p assent-relay -p assent-elevate -p assent-tests" >&2
        exit 1
    }
done
id -u assent-agent >/dev/null 2>&1 || { echo "run-true.sh: no assent-agent user (see .ci/run)" >&2; exit 1; }

mkdir -p /etc/assent /var/lib/assent /var/log/assent
w=$(mktemp -d /var/tmp/assent-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$w"
}
trap cleanup EXIT
chmod 755 "$w"
mkdir -p "$w"/{etc,lib,log,bin,keys,agent}
chmod 755 "$w/etc" "$w/bin"
chmod 700 "$w/lib" "$w/log" "$w/keys"
chown assent-agent:assent-agent "$w/agent"
ssh-keygen -q -t ed25519 -N '' -C alice -f "$w/keys/alice"
install -o root -g root -m 4755 "$release/assent-elevate" "$w/bin/assent-elevate"
install -o root -g root -m 755 "$release/assent" "$w/bin/assent"
install -o root -g root -m 755 "$release/assent-bench" "$w/bin/assent-bench"
alice=$(cat "$w/keys/alice.pub")
printf '[[approver]]\nname = "alice"\nkey = "%s"\n\n[[requester]]\nuser = "assent-agent"\nrun_as = ["root"]\n' \
    "$alice" >"$w/etc/elevator.toml"
# This "host"'s id, which every request names.
printf '%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$w/etc/host-id"
# The relay's per-agent rate limit would otherwise throttle a benchmark's burst of requests.
printf '[[approver]]\nname = "alice"\nkey = "%s"\n\n[limits]\nrequests_per_agent_per_minute = 1000000\n' \
    "$alice" >"$w/relay.toml"

"$release/assent-relay" --listen 127.0.0.1:0 --config "$w/relay.toml" >"$w/relay.out" 2>"$w/relay.log" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$w/relay.out" && break; sleep 0.1; done
url=$(sed -n 's/^assent-relay listening on //p' "$w/relay.out")
[ -n "$url" ] || { echo "run-true.sh: the relay did not start:" >&2; cat "$w/relay.log" >&2; exit 1; }
"$release/assent-test-approver" --relay "$url" --key "$w/keys/alice" --name alice \
    >"$w/approver.out" 2>"$w/approver.log" &
pids+=($!)
sleep 0.5

cat /proc/self/limits >"$w/root-limits" && chmod 444 "$w/root-limits"
RELAY=$url unshare --mount --propagation private -- "$0" --inside "$w" "$runs"
python3 - "$w/fresh.json" "$w/cached.t" <<'PY'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
base = statistics.median(results[0]["times"])
print(f"\n{'command':<36} {'median':>9} {'overhead':>9}")
for r in results:
    m = statistics.median(r["times"])
    print(f"{r['command']:<36} {m*1000:>7.2f}ms {(m-base)*1000:>7.2f}ms")
# The cached row's median, from assent-bench (no baseline: it starts no setpriv per run).
cached = dict(kv.split("=") for kv in open(sys.argv[2]).read().split())
print(f"{'assent run (cached timed grant)':<36} {float(cached['median_us'])/1000:>7.2f}ms {'':>9}")
PY
