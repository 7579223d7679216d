#!/usr/bin/env bash
# Try assent on this machine (after ./install.sh): an agent user asks to run `id -u` as root,
# and you approve it in the console.
#
#   sudo ./demo.sh          up, then agent
#   sudo ./demo.sh up       the agent user assent-demo and its key; your approver key, listed
#                           in /etc/assent/elevator.toml; a [[requester]] entry for assent-demo;
#                           the console in the tmux session assent-demo, running as you
#   sudo ./demo.sh agent    as assent-demo: assent run -- id -u; approve it in the console
#   sudo ./demo.sh down     stop the console, remove the [[requester]] entry and the assent-demo
#                           user; your approver key and its [[approver]] entry stay
#
# Options:  --prefix DIR   where install.sh put assent (default /usr/local)
#           --listen ADDR  where the console hosts the relay (default 127.0.0.1:7447)
# You (the user who ran sudo; root without sudo) are the approver. Safe to run again.
# For tests: ASSENT_DEMO_AGENT names the agent user, ASSENT_DEMO_TMUX_SOCKET a tmux socket
# (tmux -L NAME); ASSENT_DEMO_PREFIX and ASSENT_DEMO_LISTEN set the options' defaults.
set -euo pipefail
umask 022

prefix=${ASSENT_DEMO_PREFIX:-/usr/local}
listen=${ASSENT_DEMO_LISTEN:-127.0.0.1:7447}
agent=${ASSENT_DEMO_AGENT:-assent-demo}
socket=${ASSENT_DEMO_TMUX_SOCKET:-}
session=assent-demo
config=/etc/assent/elevator.toml
begin_marker='# >>> assent demo'
end_marker='# <<< assent demo'
# The agent user's comment (GECOS): `down` removes only a user that `up` created.
created_by='assent demo agent (demo.sh down removes it)'
reason='assent demo: who am I as root?'
action=all
arguments=("$@")

usage() {
    # The comment block at the top of this file, up to the first line of code.
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}
say() { printf 'demo: %s\n' "$*" >&2; }
die() {
    printf 'demo.sh: %s\n' "$*" >&2
    exit 1
}
indent() { sed 's/^/      /' >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        up | agent | down) action=$1; shift ;;
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --listen) listen=${2:?--listen needs an address}; shift 2 ;;
        --listen=*) listen=${1#--listen=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'demo.sh: unknown argument %s; see ./demo.sh --help\n' "$1" >&2; exit 64 ;;
    esac
done

case "$prefix" in
    /*) prefix=${prefix%/} ;;
    *) printf 'demo.sh: --prefix must be an absolute path, not %s\n' "$prefix" >&2; exit 64 ;;
esac
case "$listen" in
    *:[0-9]*) ;;
    *) printf 'demo.sh: --listen needs HOST:PORT, not %s\n' "$listen" >&2; exit 64 ;;
esac
case "$agent" in
    [a-z_]*) ;;
    *) die "ASSENT_DEMO_AGENT must be a user name, not $agent" ;;
esac
case "$agent" in
    *[!a-z0-9_-]*) die "ASSENT_DEMO_AGENT must be a user name, not $agent" ;;
esac
if [ "$(id -u)" -ne 0 ]; then
    die "run as root; you become the approver: sudo $0 ${arguments[*]}"
fi
for tool in tmux setpriv setsid useradd userdel getent; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing; install it (e.g. apt-get install $tool)"
done
bindir=$prefix/bin
for bin in assent assent-console assent-elevate; do
    [ -x "$bindir/$bin" ] || die "$bindir/$bin is missing; install assent first (sudo ./install.sh), or pass --prefix DIR"
done
relay_url=ws://$listen
host=${listen%:*}
host=${host#[}
host=${host%]}
port=${listen##*:}

# The approver: the human who ran sudo, else root.
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    approver=$SUDO_USER
    approver_home=$(getent passwd "$approver" | cut -d: -f6)
else
    approver=root
    approver_home=${HOME:-/root}
fi
[ -d "$approver_home" ] || die "the approver's home $approver_home is not a directory"
[ "$approver" != "$agent" ] || die "the approver ($approver) cannot also be the agent user"
approver_key=$approver_home/.config/assent/approver.key
approver_path=$bindir:/usr/local/bin:/usr/bin:/bin
agent_path=$prefix/lib/assent/agent-bin:$bindir:/usr/local/bin:/usr/bin:/bin
tmux_socket=()
attach="tmux attach -t $session"
if [ -n "$socket" ]; then
    tmux_socket=(-L "$socket")
    attach="tmux -L $socket attach -t $session"
fi

# The name the approver's decisions carry: console.toml's `name`, else the user name.
approver_name() {
    local toml=$approver_home/.config/assent/console.toml name=
    if [ -f "$toml" ]; then
        name=$(sed -n 's/^[[:space:]]*name[[:space:]]*=[[:space:]]*"\([^"\\]*\)"[[:space:]]*$/\1/p' "$toml" | head -n 1)
    fi
    printf '%s\n' "${name:-$approver}"
}

# Fill `user_argv` with the words that run a command as USER (home HOME, PATH) with a clean
# environment: no variable of root's session reaches the user's process.
user_argv() {
    local user=$1 home=$2 path=$3 uid gid shell
    uid=$(id -u "$user")
    gid=$(id -g "$user")
    shell=$(getent passwd "$user" | cut -d: -f7)
    user_argv=(env -i "HOME=$home" "USER=$user" "LOGNAME=$user" "SHELL=${shell:-/bin/sh}"
        "PATH=$path" "LANG=C.UTF-8" "TERM=${TERM:-xterm-256color}")
    if [ "$uid" -ne 0 ]; then
        user_argv=(setpriv "--reuid=$uid" "--regid=$gid" --init-groups -- "${user_argv[@]}")
    fi
}

# as USER HOME PATH COMMAND...: run COMMAND as USER, in HOME.
as() {
    local user=$1 home=$2 path=$3
    shift 3
    user_argv "$user" "$home" "$path"
    (cd "$home" && "${user_argv[@]}" "$@")
}

as_root() { as root "${HOME:-/root}" "$approver_path" "$@"; }
as_approver() { as "$approver" "$approver_home" "$approver_path" "$@"; }
tmux_approver() { as_approver tmux "${tmux_socket[@]}" "$@"; }

# Run a setup step quietly; on failure show what it printed and stop.
step() {
    local what=$1 out
    shift
    if ! out=$("$@" 2>&1); then
        say "$what failed:"
        printf '%s\n' "$out" | indent
        exit 1
    fi
    printf '%s\n' "$out"
}

relay_listening() {
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

console_running() {
    tmux_approver has-session -t "=$session" 2>/dev/null
}

agent_home() {
    getent passwd "$agent" | cut -d: -f6
}

# Replace the elevator config with FILE atomically, as root:root with the config's mode
# (never writable by group or others: the elevator would refuse it).
replace_config() {
    local new=$1 mode
    mode=$(stat -c %a "$config")
    chown root:root "$new"
    chmod "$(printf '%o' $((8#$mode & 8#755)))" "$new"
    mv -f "$new" "$config"
}

up_agent_user() {
    if getent passwd "$agent" >/dev/null; then
        say "agent user $agent: exists"
    else
        useradd --create-home --shell /bin/bash --comment "$created_by" "$agent"
        say "agent user $agent: created (home $(agent_home))"
    fi
}

up_approver() {
    local name
    name=$(approver_name)
    if [ -e "$approver_key" ]; then
        say "approver key of $approver: $approver_key (kept)"
    else
        step "making the approver key" \
            as_approver "$bindir/assent-console" keygen --name "$name" >/dev/null
        say "approver key of $approver: made $approver_key"
    fi
    local out
    out=$(step "listing the approver key in $config" \
        as_root "$bindir/assent-console" keygen --trust --key "$approver_key" --name "$name")
    if grep -q 'already lists approver' <<<"$out"; then
        say "approver $name: already listed in $config"
    else
        say "approver $name: listed in $config"
    fi
}

up_agent_key() {
    local home key
    home=$(agent_home)
    key=$home/.config/assent/agent.key
    if [ -e "$key" ]; then
        say "agent key: $key (kept)"
    else
        step "making the agent key" as "$agent" "$home" "$agent_path" "$bindir/assent" keygen >/dev/null
        say "agent key: made $key"
    fi
}

up_requester() {
    [ -f "$config" ] || die "$config is missing; run sudo ./install.sh first"
    if grep -qxF "$begin_marker" "$config"; then
        say "[[requester]] $agent: already in $config"
        return
    fi
    if grep -Eq "^[[:space:]]*user[[:space:]]*=[[:space:]]*\"$agent\"" "$config"; then
        say "[[requester]] $agent: listed in $config by someone else; left alone"
        return
    fi
    local new
    new=$(mktemp "$config.demo.XXXXXX")
    {
        cat "$config"
        if [ -s "$config" ] && [ -n "$(tail -c 1 "$config")" ]; then
            echo
        fi
        printf '\n%s\n' "$begin_marker"
        printf '# Added by demo.sh for its agent user; sudo ./demo.sh down removes this block.\n'
        printf '[[requester]]\nuser = "%s"\nrun_as = ["root"]\n' "$agent"
        printf '%s\n' "$end_marker"
    } >"$new"
    replace_config "$new"
    say "[[requester]] $agent: added to $config"
}

up_check() {
    local out
    out=$(step "assent-elevate check" as_root "$bindir/assent-elevate" check)
    say "assent-elevate check:"
    printf '%s\n' "$out" | indent
}

up_console() {
    local name
    name=$(approver_name)
    if console_running; then
        if [ "$(tmux_approver display-message -p -t "=$session:" '#{pane_dead}')" = 1 ]; then
            tmux_approver kill-session -t "=$session"
        else
            say "console: already running in tmux session $session (as $approver)"
            return
        fi
    fi
    if relay_listening; then
        die "something already listens on $listen (another assent-console?); stop it, or pass --listen HOST:PORT"
    fi
    # remain-on-exit: if the console stops, its last screen stays readable.
    tmux_approver new-session -d -s "$session" -x 120 -y 40 -c "$approver_home" -- \
        env LANG=C.UTF-8 "PATH=$approver_path" "$bindir/assent-console" \
        --key "$approver_key" --name "$name" --listen "$listen" \; \
        set-option -w -t "=$session:" remain-on-exit on >/dev/null
    local deadline=$((SECONDS + 20))
    until relay_listening; do
        if [ "$(tmux_approver display-message -p -t "=$session:" '#{pane_dead}' 2>/dev/null)" != 0 ] ||
            [ "$SECONDS" -ge "$deadline" ]; then
            say "the console did not start; its screen:"
            tmux_approver capture-pane -p -t "=$session:" 2>/dev/null | indent || true
            tmux_approver kill-session -t "=$session" 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    say "console: running in tmux session $session as $approver, hosting the relay on $relay_url"
}

# Before anything is made: a console of ours already running is fine, anything else on the
# port means the demo cannot start its console there.
up_port_free() {
    if ! console_running && relay_listening; then
        die "something already listens on $listen (another assent-console?); stop it, or pass --listen HOST:PORT"
    fi
}

up() {
    up_port_free
    up_agent_user
    up_approver
    up_agent_key
    up_requester
    up_check
    up_console
    say "watch it: $attach   (as $approver, in another terminal; Ctrl-b d detaches)"
}

agent() {
    getent passwd "$agent" >/dev/null || die "there is no user $agent yet; run: sudo $0 up"
    local home
    home=$(agent_home)
    [ -e "$home/.config/assent/agent.key" ] || die "$agent has no agent key yet; run: sudo $0 up"
    relay_listening || die "nothing listens on $listen; start the console with: sudo $0 up"
    say "=============================================================================="
    say "The agent ($agent) now asks to run \`id -u\` as root."
    say "Approve it: attach in another terminal: $attach (as $approver), press a to approve"
    say "(d denies; Ctrl-b d detaches). Approving shows 0 here: the command ran as root."
    say "=============================================================================="
    # The agent runs in a session of its own, without this terminal as its controlling
    # terminal (no TIOCSTI keystrokes into root's shell) and without its input.
    user_argv "$agent" "$home" "$agent_path"
    local pid rc
    (cd "$home" && exec setsid "${user_argv[@]}" "ASSENT_RELAY=$relay_url" \
        "$bindir/assent" run --reason "$reason" -- id -u </dev/null) &
    pid=$!
    trap 'kill -INT "$pid" 2>/dev/null || true' INT TERM HUP
    rc=0
    wait "$pid" || rc=$?
    while kill -0 "$pid" 2>/dev/null; do
        rc=0
        wait "$pid" || rc=$?
    done
    trap - INT TERM HUP
    case "$rc" in
        0) say "approved: \`id -u\` ran as root and printed 0" ;;
        77) say "denied or refused (exit 77): see the line above" ;;
        75) say "no decision in time, or the relay was unreachable (exit 75); try again: sudo $0 agent" ;;
        *) say "assent run exited with status $rc" ;;
    esac
    return "$rc"
}

down() {
    if console_running; then
        tmux_approver kill-session -t "=$session"
        say "console: stopped (tmux session $session)"
    else
        say "console: not running"
    fi

    if [ -f "$config" ] && grep -qxF "$begin_marker" "$config"; then
        local b e
        b=$(grep -nxF "$begin_marker" "$config" | head -n 1 | cut -d: -f1)
        e=$(grep -nxF "$end_marker" "$config" | head -n 1 | cut -d: -f1)
        if [ -z "$e" ] || [ "$e" -le "$b" ]; then
            die "$config has '$begin_marker' without a '$end_marker' after it; remove the block by hand"
        fi
        local new
        new=$(mktemp "$config.demo.XXXXXX")
        # Drop the block and the blank line `up` put before it.
        awk -v b="$begin_marker" -v e="$end_marker" '
            $0 == b { blank = 0; skip = 1; next }
            skip { if ($0 == e) skip = 0; next }
            { if (blank) { print ""; blank = 0 } if ($0 == "") blank = 1; else print }
            END { if (blank) print "" }
        ' "$config" >"$new"
        replace_config "$new"
        say "[[requester]] $agent: removed from $config"
    else
        say "[[requester]] $agent: no demo block in $config"
    fi

    if getent passwd "$agent" >/dev/null; then
        if [ "$(getent passwd "$agent" | cut -d: -f5)" = "$created_by" ]; then
            local out
            if ! out=$(userdel --remove "$agent" 2>&1); then
                if getent passwd "$agent" >/dev/null; then
                    say "cannot remove the user $agent:"
                    printf '%s\n' "$out" | indent
                    die "stop its processes, then run: sudo $0 down"
                fi
            fi
            say "agent user $agent: removed, with its home and keys"
        else
            say "agent user $agent: not made by demo.sh; left alone"
        fi
    else
        say "agent user $agent: already gone"
    fi
    say "kept: the approver key $approver_key and its [[approver]] entry in $config"
    say "(remove that entry by hand if you no longer want it), and the audit log in /var/log/assent"
}

case "$action" in
    up) up ;;
    agent) agent ;;
    down) down ;;
    all)
        up
        agent
        ;;
esac
