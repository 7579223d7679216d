#!/usr/bin/env bash
# Build assent and install it.
#
#   sudo ./install.sh                      build (release) and install under /usr/local
#   sudo ./install.sh --prefix /opt/assent install elsewhere (the config stays /etc/assent)
#   sudo ./install.sh --destdir /tmp/stage stage the whole tree under a directory (packaging)
#   sudo ./install.sh --from DIR           install the binaries already built in DIR
#                                          (e.g. target/debug); nothing is built
#   sudo ./install.sh --no-build           the same as --from target/release
#   sudo ./install.sh --relay              also install a commented /etc/assent/relay.toml for
#                                          the standalone relay's systemd unit
#   sudo ./install.sh --uninstall          remove what install put in place; keep config and logs
#   sudo ./install.sh --new-host-id        give this machine a new host id, and nothing else: the
#                                          step after cloning a machine's image (with --destdir,
#                                          the staged tree's)
#
# Safe to run again: it says what it changed and what it left alone, and it never overwrites
# an existing /etc/assent/elevator.toml, /etc/assent/relay.toml or /etc/assent/host-id (the
# install's host id, made when missing: 128 random bits that tell this machine from clones
# that share its hostname).
set -euo pipefail
umask 022

prefix=/usr/local
destdir=
from=
build=1
action=install
relay=0

usage() {
    # The comment block at the top of this file, up to the first line of code.
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

die() {
    local code=$1
    shift
    echo "install.sh: $*" >&2
    exit "$code"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) destdir=${1#--destdir=}; shift ;;
        --from) from=${2:?--from needs a directory}; build=0; shift 2 ;;
        --from=*) from=${1#--from=}; build=0; shift ;;
        --no-build) build=0; shift ;;
        --relay) relay=1; shift ;;
        --uninstall) action=uninstall; shift ;;
        --new-host-id) action=new-host-id; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die 64 "unknown option $1; see ./install.sh --help" ;;
    esac
done

case "$prefix" in
    /*) ;;
    *) die 64 "--prefix must be an absolute path, not $prefix" ;;
esac
prefix=${prefix%/}
# Relative --destdir and --from are taken from where install.sh was started.
if [ -n "$destdir" ]; then
    case "$destdir" in /*) ;; *) destdir=$PWD/$destdir ;; esac
    destdir=${destdir%/}
fi
if [ -n "$from" ]; then
    case "$from" in /*) ;; *) from=$PWD/$from ;; esac
    [ -d "$from" ] || die 64 "--from $from is not a directory"
fi
if [ "$(id -u)" -ne 0 ]; then
    die 77 "run as root (the elevator is installed setuid root): sudo $0 $*"
fi

cd "$(dirname "$0")"
bindir=$destdir$prefix/bin
agentbindir=$destdir$prefix/lib/assent/agent-bin
mandir=$destdir$prefix/share/man
bashdir=$destdir$prefix/share/bash-completion/completions
zshdir=$destdir$prefix/share/zsh/site-functions
fishdir=$destdir$prefix/share/fish/vendor_completions.d
unitdir=$destdir$prefix/lib/systemd/system
etcdir=$destdir/etc/assent
ledgerdir=$destdir/var/lib/assent
logdir=$destdir/var/log/assent

tools=(assent assent-relay assent-console)
changed=0
unchanged=0
say() { printf '  %-10s %s\n' "$1" "$2"; }

# Install FILE as DEST with MODE, owned by root; report whether anything changed.
put() {
    local src=$1 dest=$2 mode=$3
    if [ -f "$dest" ] && [ ! -L "$dest" ] && cmp -s "$src" "$dest" &&
        [ "$(stat -c '%a %U %G' "$dest")" = "$mode root root" ]; then
        say unchanged "$dest"
        unchanged=$((unchanged + 1))
        return
    fi
    mkdir -p "$(dirname "$dest")"
    # Copy beside the target, then rename: a running binary is never half-written, and
    # chmod after chown, because chown clears the setuid bit.
    install -o root -g root -m "$mode" "$src" "$dest.new.$$"
    chmod "$mode" "$dest.new.$$"
    mv -f "$dest.new.$$" "$dest"
    say installed "$dest ($mode)"
    changed=$((changed + 1))
}

# Install the template TEMPLATE as CONFIG (root, 0644) unless CONFIG exists: an existing one,
# edited or not, is never overwritten.
template() {
    local src=$1 dest=$2
    if [ -e "$dest" ] || [ -L "$dest" ]; then
        if cmp -s "$src" "$dest"; then
            say unchanged "$dest"
        else
            say kept "$dest (edited; never overwritten)"
        fi
        unchanged=$((unchanged + 1))
    else
        put "$src" "$dest" 644
    fi
}

# Whether systemd's system manager looks for unit files in DIR.
unit_dir_searched() {
    local dir=$1 searched real path
    real=$(readlink -m "$dir")
    if ! command -v systemd-analyze >/dev/null 2>&1 ||
        ! searched=$(systemd-analyze unit-paths 2>/dev/null); then
        searched=$(printf '%s\n' /etc/systemd/system /run/systemd/system \
            /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system)
    fi
    while IFS= read -r path; do
        if [ "$path" = "$dir" ] || [ "$(readlink -m "$path")" = "$real" ]; then
            return 0
        fi
    done <<<"$searched"
    return 1
}

# Create DIR with MODE, owned by root, or make an existing one so.
directory() {
    local dir=$1 mode=$2
    if [ -d "$dir" ] && [ ! -L "$dir" ] && [ "$(stat -c '%a %U %G' "$dir")" = "$mode root root" ]; then
        say unchanged "$dir/"
        unchanged=$((unchanged + 1))
        return
    fi
    mkdir -p "$dir"
    chown root:root "$dir"
    chmod "$mode" "$dir"
    say ready "$dir/ ($mode)"
    changed=$((changed + 1))
}

# The man page and shell completions BIN generates (`BIN --generate KIND`), each written only
# if it differs. A binary that cannot generate them is skipped with one line.
generated() {
    local bin=$1 name
    name=$(basename "$1")
    local tmp kind dest
    tmp=$(mktemp)
    for kind in man complete-bash complete-zsh complete-fish; do
        case "$kind" in
            man) dest=$mandir/man1/$name.1 ;;
            complete-bash) dest=$bashdir/$name ;;
            complete-zsh) dest=$zshdir/_$name ;;
            complete-fish) dest=$fishdir/$name.fish ;;
        esac
        if ! "$bin" --generate "$kind" >"$tmp" 2>/dev/null || [ ! -s "$tmp" ]; then
            if [ "$kind" = man ]; then
                say skipped "man page and completions of $name (it cannot generate them)"
                break
            fi
            say skipped "$dest ($name cannot generate it)"
            continue
        fi
        put "$tmp" "$dest" 644
    done
    rm -f "$tmp"
}

uninstall() {
    echo "Removing assent from $destdir$prefix"
    local f removed=0
    for f in "${tools[@]/#/$bindir/}" "$bindir/assent-elevate" "$agentbindir/sudo" \
        "$mandir"/man1/assent.1 "$mandir"/man1/assent-relay.1 "$mandir"/man1/assent-console.1 \
        "$mandir"/man8/assent-elevate.8 \
        "$bashdir"/assent "$bashdir"/assent-relay "$bashdir"/assent-console \
        "$zshdir"/_assent "$zshdir"/_assent-relay "$zshdir"/_assent-console \
        "$fishdir"/assent.fish "$fishdir"/assent-relay.fish "$fishdir"/assent-console.fish \
        "$unitdir"/assent-relay.service; do
        if [ -e "$f" ] || [ -L "$f" ]; then
            rm -f "$f"
            say removed "$f"
            removed=$((removed + 1))
        fi
    done
    rmdir "$agentbindir" "$destdir$prefix/lib/assent" 2>/dev/null || true
    if [ "$removed" = 0 ]; then
        echo "Nothing to remove: assent is not installed under $destdir$prefix."
    fi
    echo "Kept $etcdir (configuration), $ledgerdir (ledger) and $logdir (audit log)."
    echo "Remove them by hand once you no longer need the audit trail."
}

# The host id file: one line of 32 lowercase hex digits (see docs/protocol.md).
hostid=$etcdir/host-id
host_id_re=$'^[0-9a-f]{32}\n?$'

# Write a fresh host id to $hostid, root:root 0644, replacing any: a temporary file beside it,
# renamed into place, so that a reader never sees half of one. Prints the id.
write_host_id() {
    local id tmp
    id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    [[ $id =~ ^[0-9a-f]{32}$ ]] || die 70 "could not read 16 random bytes from /dev/urandom"
    mkdir -p "$etcdir"
    tmp=$hostid.new.$$
    printf '%s\n' "$id" >"$tmp"
    chown root:root "$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$hostid"
    printf '%s\n' "$id"
}

# Make the host id when there is none; keep one that exists, and say when it is unusable.
host_id() {
    local content id
    if [ ! -e "$hostid" ] && [ ! -L "$hostid" ]; then
        id=$(write_host_id)
        say created "$hostid ($id)"
        changed=$((changed + 1))
        return
    fi
    content=$(cat "$hostid" 2>/dev/null; printf x) || true
    content=${content%x}
    if [ -L "$hostid" ] || [ ! -f "$hostid" ] || ! [[ $content =~ $host_id_re ]]; then
        say kept "$hostid (not a host id; never overwritten)"
        echo "install.sh: warning: $hostid must be one line of 32 lowercase hex digits, or every" \
            "request is refused; make a new one: sudo $0 --new-host-id" >&2
    else
        say unchanged "$hostid"
        perms=$(stat -c '%U %a' "$hostid")
        if [ "${perms% *}" != root ] || [ $((8#${perms#* } & 8#022)) -ne 0 ] ||
            [ $((8#${perms#* } & 8#044)) -ne $((8#044)) ]; then
            echo "install.sh: warning: $hostid must be owned by root, readable by all and" \
                "writable by root only, or the elevator refuses every request; run:" \
                "chown root:root $hostid && chmod 644 $hostid" >&2
        fi
    fi
    unchanged=$((unchanged + 1))
}

if [ "$action" = uninstall ]; then
    uninstall
    exit 0
fi
if [ "$action" = new-host-id ]; then
    old=
    if [ -f "$hostid" ] && [ ! -L "$hostid" ]; then
        old=$(head -c 64 "$hostid" | tr -d '\n')
    fi
    id=$(write_host_id)
    if [ -n "$old" ]; then
        say replaced "$hostid ($id; was $old)"
    else
        say created "$hostid ($id)"
    fi
    echo "Grants approved for the old host id no longer run here; this machine's requests now" \
        "name the new one."
    exit 0
fi

if [ -z "$from" ]; then
    from=target/release
fi
if [ "$build" = 1 ]; then
    if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        die 78 "cargo not found; install Rust, or build first with" \
            "'cargo build --release --locked' and run: sudo $0 --no-build"
    fi
    echo "Building (release)"
    cargo build --release --locked --bins
fi
for bin in "${tools[@]}" assent-elevate; do
    if [ ! -f "$from/$bin" ] || [ ! -x "$from/$bin" ]; then
        die 78 "$from/$bin is missing; build with 'cargo build --release --locked'" \
            "or name the directory that holds the binaries with --from DIR"
    fi
done

echo "Installing into $destdir$prefix (binaries from $from)"
for bin in "${tools[@]}"; do
    put "$from/$bin" "$bindir/$bin" 755
done
# The elevator: setuid root, not writable by anyone else (it checks this itself).
put "$from/assent-elevate" "$bindir/assent-elevate" 4755

# The agent's `sudo` entry lives in its own directory, to be put first in the agent's PATH
# only; installing it on everyone's PATH would shadow the real sudo.
mkdir -p "$agentbindir"
if [ -L "$agentbindir/sudo" ] && [ "$(readlink "$agentbindir/sudo")" = "../../../bin/assent" ]; then
    say unchanged "$agentbindir/sudo -> ../../../bin/assent"
    unchanged=$((unchanged + 1))
else
    ln -sfn ../../../bin/assent "$agentbindir/sudo"
    say linked "$agentbindir/sudo -> ../../../bin/assent"
    changed=$((changed + 1))
fi

for bin in "${tools[@]}"; do
    generated "$from/$bin"
done
put packaging/assent-elevate.8 "$mandir/man8/assent-elevate.8" 644
# The unit names the relay where this install puts it.
unit=$(mktemp)
sed "s|/usr/local/bin/assent-relay|$prefix/bin/assent-relay|g" packaging/assent-relay.service >"$unit"
put "$unit" "$unitdir/assent-relay.service" 644
rm -f "$unit"
unit_warning=
if [ -z "$destdir" ] && ! unit_dir_searched "$unitdir"; then
    unit_warning="install.sh: warning: systemd does not look for units in $unitdir, so it will not find assent-relay.service; to run the relay as a service, link it where systemd looks: ln -s $unitdir/assent-relay.service /etc/systemd/system/ && systemctl daemon-reload"
fi

directory "$etcdir" 755
host_id
config=$etcdir/elevator.toml
if [ -e "$config" ] || [ -L "$config" ]; then
    if cmp -s packaging/elevator.toml "$config"; then
        say unchanged "$config"
        unchanged=$((unchanged + 1))
    else
        say kept "$config (edited; never overwritten)"
        unchanged=$((unchanged + 1))
    fi
    perms=$(stat -L -c '%U %a' "$config" 2>/dev/null || echo '? 0')
    if [ "${perms% *}" != root ] || [ $((8#${perms#* } & 8#022)) -ne 0 ]; then
        echo "install.sh: warning: $config must be owned by root and not writable by group or" \
            "others, or the elevator refuses to run anything; run: chown root:root $config &&" \
            "chmod 644 $config" >&2
    fi
else
    put packaging/elevator.toml "$config" 644
fi
if [ "$relay" = 1 ]; then
    template packaging/relay.toml "$etcdir/relay.toml"
fi
directory "$ledgerdir" 700
directory "$logdir" 700

echo "$changed changed, $unchanged unchanged."
if [ -n "$unit_warning" ]; then
    echo "$unit_warning" >&2
fi
if [ -n "$destdir" ]; then
    exit 0
fi
demo="sudo ./demo.sh"
if [ "$prefix" != /usr/local ]; then
    demo="$demo --prefix $prefix"
fi
cat <<EOF

Next steps:
  1. As the approver (your own account):  assent-console keygen
     then, to list that key here:
       sudo $prefix/bin/assent-console keygen --trust --key ~/.config/assent/approver.key --name \$USER
  2. Add the agent's user as a [[requester]] in $config, then check:
       sudo $prefix/bin/assent-elevate check
  3. As the agent user:  assent keygen   and   assent run -- id -u
     (put $prefix/lib/assent/agent-bin first in the agent's PATH to route its sudo through assent)
  Or try it all at once:  $demo
EOF
if [ "$relay" = 1 ]; then
    cat <<EOF
  For the standalone relay: list the approvers and agents in $etcdir/relay.toml, put its
  certificate and key in $etcdir/tls/relay.crt and relay.key (key 0600), then:
       systemctl daemon-reload && systemctl enable --now assent-relay
  and after each change:  systemctl reload assent-relay
EOF
fi
