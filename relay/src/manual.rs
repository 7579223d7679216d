//! The binary's man page and shell completions, generated from its real command line
//! ([`crate::Cli`]), its exit statuses ([`crate::EXIT_STATUSES`]) and the library's default
//! limits, so none of them can drift from what the binary does. `assent-relay --generate KIND`
//! prints them.

use assent_cli_manual::roff::{Roff, bold, roman};
use assent_cli_manual::{Face, Generate, Manual, entries};
use assent_relay::Limits;
use clap::{Command, CommandFactory};

use crate::{Cli, EXIT_STATUSES};

const BIN: &str = "assent-relay";

/// Where the packaged systemd unit keeps the relay's configuration.
const CONFIG_FILE: &str = "/etc/assent/relay.toml";

/// Where the packaged systemd unit keeps the certificate and key for wss://.
const TLS_FILES: &str = "/etc/assent/tls/relay.crt, relay.key";

/// What `--generate KIND` prints.
pub fn generate(kind: Generate) -> String {
    assent_cli_manual::generate(kind, Cli::command(), BIN, man_page)
}

/// The man page (section 1, roff).
fn man_page(cmd: Command) -> String {
    Manual::new(cmd)
        .roff(|page, cmd| {
            page.control("SH", ["SYNOPSIS"]);
            page.text(assent_cli_manual::usage(BIN, cmd));
        })
        .description(description)
        .options()
        .roff(|page, _| {
            configuration(page);
            environment(page);
            files(page);
            assent_cli_manual::exit_status(
                page,
                Vec::new(),
                EXIT_STATUSES.map(|(code, meaning)| (code.to_string(), meaning)),
            );
            assent_cli_manual::see_also(
                page,
                &[("assent", 1), ("assent-console", 1), ("assent-elevate", 8)],
            );
        })
        .finish()
}

/// What `--help` cannot say at length: what the relay keeps, and who may connect.
fn description(page: &mut Roff) {
    page.control("PP", []).text([roman(
        "The relay keeps everything in memory and nothing across restarts: pending requests \
         until they are decided or expire, each decision until its request's deadline (so a \
         shim that reconnects and submits its request again gets it), the ids of dropped \
         requests for remember_ids_s more (an id never names two requests), and the latest \
         signed status of each console of each approver (at most 16 consoles per approver \
         key). After a restart, shims submit their requests again and consoles publish their \
         statuses again.",
    )]);
    page.control("PP", []).text([
        bold("SIGHUP"),
        roman(
            " reloads the configuration file and, for wss://, the certificate and key, \
             without dropping pending requests, decisions, statuses or connections; open \
             connections keep their per-connection limits. If the new file or certificate is \
             unusable, the relay logs why and keeps the old ones. The packaged systemd unit \
             sends it on systemctl reload.",
        ),
    ]);
    page.control("PP", []).text([
        roman("Every client logs in by signing the relay's nonce with its key. Approvers must be "),
        roman("listed in the configuration; agents are admitted by its agent policy. Without "),
        bold("--config"),
        roman(
            ", any agent key connecting from a loopback address is admitted and no approver \
             can log in, which suits only a test.",
        ),
    ]);
}

/// The relay config file, summarised; the limits and their defaults straight from the library.
fn configuration(page: &mut Roff) {
    page.control("SH", ["CONFIGURATION"]);
    page.text([
        roman("The file given with "),
        bold("--config"),
        roman(
            " is TOML. Unknown keys are errors: the relay then exits with status 78 and one \
             line naming the file and the problem.",
        ),
    ]);
    entries(
        page,
        Face::Bold,
        [
            (
                "[[approver]] name, key",
                "A key that may log in as an approver and sign decisions and statuses: a name \
                 and an OpenSSH ssh-ed25519 public key line, exactly as in the elevator's \
                 elevator.toml. One table per approver; names and keys are unique.",
            ),
            (
                "[agents] policy",
                "Which agent keys that are not listed are admitted: \"loopback-any\" (the \
                 default) admits any key connecting from a loopback address, \"allowlist\" \
                 admits none.",
            ),
            (
                "[[agent]] name, key",
                "An agent key admitted under either policy, from anywhere, and never shown to \
                 approvers as a first-seen key.",
            ),
            (
                "[limits]",
                "Bounds on what clients may do; each is optional, and each must be greater \
                 than 0:",
            ),
        ],
    );
    page.control("RS", []);
    let limits = limit_entries();
    entries(
        page,
        Face::Bold,
        limits
            .iter()
            .map(|(name, default, what)| (*name, format!("{what} Default: {default}."))),
    );
    page.control("RE", []);
}

/// Each key of `[limits]`, its default, and what it bounds.
fn limit_entries() -> [(&'static str, u64, &'static str); 16] {
    let d = Limits::default();
    let n = |v: usize| v as u64;
    [
        (
            "max_frame_bytes",
            n(d.max_frame_bytes),
            "Largest WebSocket frame or message accepted from a client, in bytes (at least \
             4096).",
        ),
        (
            "login_timeout_s",
            d.login_timeout_s,
            "Seconds from accepting a connection to a verified login, TLS and WebSocket \
             handshakes included.",
        ),
        (
            "max_pending_per_agent",
            n(d.max_pending_per_agent),
            "Undecided requests one agent key may have queued at once.",
        ),
        (
            "max_pending_total",
            n(d.max_pending_total),
            "Requests held in total, undecided or decided and kept for a reconnecting shim.",
        ),
        (
            "requests_per_agent_per_minute",
            u64::from(d.requests_per_agent_per_minute),
            "Submissions one agent key may make per minute, re-submissions included.",
        ),
        (
            "messages_per_connection_per_second",
            u64::from(d.messages_per_connection_per_second),
            "Messages one connection may send per second, sustained (twice that in a burst).",
        ),
        (
            "max_connections",
            n(d.max_connections),
            "Open connections, logged in or not.",
        ),
        (
            "ping_interval_s",
            d.ping_interval_s,
            "Seconds between the relay's pings on an idle connection.",
        ),
        (
            "idle_timeout_s",
            d.idle_timeout_s,
            "Seconds after which a connection that sends nothing, not even a pong, is closed \
             (longer than ping_interval_s).",
        ),
        (
            "max_request_lifetime_s",
            d.max_request_lifetime_s,
            "Seconds after which a request is dropped even if it asks to live longer.",
        ),
        (
            "remember_ids_s",
            d.remember_ids_s,
            "Seconds a request id stays taken after its request ended, so that no other \
             request can use it.",
        ),
        (
            "max_remembered_ids",
            n(d.max_remembered_ids),
            "Request ids remembered at once, held requests included; when full, requests \
             with new ids are refused (no id is forgotten early).",
        ),
        (
            "max_remembered_ids_per_agent",
            n(d.max_remembered_ids_per_agent),
            "The same, per agent key.",
        ),
        (
            "outbound_queue",
            n(d.outbound_queue),
            "Messages waiting to be written to one connection; a client that lets more pile \
             up is cut off.",
        ),
        (
            "write_timeout_s",
            d.write_timeout_s,
            "Seconds one write (a frame, or a batch of up to 64 queued frames) may take \
             before the connection is given up.",
        ),
        (
            "revocation_grace_s",
            d.revocation_grace_s,
            "Seconds after a revoked grant's until during which a console's statuses must \
             still list the revocation; a status that drops it earlier is refused.",
        ),
    ]
}

fn environment(page: &mut Roff) {
    page.control("SH", ["ENVIRONMENT"]);
    entries(
        page,
        Face::Bold,
        [(
            "RUST_LOG",
            "What is logged to stderr, as a tracing filter (for example debug, or \
             assent_relay=trace); overrides -v.",
        )],
    );
}

fn files(page: &mut Roff) {
    page.control("SH", ["FILES"]);
    entries(
        page,
        Face::Italic,
        [
            (
                CONFIG_FILE,
                "The relay configuration the packaged systemd unit passes with --config; the \
                 relay reads no file that --config does not name.",
            ),
            (
                TLS_FILES,
                "The certificate chain and private key (PEM) the packaged unit serves wss:// \
                 with (--tls-cert, --tls-key); the key stays readable by root only and \
                 reaches the service as a systemd credential.",
            ),
        ],
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use assent_cli_manual::{man_page_problems, missing_exit_statuses};
    use assent_relay::RelayConfig;

    use super::*;

    /// The keys `[limits]` accepts, as the parser lists them for an unknown one.
    fn accepted_limit_keys() -> BTreeSet<String> {
        let err = RelayConfig::from_toml_str("[limits]\nno_such_limit = 1\n")
            .expect_err("an unknown limit is refused");
        let problem = err.problem;
        let (_, expected) = problem
            .split_once("expected one of")
            .unwrap_or_else(|| panic!("the parser no longer lists the keys: {problem}"));
        expected
            .split(',')
            .map(|key| key.trim().trim_matches('`').to_owned())
            .collect()
    }

    #[test]
    fn the_limits_listed_are_exactly_those_the_relay_takes_with_their_defaults() {
        let listed: BTreeSet<String> = limit_entries()
            .iter()
            .map(|(name, _, _)| (*name).to_owned())
            .collect();
        assert_eq!(listed, accepted_limit_keys());
        // Each default, written back into a config, gives the default limits.
        let text: String = limit_entries()
            .iter()
            .map(|(name, default, _)| format!("{name} = {default}\n"))
            .collect();
        let config = RelayConfig::from_toml_str(&format!("[limits]\n{text}")).unwrap();
        assert_eq!(config.limits, Limits::default());
        // And a changed value shows: each line is read.
        let (name, default, _) = limit_entries()[2];
        let changed = text.replace(
            &format!("{name} = {default}\n"),
            &format!("{name} = {}\n", default + 1),
        );
        let config = RelayConfig::from_toml_str(&format!("[limits]\n{changed}")).unwrap();
        assert_ne!(config.limits, Limits::default());
    }

    #[test]
    fn the_man_page_has_every_option_section_and_exit_status() {
        let page = generate(Generate::Man);
        let own_sections = ["CONFIGURATION", "ENVIRONMENT", "FILES"];
        let problems = man_page_problems(&page, &Cli::command(), &own_sections);
        assert!(problems.is_empty(), "{problems:?}\n{page}");
        assert_eq!(
            missing_exit_statuses(&page, [0, 64, 69, 78]),
            Vec::<String>::new()
        );
        let default = format!(
            "queued at once. Default: {}.",
            Limits::default().max_pending_per_agent
        );
        for needle in [
            default.as_str(),
            "/etc/assent/relay.toml",
            "[[approver]] name, key",
            "[agents] policy",
            "loopback\\-any",
            "allowlist",
            "[[agent]] name, key",
            "\\fBmax_pending_per_agent\\fR\nUndecided",
            "RUST_LOG",
            "\\fBassent\\-console\\fR(1)",
        ] {
            assert!(page.contains(needle), "{needle}\n{page}");
        }
    }
}
