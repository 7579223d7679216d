//! The man page and shell completions, generated from the real command line
//! ([`crate::cli::Cli`]), the exit status table and the file names the shim uses, so none of
//! them can drift from what the binary does. `assent --generate KIND` prints them.

use clap::{Arg, ArgAction, Command, CommandFactory};
use clap_complete::Shell;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use crate::cli::{Cli, Generate, exit_statuses};
use crate::config::{
    AGENT_TOML, DEFAULT_RELAY, DEFAULT_TIMEOUT_S, ELEVATOR_CONFIG, ELEVATOR_NAME, GRANTS_DIR,
    KEY_FILE, PUBLIC_KEY_FILE,
};
use crate::duration;
use crate::failure::Exit;
use crate::sudo;

const BIN: &str = "assent";

/// What `--generate KIND` prints.
pub fn generate(kind: Generate) -> String {
    match kind {
        Generate::Man => man_page(),
        Generate::CompleteBash => completions(Shell::Bash),
        Generate::CompleteZsh => completions(Shell::Zsh),
        Generate::CompleteFish => completions(Shell::Fish),
    }
}

fn completions(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page (section 1, roff).
fn man_page() -> String {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);

    let mut page = Roff::new();
    synopsis(&mut page, &cmd);
    out.extend(page.render().into_bytes());
    let _ = man.render_description_section(&mut out);

    let mut page = Roff::new();
    description(&mut page);
    out.extend(page.render().into_bytes());
    let _ = man.render_options_section(&mut out);

    let mut page = Roff::new();
    commands(&mut page, &cmd);
    sudo_entry(&mut page);
    environment(&mut page, &cmd);
    files(&mut page);
    exit_status(&mut page);
    see_also(&mut page);
    out.extend(page.render().into_bytes());
    let _ = man.render_version_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One line per subcommand, then the `sudo` form.
fn synopsis(page: &mut Roff, cmd: &Command) {
    page.control("SH", ["SYNOPSIS"]);
    for sub in visible_subcommands(cmd) {
        page.text(subcommand_synopsis(sub));
        page.control("br", []);
    }
    page.text([
        bold("sudo"),
        roman(" [-u USER] [-n] [--] "),
        italic("COMMAND..."),
    ]);
}

fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

fn subcommand_synopsis(sub: &Command) -> Vec<Inline> {
    let mut words = vec![bold(format!("{BIN} {}", sub.get_name()))];
    for arg in sub.get_arguments().filter(|a| own_arg(a)) {
        words.push(roman(" "));
        words.extend(arg_synopsis(arg));
    }
    words
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
        "Timed and always grants are cached per exact command and reused without a prompt \
         while their window lasts and the approver's latest signed status, fetched fresh from \
         the relay, does not revoke them.",
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

/// Each subcommand: its synopsis, what it does and its own options.
fn commands(page: &mut Roff, cmd: &Command) {
    page.control("SH", ["COMMANDS"]);
    for sub in visible_subcommands(cmd) {
        page.control("SS", [sub.get_name()]);
        page.text(subcommand_synopsis(sub));
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            for paragraph in about.to_string().split("\n\n") {
                page.control("PP", [])
                    .text([roman(paragraph.replace('\n', " "))]);
            }
        }
        for arg in sub.get_arguments().filter(|a| own_arg(a)) {
            page.control("TP", []).text(option_words(arg));
            let mut help = sentence(
                &arg.get_long_help()
                    .or_else(|| arg.get_help())
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            );
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if takes_value(arg) && !defaults.is_empty() {
                help.push_str(&format!(" Default: {}.", defaults.join(", ")));
            }
            if let Some(env) = arg.get_env() {
                help.push_str(&format!(" Also taken from {}.", env.to_string_lossy()));
            }
            page.text([roman(help)]);
        }
    }
}

/// clap drops a one-line doc comment's final period; the man page puts it back.
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() || text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// Arguments a subcommand declares itself (not the generated --help).
fn own_arg(arg: &Arg) -> bool {
    !arg.is_hide_set() && !arg.is_global_set() && arg.get_id() != "help"
}

/// `[--as USER]`, `[--env NAME=VALUE]...`, `[--force]`, `-- PROGRAM [ARGS...]`.
fn arg_synopsis(arg: &Arg) -> Vec<Inline> {
    if arg.is_positional() {
        let name = value_name(arg);
        return if arg.is_trailing_var_arg_set() {
            vec![
                roman("[--] "),
                italic(name),
                roman(" ["),
                italic("ARGS"),
                roman("...]"),
            ]
        } else {
            vec![italic(name)]
        };
    }
    let mut words = vec![roman("[")];
    words.extend(option_words(arg));
    words.push(roman("]"));
    if matches!(arg.get_action(), ArgAction::Append) {
        words.push(roman("..."));
    }
    words
}

/// `--grant GRANT`, or `PROGRAM` for a positional.
fn option_words(arg: &Arg) -> Vec<Inline> {
    if arg.is_positional() {
        return vec![italic(value_name(arg))];
    }
    let long = arg.get_long().unwrap_or_else(|| arg.get_id().as_str());
    let mut words = vec![bold(format!("--{long}"))];
    if takes_value(arg) {
        words.push(roman(" "));
        words.push(italic(value_name(arg)));
    }
    words
}

fn value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

fn sudo_entry(page: &mut Roff) {
    page.control("SH", ["THE SUDO ENTRY"]);
    page.text([roman(
        "A symlink named sudo pointing at assent, early in the agent's PATH, gives agents that \
         type sudo by habit the approval flow unchanged:",
    )]);
    page.control("PP", []).text([bold(sudo::USAGE)]);
    let refused = format!(
        "-i, -s, -E, -e, -l, -v, -k, -b, -H, -P, -S, -g and every other option are refused \
         by name, with status {}.",
        Exit::Usage.code()
    );
    let items: [(&str, &str); 5] = [
        (
            "-u USER, -uUSER, --user USER, --user=USER",
            "Whom to run as; root when absent. Numeric #UID is not supported.",
        ),
        (
            "-n, --non-interactive",
            "Accepted and changes nothing: assent never prompts on the caller's terminal (the \
             human approves on their own console), so it still waits for the approval, up to \
             the configured timeout.",
        ),
        (
            "NAME=VALUE",
            "Words before the command ask for extra environment variables, as with sudo.",
        ),
        ("-h, --help", "The usage. -V, --version: assent's version."),
        ("other options", &refused),
    ];
    for (option, what) in items {
        page.control("TP", [])
            .text([bold(option)])
            .text([roman(what)]);
    }
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
    let entries = [
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
    for (name, what) in entries {
        page.control("TP", [])
            .text([bold(name)])
            .text([roman(what)]);
    }
}

fn files(page: &mut Roff) {
    page.control("SH", ["FILES"]);
    let entries = [
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
                 on PATH); timeout = how long to wait for a decision (default {}).",
                duration::format(DEFAULT_TIMEOUT_S)
            ),
        ),
        (
            format!("$XDG_STATE_HOME/assent/{GRANTS_DIR}/"),
            "The grant cache (directory 0700, files 0600): one file per exact command holding \
             the signed request and decision of a timed or always grant."
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
    for (path, what) in entries {
        page.control("TP", [])
            .text([italic(path)])
            .text([roman(what)]);
    }
}

fn exit_status(page: &mut Roff) {
    page.control("SH", ["EXIT STATUS"]);
    page.text([bold("assent run"), roman(" and the sudo entry:")]);
    for (code, meaning) in exit_statuses() {
        page.control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
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
    page.control("SH", ["SEE ALSO"]).text([
        bold("assent-console"),
        roman("(1), "),
        bold("assent-elevate"),
        roman("(8), "),
        bold("assent-relay"),
        roman("(1)"),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_has_every_command_option_and_exit_status() {
        let page = generate(Generate::Man);
        assert!(page.contains("\n.TH assent 1 "), "{page}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "ENVIRONMENT",
            "FILES",
        ] {
            assert!(page.contains(&format!(".SH {section}\n")), "{section}");
        }
        for section in ["THE SUDO ENTRY", "EXIT STATUS", "SEE ALSO"] {
            assert!(page.contains(&format!(".SH \"{section}\"\n")), "{section}");
        }
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            assert!(
                page.contains(&format!(".SS {}\n", sub.get_name())),
                "{}",
                sub.get_name()
            );
            for arg in sub.get_arguments().filter(|a| own_arg(a)) {
                if let Some(long) = arg.get_long() {
                    // roff escapes the dashes.
                    assert!(page.contains(&format!("\\-\\-{long}")), "--{long}");
                }
            }
        }
        for (code, _) in exit_statuses() {
            assert!(
                page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "exit {code}"
            );
        }
        for code in ["64", "75", "77", "78", "130"] {
            assert!(page.contains(&format!(".TP\n\\fB{code}\\fR\n")), "{code}");
        }
        for needle in [
            "ASSENT_RELAY",
            "ASSENT_REASON",
            "agent.toml",
            "agent.key.pub",
            "/etc/assent/elevator.toml",
            "\\-u USER",
            "[\\-n]",
        ] {
            assert!(page.contains(needle), "{needle}");
        }
        assert!(
            !page.contains("\\-\\-generate KIND"),
            "hidden flags stay hidden"
        );
        assert!(
            !page.contains("\\-\\-generate\\fR"),
            "hidden flags stay hidden"
        );
    }

    #[test]
    fn completions_name_every_subcommand() {
        for kind in [
            Generate::CompleteBash,
            Generate::CompleteZsh,
            Generate::CompleteFish,
        ] {
            let script = generate(kind);
            for word in [
                "run", "keygen", "grants", "status", "reason", "grant", "timeout",
            ] {
                assert!(script.contains(word), "{kind:?} lacks {word}");
            }
        }
    }
}
