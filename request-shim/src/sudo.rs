//! The `sudo` entry: `assent` reached through a symlink named `sudo`.
//!
//! Agents type `sudo` by habit. The common forms work unchanged and go through the approval
//! flow; anything whose meaning assent cannot honour is refused by name, with what to do
//! instead, rather than ignored:
//!
//! ```text
//! sudo [-u USER | --user=USER] [-n] [-k] [--] [NAME=VALUE]... COMMAND [ARGS...]
//! sudo -l | -v | -k | -K
//! ```
//!
//! * `-u USER` / `-uUSER` / `--user USER` / `--user=USER` — whom to run as (default root).
//! * `-n` / `--non-interactive` — never ask a human: run on a usable cached grant, else exit 1
//!   at once (`assent: approval required; run without -n to ask the approver`).
//! * `-k` / `-K` / `-v` — accepted and do nothing: assent keeps no password timestamp (each
//!   command is approved on its own; timed grants are revoked on the approver's console).
//!   `-k COMMAND` runs COMMAND as usual.
//! * `-l` / `--list` — list the caller's live cached grants.
//! * `NAME=VALUE` before the command asks for an extra environment variable, as with sudo.
//! * `-h` / `--help` prints this usage; `-V` / `--version` prints assent's version.
//! * Options may be clustered (`-nu root`); option parsing stops at the first non-option.
//!
//! The reason shown to the approver comes from `ASSENT_REASON`.

use std::ffi::OsString;

use crate::failure::{Failure, Result};
use crate::request::parse_env_assignment;

pub const USAGE: &str = "sudo [-u USER] [-n] [--] COMMAND...";

/// The option forms that ask for nothing beyond the command itself.
pub const NO_OPS: &str = "-k, -K and -v";

/// What the `sudo` command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SudoCommand {
    Run(SudoRun),
    Help,
    Version,
    /// `-k`, `-K` or `-v` without a command: nothing to do.
    NoOp,
    /// `-l`: the caller's live grants.
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SudoRun {
    /// `-u USER`; root when absent.
    pub user: Option<String>,
    /// `-n` was given: never ask a human.
    pub non_interactive: bool,
    /// `NAME=VALUE` words before the command.
    pub env: Vec<(String, String)>,
    /// The command and its arguments, as typed.
    pub command: Vec<OsString>,
}

fn unsupported(option: &str) -> Failure {
    Failure::usage(format!(
        "sudo option {option} is not supported by assent's sudo entry; {}",
        instead(option)
    ))
}

/// What to do instead of an option assent cannot honour.
fn instead(option: &str) -> String {
    let what = match option {
        "-i" | "--login" | "-s" | "--shell" => {
            "assent approves one command, not a shell: run the command itself (sudo COMMAND), or one script with sudo sh -c 'COMMANDS'"
        }
        "-E" | "--preserve-env" => {
            "the caller's environment is not passed on: name each variable before the command (sudo NAME=VALUE COMMAND)"
        }
        "-e" | "--edit" => {
            "edit a copy, then install it: sudo install -m 0644 COPY /path/to/file (or sudo cp COPY /path/to/file)"
        }
        "-b" | "--background" => "put the command in the background from the shell: sudo COMMAND &",
        "-D" | "--chdir" => "cd first, then run it: (cd DIR && sudo COMMAND)",
        "-T" | "--command-timeout" => "use timeout(1): sudo timeout 60 COMMAND",
        "-g" | "--group" | "-P" | "--preserve-groups" => {
            "the command runs with the target user's groups: pick a user in that group with -u USER"
        }
        "-H" | "--set-home" => "HOME is already the target user's: drop -H",
        "-S" | "--stdin" | "-A" | "--askpass" | "-p" | "--prompt" | "-B" | "--bell" => {
            "assent asks for no password (a human approves on their console): drop the option"
        }
        "-N" | "--no-update" => "assent keeps no timestamp to update: drop the option",
        "-U" | "--other-user" => "sudo -l lists your own live grants only: drop -U",
        "-C" | "--close-from" => "descriptors above 2 are closed already: drop -C",
        "-R" | "--chroot" => "run chroot(8) as the command: sudo chroot DIR COMMAND",
        "-r" | "--role" | "-t" | "--type" => {
            "SELinux roles and types are not supported: drop the option"
        }
        _ => "",
    };
    if what.is_empty() {
        format!("use: {USAGE} (or sudo -l; {NO_OPS} are accepted and do nothing)")
    } else {
        format!("{what}; use: {USAGE}")
    }
}

fn check_user(user: &str) -> Result<String> {
    if user.is_empty() {
        return Err(Failure::usage(format!(
            "sudo option -u needs a user name; use: {USAGE}"
        )));
    }
    if user.starts_with('#') {
        return Err(Failure::usage(format!(
            "sudo -u {user}: numeric ids are not supported by assent's sudo entry; name the user, e.g. sudo -u root"
        )));
    }
    Ok(user.to_owned())
}

/// Parse the arguments after `sudo` (argv[0] excluded).
pub fn parse(args: &[OsString]) -> Result<SudoCommand> {
    let mut user = None;
    let mut non_interactive = false;
    // -k, -K, -v or -l: what to do when no command follows.
    let mut alone: Option<SudoCommand> = None;
    // -K, -v and -l take no command (-k may have one).
    let mut no_command = false;
    let mut i = 0;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            break; // not an option: the command (refused later if it is not UTF-8)
        };
        if arg == "--" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            match (name, value) {
                ("user", Some(value)) => user = Some(check_user(value)?),
                ("user", None) => {
                    i += 1;
                    let value = args.get(i).and_then(|v| v.to_str()).unwrap_or_default();
                    user = Some(check_user(value)?);
                }
                ("non-interactive", None) => non_interactive = true,
                ("reset-timestamp", None) => alone = Some(SudoCommand::NoOp),
                ("remove-timestamp", None) | ("validate", None) => {
                    alone = Some(SudoCommand::NoOp);
                    no_command = true;
                    i += 1;
                    break;
                }
                ("list", None) => {
                    alone = Some(SudoCommand::List);
                    no_command = true;
                    i += 1;
                    break;
                }
                ("help", None) => return Ok(SudoCommand::Help),
                ("version", None) => return Ok(SudoCommand::Version),
                _ => return Err(unsupported(&format!("--{name}"))),
            }
            i += 1;
            continue;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
            break; // the first non-option word
        };
        let mut stop = false;
        for (at, letter) in cluster.char_indices() {
            match letter {
                'n' => non_interactive = true,
                'k' => alone = Some(SudoCommand::NoOp),
                'K' | 'v' => {
                    alone = Some(SudoCommand::NoOp);
                    (no_command, stop) = (true, true);
                }
                'l' => {
                    alone = Some(SudoCommand::List);
                    (no_command, stop) = (true, true);
                }
                'u' => {
                    // As with getopt: the rest of the cluster is the value, else the next word.
                    let rest = &cluster[at + 1..];
                    let value = if rest.is_empty() {
                        i += 1;
                        args.get(i).and_then(|v| v.to_str()).unwrap_or_default()
                    } else {
                        rest
                    };
                    user = Some(check_user(value)?);
                    break;
                }
                'h' => return Ok(SudoCommand::Help),
                'V' => return Ok(SudoCommand::Version),
                other => return Err(unsupported(&format!("-{other}"))),
            }
        }
        i += 1;
        if stop {
            break;
        }
    }

    // -K, -v and -l take no command; -k with one runs it as usual.
    if let Some(only) = alone {
        match args.get(i) {
            None => return Ok(only),
            Some(extra) if no_command => {
                let what = if only == SudoCommand::List {
                    "-l lists your live grants and takes no command"
                } else {
                    "-K and -v take no command (they do nothing in assent)"
                };
                return Err(Failure::usage(format!(
                    "sudo {what}, got {:?}; to run a command: {USAGE}",
                    extra.to_string_lossy()
                )));
            }
            Some(_) => {}
        }
    }

    let mut env = Vec::new();
    while let Some(word) = args.get(i).and_then(|w| w.to_str()) {
        match word.split_once('=') {
            Some((name, _)) if !name.is_empty() && !name.contains('/') => {
                env.push(parse_env_assignment(word).map_err(Failure::usage)?);
                i += 1;
            }
            _ => break,
        }
    }

    let command = args[i..].to_vec();
    if command.is_empty() {
        return Err(Failure::usage(format!(
            "sudo needs a command; use: {USAGE}"
        )));
    }
    Ok(SudoCommand::Run(SudoRun {
        user,
        non_interactive,
        env,
        command,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Exit;

    fn words(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn run(line: &str) -> SudoRun {
        match parse(&words(line)) {
            Ok(SudoCommand::Run(run)) => run,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn refusal(line: &str) -> String {
        let err = parse(&words(line)).expect_err(line);
        assert_eq!(err.exit, Exit::Usage, "{line:?}");
        err.message
    }

    fn command(run: &SudoRun) -> Vec<&str> {
        run.command.iter().map(|w| w.to_str().unwrap()).collect()
    }

    #[test]
    fn plain_command() {
        let r = run("apt-get upgrade -y");
        assert_eq!(r.user, None);
        assert!(!r.non_interactive);
        assert_eq!(command(&r), ["apt-get", "upgrade", "-y"]);
    }

    #[test]
    fn every_form_of_user() {
        for line in [
            "-u postgres psql",
            "-upostgres psql",
            "--user=postgres psql",
            "--user postgres psql",
            "-nu postgres psql",
            "-nupostgres psql",
            "-n -u postgres -- psql",
        ] {
            let r = run(line);
            assert_eq!(r.user.as_deref(), Some("postgres"), "{line}");
            assert_eq!(command(&r), ["psql"], "{line}");
        }
    }

    #[test]
    fn u_takes_the_rest_of_its_cluster() {
        // As with sudo's getopt: `-un` is the user "n", not -u followed by -n.
        let r = run("-un id");
        assert_eq!(r.user.as_deref(), Some("n"));
        assert!(!r.non_interactive);
    }

    #[test]
    fn non_interactive_forms() {
        for line in ["-n id", "--non-interactive id", "-nn id", "-n -- id"] {
            let r = run(line);
            assert!(r.non_interactive, "{line}");
            assert_eq!(command(&r), ["id"], "{line}");
        }
    }

    #[test]
    fn options_stop_at_the_first_word_and_after_double_dash() {
        let r = run("id -u -n");
        assert_eq!(command(&r), ["id", "-u", "-n"]);
        assert_eq!(r.user, None);
        let r = run("-- -weird-program -x");
        assert_eq!(command(&r), ["-weird-program", "-x"]);
        let r = run("-u root -- ls -- -l");
        assert_eq!(command(&r), ["ls", "--", "-l"]);
    }

    #[test]
    fn env_assignments_before_the_command() {
        let r = run("-u root DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get install -y x=1");
        assert_eq!(
            r.env,
            [
                ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
                ("LC_ALL".into(), "C".into())
            ]
        );
        assert_eq!(command(&r), ["apt-get", "install", "-y", "x=1"]);
        // A path with '=' in it is a command, not an assignment.
        let r = run("./a=b");
        assert!(r.env.is_empty());
        assert_eq!(command(&r), ["./a=b"]);
        assert!(refusal("1BAD=x id").contains("1BAD"));
    }

    #[test]
    fn help_and_version() {
        for line in ["-h", "--help", "-nh"] {
            assert_eq!(parse(&words(line)), Ok(SudoCommand::Help), "{line}");
        }
        for line in ["-V", "--version"] {
            assert_eq!(parse(&words(line)), Ok(SudoCommand::Version), "{line}");
        }
    }

    #[test]
    fn unsupported_short_options_are_named_with_what_to_do_instead() {
        for letter in [
            'i', 's', 'E', 'e', 'b', 'H', 'P', 'S', 'A', 'g', 'p', 'C', 'D', 'R', 'T', 'U', 'r',
            't', 'B', 'N', 'x',
        ] {
            let msg = refusal(&format!("-{letter} id"));
            assert!(
                msg.starts_with(&format!(
                    "sudo option -{letter} is not supported by assent's sudo entry; "
                )),
                "{msg}"
            );
            assert!(
                msg.contains("use: sudo [-u USER] [-n] [--] COMMAND..."),
                "{msg}"
            );
            assert!(!msg.contains('\n'), "{msg}");
        }
        // Inside a cluster, the unsupported letter is the one named.
        assert!(refusal("-nE id").starts_with("sudo option -E "));
        // The alternative fits the option.
        assert!(refusal("-i").contains("not a shell"));
        assert!(refusal("-E id").contains("sudo NAME=VALUE COMMAND"));
        assert!(refusal("-e /etc/hosts").contains("sudo install"));
        assert!(refusal("-b id").contains("sudo COMMAND &"));
        assert!(refusal("-D /tmp id").contains("(cd DIR && sudo COMMAND)"));
        assert!(refusal("-S id").contains("no password"));
        assert!(refusal("-x id").contains("-k, -K and -v are accepted"));
    }

    #[test]
    fn unsupported_long_options_are_named() {
        for long in [
            "--login",
            "--shell",
            "--preserve-env",
            "--preserve-env=PATH",
            "--edit",
            "--background",
            "--set-home",
            "--stdin",
            "--askpass",
            "--group=wheel",
            "--non-interactive=yes",
            "--list=x",
        ] {
            let name = long.split('=').next().unwrap();
            assert!(
                refusal(&format!("{long} id"))
                    .starts_with(&format!("sudo option {name} is not supported")),
                "{long}"
            );
        }
    }

    #[test]
    fn timestamp_options_do_nothing() {
        for line in [
            "-k",
            "-K",
            "-v",
            "--validate",
            "--reset-timestamp",
            "--remove-timestamp",
            "-nk",
            "-kv",
        ] {
            assert_eq!(parse(&words(line)), Ok(SudoCommand::NoOp), "{line}");
        }
        // -k with a command runs it as usual (there is no timestamp to ignore).
        let r = run("-k id -u");
        assert_eq!(command(&r), ["id", "-u"]);
        let r = run("-nk -u postgres psql");
        assert!(r.non_interactive);
        assert_eq!(r.user.as_deref(), Some("postgres"));
        // -K and -v take no command.
        for line in ["-K id", "-v id", "--validate id"] {
            let msg = refusal(line);
            assert!(msg.contains("-K and -v take no command"), "{line}: {msg}");
            assert!(msg.contains("\"id\""), "{line}: {msg}");
        }
    }

    #[test]
    fn list_lists_and_takes_no_command() {
        for line in ["-l", "--list", "-nl"] {
            assert_eq!(parse(&words(line)), Ok(SudoCommand::List), "{line}");
        }
        let msg = refusal("-l id");
        assert!(
            msg.contains("-l lists your live grants and takes no command"),
            "{msg}"
        );
    }

    #[test]
    fn missing_pieces() {
        assert!(refusal("").contains("needs a command"));
        assert!(refusal("-n").contains("needs a command"));
        assert!(refusal("-u root").contains("needs a command"));
        assert!(refusal("-u root --").contains("needs a command"));
        assert!(refusal("-u").contains("needs a user name"));
        assert!(refusal("--user").contains("needs a user name"));
        assert!(refusal("--user= id").contains("needs a user name"));
        assert!(refusal("-u #0 id").contains("numeric ids"));
    }

    #[test]
    fn non_utf8_command_words_are_left_for_the_run_to_refuse() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![OsString::from("-n"), OsString::from_vec(vec![b'x', 0xff])];
        match parse(&args).unwrap() {
            SudoCommand::Run(r) => assert_eq!(r.command.len(), 1),
            other => panic!("{other:?}"),
        }
    }
}
