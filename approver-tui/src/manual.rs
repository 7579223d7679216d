//! The man page and shell completions, generated from the real command line
//! ([`crate::cli::Cli`]) and the real key table ([`crate::keys::BINDINGS`]), so neither can
//! drift from what the binary does. `assent-console --generate KIND` prints them.

use assent_cli_manual::roff::{Roff, bold, italic, roman};
use assent_cli_manual::{Face, Generate, Manual, entries};
use clap::{Command, CommandFactory};

use crate::cli::Cli;
use crate::config::{ELEVATOR_CONFIG, EXIT_CONFIG, EXIT_USAGE};
use crate::keys::{self, BINDINGS, Scope};
use crate::scripted::EXIT_UNREACHABLE;

const BIN: &str = "assent-console";

/// What `--generate KIND` prints.
pub fn generate(kind: Generate) -> String {
    assent_cli_manual::generate(kind, Cli::command(), BIN, man_page)
}

/// The man page (section 1, roff).
pub fn man_page(cmd: Command) -> String {
    Manual::new(cmd)
        .synopsis()
        .description(description)
        .options()
        .roff(|page, cmd| {
            assent_cli_manual::commands(page, cmd, BIN);
            key_table(page);
            files(page);
            exit_status(page);
            see_also(page);
        })
        .finish()
}

/// More than `--help` says: what is shown, what is signed, the first run.
fn description(page: &mut Roff) {
    page.control("PP", []).text([roman(
        "For the selected request, Pending shows its reference (the start of the SHA-256 \
         of the signed request), the agent's name and key fingerprint, user and run-as, \
         host, program and argv, working directory, extra environment, reason, the \
         requested and the chosen grant, the time left, and risk flags (an agent key never \
         approved, a known name with a new key, what the elevator here would refuse, an \
         argv[0] that does not name the program, running as root, a program or argument \
         the requester can write, inline scripts, destructive patterns, loader variables \
         in the environment, a world-writable working directory). Every line that names a \
         request shows the program first when argv[0] does not name it. Every string from \
         the agent is shown with control, invisible and look-alike space characters \
         escaped. History lists decided requests from the decision log; Grants lists live \
         timed and always grants, which can be revoked.",
    )]);
    page.control("PP", []).text([roman(
        "Program, run-as, working directory, environment, grant and expiry stay on the \
         screen at every size from 80x24. A request that has not been on the screen whole \
         is not approved by a: it opens the full view, where a approves once every line \
         has been shown. For one second after a request comes under the cursor by itself, \
         a and d do nothing.",
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
    let rows: [(&str, &str); 4] = [
        (
            "$XDG_CONFIG_HOME/assent/approver.key, approver.key.pub",
            "The approver key (mode 0600; the console refuses a key that group or others can \
             access, or that another user owns) and its public half.",
        ),
        (
            "$XDG_CONFIG_HOME/assent/console.toml",
            "Optional: name, listen, relay, relay_ca (a PEM file of CAs to trust for a wss:// \
             relay), notify = false, once_window_s, and [[agent]] entries (name, key: the line \
             of the agent's .pub file) for agent keys known already, which are not flagged \
             first-seen.",
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
    entries(page, Face::Italic, rows);
}

fn exit_status(page: &mut Roff) {
    let codes = [
        (
            "0".to_string(),
            "The console was quit, or the command did what it was asked (for keygen --trust, \
             also when the approver was already listed).",
        ),
        (
            "1".to_string(),
            "The command failed: no pending request with that id, the relay refused the \
             decision, or --trust was refused (not root, or the name or key is listed with \
             something else).",
        ),
        (
            EXIT_USAGE.to_string(),
            "Usage error: an unknown option, a missing or malformed argument (such as a \
             --grant that is not once, timed:DURATION or always), or --trust with list, \
             approve or deny. One line says what was wrong.",
        ),
        (
            EXIT_UNREACHABLE.to_string(),
            "The relay could not be reached (list, approve, deny); try again later.",
        ),
        (
            EXIT_CONFIG.to_string(),
            "Configuration: no approver key (when not on a terminal, or the offer to make one \
             was declined), keygen would replace an existing key without --force, a key group or others can access, a bad console.toml or --listen \
             address, an elevator configuration that does not parse, or a relay that cannot \
             be used as configured (list, approve, deny): its certificate is not trusted \
             (set relay_ca in console.toml or ASSENT_RELAY_CA) or names another host, ws:// \
             sent to a TLS port (use wss://), or a refused login (the key is not listed as \
             an approver). No retry helps; the line says what to fix.",
        ),
    ];
    assent_cli_manual::exit_status(page, Vec::new(), codes);
}

fn see_also(page: &mut Roff) {
    assent_cli_manual::see_also(
        page,
        &[("assent", 1), ("assent-elevate", 8), ("assent-relay", 1)],
    );
}

#[cfg(test)]
mod tests {
    use assent_cli_manual::{man_page_problems, missing_exit_statuses};

    use super::*;

    #[test]
    fn the_man_page_has_every_command_option_and_key() {
        let page = generate(Generate::Man);
        let own_sections = ["KEYS", "FILES"];
        let problems = man_page_problems(&page, &Cli::command(), &own_sections);
        assert!(problems.is_empty(), "{problems:?}\n{page}");
        for binding in BINDINGS {
            assert!(page.contains(binding.help), "{}", binding.help);
        }
        assert_eq!(
            missing_exit_statuses(&page, [0, 1, 64, 75, 78]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn completions_name_the_subcommands() {
        for kind in Generate::COMPLETIONS {
            let script = generate(kind);
            let trust = match kind {
                Generate::CompleteFish => "-l trust",
                _ => "--trust",
            };
            for sub in ["keygen", "list", "approve", "deny", trust] {
                assert!(script.contains(sub), "{kind:?} lacks {sub}");
            }
        }
    }
}
