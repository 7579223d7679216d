#!/usr/bin/env bash
# Build assent and install it.
#
#   sudo ./install.sh                      build (release) and install under /usr/local
#   sudo ./install.sh --prefix /opt/assent install elsewhere (the config stays /etc/assent)
#   sudo ./install.sh --destdir /tmp/stage stage the whole tree under a directory (packaging)
#   sudo ./install.sh --no-build           install what target/release already holds
#   sudo ./install.sh --uninstall          remove what install put in place; keep config and logs
#
# Safe to run again: it says what it changed and what it left alone, and it never overwrites
# an existing /etc/assent/elevator.toml.
set -euo pipefail

prefix=/usr/local
destdir=
build=1
action=install

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) destdir=${1#--destdir=}; shift ;;
        --no-build) build=0; shift ;;
        --uninstall) action=uninstall; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1; see ./install.sh --help" >&2; exit 64 ;;
    esac
done

case "$prefix" in
    /*) ;;
    *) echo "install.sh: --prefix must be an absolute path, not $prefix" >&2; exit 64 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (the elevator is installed setuid root): sudo $0 $*" >&2
    exit 77
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
say() { printf '  %-10s %s\n' "$1" "$2"; }

# Install FILE as DEST with MODE, owned by root; report whether anything changed.
put() {
    local src=$1 dest=$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest" &&
        [ "$(stat -c '%a %U %G' "$dest")" = "$(printf '%o' "0$mode") root root" ]; then
        say unchanged "$dest"
        return
    fi
    mkdir -p "$(dirname "$dest")"
    # Copy beside the target, then rename: a running binary is never half-written.
    install -o root -g root -m "$mode" "$src" "$dest.new.$$"
    mv -f "$dest.new.$$" "$dest"
    say installed "$dest ($mode)"
}

# Create DIR with MODE, owned by root, or make an existing one so.
directory() {
    local dir=$1 mode=$2
    if [ -d "$dir" ] && [ "$(stat -c '%a %U %G' "$dir")" = "$mode root root" ]; then
        say unchanged "$dir/"
        return
    fi
    mkdir -p "$dir"
    chown root:root "$dir"
    chmod "$mode" "$dir"
    say ready "$dir/ ($mode)"
}

# Write the output of a command to DEST (mode 0644) if it differs.
generated() {
    local dest=$1
    shift
    local tmp
    tmp=$(mktemp)
    if ! "$@" >"$tmp" 2>/dev/null; then
        rm -f "$tmp"
        say skipped "$dest (the binary could not generate it)"
        return
    fi
    put "$tmp" "$dest" 644
    rm -f "$tmp"
}

uninstall() {
    echo "Removing assent from $destdir$prefix"
    local f
    for f in "${tools[@]/#/$bindir/}" "$bindir/assent-elevate" "$agentbindir/sudo" \
        "$mandir"/man1/assent*.1 "$mandir"/man8/assent-elevate.8 \
        "$bashdir"/assent "$bashdir"/assent-relay "$bashdir"/assent-console \
        "$zshdir"/_assent "$zshdir"/_assent-relay "$zshdir"/_assent-console \
        "$fishdir"/assent.fish "$fishdir"/assent-relay.fish "$fishdir"/assent-console.fish \
        "$unitdir"/assent-relay.service; do
        if [ -e "$f" ] || [ -L "$f" ]; then
            rm -f "$f"
            say removed "$f"
        fi
    done
    rmdir "$agentbindir" "$destdir$prefix/lib/assent" 2>/dev/null || true
    echo "Kept $etcdir (configuration), $ledgerdir (ledger) and $logdir (audit log)."
    echo "Remove them by hand once you no longer need the audit trail."
}

if [ "$action" = uninstall ]; then
    uninstall
    exit 0
fi

if [ "$build" = 1 ]; then
    if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "install.sh: cargo not found; install Rust, or build first with" \
            "'cargo build --release --locked' and run: sudo $0 --no-build" >&2
        exit 78
    fi
    echo "Building (release)"
    cargo build --release --locked --bins
fi
release=target/release
for bin in "${tools[@]}" assent-elevate; do
    if [ ! -x "$release/$bin" ]; then
        echo "install.sh: $release/$bin is missing; build with: cargo build --release --locked" >&2
        exit 78
    fi
done

echo "Installing into $destdir$prefix"
for bin in "${tools[@]}"; do
    put "$release/$bin" "$bindir/$bin" 755
done
# The elevator: setuid root, not writable by anyone else (it checks this itself).
put "$release/assent-elevate" "$bindir/assent-elevate" 4755

# The agent's `sudo` entry lives in its own directory, to be put first in the agent's PATH
# only; installing it on everyone's PATH would shadow the real sudo.
mkdir -p "$agentbindir"
if [ "$(readlink "$agentbindir/sudo" 2>/dev/null)" = "../../../bin/assent" ]; then
    say unchanged "$agentbindir/sudo -> ../../../bin/assent"
else
    ln -sfn ../../../bin/assent "$agentbindir/sudo"
    say linked "$agentbindir/sudo -> ../../../bin/assent"
fi

for bin in "${tools[@]}"; do
    generated "$mandir/man1/$bin.1" "$release/$bin" --generate man
    generated "$bashdir/$bin" "$release/$bin" --generate complete-bash
    generated "$zshdir/_$bin" "$release/$bin" --generate complete-zsh
    generated "$fishdir/$bin.fish" "$release/$bin" --generate complete-fish
done
put packaging/assent-elevate.8 "$mandir/man8/assent-elevate.8" 644
put packaging/assent-relay.service "$unitdir/assent-relay.service" 644

directory "$etcdir" 755
if [ -e "$etcdir/elevator.toml" ]; then
    say kept "$etcdir/elevator.toml (existing; never overwritten)"
else
    put packaging/elevator.toml "$etcdir/elevator.toml" 644
fi
directory "$ledgerdir" 700
directory "$logdir" 700

cat <<EOF

Done. Next steps:
  1. As the approver (your own account):  assent-console keygen
     then add the [[approver]] block it prints to /etc/assent/elevator.toml
  2. Add the agent's user as a [[requester]] there, then check:  sudo assent-elevate check
  3. As the agent user:  assent keygen   and   assent run -- id -u
  Or try everything at once:  sudo ./demo.sh
EOF
