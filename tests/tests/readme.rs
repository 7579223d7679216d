//! Every assent command the README shows in a code block names a subcommand that exists.
//!
//! The README's fenced code blocks are read like a shell would read them, roughly: `$ `
//! prompts, comments, `sudo` (and its options), `env` and `VAR=value` prefixes are taken off,
//! lines ending in `\` are joined, and `|`, `&&`, `||`, `;` separate commands. A command whose
//! program is `assent`, `assent-console`, `assent-relay` or `assent-elevate` (also as a path
//! ending in one of those) is checked by asking the freshly built binary for help along the
//! documented words: `BIN --help`, then `BIN WORD --help` while the previous help lists
//! subcommands, stopping at the first option or placeholder (`ID`, `<id>`, `[ARGS...]`).
//! The elevator parses its own command line and takes no `--help` after a subcommand, so its
//! words are looked up in `assent-elevate --help` instead.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARIES: [&str; 4] = ["assent", "assent-console", "assent-relay", "assent-elevate"];
/// Fenced blocks in these languages hold no shell commands.
const NOT_SHELL: [&str; 11] = [
    "toml", "json", "jsonc", "rust", "rs", "yaml", "yml", "ini", "diff", "roff", "text",
];
const HELP_TIMEOUT: Duration = Duration::from_secs(20);

/// One documented invocation of an assent binary.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Documented {
    /// 1-based line number in the Markdown where the command starts.
    line: usize,
    /// The command as written (after joining continuation lines).
    text: String,
    /// Which binary (a name from BINARIES).
    binary: String,
    /// The words after the binary, unquoted.
    words: Vec<String>,
}

/// A token of a shell line: a word (quotes removed) or an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Op(String),
}

/// Split a line the way a shell roughly would. Unquoted `#` at the start of a word begins a
/// comment; `|&;<>()` form operators; a number right before `<` or `>` is an fd, dropped.
fn tokenize(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let flush = |tokens: &mut Vec<Token>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&next) if matches!(next, '"' | '\\' | '$' | '`') => {
                                word.push(next);
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => flush(&mut tokens, &mut word, &mut in_word),
            '|' | '&' | ';' | '<' | '>' | '(' | ')' => {
                if matches!(c, '<' | '>')
                    && in_word
                    && !word.is_empty()
                    && word.chars().all(|d| d.is_ascii_digit())
                {
                    word.clear();
                    in_word = false;
                }
                flush(&mut tokens, &mut word, &mut in_word);
                let mut op = c.to_string();
                while let Some(&next) = chars.peek() {
                    if matches!(next, '|' | '&' | ';' | '<' | '>') {
                        op.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Op(op));
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush(&mut tokens, &mut word, &mut in_word);
    tokens
}

/// The simple commands of a tokenized line: words between separators, without the file
/// names of redirections.
fn simple_commands(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut skip_next_word = false;
    for token in tokens {
        match token {
            Token::Word(w) => {
                if skip_next_word {
                    skip_next_word = false;
                } else {
                    commands.last_mut().expect("never empty").push(w.clone());
                }
            }
            Token::Op(op) if op.contains(['<', '>']) => skip_next_word = true,
            Token::Op(_) => {
                skip_next_word = false;
                commands.push(Vec::new());
            }
        }
    }
    commands.retain(|c| !c.is_empty());
    commands
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Take `VAR=value`, `sudo [OPTIONS] [--]`, `env [OPTIONS]`, `exec` and `time` off the front.
fn strip_prefixes(mut words: &[String]) -> &[String] {
    loop {
        match words.first().map(String::as_str) {
            Some(w) if is_assignment(w) => words = &words[1..],
            Some("sudo" | "env" | "exec" | "time" | "command") => {
                words = &words[1..];
                while let Some(option) = words.first().filter(|w| w.starts_with('-')) {
                    let takes_value = matches!(
                        option.as_str(),
                        "-u" | "-g" | "-C" | "-D" | "-h" | "-p" | "-U" | "--user" | "--group"
                    );
                    let done = option == "--";
                    words = &words[1..];
                    if takes_value && !words.is_empty() {
                        words = &words[1..];
                    }
                    if done {
                        break;
                    }
                }
            }
            _ => return words,
        }
    }
}

/// The binary a program word names: `assent`, `/usr/local/bin/assent`, `./target/release/assent`.
fn binary_name(word: &str) -> Option<&'static str> {
    BINARIES
        .into_iter()
        .find(|name| word == *name || word.ends_with(&format!("/{name}")))
}

/// Whether a word stands for something the reader fills in, rather than a literal word.
fn is_placeholder(word: &str) -> bool {
    if word.contains(['<', '>', '[', ']', '{', '}', '|', '…', '$', '*']) || word.contains("...") {
        return true;
    }
    // ID, NAME, USER, PROGRAM, ARGS, KIND, DURATION…
    word.chars().any(|c| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Every command of an assent binary shown in a fenced code block of `markdown`.
fn documented_commands(markdown: &str) -> Vec<Documented> {
    let mut found = Vec::new();
    // (fence character, fence length, is a shell block)
    let mut fence: Option<(char, usize, bool)> = None;
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in markdown.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim_start();
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = fence_char.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match fence {
            None => {
                if let Some(c) = fence_char.filter(|_| run >= 3) {
                    let info = trimmed[run..].trim();
                    let language = info
                        .split(|ch: char| ch.is_whitespace() || ch == ',' || ch == '{')
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    fence = Some((c, run, !NOT_SHELL.contains(&language.as_str())));
                }
                continue;
            }
            Some((c, length, _)) => {
                if fence_char == Some(c) && run >= length && trimmed[run..].trim().is_empty() {
                    fence = None;
                    pending = None;
                    continue;
                }
            }
        }
        let Some((_, _, true)) = fence else { continue };

        // Join continuation lines.
        let (start, mut line) = match pending.take() {
            Some((start, before)) => (start, before + " " + raw.trim()),
            None => (number, raw.trim().to_string()),
        };
        if let Some(head) = line.strip_suffix('\\') {
            pending = Some((start, head.trim_end().to_string()));
            continue;
        }
        // Prompts.
        for prompt in ["$ ", "% ", "> "] {
            if let Some(rest) = line.strip_prefix(prompt) {
                line = rest.trim_start().to_string();
                break;
            }
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        for words in simple_commands(&tokenize(&line)) {
            let words = strip_prefixes(&words);
            let Some((program, rest)) = words.split_first() else {
                continue;
            };
            if let Some(binary) = binary_name(program) {
                found.push(Documented {
                    line: start,
                    text: line.clone(),
                    binary: binary.to_string(),
                    words: rest.to_vec(),
                });
            }
        }
    }
    found
}

/// How one `BIN ARGS…` run ended.
struct Ran {
    success: bool,
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

/// Run a freshly built binary with a clean environment and a deadline.
fn run(binary: &Path, args: &[&str]) -> Ran {
    let scratch = std::env::temp_dir();
    let mut child = Command::new(binary)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &scratch)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + HELP_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} did not finish within {HELP_TIMEOUT:?}: asking for help must not run anything",
                binary.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        success: status.success(),
        code: status.code(),
        stdout: stdout.join().expect("reader"),
        stderr: stderr.join().expect("reader"),
    }
}

/// clap's help lists subcommands under `Commands:`.
fn has_subcommands(help: &str) -> bool {
    help.lines().any(|l| l.trim_end() == "Commands:")
}

/// Check one documented command against `bin_dir`; the reason it is wrong, if it is.
fn check(doc: &Documented, bin_dir: &Path) -> Result<(), String> {
    let binary = bin_dir.join(&doc.binary);
    let shown = |args: &[&str]| format!("{} {}", doc.binary, args.join(" "));
    let fail = |args: &[&str], ran: &Ran| {
        let first = ran
            .stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no message)");
        format!(
            "`{}` failed (exit {:?}): {first}",
            shown(args),
            ran.code.unwrap_or(-1)
        )
    };
    let bare: Vec<&str> = doc
        .words
        .iter()
        .map(String::as_str)
        .take_while(|w| !w.starts_with('-') && !is_placeholder(w))
        .collect();

    let top = run(&binary, &["--help"]);
    if !top.success {
        return Err(fail(&["--help"], &top));
    }
    if doc.binary == "assent-elevate" {
        if bare.is_empty() {
            return Ok(());
        }
        let phrase = format!("assent-elevate {}", bare.join(" "));
        if top.stdout.contains(&phrase) {
            return Ok(());
        }
        return Err(format!(
            "`assent-elevate --help` does not mention `{phrase}`"
        ));
    }

    let mut help = top.stdout;
    let mut path: Vec<&str> = Vec::new();
    for word in bare {
        if !path.is_empty() && !has_subcommands(&help) {
            // An argument of the (sub)command reached so far, not a subcommand.
            break;
        }
        let mut args = path.clone();
        args.push(word);
        args.push("--help");
        let ran = run(&binary, &args);
        if !ran.success {
            return Err(fail(&args, &ran));
        }
        help = ran.stdout;
        path.push(word);
    }
    Ok(())
}

/// Every problem with the documented commands in `markdown`, one line each.
fn problems(markdown: &str, bin_dir: &Path) -> Vec<String> {
    documented_commands(markdown)
        .iter()
        .filter_map(|doc| {
            let result = check(doc, bin_dir);
            eprintln!(
                "{} line {}: {} {:?}",
                if result.is_ok() { "ok  " } else { "FAIL" },
                doc.line,
                doc.binary,
                doc.words
            );
            result
                .err()
                .map(|why| format!("line {}: `{}`: {why}", doc.line, doc.text))
        })
        .collect()
}

fn bin_dir() -> PathBuf {
    for name in BINARIES {
        assent_tests::built_binary(name);
    }
    assent_tests::profile_dir()
}

fn readme() -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .join("README.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path, text)
}

#[test]
fn every_command_in_the_readme_exists() {
    let (path, text) = readme();
    let documented = documented_commands(&text);
    assert!(
        !documented.is_empty(),
        "{} shows no assent command in a code block; the README or this parser is wrong",
        path.display()
    );
    let problems = problems(&text, &bin_dir());
    assert!(
        problems.is_empty(),
        "{} documents commands that do not exist:\n{}",
        path.display(),
        problems.join("\n")
    );
    eprintln!(
        "checked {} documented commands in {}",
        documented.len(),
        path.display()
    );
}

#[test]
fn every_command_in_the_other_docs_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    // Every crate's README and every page of docs/, found rather than listed, so that a page
    // added or renamed is checked too and none is skipped in silence.
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("README.md")))
        .filter(|p| p.is_file())
        .collect();
    pages.extend(
        std::fs::read_dir(root.join("docs"))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.join("docs").display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    pages.sort();
    let bins = bin_dir();
    let mut all = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        checked += documented_commands(&text).len();
        all.extend(
            problems(&text, &bins)
                .into_iter()
                .map(|p| format!("{}: {p}", page.display())),
        );
    }
    assert!(
        all.is_empty(),
        "documented commands that do not exist:\n{}",
        all.join("\n")
    );
    assert!(
        checked > 0,
        "no assent command found in {} pages ({}); the pages or this parser are wrong",
        pages.len(),
        pages
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "checked {checked} documented commands in {} pages",
        pages.len()
    );
}

const SAMPLE: &str = r#"# Title

Inline `assent bogus` outside a code block is prose, not a command.

```sh
$ assent keygen --name openclaw          # writes agent.key
sudo assent-console keygen --trust --key ~/.config/assent/approver.key --name alice
ASSENT_REASON="patch" sudo -u root assent run --reason "two words" -- id -u
assent-console approve 3f2a9c --grant timed:15m && assent grants --json
assent-console --generate man > assent-console.1
/usr/local/bin/assent-relay --listen 127.0.0.1:7447 \
    --config /etc/assent/relay.toml
sudo assent-elevate audit verify
assent-elevate --grant TOKEN -- PROGRAM [ARGS...]
assent-console deny ID --note "not now"
# assent frobnicate: a comment, not a command
assent: waiting for approval (output, not a command)
```

```toml
assent = "not a command in a toml block"
```

~~~
assent status 2>/dev/null | cat
~~~
"#;

fn words(doc: &Documented) -> Vec<&str> {
    doc.words.iter().map(String::as_str).collect()
}

#[test]
fn the_parser_finds_each_documented_command_and_its_words() {
    let docs = documented_commands(SAMPLE);
    let seen: Vec<(usize, &str, Vec<&str>)> = docs
        .iter()
        .map(|d| (d.line, d.binary.as_str(), words(d)))
        .collect();
    let expected: Vec<(usize, &str, Vec<&str>)> = vec![
        (6, "assent", vec!["keygen", "--name", "openclaw"]),
        (
            7,
            "assent-console",
            vec![
                "keygen",
                "--trust",
                "--key",
                "~/.config/assent/approver.key",
                "--name",
                "alice",
            ],
        ),
        (
            8,
            "assent",
            vec!["run", "--reason", "two words", "--", "id", "-u"],
        ),
        (
            9,
            "assent-console",
            vec!["approve", "3f2a9c", "--grant", "timed:15m"],
        ),
        (9, "assent", vec!["grants", "--json"]),
        (10, "assent-console", vec!["--generate", "man"]),
        (
            11,
            "assent-relay",
            vec![
                "--listen",
                "127.0.0.1:7447",
                "--config",
                "/etc/assent/relay.toml",
            ],
        ),
        (13, "assent-elevate", vec!["audit", "verify"]),
        (
            14,
            "assent-elevate",
            vec!["--grant", "TOKEN", "--", "PROGRAM", "[ARGS...]"],
        ),
        (
            15,
            "assent-console",
            vec!["deny", "ID", "--note", "not now"],
        ),
        (25, "assent", vec!["status"]),
    ];
    assert_eq!(seen, expected, "{docs:#?}");
    assert!(is_placeholder("ID") && is_placeholder("<id>") && is_placeholder("[ARGS...]"));
    assert!(!is_placeholder("keygen") && !is_placeholder("3f2a9c"));
}

#[test]
fn a_documented_subcommand_that_does_not_exist_fails_the_check() {
    let bins = bin_dir();
    // Everything in the sample exists.
    let clean = problems(SAMPLE, &bins);
    assert!(clean.is_empty(), "{clean:#?}");

    for (bogus, needle) in [
        (
            "```\n$ assent frobnicate --now\n```\n",
            "assent frobnicate --help",
        ),
        (
            "```sh\nsudo assent-console keygen\nassent-console approove 3f2a9c\n```\n",
            "assent-console approove --help",
        ),
        (
            "```\nassent-relay serve --listen x\n```\n",
            "assent-relay serve --help",
        ),
        (
            "```\nsudo assent-elevate audit rotate\n```\n",
            "does not mention `assent-elevate audit rotate`",
        ),
        (
            "```\nsudo assent-elevate chek\n```\n",
            "assent-elevate chek",
        ),
    ] {
        let found = problems(bogus, &bins);
        assert_eq!(found.len(), 1, "{bogus}: {found:#?}");
        assert!(found[0].contains(needle), "{bogus}: {found:#?}");
    }
}
