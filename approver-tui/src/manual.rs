//! The man page and shell completions, generated from the real command line
//! ([`crate::cli::Cli`]) and the real key table ([`crate::keys::BINDINGS`]), so neither can
//! drift from what the binary does. `assent-console --generate KIND` prints them.

use clap::{Arg, Command, CommandFactory};
use clap_complete::Shell;
use roff::{Inline, Roff, bold, italic, roman};

use crate::cli::{Cli, Generate};
use crate::config::{ELEVATOR_CONFIG, EXIT_CONFIG};
use crate::keys::{self, BINDINGS, Scope};
use crate::scripted::EXIT_UNREACHABLE;

const BIN: &str = "assent-console";

/// What `--generate KIND` prints.
pub fn generate(kind: Generate) -> String {
    let cmd = Cli::command();
    match kind {
        Generate::Man => man_page(cmd),
        Generate::CompleteBash => completions(Shell::Bash, cmd),
        Generate::CompleteZsh => completions(Shell::Zsh, cmd),
        Generate::CompleteFish => completions(Shell::Fish, cmd),
    }
}

/// A completion script for `shell`.
pub fn completions(shell: Shell, mut cmd: Command) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page (section 1, roff).
pub fn man_page(cmd: Command) -> String {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);

    let mut page = Roff::new();
    description(&mut page);
    out.extend(page.render().into_bytes());
    let _ = man.render_options_section(&mut out);

    let mut page = Roff::new();
    commands(&mut page, &cmd);
    key_table(&mut page);
    files(&mut page);
    exit_status(&mut page);
    see_also(&mut page);
    out.extend(page.render().into_bytes());
    let _ = man.render_version_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// More than `--help` says: what is shown, what is signed, the first run.
fn description(page: &mut Roff) {
    page.control("PP", []).text([roman(
        "For the selected request, Pending shows the agent's name and key fingerprint, \
         user and run-as, host, program and argv, working directory, extra environment, \
         reason, the requested and the chosen grant, the time left, and risk flags (a \
         first-seen agent key, running as root, a program or argument the requester can \
         write, inline scripts, destructive patterns, loader variables in the environment, \
         a world-writable working directory). Every string from the agent is shown with \
         control characters escaped. History lists decided requests from the decision \
         log; Grants lists live timed and always grants, which can be revoked.",
    )]);
    page.control("PP", []).text([roman(
        "Nothing is signed without an explicit keystroke, and quitting signs nothing. \
         Approving an always grant asks for y. The console publishes a signed status \
         every 30 seconds and at once on a revocation; timed and always grants work \
         only while a fresh status does not revoke them.",
    )]);
    page.control("PP", []).text([
        bold("First run. "),
        roman(
            "Started on a terminal without an approver key, the console offers to make one \
             (exactly as ",
        ),
        bold("keygen"),
        roman(
            " does), prints the [[approver]] block to add to the elevator configuration, \
             and opens. Without a terminal it exits with status 78 and a line naming the \
             missing file. With ",
        ),
        bold("--trust"),
        roman(", run as root, the new key is also listed in "),
        italic(ELEVATOR_CONFIG),
        roman("."),
    ]);
}

/// Each subcommand: its synopsis, what it does and its own options.
fn commands(page: &mut Roff, cmd: &Command) {
    page.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page.control("SS", [sub.get_name()]);
        let args: Vec<&Arg> = sub.get_arguments().filter(|a| own_arg(a)).collect();
        let mut synopsis = vec![bold(format!("{BIN} {}", sub.get_name()))];
        for arg in &args {
            synopsis.push(roman(" "));
            synopsis.extend(arg_synopsis(arg));
        }
        page.text(synopsis);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            page.control("PP", []).text([roman(about.to_string())]);
        }
        for arg in args.iter().filter(|a| !a.is_positional()) {
            page.control("TP", []).text(option_words(arg));
            let mut help = arg
                .get_long_help()
                .or_else(|| arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if takes_value(arg) && !defaults.is_empty() {
                help.push_str(&format!(" (default: {})", defaults.join(", ")));
            }
            page.text([roman(help)]);
        }
    }
}

/// Arguments a subcommand declares itself (not the global ones or the generated --help).
fn own_arg(arg: &Arg) -> bool {
    !arg.is_hide_set() && !arg.is_global_set() && !matches!(arg.get_id().as_str(), "help")
}

/// `ID`, or `[--grant GRANT]` for an option.
fn arg_synopsis(arg: &Arg) -> Vec<Inline> {
    if arg.is_positional() {
        return vec![italic(value_name(arg))];
    }
    let mut inlines = vec![roman("[")];
    inlines.extend(option_words(arg));
    inlines.push(roman("]"));
    inlines
}

/// `--grant GRANT`.
fn option_words(arg: &Arg) -> Vec<Inline> {
    let long = arg.get_long().unwrap_or_else(|| arg.get_id().as_str());
    let mut inlines = vec![bold(format!("--{long}"))];
    if takes_value(arg) {
        inlines.push(roman(" "));
        inlines.push(italic(value_name(arg)));
    }
    inlines
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

/// The key table, straight from the bindings the console uses (as `?` shows it).
fn key_table(page: &mut Roff) {
    page.control("SH", ["KEYS"]);
    let mut scopes: Vec<Scope> = Vec::new();
    for binding in BINDINGS {
        if !scopes.contains(&binding.scope) {
            scopes.push(binding.scope);
        }
    }
    for scope in scopes {
        page.control("SS", [scope.title()]);
        for binding in keys::in_scope(scope) {
            let mut label = Vec::new();
            for (i, key) in binding.keys.iter().enumerate() {
                if i > 0 {
                    label.push(roman(", "));
                }
                label.push(bold(key.label()));
            }
            page.control("TP", [])
                .text(label)
                .text([roman(binding.help)]);
        }
    }
}

fn files(page: &mut Roff) {
    page.control("SH", ["FILES"]);
    let entries: [(&str, &str); 4] = [
        (
            "$XDG_CONFIG_HOME/assent/approver.key, approver.key.pub",
            "The approver key (mode 0600; the console refuses a key that group or others can \
             access, or that another user owns) and its public half.",
        ),
        (
            "$XDG_CONFIG_HOME/assent/console.toml",
            "Optional: name, listen, relay, notify = false, once_window_s.",
        ),
        (
            "$XDG_STATE_HOME/assent/decisions.jsonl",
            "The decision log, with the signed envelopes; History and Grants are rebuilt and \
             re-verified from it at start.",
        ),
        (
            ELEVATOR_CONFIG,
            "The elevator's configuration on this host: keygen --trust appends the \
             [[approver]] block here (as root, atomically, never twice).",
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
    let codes = [
        (
            "0".to_string(),
            "The console was quit, or the command did what it was asked (for keygen --trust, \
             also when the approver was already listed).",
        ),
        (
            "1".to_string(),
            "The command failed: no pending request with that id, the relay refused the \
             decision, keygen would overwrite a key without --force, or --trust was refused \
             (not root, or the name or key is listed with something else).",
        ),
        (
            "2".to_string(),
            "Usage error: an unknown option or a missing argument.",
        ),
        (
            EXIT_UNREACHABLE.to_string(),
            "The relay could not be reached (list, approve, deny); try again later.",
        ),
        (
            EXIT_CONFIG.to_string(),
            "Configuration: no approver key (when not on a terminal, or the offer to make one \
             was declined), a key group or others can access, a bad console.toml or --listen \
             address, or an elevator configuration that does not parse.",
        ),
    ];
    for (code, what) in codes {
        page.control("TP", [])
            .text([bold(code)])
            .text([roman(what)]);
    }
}

fn see_also(page: &mut Roff) {
    page.control("SH", ["SEE ALSO"]).text([
        bold("assent"),
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
    fn the_man_page_has_every_command_option_and_key() {
        let page = generate(Generate::Man);
        assert!(page.contains(".TH assent-console 1"), "{page}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "KEYS",
        ] {
            assert!(page.contains(&format!(".SH {section}\n")), "{section}");
        }
        assert!(page.contains(".SH \"EXIT STATUS\"\n") || page.contains(".SH EXIT STATUS\n"));
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
        for binding in BINDINGS {
            assert!(page.contains(binding.help), "{}", binding.help);
        }
        for code in ["0", "1", "2", "75", "78"] {
            assert!(
                page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "exit {code}"
            );
        }
        assert!(!page.contains("\\-\\-generate"), "hidden flags stay hidden");
        assert!(
            !page.contains("elevator\\-config"),
            "hidden flags stay hidden"
        );
    }

    #[test]
    fn completions_name_the_subcommands() {
        for kind in [
            Generate::CompleteBash,
            Generate::CompleteZsh,
            Generate::CompleteFish,
        ] {
            let script = generate(kind);
            for sub in ["keygen", "list", "approve", "deny", "--trust"] {
                assert!(script.contains(sub), "{kind:?} lacks {sub}");
            }
        }
    }
}
