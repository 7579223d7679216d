//! Risk flags: what about a request deserves a second look before approving it.
//!
//! The pattern checks are pure functions of the request. The checks that need the host the
//! command will run on (can the requester write the program, an argument, the cwd? would the
//! elevator there refuse it? what does its secure path find for `argv[0]`?) ask a
//! [`HostFacts`], which the console answers only when the request is for its own host (see
//! [`crate::host`]), and which says "unknown" otherwise.
//!
//! Nothing here follows a path the agent named into `/proc`, `/dev` or `/sys`: resolved in the
//! console's own process, `/dev/stdin` or `/proc/self/fd/0` would describe the console's files,
//! not the ones the command would get.

use std::path::{Component, Path, PathBuf};

use assent_protocol::{Env, Request};

use crate::command::names_program;

/// How many path arguments are checked for write access; the rest are counted, not walked.
pub const MAX_PATH_ARGUMENTS: usize = 64;

/// One reason for caution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Risk {
    /// This approver key has never approved a request signed by this agent key.
    FirstSeenAgent,
    /// The agent name has been approved before, but with other keys.
    NameNewKey(String),
    /// The elevator on this host would refuse the request, for this reason.
    WillBeRefused(String),
    /// `argv[0]` does not name the program that runs.
    Argv0Differs { argv0: String, program: String },
    /// `argv[0]` is another name for the program: this host's secure path finds it there
    /// through a symlink (`sh` → `/usr/bin/dash`).
    Argv0Link { argv0: String, program: String },
    /// The program is under `/proc`, `/dev` or `/sys`: not a file with fixed contents.
    PseudoFileProgram,
    /// The command runs as root.
    RunAsRoot,
    /// The program is not in a directory of the elevator's secure path.
    OutsideSecurePath(String),
    /// The requester can write the program file (or replace it through a directory).
    WritableProgram,
    /// The requester can write the files these arguments name (as given).
    WritableArguments(Vec<String>),
    /// Write access could not be checked (another host, unknown user, no permission to look).
    WriteAccessUnknown(String),
    /// An interpreter is handed a program inline, e.g. `sh -c`.
    InlineScript(String),
    /// A destructive pattern such as `rm -rf` or `mkfs`.
    Destructive(String),
    /// Environment variables that change what gets loaded or executed.
    LoaderEnv(Vec<String>),
    /// The working directory is writable by everyone.
    WorldWritableCwd,
}

impl Risk {
    /// One line for the detail pane; every piece of the request it quotes is escaped here.
    pub fn describe(&self) -> String {
        use crate::escape::{shell_quote, visible};
        match self {
            Risk::FirstSeenAgent => {
                "first-seen agent key: you have never approved a request signed by it".into()
            }
            Risk::NameNewKey(name) => format!(
                "new key for a known name: {} has been approved with another key",
                visible(name)
            ),
            Risk::WillBeRefused(why) => format!("will be refused here: {}", visible(why)),
            Risk::Argv0Differs { argv0, program } => format!(
                "argv0-differs: runs {}, which argv[0] {} does not name",
                visible(program),
                shell_quote(argv0)
            ),
            Risk::Argv0Link { argv0, program } => format!(
                "argv[0] {} is {} on this host (a symlink in the secure path)",
                shell_quote(argv0),
                visible(program)
            ),
            Risk::PseudoFileProgram => {
                "program is under /proc, /dev or /sys: not a real file, its contents can be anything"
                    .into()
            }
            Risk::RunAsRoot => "runs as root".into(),
            Risk::OutsideSecurePath(path) => format!(
                "program is outside the elevator's secure path ({})",
                visible(path)
            ),
            Risk::WritableProgram => "program is writable by the requester: what you approve is \
                 what runs (a sealed copy), but the files next to it (what it sources or \
                 imports) can still change"
                .into(),
            Risk::WritableArguments(args) => format!(
                "{} writable by the requester: {}",
                if args.len() == 1 {
                    "argument"
                } else {
                    "arguments"
                },
                args.iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Risk::WriteAccessUnknown(why) => format!("write access unknown: {}", visible(why)),
            Risk::InlineScript(what) => format!("inline script: {}", visible(what)),
            Risk::Destructive(what) => format!("destructive: {}", visible(what)),
            Risk::LoaderEnv(keys) => {
                format!("loader variables in env: {}", visible(&keys.join(", ")))
            }
            Risk::WorldWritableCwd => "cwd is world-writable".into(),
        }
    }

    /// A short tag for list rows.
    pub fn tag(&self) -> &'static str {
        match self {
            Risk::FirstSeenAgent => "new-key",
            Risk::NameNewKey(_) => "name-new-key",
            Risk::WillBeRefused(_) => "refused",
            Risk::Argv0Differs { .. } => "argv0-differs",
            Risk::Argv0Link { .. } => "argv0-link",
            Risk::PseudoFileProgram => "not-a-file",
            Risk::RunAsRoot => "root",
            Risk::OutsideSecurePath(_) => "off-path",
            Risk::WritableProgram => "w-prog",
            Risk::WritableArguments(_) => "w-arg",
            Risk::WriteAccessUnknown(_) => "w-?",
            Risk::InlineScript(_) => "inline",
            Risk::Destructive(_) => "destroy",
            Risk::LoaderEnv(_) => "loader",
            Risk::WorldWritableCwd => "w-cwd",
        }
    }

    /// Informational flags are shown but not highlighted as alarming.
    pub fn is_informational(&self) -> bool {
        matches!(self, Risk::WriteAccessUnknown(_) | Risk::Argv0Link { .. })
    }
}

/// Facts about the host the command will run on, seen from the requester's side.
pub trait HostFacts {
    /// `Ok(true)` if the requester can change what `path` names (write it, or replace it through
    /// a directory on the way); `Err(why)` when that cannot be known.
    fn requester_can_write(&self, path: &Path) -> Result<bool, String>;
    /// `Ok(true)` if `dir` is writable by everyone (never following a symlink).
    fn world_writable(&self, dir: &Path) -> Result<bool, String>;
    /// The first symlink on the way to `path` (never followed), if there is one.
    fn symlink_on_path(&self, path: &Path) -> Result<Option<PathBuf>, String>;
    /// What this host's secure path finds for `argv0` (a bare name, or a path in one of its
    /// directories): the path found there and the canonical file it is. None: not known.
    fn secure_path_finds(&self, _argv0: &str) -> Option<(PathBuf, PathBuf)> {
        None
    }
    /// The elevator's secure path on this host, when known.
    fn secure_path(&self) -> Option<String> {
        None
    }
    /// Why the elevator on this host would refuse the request before looking at its program:
    /// its configuration (requester, run_as) and its users. Empty: nothing known against it.
    fn refusals(&self, _request: &Request) -> Vec<String> {
        Vec::new()
    }
}

/// Facts that are never known, with the reason to show (a request for another host).
#[derive(Debug, Clone)]
pub struct UnknownFacts(pub String);

impl HostFacts for UnknownFacts {
    fn requester_can_write(&self, _: &Path) -> Result<bool, String> {
        Err(self.0.clone())
    }
    fn world_writable(&self, _: &Path) -> Result<bool, String> {
        Err(self.0.clone())
    }
    fn symlink_on_path(&self, _: &Path) -> Result<Option<PathBuf>, String> {
        Err(self.0.clone())
    }
}

/// Every flag for `request`, except those about the agent key ([`Risk::FirstSeenAgent`],
/// [`Risk::NameNewKey`]), which depend on the decision log and are added by
/// [`crate::memory`].
pub fn assess(request: &Request, facts: &dyn HostFacts) -> Vec<Risk> {
    let mut risks = Vec::new();
    let program = Path::new(&request.program);
    let pseudo = is_pseudo_file(program);
    for why in facts.refusals(request) {
        risks.push(Risk::WillBeRefused(why));
    }
    if !pseudo {
        risks.extend(program_path_refusal(program, facts).map(Risk::WillBeRefused));
    }
    if let Some(why) = cwd_refusal(Path::new(&request.cwd), facts) {
        risks.push(Risk::WillBeRefused(why));
    }
    let argv0 = request.argv.first().map(String::as_str).unwrap_or("");
    if !names_program(&request.program, argv0) {
        // Milder only when root's secure path leads there through a link the requester cannot
        // change; the program path is shown either way.
        let link = facts.secure_path_finds(argv0).is_some_and(|(found, file)| {
            file == program && facts.requester_can_write(&found) == Ok(false)
        });
        let (argv0, program) = (argv0.to_string(), request.program.clone());
        risks.push(if link {
            Risk::Argv0Link { argv0, program }
        } else {
            Risk::Argv0Differs { argv0, program }
        });
    }
    if pseudo {
        risks.push(Risk::PseudoFileProgram);
    }
    if run_as_root(request) {
        risks.push(Risk::RunAsRoot);
    }
    if let Some(what) = destructive(&request.argv) {
        risks.push(Risk::Destructive(what));
    }
    if let Some(what) = inline_script(&request.argv) {
        risks.push(Risk::InlineScript(what));
    }
    let loader = loader_env(&request.env);
    if !loader.is_empty() {
        risks.push(Risk::LoaderEnv(loader));
    }
    risks.extend(write_access(request, facts, pseudo));
    if let Some(secure_path) = facts.secure_path() {
        if !pseudo && !in_secure_path(program, &secure_path) {
            risks.push(Risk::OutsideSecurePath(secure_path));
        }
    }
    risks
}

/// `run_as` is root by name. (uid 0 under another name would be a misconfigured host; the
/// elevator resolves names, so the name is what the approver sees.)
pub fn run_as_root(request: &Request) -> bool {
    request.run_as == "root"
}

/// Whether `path`, read as the kernel would without following anything, lies in a virtual
/// file system whose files are views of processes and devices.
pub fn is_pseudo_file(path: &Path) -> bool {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    matches!(parts.first(), Some(top) if *top == "proc" || *top == "dev" || *top == "sys")
}

/// A program path the elevator refuses before opening it: not canonical, or through a symlink.
fn program_path_refusal(program: &Path, facts: &dyn HostFacts) -> Option<String> {
    let text = program.to_string_lossy();
    let canonical = text.starts_with('/')
        && !text.ends_with('/')
        && !text[1..]
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if !canonical {
        return Some(format!(
            "program path {text} is not canonical (empty, . or .. components)"
        ));
    }
    match facts.symlink_on_path(program) {
        Ok(Some(link)) => Some(format!(
            "program path {text} goes through the symlink {}",
            link.display()
        )),
        _ => None,
    }
}

/// A cwd the elevator refuses: it opens every component without following symlinks.
fn cwd_refusal(cwd: &Path, facts: &dyn HostFacts) -> Option<String> {
    match facts.symlink_on_path(cwd) {
        Ok(Some(link)) => Some(format!(
            "cwd {} goes through the symlink {}",
            cwd.display(),
            link.display()
        )),
        _ => None,
    }
}

/// Whether the program's directory is one of the secure path's.
fn in_secure_path(program: &Path, secure_path: &str) -> bool {
    program
        .parent()
        .is_some_and(|dir| secure_path.split(':').any(|d| Path::new(d) == dir))
}

/// The file name of a path, with a trailing version (`python3.12` → `python`) removed.
fn command_name(arg: &str) -> &str {
    let base = arg.rsplit('/').next().unwrap_or(arg);
    base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
}

/// Interpreters and the options that hand them a program as an argument.
fn inline_flags(name: &str) -> Option<(&'static [&'static str], Option<char>)> {
    // (long or exact flags, a short-option letter that may be bundled like `-lc`)
    Some(match name {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "fish" | "csh" | "tcsh"
        | "busybox" => (&["-c"], Some('c')),
        "python" | "pypy" => (&["-c"], Some('c')),
        "perl" => (&["-e", "-E"], Some('e')),
        "ruby" | "lua" | "luajit" => (&["-e"], Some('e')),
        "node" | "nodejs" | "deno" | "bun" => (&["-e", "--eval", "-p", "--print", "eval"], None),
        "php" => (&["-r"], Some('r')),
        "osascript" | "tclsh" | "wish" => (&["-e"], None),
        "pwsh" | "powershell" => (&["-c", "-command", "-Command"], None),
        "awk" | "gawk" | "mawk" | "nawk" => (&[], None),
        _ => return None,
    })
}

/// `sh -c`, `python -c`, `perl -e`, … anywhere in argv (also behind wrappers such as `env` or
/// `nice`). Returns the interpreter and flag found.
pub fn inline_script(argv: &[String]) -> Option<String> {
    for (i, arg) in argv.iter().enumerate() {
        let name = command_name(arg);
        let Some((flags, bundled)) = inline_flags(name) else {
            continue;
        };
        let rest = &argv[i + 1..];
        if flags.is_empty() {
            // awk: the program is inline unless it comes from a file (-f).
            if !rest.iter().any(|a| a == "-f" || a.starts_with("--file")) && !rest.is_empty() {
                return Some(format!("{name} program"));
            }
            continue;
        }
        for opt in rest {
            if flags.contains(&opt.as_str()) {
                return Some(format!("{name} {opt}"));
            }
            if let Some(letter) = bundled {
                if opt.len() > 2
                    && opt.starts_with('-')
                    && !opt.starts_with("--")
                    && opt[1..].chars().all(|c| c.is_ascii_alphabetic())
                    && opt.contains(letter)
                {
                    return Some(format!("{name} {opt}"));
                }
            }
            if !opt.starts_with('-') && name != "node" && name != "deno" && name != "bun" {
                break; // the first operand ends the options
            }
        }
    }
    None
}

/// Short options bundled into one argument (`-rf`), or the long option itself.
fn has_flag(args: &[String], short: char, long: &str) -> bool {
    args.iter().any(|a| {
        a == long
            || (a.starts_with('-')
                && !a.starts_with("--")
                && a.len() > 1
                && a[1..].chars().all(|c| c.is_ascii_alphanumeric())
                && a[1..].contains(short))
    })
}

/// Destructive patterns in one simple command's words.
fn destructive_command(words: &[String]) -> Option<String> {
    let (first, args) = words.split_first()?;
    let name = command_name(first);
    let full_name = first.rsplit('/').next().unwrap_or(first);
    let recursive = || has_flag(args, 'r', "--recursive") || has_flag(args, 'R', "--recursive");
    match name {
        "rm" if recursive() && has_flag(args, 'f', "--force") => return Some("rm -rf".into()),
        "chmod" | "chown" | "chgrp" if has_flag(args, 'R', "--recursive") => {
            return Some(format!("recursive {name}"));
        }
        "dd" => {
            if let Some(of) = args.iter().find(|a| a.starts_with("of=/dev/")) {
                return Some(format!("dd {of}"));
            }
        }
        "mkswap" | "wipefs" | "shred" | "blkdiscard" | "mke2fs" => return Some(name.into()),
        _ if full_name.starts_with("mkfs") => return Some(full_name.to_string()),
        _ => {}
    }
    None
}

/// Split shell text into simple commands, best effort: words on whitespace, commands on
/// `;`, `&`, `|` and newlines. Good enough to spot `rm -rf` inside `sh -c '...'`.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    for part in script.split([';', '&', '|', '\n', '(', ')', '`']) {
        let words: Vec<String> = part
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_string())
            .filter(|w| !w.is_empty())
            .collect();
        if !words.is_empty() {
            commands.push(words);
        }
    }
    commands
}

/// A redirection onto a block device, as in `> /dev/sda`.
fn writes_block_device(text: &str) -> Option<String> {
    const DEVICES: &[&str] = &[
        "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "disk", "md", "dm-", "mapper/",
    ];
    let mut rest = text;
    while let Some(pos) = rest.find('>') {
        let after = rest[pos + 1..].trim_start_matches('>').trim_start();
        if let Some(dev) = after.strip_prefix("/dev/") {
            if DEVICES.iter().any(|d| dev.starts_with(d)) {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                return Some(format!("> {}", &after[..end]));
            }
        }
        rest = &rest[pos + 1..];
    }
    None
}

/// `rm -rf`, `mkfs`, `dd of=/dev/…`, recursive chmod/chown, `> /dev/sd*` — in argv itself,
/// behind wrappers, or inside an inline shell script.
pub fn destructive(argv: &[String]) -> Option<String> {
    // Wrappers (`env`, `nice`, `timeout 5`, …) put the real command later: try every suffix.
    for start in 0..argv.len() {
        if let Some(found) = destructive_command(&argv[start..]) {
            return Some(found);
        }
    }
    for arg in argv.iter().skip(1) {
        if let Some(found) = writes_block_device(arg) {
            return Some(found);
        }
        if arg.contains(char::is_whitespace) {
            for words in shell_commands(arg) {
                if let Some(found) = destructive_command(&words) {
                    return Some(found);
                }
            }
        }
    }
    None
}

/// Variables that make a program load or run other code.
pub fn loader_env(env: &Env) -> Vec<String> {
    const EXACT: &[&str] = &[
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "IFS",
        "PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "PERL5LIB",
        "PERLLIB",
        "PERL5OPT",
        "RUBYLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "NODE_PATH",
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RES_OPTIONS",
        "TMPDIR",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_GLOBAL",
        "EDITOR",
        "VISUAL",
        "PAGER",
        "LESSOPEN",
        "MALLOC_CHECK_",
    ];
    const PREFIXES: &[&str] = &["LD_", "DYLD_", "BASH_FUNC_", "GLIBC_", "MALLOC_"];
    env.iter()
        .map(|(k, _)| k)
        .filter(|k| EXACT.contains(k) || PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(str::to_string)
        .collect()
}

/// An argument that names a file, with the path it names: absolute paths, `./` and `../`
/// paths, other relative words with a slash and nothing a path rarely has (spaces, quotes,
/// shell punctuation), and the value of `--opt=PATH`, `of=PATH`, `if=PATH`. Shell text such as
/// `rm -rf /tmp/foo` (one argument of `sh -c`) is not a path.
pub fn path_argument(arg: &str, cwd: &Path) -> Option<PathBuf> {
    let value = match arg.split_once('=') {
        Some((opt, v)) if opt.starts_with('-') || opt == "of" || opt == "if" => v,
        _ => arg,
    };
    if value.starts_with('/') {
        return Some(PathBuf::from(value));
    }
    let plain =
        |c: char| !c.is_whitespace() && !c.is_control() && !"'\"`$;&|<>(){}*?!#\\".contains(c);
    let relative = value.starts_with("./")
        || value.starts_with("../")
        || (value.contains('/') && value.chars().all(plain));
    if !relative || value.starts_with('-') || value.contains("://") {
        return None;
    }
    Some(cwd.join(value))
}

/// The path arguments of a request, each with the argument as given.
pub fn path_arguments(request: &Request) -> Vec<(&str, PathBuf)> {
    let cwd = Path::new(&request.cwd);
    request
        .argv
        .iter()
        .skip(1)
        .filter_map(|arg| path_argument(arg, cwd).map(|p| (arg.as_str(), p)))
        .collect()
}

/// The write-access flags for program, arguments and cwd.
fn write_access(request: &Request, facts: &dyn HostFacts, pseudo_program: bool) -> Vec<Risk> {
    let mut risks = Vec::new();
    let mut unknown: Option<String> = None;
    if !pseudo_program {
        match facts.requester_can_write(Path::new(&request.program)) {
            Ok(true) => risks.push(Risk::WritableProgram),
            Ok(false) => {}
            Err(why) => unknown = Some(why),
        }
    }
    let paths = path_arguments(request);
    let mut writable = Vec::new();
    for (arg, path) in paths.iter().take(MAX_PATH_ARGUMENTS) {
        // /proc, /dev and /sys name things, not files; the console does not look at them.
        if is_pseudo_file(path) {
            continue;
        }
        match facts.requester_can_write(path) {
            Ok(true) => writable.push(arg.to_string()),
            Ok(false) => {}
            Err(why) => {
                unknown.get_or_insert(why);
            }
        }
    }
    if !writable.is_empty() {
        risks.push(Risk::WritableArguments(writable));
    }
    if paths.len() > MAX_PATH_ARGUMENTS {
        unknown.get_or_insert(format!(
            "only the first {MAX_PATH_ARGUMENTS} of {} path arguments were checked",
            paths.len()
        ));
    }
    match facts.world_writable(Path::new(&request.cwd)) {
        Ok(true) => risks.push(Risk::WorldWritableCwd),
        Ok(false) => {}
        Err(why) => {
            unknown.get_or_insert(why);
        }
    }
    if let Some(why) = unknown {
        risks.push(Risk::WriteAccessUnknown(why));
    }
    risks
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    fn request(argv: &str, env: &[(&str, &str)]) -> Request {
        crate::testing::request(argv, env)
    }

    /// Facts from fixed answers, so the pure part of `assess` can be tested.
    #[derive(Default)]
    struct Fixed {
        writable: Vec<&'static str>,
        world_cwd: bool,
        symlinks: Vec<&'static str>,
        secure_path: Option<&'static str>,
        finds: Vec<(&'static str, &'static str, &'static str)>,
        refusals: Vec<&'static str>,
    }
    impl HostFacts for Fixed {
        fn requester_can_write(&self, p: &Path) -> Result<bool, String> {
            Ok(self.writable.iter().any(|w| Path::new(w) == p))
        }
        fn world_writable(&self, _: &Path) -> Result<bool, String> {
            Ok(self.world_cwd)
        }
        fn symlink_on_path(&self, p: &Path) -> Result<Option<PathBuf>, String> {
            Ok(self
                .symlinks
                .iter()
                .map(PathBuf::from)
                .find(|link| p.starts_with(link)))
        }
        fn secure_path_finds(&self, argv0: &str) -> Option<(PathBuf, PathBuf)> {
            self.finds
                .iter()
                .find(|(name, _, _)| *name == argv0)
                .map(|(_, found, file)| (PathBuf::from(found), PathBuf::from(file)))
        }
        fn secure_path(&self) -> Option<String> {
            self.secure_path.map(str::to_string)
        }
        fn refusals(&self, _: &Request) -> Vec<String> {
            self.refusals.iter().map(|r| r.to_string()).collect()
        }
    }

    #[test]
    fn run_as_root_flag() {
        let mut r = request("apt-get upgrade", &[]);
        assert!(run_as_root(&r));
        r.run_as = "www-data".into();
        assert!(!run_as_root(&r));
    }

    #[test]
    fn inline_scripts() {
        assert_eq!(inline_script(&args("sh -c ls")), Some("sh -c".into()));
        assert_eq!(
            inline_script(&args("/bin/bash -lc ls")),
            Some("bash -lc".into())
        );
        assert_eq!(
            inline_script(&args("bash -e -c ls")),
            Some("bash -c".into())
        );
        assert_eq!(
            inline_script(&args("python3 -c print(1)")),
            Some("python -c".into())
        );
        assert_eq!(
            inline_script(&args("python3.12 -c x")),
            Some("python -c".into())
        );
        assert_eq!(inline_script(&args("perl -e x")), Some("perl -e".into()));
        assert_eq!(inline_script(&args("node -e x")), Some("node -e".into()));
        assert_eq!(inline_script(&args("ruby -e x")), Some("ruby -e".into()));
        assert_eq!(
            inline_script(&args("env FOO=1 sh -c x")),
            Some("sh -c".into())
        );
        assert_eq!(
            inline_script(&args("awk {print}")),
            Some("awk program".into())
        );
        assert_eq!(
            inline_script(&args("bash script.sh -c")),
            None,
            "-c after the script is its argument"
        );
        assert_eq!(inline_script(&args("python3 script.py")), None);
        assert_eq!(inline_script(&args("ls -c")), None);
        assert_eq!(inline_script(&args("awk -f prog.awk")), None);
    }

    #[test]
    fn destructive_patterns() {
        assert_eq!(destructive(&args("rm -rf /var/x")), Some("rm -rf".into()));
        assert_eq!(destructive(&args("rm -fr x")), Some("rm -rf".into()));
        assert_eq!(destructive(&args("rm -r -f x")), Some("rm -rf".into()));
        assert_eq!(
            destructive(&args("rm --recursive --force x")),
            Some("rm -rf".into())
        );
        assert_eq!(destructive(&args("rm x")), None);
        assert_eq!(destructive(&args("rm -r x")), None);
        assert_eq!(
            destructive(&args("mkfs.ext4 /dev/sdb1")),
            Some("mkfs.ext4".into())
        );
        assert_eq!(
            destructive(&args("dd if=x of=/dev/sda")),
            Some("dd of=/dev/sda".into())
        );
        assert_eq!(destructive(&args("dd if=x of=out.img")), None);
        assert_eq!(
            destructive(&args("chmod -R 777 /")),
            Some("recursive chmod".into())
        );
        assert_eq!(
            destructive(&args("chown --recursive a /srv")),
            Some("recursive chown".into())
        );
        assert_eq!(destructive(&args("chmod 644 f")), None);
        assert_eq!(
            destructive(&args("nice -n 5 rm -rf /")),
            Some("rm -rf".into())
        );
        let script = vec![
            "sh".into(),
            "-c".into(),
            "cd /; rm -rf --no-preserve-root /".into(),
        ];
        assert_eq!(destructive(&script), Some("rm -rf".into()));
        let redirect = vec!["sh".into(), "-c".into(), "cat img >/dev/sda".into()];
        assert_eq!(destructive(&redirect), Some("> /dev/sda".into()));
        let harmless = vec!["sh".into(), "-c".into(), "echo hi > /dev/null".into()];
        assert_eq!(destructive(&harmless), None);
    }

    #[test]
    fn loader_variables() {
        let env = Env(BTreeMap::from([
            ("LD_PRELOAD".to_string(), "/tmp/x.so".to_string()),
            ("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string()),
            ("BASH_ENV".to_string(), "/tmp/rc".to_string()),
            ("DYLD_INSERT_LIBRARIES".to_string(), "x".to_string()),
            ("PYTHONPATH".to_string(), "/tmp".to_string()),
        ]));
        assert_eq!(
            loader_env(&env),
            vec![
                "BASH_ENV",
                "DYLD_INSERT_LIBRARIES",
                "LD_PRELOAD",
                "PYTHONPATH"
            ]
        );
        assert!(loader_env(&Env::default()).is_empty());
    }

    #[test]
    fn path_arguments_are_found() {
        let mut r = request("cp ./a.txt /etc/b --target=/srv/x plain sub/dir", &[]);
        r.cwd = "/home/agent".into();
        assert_eq!(
            path_arguments(&r),
            vec![
                ("./a.txt", PathBuf::from("/home/agent/./a.txt")),
                ("/etc/b", PathBuf::from("/etc/b")),
                ("--target=/srv/x", PathBuf::from("/srv/x")),
                ("sub/dir", PathBuf::from("/home/agent/sub/dir")),
            ]
        );
    }

    #[test]
    fn shell_text_is_not_a_path() {
        let cwd = Path::new("/home/agent/work");
        for text in [
            "rm -rf /tmp/foo",
            "cd /; ls",
            "a/b;rm",
            "$HOME/x",
            "https://example.com/x",
            "-I/usr/include",
            "echo `id`/x",
            "plain",
        ] {
            assert_eq!(path_argument(text, cwd), None, "{text:?}");
        }
        assert_eq!(
            path_argument("/tmp/a b", cwd),
            Some(PathBuf::from("/tmp/a b")),
            "an absolute path may hold spaces"
        );
        assert_eq!(
            path_argument("../x", cwd),
            Some(PathBuf::from("/home/agent/work/../x"))
        );
    }

    #[test]
    fn the_writable_argument_flag_names_the_argument_as_given() {
        let mut r = testing_request_sh_c();
        r.cwd = "/home/agent/work".into();
        // Before, this shell text was joined to the cwd and flagged as
        // "/home/agent/work/rm -rf /tmp/foo".
        let facts = Fixed {
            writable: vec!["/home/agent/work/rm -rf /tmp/foo", "/home/agent/work/./out"],
            ..Fixed::default()
        };
        let risks = assess(&r, &facts);
        assert!(
            !risks
                .iter()
                .any(|k| matches!(k, Risk::WritableArguments(_))),
            "{risks:?}"
        );
        r.argv.push("./out".into());
        let risks = assess(&r, &facts);
        assert!(risks.contains(&Risk::WritableArguments(vec!["./out".into()])));
        assert_eq!(
            Risk::WritableArguments(vec!["./out".into(), "/tmp/a b".into()]).describe(),
            "arguments writable by the requester: ./out '/tmp/a b'"
        );
    }

    fn testing_request_sh_c() -> Request {
        let mut r = request("sh", &[]);
        r.argv = vec!["sh".into(), "-c".into(), "rm -rf /tmp/foo".into()];
        r.program = "/usr/bin/sh".into();
        r
    }

    #[test]
    fn pseudo_files_are_never_looked_up() {
        /// Facts that fail the test if asked about a path in /proc, /dev or /sys.
        struct Refuse;
        impl HostFacts for Refuse {
            fn requester_can_write(&self, p: &Path) -> Result<bool, String> {
                assert!(!is_pseudo_file(p), "looked up {}", p.display());
                Ok(false)
            }
            fn world_writable(&self, _: &Path) -> Result<bool, String> {
                Ok(false)
            }
            fn symlink_on_path(&self, p: &Path) -> Result<Option<PathBuf>, String> {
                assert!(!is_pseudo_file(p), "walked {}", p.display());
                Ok(None)
            }
        }
        for program in [
            "/dev/stdin",
            "/dev/fd/3",
            "/proc/self/fd/0",
            "/proc/1234/exe",
            "/sys/kernel/x",
            "/usr/../proc/self/exe",
        ] {
            let mut r = request("x /dev/stdin /proc/self/environ", &[]);
            r.program = program.into();
            let risks = assess(&r, &Refuse);
            assert!(
                risks.contains(&Risk::PseudoFileProgram),
                "{program}: {risks:?}"
            );
            assert!(!risks.contains(&Risk::WritableProgram));
        }
        assert!(!is_pseudo_file(Path::new("/usr/bin/proc")));
        assert!(!is_pseudo_file(Path::new("/devices/x")));
    }

    #[test]
    fn argv0_that_does_not_name_the_program_is_flagged() {
        let mut r = request("systemctl restart nginx", &[]);
        r.program = "/usr/bin/bash".into();
        let risks = assess(&r, &Fixed::default());
        assert!(risks.contains(&Risk::Argv0Differs {
            argv0: "systemctl".into(),
            program: "/usr/bin/bash".into()
        }));
        assert_eq!(
            Risk::Argv0Differs {
                argv0: "systemctl".into(),
                program: "/usr/bin/bash".into()
            }
            .tag(),
            "argv0-differs"
        );
        // The secure path finds `sh` as /usr/bin/dash through root's symlink: milder words,
        // still shown.
        let mut sh = request("sh -c true", &[]);
        sh.program = "/usr/bin/dash".into();
        let link = Fixed {
            finds: vec![("sh", "/usr/bin/sh", "/usr/bin/dash")],
            ..Fixed::default()
        };
        let risks = assess(&sh, &link);
        let flag = Risk::Argv0Link {
            argv0: "sh".into(),
            program: "/usr/bin/dash".into(),
        };
        assert!(risks.contains(&flag), "{risks:?}");
        assert!(flag.is_informational());
        // A link the requester can change, or one to another file, is not that.
        let writable = Fixed {
            writable: vec!["/usr/bin/sh"],
            ..link
        };
        assert!(
            assess(&sh, &writable)
                .iter()
                .any(|k| matches!(k, Risk::Argv0Differs { .. }))
        );
        let elsewhere = Fixed {
            finds: vec![("sh", "/usr/bin/sh", "/usr/bin/bash")],
            ..Fixed::default()
        };
        assert!(
            assess(&sh, &elsewhere)
                .iter()
                .any(|k| matches!(k, Risk::Argv0Differs { .. }))
        );
        // argv[0] that names the program: nothing.
        assert!(
            !assess(&request("ls", &[]), &Fixed::default())
                .iter()
                .any(|k| matches!(k, Risk::Argv0Differs { .. } | Risk::Argv0Link { .. }))
        );
    }

    #[test]
    fn refusals_symlinks_and_the_secure_path() {
        let mut r = request("deploy", &[]);
        r.program = "/opt/tools/deploy".into();
        r.cwd = "/home/agent/proj".into();
        let facts = Fixed {
            symlinks: vec!["/home/agent/proj"],
            secure_path: Some("/usr/sbin:/usr/bin"),
            refusals: vec!["openclaw is not a [[requester]] in /etc/assent/elevator.toml"],
            ..Fixed::default()
        };
        let risks = assess(&r, &facts);
        assert_eq!(
            risks[..2],
            [
                Risk::WillBeRefused(
                    "openclaw is not a [[requester]] in /etc/assent/elevator.toml".into()
                ),
                Risk::WillBeRefused(
                    "cwd /home/agent/proj goes through the symlink /home/agent/proj".into()
                ),
            ]
        );
        assert!(risks.contains(&Risk::OutsideSecurePath("/usr/sbin:/usr/bin".into())));
        r.program = "/usr/bin/../bin/deploy".into();
        let risks = assess(&r, &facts);
        assert!(
            risks
                .iter()
                .any(|k| matches!(k, Risk::WillBeRefused(w) if w.contains("is not canonical"))),
            "{risks:?}"
        );
    }

    #[test]
    fn assess_uses_host_facts() {
        let mut r = request("cp /home/agent/x /etc/y", &[("LD_PRELOAD", "x")]);
        r.program = "/home/agent/bin/cp".into();
        let facts = Fixed {
            writable: vec!["/home/agent/bin/cp", "/home/agent/x"],
            world_cwd: true,
            ..Fixed::default()
        };
        let risks = assess(&r, &facts);
        assert_eq!(
            risks,
            vec![
                Risk::RunAsRoot,
                Risk::LoaderEnv(vec!["LD_PRELOAD".into()]),
                Risk::WritableProgram,
                Risk::WritableArguments(vec!["/home/agent/x".into()]),
                Risk::WorldWritableCwd,
            ]
        );
        let mut plain = request("ls /", &[]);
        plain.run_as = "nobody".into();
        assert!(assess(&plain, &Fixed::default()).is_empty());
        let unknown = assess(
            &plain,
            &UnknownFacts("request is for host elsewhere".into()),
        );
        assert_eq!(
            unknown,
            vec![Risk::WriteAccessUnknown(
                "request is for host elsewhere".into()
            )]
        );
    }

    #[test]
    fn many_path_arguments_are_counted_not_walked() {
        let mut r = request("touch", &[]);
        r.argv.extend((0..1000).map(|i| format!("/tmp/f{i}")));
        let risks = assess(&r, &Fixed::default());
        assert!(
            risks.contains(&Risk::WriteAccessUnknown(
                "only the first 64 of 1000 path arguments were checked".into()
            )),
            "{risks:?}"
        );
    }
}
