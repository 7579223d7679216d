//! Getting an approver ready: `assent-console keygen [--trust]`, and the first run of the
//! console without a key, which offers the same keygen on a terminal.

use std::io::{BufRead, Write};
use std::path::Path;

use crate::config::{self, Fatal, KeyReport};
use crate::trust;
use assent_common::clock::now as unix_now;

/// What `keygen` is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Keygen<'a> {
    /// The private key's path (`.pub` goes next to it).
    pub key: &'a Path,
    /// The approver name, for console.toml and the `[[approver]]` block.
    pub name: &'a str,
    /// Replace an existing key.
    pub force: bool,
    /// Remember `name` here when the file does not exist yet.
    pub console_toml: Option<&'a Path>,
    /// List the key in this elevator configuration (`--trust`).
    pub trust: Option<&'a Path>,
}

/// `assent-console keygen`: make the key (or, with `--trust` and a key already there, use
/// it), then list it in elevator.toml when asked. Returns what to print.
pub fn keygen(opts: &Keygen) -> Result<String, Fatal> {
    if opts.trust.is_some() {
        // Refuse before anything is written.
        trust::require_root(opts.key, opts.name)?;
    }
    let reuse = opts.trust.is_some() && !opts.force && !config::key_missing(opts.key);
    let KeyReport { public, text } = if reuse {
        config::existing_key(opts.key)?
    } else {
        config::make_key(opts.key, opts.name, opts.force, opts.console_toml)?
    };
    let mut out = text + &config::approver_instructions(opts.name, &public);
    if let Some(path) = opts.trust {
        let outcome = trust::trust(path, opts.name, &public, unix_now())?;
        out.push_str(&trust::report(path, opts.name, &outcome));
    }
    Ok(out)
}

/// Before the console opens. With no key: on a terminal, offer to make one (the keygen path
/// above) and carry on; otherwise, or when declined, the one-line error naming the file.
/// With a key and `--trust`, list it in elevator.toml first.
pub fn before_console(
    opts: &Keygen,
    terminal: bool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), Fatal> {
    let io = |e: std::io::Error| Fatal::other(format!("cannot write to the terminal: {e}"));
    if !config::key_missing(opts.key) {
        if opts.trust.is_some() {
            write!(out, "{}", keygen(opts)?).map_err(io)?;
        }
        return Ok(());
    }
    if !terminal {
        return Err(config::missing_key(opts.key));
    }
    if opts.trust.is_some() {
        // Not worth asking when the answer could not be carried out.
        trust::require_root(opts.key, opts.name)?;
    }
    writeln!(
        out,
        "No approver key yet. A new one would go to {} (and {}.pub).",
        opts.key.display(),
        opts.key.display()
    )
    .map_err(io)?;
    if !ask_yes("Create an approver key now? [Y/n] ", input, out).map_err(io)? {
        return Err(config::missing_key(opts.key));
    }
    write!(
        out,
        "{}",
        keygen(&Keygen {
            force: false,
            ..*opts
        })?
    )
    .map_err(io)?;
    // The console takes over the screen next: leave time to copy the block.
    write!(out, "\nPress Enter to open the console. ").map_err(io)?;
    out.flush().map_err(io)?;
    let mut line = String::new();
    input.read_line(&mut line).map_err(io)?;
    Ok(())
}

/// Ask until the answer is yes (Enter, y, yes) or no (n, no, or end of input).
pub fn ask_yes(
    question: &str,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> std::io::Result<bool> {
    loop {
        write!(out, "{question}")?;
        out.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            writeln!(out)?;
            return Ok(false);
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "" | "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => writeln!(out, "Please answer y or n.")?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(label: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("assent-setup-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn opts<'a>(key: &'a Path, trust: Option<&'a Path>) -> Keygen<'a> {
        Keygen {
            key,
            name: "alice",
            force: false,
            console_toml: None,
            trust,
        }
    }

    #[test]
    fn answers() {
        let ask = |typed: &str| {
            let mut out = Vec::new();
            let yes = ask_yes("Go? ", &mut typed.as_bytes(), &mut out).unwrap();
            (yes, String::from_utf8(out).unwrap())
        };
        assert!(ask("\n").0);
        assert!(ask("Y\n").0);
        assert!(ask(" yes \n").0);
        assert!(!ask("n\n").0);
        assert!(!ask("No\n").0);
        assert!(!ask("").0, "end of input is no");
        let (yes, shown) = ask("maybe\ny\n");
        assert!(yes);
        assert_eq!(shown, "Go? Please answer y or n.\nGo? ");
    }

    #[test]
    fn no_terminal_no_prompt() {
        let dir = Dir::new("notty");
        let key = dir.0.join("approver.key");
        let mut out = Vec::new();
        let err =
            before_console(&opts(&key, None), false, &mut "y\n".as_bytes(), &mut out).unwrap_err();
        assert_eq!(err.code(), config::EXIT_CONFIG);
        assert_eq!(err.message(), config::missing_key(&key).message());
        assert!(out.is_empty(), "no prompt");
        assert!(!key.exists());
    }

    #[test]
    fn first_run_on_a_terminal_makes_the_key_once_asked() {
        let dir = Dir::new("tty");
        let key = dir.0.join("approver.key");

        let mut out = Vec::new();
        let err =
            before_console(&opts(&key, None), true, &mut "n\n".as_bytes(), &mut out).unwrap_err();
        assert_eq!(err.code(), config::EXIT_CONFIG);
        assert!(!key.exists(), "declined: nothing made");
        let shown = String::from_utf8(out).unwrap();
        assert!(shown.contains(&key.display().to_string()), "{shown}");
        assert!(
            shown.contains("Create an approver key now? [Y/n] "),
            "{shown}"
        );

        let mut out = Vec::new();
        before_console(&opts(&key, None), true, &mut "\n\n".as_bytes(), &mut out).unwrap();
        let shown = String::from_utf8(out).unwrap();
        let made = config::load_key(&key).unwrap();
        assert!(
            shown.contains(&config::approver_block(
                "alice",
                &made.public().to_openssh(made.comment())
            )),
            "{shown}"
        );

        // Next start: the key is there, nothing is asked.
        let mut out = Vec::new();
        before_console(&opts(&key, None), true, &mut "".as_bytes(), &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn trust_reuses_an_existing_key() {
        assert!(
            nix::unistd::getuid().is_root(),
            "this test needs root (--trust refuses otherwise)"
        );
        let dir = Dir::new("reuse");
        let key = dir.0.join("approver.key");
        let elevator = dir.0.join("elevator.toml");
        keygen(&opts(&key, None)).unwrap();
        let before = config::load_key(&key).unwrap().public();

        let out = keygen(&opts(&key, Some(&elevator))).unwrap();
        assert!(out.contains("using the existing key"), "{out}");
        assert!(out.contains("added approver \"alice\""), "{out}");
        assert_eq!(
            config::load_key(&key).unwrap().public(),
            before,
            "not regenerated"
        );
        let out = keygen(&opts(&key, Some(&elevator))).unwrap();
        assert!(out.contains("nothing changed"), "{out}");

        // The console's --trust with a key already there lists it (idempotently) and goes on.
        let mut out = Vec::new();
        before_console(
            &opts(&key, Some(&elevator)),
            false,
            &mut "".as_bytes(),
            &mut out,
        )
        .unwrap();
        assert!(String::from_utf8(out).unwrap().contains("nothing changed"));
    }
}
