//! The man page and shell completions, generated from the real command line
//! ([`crate::cli::Cli`]), the exit status table and the file names the shim uses, so none of
//! them can drift from what the binary does. `assent --generate KIND` prints them.

use assent_cli_manual::roff::{Roff, bold, italic, roman};
use assent_cli_manual::{
    Face, Generate, Manual, entries, subcommand_synopsis, visible_subcommands,
};
use clap::{Arg, Command, CommandFactory};

use crate::cli::{Cli, exit_statuses};
use crate::config::{
    AGENT_TOML, DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_RELAY, DEFAULT_TIMEOUT_S, ELEVATOR_CONFIG,
    ELEVATOR_NAME, GRANTS_DIR, HOST_ID, KEY_FILE, PUBLIC_KEY_FILE, STATUSES_DIR,
};
use crate::failure::Exit;
use crate::sudo;
use assent_common::duration;

const BIN: &str = "assent";

/// What `--generate KIND` prints.
pub fn generate(kind: Generate) -> String {
    assent_cli_manual::generate(kind, Cli::command(), BIN, man_page)
}

/// The man page (section 1, roff).
fn man_page(cmd: Command) -> String {
    Manual::new(cmd)
        .roff(synopsis)
        .description(description)
        .options()
        .roff(|page, cmd| {
            assent_cli_manual::commands(page, cmd, BIN);
            sudo_entry(page);
            environment(page, cmd);
            files(page);
            exit_status(page);
            see_also(page);
        })
        .finish()
}

/// One line per subcommand, then the `sudo` form.
fn synopsis(page: &mut Roff, cmd: &Command) {
    page.control("SH", ["SYNOPSIS"]);
    for sub in visible_subcommands(cmd) {
        page.text(subcommand_synopsis(BIN, sub));
        page.control("br", []);
    }
    page.text([
        bold("sudo"),
        roman(" [-u USER] [-n] [--] "),
        italic("COMMAND..."),
    ]);
}

/// What `--help` cannot say at length: what happens to a request, and the first run.
fn description(page: &mut Roff) {
    page.control("PP", []).text([roman(
        "assent signs a request naming the exact program (resolved in the elevator's \
         secure_path, symlinks resolved, with its SHA-256), arguments, working directory, \
         extra environment and target user, sends it to the relay, and waits for a decision \
         signed by an approver. Approved, it replaces itself with the setuid elevator, which \
         checks everything again and runs exactly that command; the command's own exit status \
         is assent's. Denied, it says who denied it and why.",
    )]);
    page.control("PP", []).text([roman(
        "Timed and always grants are cached per exact command and host, and reused without a \
         prompt while their window lasts and a fresh signed status of the console that \
         approved them does not revoke them. A cached grant is dropped only when it expires or \
         such a status revokes it; while no fresh status can be had, it stays cached, the \
         approver is asked anew, and the grant runs as soon as a fresh status comes. \
         assent grants shows each grant's state: live, waiting (for a fresh status), revoked, \
         expired or unusable.",
    )]);
    page.control("PP", []).text([
        bold("First run. "),
        bold("assent keygen"),
        roman(
            " makes the agent key and prints what the approver must add to the elevator's \
             configuration; ",
        ),
        bold("assent status"),
        roman(
            " then names, one line each, anything still missing and how to fix it; finally \
             try ",
        ),
        bold("assent run --reason \"first try\" -- id -u"),
        roman("."),
    ]);
}

fn sudo_entry(page: &mut Roff) {
    page.control("SH", ["THE SUDO ENTRY"]);
    page.text([roman(
        "A symlink named sudo pointing at assent, early in the agent's PATH, gives agents that \
         type sudo by habit the approval flow unchanged:",
    )]);
    page.control("PP", []).text([bold(sudo::USAGE)]);
    let refused = format!(
        "-i, -s, -E, -e, -b, -H, -P, -S, -g and every other option are refused by name, with \
         what to do instead, and status {}.",
        Exit::Usage.code()
    );
    let never_ask = format!(
        "Never asks a human: runs at once on a live cached grant for exactly this command, \
         else exits {} at once with \"approval required; run without -n to ask the \
         approver\".",
        Exit::ApprovalRequired.code()
    );
    let items: [(&str, &str); 7] = [
        (
            "-u USER, -uUSER, --user USER, --user=USER",
            "Whom to run as; root when absent. Numeric #UID is not supported.",
        ),
        ("-n, --non-interactive", &never_ask),
        (
            "-l, --list",
            "Lists the caller's live cached grants: what runs now without asking.",
        ),
        (
            "-k, -K, -v",
            "Accepted and do nothing (status 0): assent keeps no password timestamp. -k \
             COMMAND runs COMMAND as usual.",
        ),
        (
            "NAME=VALUE",
            "Words before the command ask for extra environment variables, as with sudo.",
        ),
        ("-h, --help", "The usage. -V, --version: assent's version."),
        ("other options", &refused),
    ];
    entries(page, Face::Bold, items);
    page.control("PP", []).text([roman(
        "The reason comes from ASSENT_REASON; the grant asked for is once.",
    )]);
}

fn environment(page: &mut Roff, cmd: &Command) {
    page.control("SH", ["ENVIRONMENT"]);
    // The variable --reason falls back to, as clap reads it.
    let reason_env = cmd
        .find_subcommand("run")
        .and_then(|run| run.get_arguments().find(|a| a.get_long() == Some("reason")))
        .and_then(Arg::get_env)
        .map(|env| env.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rows = [
        (
            "ASSENT_RELAY".to_owned(),
            format!(
                "The relay URL (ws:// or wss://). Overrides relay in {AGENT_TOML}; --relay \
                 overrides both. Default: {DEFAULT_RELAY}."
            ),
        ),
        (
            reason_env,
            "The reason shown to the approver when --reason is not given, and the only way to \
             give one through the sudo entry."
                .to_owned(),
        ),
        (
            "ASSENT_QUIET".to_owned(),
            format!(
                "Set to 1 (anything but empty or 0): no informational lines on stderr, only \
                 failures, as quiet = true in {AGENT_TOML}."
            ),
        ),
        (
            "XDG_CONFIG_HOME, XDG_STATE_HOME".to_owned(),
            "Where the files below live; default ~/.config and ~/.local/state.".to_owned(),
        ),
        (
            "PATH".to_owned(),
            format!(
                "Searched for {ELEVATOR_NAME} when {AGENT_TOML} does not name it. Never \
                 searched for the program to run: a bare name is looked up in the elevator's \
                 secure_path."
            ),
        ),
    ];
    entries(page, Face::Bold, rows);
}

fn files(page: &mut Roff) {
    page.control("SH", ["FILES"]);
    let rows = [
        (
            format!("$XDG_CONFIG_HOME/assent/{KEY_FILE}, {PUBLIC_KEY_FILE}"),
            "The agent key (OpenSSH Ed25519, mode 0600; refused when others can read it) and \
             its public half. assent keygen writes them; keys from ssh-keygen -t ed25519 work \
             too."
                .to_owned(),
        ),
        (
            format!("$XDG_CONFIG_HOME/assent/{AGENT_TOML}"),
            format!(
                "Optional settings, unknown fields refused: relay = URL (default \
                 {DEFAULT_RELAY}); name = the agent name shown to approvers (default: the OS \
                 user name); elevator = absolute path of {ELEVATOR_NAME} (default: the first \
                 on PATH); timeout = how long to wait for a decision (default {}); \
                 connect_timeout = how long a relay that cannot be reached at all is tried \
                 (default {}); quiet = true for no informational lines on stderr.",
                duration::format(DEFAULT_TIMEOUT_S),
                duration::format(DEFAULT_CONNECT_TIMEOUT_S)
            ),
        ),
        (
            format!("$XDG_STATE_HOME/assent/{GRANTS_DIR}/"),
            "The grant cache (directory 0700, files 0600): one file per exact command and host \
             holding the signed request and decision of a timed or always grant."
                .to_owned(),
        ),
        (
            format!("$XDG_STATE_HOME/assent/{STATUSES_DIR}/"),
            "The latest signed status seen from each console that approved a cached grant \
             (directory 0700, files 0600). One the relay was asked about within the last 10 s \
             is used without asking it again."
                .to_owned(),
        ),
        (
            HOST_ID.to_owned(),
            "This install's host id (root-owned, readable by all), which every request names \
             beside the hostname, so that a grant for one machine never runs on a clone that \
             shares its name. assent run exits 78 when it is missing or malformed."
                .to_owned(),
        ),
        (
            ELEVATOR_CONFIG.to_owned(),
            "The elevator's configuration, only read here: its secure_path and \
             status_max_age_s shape requests, and assent status checks that this user is a \
             [[requester]] and that an [[approver]] is listed."
                .to_owned(),
        ),
    ];
    entries(page, Face::Italic, rows);
}

fn exit_status(page: &mut Roff) {
    assent_cli_manual::exit_status(
        page,
        vec![bold("assent run"), roman(" and the sudo entry:")],
        exit_statuses(),
    );
    page.control("PP", []).text([
        bold("assent status"),
        roman(format!(
            " exits 0 when assent run has everything it needs, {} when something is missing \
             or wrong, {} when only the relay is unreachable. ",
            Exit::Config.code(),
            Exit::Retry.code()
        )),
        bold("assent keygen"),
        roman(" and "),
        bold("assent grants"),
        roman(format!(
            " exit 0, or {} when the key or the configuration is missing or bad; {} on a \
             usage error.",
            Exit::Config.code(),
            Exit::Usage.code()
        )),
    ]);
}

fn see_also(page: &mut Roff) {
    assent_cli_manual::see_also(
        page,
        &[
            ("assent-console", 1),
            ("assent-elevate", 8),
            ("assent-relay", 1),
        ],
    );
}

#[cfg(test)]
mod tests {
    use assent_cli_manual::{man_page_problems, missing_exit_statuses};

    use super::*;

    #[test]
    fn the_man_page_has_every_command_option_and_exit_status() {
        let page = generate(Generate::Man);
        let own_sections = ["THE SUDO ENTRY", "ENVIRONMENT", "FILES"];
        let problems = man_page_problems(&page, &Cli::command(), &own_sections);
        assert!(problems.is_empty(), "{problems:?}\n{page}");
        let codes = exit_statuses().into_iter().map(|(code, _)| code);
        assert_eq!(missing_exit_statuses(&page, codes), Vec::<String>::new());
        assert_eq!(
            missing_exit_statuses(&page, [64, 75, 77, 78, 130]),
            Vec::<String>::new()
        );
        for needle in [
            "ASSENT_RELAY",
            "ASSENT_REASON",
            "agent.toml",
            "agent.key.pub",
            "/etc/assent/elevator.toml",
            "/etc/assent/host\\-id",
            "\\-u USER",
            "[\\-n]",
            "ASSENT_QUIET",
            "connect_timeout",
            "\\-l, \\-\\-list",
        ] {
            assert!(page.contains(needle), "{needle}");
        }
    }

    #[test]
    fn completions_name_every_subcommand() {
        for kind in Generate::COMPLETIONS {
            let script = generate(kind);
            for word in [
                "run", "keygen", "grants", "status", "reason", "grant", "timeout",
            ] {
                assert!(script.contains(word), "{kind:?} lacks {word}");
            }
        }
    }
}
