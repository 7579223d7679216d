#!/usr/bin/env bash
# Write the seed corpora under fuzz/seeds/TARGET/ from valid values made with standard tools:
# keys by ssh-keygen, signatures by `ssh-keygen -Y sign`, hashes by sha256sum, base64 by
# base64. Every run makes fresh keys, so the seeds change; they stay valid inputs.
#
# Usage: fuzz/make-seeds.sh            (needs bash, ssh-keygen, coreutils)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
seeds="$here/seeds"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C

rm -rf "$seeds"
mkdir -p "$seeds"/{envelope_payloads,grant_token,openssh_keys,elevator_config,relay_frame,relay_config,server_message}

# The separator of sealed inputs (see src/lib.rs): a byte that UTF-8 never contains.
SEP=$'\xff'
NONCE=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff

ssh-keygen -q -t ed25519 -N '' -C agent@seeds -f "$work/agent"
ssh-keygen -q -t ed25519 -N '' -C alice@seeds -f "$work/alice"

b64() { base64 -w0; }
sha() { sha256sum | cut -d' ' -f1; }

# An SSH wire string: 4-byte big-endian length, then the bytes (SPEC §4.7).
item() {
	local n=${#1}
	printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))"
	printf '%s' "$1"
}

# envelope KEY NAMESPACE PAYLOAD_FILE -> {"payload":..., "sig":...}
envelope() {
	local key=$1 ns=$2 file=$3
	rm -f "$file.sig"
	ssh-keygen -q -Y sign -f "$work/$key" -n "$ns" "$file" 2>/dev/null
	local sig
	sig=$(grep -v -- '-----' "$file.sig" | tr -d '\n')
	printf '{"payload":"%s","sig":"%s"}' "$(b64 <"$file")" "$sig"
}

program=/usr/bin/apt-get
program_sha=$(printf 'not the real apt-get' | sha)
id=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
cmd_sha=$({
	item root
	item "$program"
	item "$program_sha"
	item 2
	item apt-get
	item upgrade
	item /home/agent
	item 1
	item DEBIAN_FRONTEND
	item noninteractive
} | sha)

host_id=f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2
console=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')

request() { # GRANT TTL
	printf '{"v":1,"kind":"request","id":"%s","agent":"openclaw","host":"fuzz-host","host_id":"'"$host_id"'","user":"agent","uid":1000,"run_as":"root","program":"%s","program_sha256":"%s","argv":["apt-get","upgrade"],"cwd":"/home/agent","env":{"DEBIAN_FRONTEND":"noninteractive"},"reason":"security patch","grant":"%s","ttl_s":%s,"created_at":1763770000,"expires_at":1763770300}' \
		"$id" "$program" "$program_sha" "$1" "$2"
}
decision() { # REQUEST_SHA CMD_SHA VERDICT GRANT NOT_AFTER NOTE
	printf '{"v":1,"kind":"decision","request_id":"%s","request_sha256":"%s","verdict":"%s","grant":"%s","not_before":1763770010,"not_after":%s,"cmd_sha256":"%s","approver":"alice","console":"'"$console"'","decided_at":1763770010,"note":%s}' \
		"$id" "$1" "$3" "$4" "$5" "$2" "$6"
}
status() { # DECISION_SHA
	printf '{"v":1,"kind":"status","approver":"alice","console":"%s","issued_at":1763770500,"revoked":[{"decision_sha256":"%s","until":null}]}' "$console" "$1"
}
withdraw() { # REQUEST_SHA
	printf '{"v":1,"kind":"withdraw","request_id":"%s","request_sha256":"%s","withdrawn_at":1763770042}' "$id" "$1"
}
login() {
	printf '{"v":1,"kind":"login","nonce":"%s","role":"%s"}' "$NONCE" "$1"
}

request once null >"$work/request.json"
req_sha=$(sha <"$work/request.json")
decision "$req_sha" "$cmd_sha" approve once 1763770130 null >"$work/decision.json"
status "$(printf 'some other decision' | sha)" >"$work/status.json"
login agent >"$work/login.json"
withdraw "$req_sha" >"$work/withdraw.json"
request timed 3600 >"$work/request-timed.json"
decision "$(sha <"$work/request-timed.json")" "$cmd_sha" approve timed 1763773610 null >"$work/decision-timed.json"

env_request=$(envelope agent request@assent "$work/request.json")
env_decision=$(envelope alice decision@assent "$work/decision.json")
env_status=$(envelope alice status@assent "$work/status.json")
env_login=$(envelope agent relay-auth@assent "$work/login.json")
env_withdraw=$(envelope agent withdraw@assent "$work/withdraw.json")
env_request_timed=$(envelope agent request@assent "$work/request-timed.json")
env_decision_timed=$(envelope alice decision@assent "$work/decision-timed.json")

token_json=$(printf '{"request":%s,"decision":%s,"status":null}' "$env_request" "$env_decision")
token_timed_json=$(printf '{"request":%s,"decision":%s,"status":%s}' \
	"$env_request_timed" "$env_decision_timed" "$env_status")

# Check the signatures with ssh-keygen before trusting them as seeds.
for pair in request:agent decision:alice status:alice login:agent withdraw:agent; do
	what=${pair%%:*} key=${pair##*:}
	ns=$what@assent
	[ "$what" = login ] && ns=relay-auth@assent
	printf '%s %s\n' "$key" "$(cat "$work/$key.pub")" >"$work/allowed"
	ssh-keygen -q -Y verify -f "$work/allowed" -I "$key" -n "$ns" -s "$work/$what.json.sig" \
		<"$work/$what.json" >/dev/null
done

# envelope_payloads: payload bytes, envelopes, a token, a request id.
d=$seeds/envelope_payloads
for what in request decision status login withdraw request-timed decision-timed; do
	cp "$work/$what.json" "$d/payload-$what.json"
done
printf '%s' "$env_request" >"$d/envelope-request.json"
printf '%s' "$env_decision" >"$d/envelope-decision.json"
printf '%s' "$env_status" >"$d/envelope-status.json"
printf '%s' "$env_login" >"$d/envelope-login.json"
printf '%s' "$env_withdraw" >"$d/envelope-withdraw.json"
printf '%s\n' "$host_id" >"$d/host-id"
printf '%s' "$token_timed_json" | b64 >"$d/token.txt"
printf '%s' "$id" >"$d/request-id.txt"

# grant_token: tokens as the shim hands them over, the JSON inside, and sealed payloads.
d=$seeds/grant_token
printf '%s\n' "$(printf '%s' "$token_json" | b64)" >"$d/token-once.txt"
printf '%s' "$token_timed_json" | b64 >"$d/token-timed.txt"
printf '%s' "$token_json" >"$d/token-once.json"
printf '%s' "$token_timed_json" >"$d/token-timed.json"
{
	cat "$work/request.json"
	printf '%s' "$SEP"
	decision @REQUEST_SHA256@ @CMD_SHA256@ approve once 1763770130 null
} >"$d/sealed-once"
{
	cat "$work/request-timed.json"
	printf '%s' "$SEP"
	decision @REQUEST_SHA256@ @CMD_SHA256@ approve timed 1763773610 null
	printf '%s' "$SEP"
	cat "$work/status.json"
} >"$d/sealed-timed"
{
	request always null
	printf '%s' "$SEP"
	decision @REQUEST_SHA256@ @CMD_SHA256@ approve always null '"ok"'
	printf '%s' "$SEP"
	status @DECISION_SHA256@
} >"$d/sealed-always-revoked"
{
	cat "$work/request.json"
	printf '%s' "$SEP"
	decision @REQUEST_SHA256@ @CMD_SHA256@ deny once 1763770130 '"not today"'
} >"$d/sealed-deny"

# openssh_keys: key files and lines as ssh-keygen writes them, an armoured signature, and
# the binary forms inside them.
d=$seeds/openssh_keys
cp "$work/agent" "$d/private-key"
cp "$work/agent.pub" "$d/public-key.pub"
cp "$work/request.json.sig" "$d/signature.sig"
grep -v -- '-----' "$work/agent" | tr -d '\n' | base64 -d >"$d/private-key.bin"
cut -d' ' -f2 "$work/agent.pub" | base64 -d >"$d/public-key.blob"
grep -v -- '-----' "$work/request.json.sig" | tr -d '\n' | base64 -d >"$d/signature.bin"

# elevator_config: a full elevator.toml and the minimal one.
d=$seeds/elevator_config
cat >"$d/full.toml" <<EOF
# /etc/assent/elevator.toml
[[approver]]
name = "alice"
key  = "$(cat "$work/alice.pub")"

[[approver]]
name = "bob"
key  = "$(cat "$work/agent.pub")"

[[requester]]
user   = "agent"
run_as = ["root", "www-data"]

[[requester]]
user   = "builder"
run_as = ["root"]

[settings]
secure_path      = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
once_window_s    = 120
max_ttl_s        = 86400
status_max_age_s = 120
clock_skew_s     = 60
EOF
printf '[[approver]]\nname = "alice"\nkey = "%s"\n[[requester]]\nuser = "agent"\nrun_as = ["root"]\n' \
	"$(cut -d' ' -f1,2 "$work/alice.pub")" >"$d/minimal.toml"

# relay_frame: one frame of each type, and sealed `TYPE 0xFF PAYLOAD` inputs.
d=$seeds/relay_frame
printf '{"type":"login","login":%s}' "$env_login" >"$d/login.json"
printf '{"type":"submit","request":%s}' "$env_request" >"$d/submit.json"
printf '{"type":"decide","decision":%s}' "$env_decision" >"$d/decide.json"
printf '{"type":"publish_status","status":%s}' "$env_status" >"$d/publish-status.json"
printf '{"type":"get_statuses"}' >"$d/get-statuses.json"
printf '{"type":"withdraw","withdraw":%s}' "$env_withdraw" >"$d/withdraw.json"
{ printf 'login%s' "$SEP"; login approver; } >"$d/sealed-login-approver"
{ printf 'login%s' "$SEP"; login agent; } >"$d/sealed-login-agent"
{ printf 'submit%s' "$SEP"; cat "$work/request.json"; } >"$d/sealed-submit"
{ printf 'decide%s' "$SEP"; cat "$work/decision.json"; } >"$d/sealed-decide"
{ printf 'publish_status%s' "$SEP"; cat "$work/status.json"; } >"$d/sealed-publish-status"
{ printf 'withdraw%s' "$SEP"; cat "$work/withdraw.json"; } >"$d/sealed-withdraw"

# server_message: one relay frame of each type a client reads, and sealed inputs.
d=$seeds/server_message
rid=$id
printf '{"type":"hello","v":1,"relay":"assent-relay","nonce":"%s","max_frame_bytes":65536,"login_timeout_s":5}' "$NONCE" >"$d/hello.json"
printf '{"type":"welcome","role":"agent","key":"SHA256:x","name":null}' >"$d/welcome.json"
printf '{"type":"queued","request_id":"%s"}' "$rid" >"$d/queued.json"
printf '{"type":"request","request":%s,"first_seen":true}' "$env_request" >"$d/request.json"
printf '{"type":"decision","decision":%s}' "$env_decision" >"$d/decision.json"
printf '{"type":"decided","request_id":"%s","approver":"alice","verdict":"approve","decision":%s}' "$rid" "$env_decision" >"$d/decided.json"
printf '{"type":"delivered","request_id":"%s","decision_sha256":"%s"}' "$rid" "$(sha <"$work/decision.json")" >"$d/delivered.json"
printf '{"type":"withdrawn","request_id":"%s"}' "$rid" >"$d/withdrawn.json"
printf '{"type":"expired","request_id":"%s"}' "$rid" >"$d/expired.json"
printf '{"type":"statuses","statuses":[%s]}' "$env_status" >"$d/statuses.json"
printf '{"type":"refused","request_id":null,"reason":"a newer status is already held\\u001b[31m"}' >"$d/refused.json"
printf '{"type":"error","reason":"not listed as an [[approver]]"}' >"$d/error.json"
{ printf 'request%s' "$SEP"; cat "$work/request.json"; } >"$d/sealed-request"
{ printf 'decision%s' "$SEP"; cat "$work/decision.json"; } >"$d/sealed-decision"
{ printf 'statuses%s' "$SEP"; cat "$work/status.json"; } >"$d/sealed-statuses"

# relay_config: a full relay config.
d=$seeds/relay_config
cat >"$d/full.toml" <<EOF
[[approver]]
name = "alice"
key  = "$(cat "$work/alice.pub")"

[agents]
policy = "allowlist"

[[agent]]
name = "openclaw"
key  = "$(cat "$work/agent.pub")"

[limits]
max_frame_bytes = 65536
login_timeout_s = 5
max_pending_per_agent = 16
max_pending_total = 10000
requests_per_agent_per_minute = 120
messages_per_connection_per_second = 100
max_connections = 16384
ping_interval_s = 20
idle_timeout_s = 60
max_request_lifetime_s = 3600
outbound_queue = 1024
write_timeout_s = 10
EOF
printf '[agents]\npolicy = "loopback-any"\n' >"$d/minimal.toml"

find "$seeds" -type f | sort | sed "s|^$here/||"
