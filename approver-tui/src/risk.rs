//! Risk flags: what about a request deserves a second look before approving it.
//!
//! The pattern checks are pure functions of the request. The file-system checks (can the
//! requester write the program, an argument, the cwd?) need facts about the host the command
//! will run on; they come through [`FileFacts`], which the console answers only when it runs on
//! that same host (see [`LocalFacts`]), and which says "unknown" otherwise.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use assent_protocol::{Env, Request};

/// One reason for caution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Risk {
    /// The approver has never decided a request signed by this agent key.
    FirstSeenAgent,
    /// The command runs as root.
    RunAsRoot,
    /// The requester can write the program file (or replace it through a directory).
    WritableProgram,
    /// The requester can write a file named in the arguments.
    WritableArgument(String),
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
    /// One line for the detail pane (the caller escapes nothing: the texts here are already
    /// escaped where they quote the request).
    pub fn describe(&self) -> String {
        use crate::escape::visible;
        match self {
            Risk::FirstSeenAgent => "first-seen agent key: never decided a request from it".into(),
            Risk::RunAsRoot => "runs as root".into(),
            Risk::WritableProgram => "program is writable by the requester".into(),
            Risk::WritableArgument(p) => {
                format!("argument writable by the requester: {}", visible(p))
            }
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
            Risk::RunAsRoot => "root",
            Risk::WritableProgram => "w-prog",
            Risk::WritableArgument(_) => "w-arg",
            Risk::WriteAccessUnknown(_) => "w-?",
            Risk::InlineScript(_) => "inline",
            Risk::Destructive(_) => "destroy",
            Risk::LoaderEnv(_) => "loader",
            Risk::WorldWritableCwd => "w-cwd",
        }
    }

    /// Informational flags are shown but not highlighted as alarming.
    pub fn is_informational(&self) -> bool {
        matches!(self, Risk::WriteAccessUnknown(_))
    }
}

/// Facts about files on the host the command will run on, from the requester's point of view.
pub trait FileFacts {
    /// `Ok(true)` if the requester can change what `path` names (write it, or replace it through
    /// a directory on the way); `Err(why)` when that cannot be known.
    fn requester_can_write(&self, path: &Path) -> Result<bool, String>;
    /// `Ok(true)` if `dir` is writable by everyone.
    fn world_writable(&self, dir: &Path) -> Result<bool, String>;
}

/// Every flag for `request`, except [`Risk::FirstSeenAgent`], which depends on the console's
/// memory and is added by [`crate::update`].
pub fn assess(request: &Request, facts: &dyn FileFacts) -> Vec<Risk> {
    let mut risks = Vec::new();
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
    risks.extend(write_access(request, facts));
    risks
}

/// `run_as` is root by name. (uid 0 under another name would be a misconfigured host; the
/// elevator resolves names, so the name is what the approver sees.)
pub fn run_as_root(request: &Request) -> bool {
    request.run_as == "root"
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

/// Arguments that name files: absolute paths, relative paths with a slash, `--opt=/path`.
/// Bare words are not resolved against the cwd: too many false alarms for too little.
pub fn path_arguments(request: &Request) -> Vec<PathBuf> {
    let cwd = Path::new(&request.cwd);
    let mut out = Vec::new();
    for arg in request.argv.iter().skip(1) {
        let value = match arg.split_once('=') {
            Some((opt, v))
                if opt.starts_with('-') || opt.starts_with("of") || opt.starts_with("if") =>
            {
                v
            }
            _ => arg.as_str(),
        };
        if value.starts_with('-') || !value.contains('/') || value.contains("://") {
            continue;
        }
        let p = Path::new(value);
        out.push(if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        });
    }
    out
}

/// The write-access flags for program, arguments and cwd.
fn write_access(request: &Request, facts: &dyn FileFacts) -> Vec<Risk> {
    let mut risks = Vec::new();
    let mut unknown: Option<String> = None;
    match facts.requester_can_write(Path::new(&request.program)) {
        Ok(true) => risks.push(Risk::WritableProgram),
        Ok(false) => {}
        Err(why) => unknown = Some(why),
    }
    for path in path_arguments(request) {
        match facts.requester_can_write(&path) {
            Ok(true) => risks.push(Risk::WritableArgument(path.to_string_lossy().into_owned())),
            Ok(false) => {}
            Err(why) => {
                unknown.get_or_insert(why);
            }
        }
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

/// File facts for a request that runs on the console's own host.
///
/// Best effort by design: the console runs as the approver, not root, so it may be unable to
/// look into some directories (then it says "unknown"); it reasons from permission bits and
/// ownership only (no ACLs, no capabilities); and what it sees is a snapshot — the elevator's
/// own checks (program hash on the executed fd, sealed copy of writable programs) are what make
/// approval safe. The flags only help the human judge.
#[derive(Debug, Clone)]
pub struct LocalFacts {
    uid: u32,
    gids: Vec<u32>,
}

/// Facts that are never known, with the reason to show.
#[derive(Debug, Clone)]
pub struct UnknownFacts(pub String);

impl FileFacts for UnknownFacts {
    fn requester_can_write(&self, _: &Path) -> Result<bool, String> {
        Err(self.0.clone())
    }
    fn world_writable(&self, _: &Path) -> Result<bool, String> {
        Err(self.0.clone())
    }
}

/// Choose the facts for `request`: local when it targets this host and its user exists here
/// with the same uid, unknown otherwise.
pub fn facts_for(request: &Request) -> Box<dyn FileFacts + Send> {
    let here = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    if request.host != here {
        return Box::new(UnknownFacts(format!(
            "request is for host {}",
            request.host
        )));
    }
    match LocalFacts::for_user(&request.user, request.uid) {
        Some(facts) => Box::new(facts),
        None => Box::new(UnknownFacts(format!(
            "no local user {} with uid {}",
            request.user, request.uid
        ))),
    }
}

impl LocalFacts {
    /// The requester's uid and all its groups, if `user` exists here with `uid`.
    pub fn for_user(user: &str, uid: u32) -> Option<LocalFacts> {
        let entry = nix::unistd::User::from_name(user).ok()??;
        if entry.uid.as_raw() != uid {
            return None;
        }
        let name = CString::new(user).ok()?;
        let mut gids: Vec<u32> = nix::unistd::getgrouplist(&name, entry.gid)
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
        gids.push(entry.gid.as_raw());
        Some(LocalFacts { uid, gids })
    }

    pub fn new(uid: u32, gids: Vec<u32>) -> LocalFacts {
        LocalFacts { uid, gids }
    }

    fn may_write(&self, meta: &std::fs::Metadata) -> bool {
        let mode = meta.mode();
        if self.uid == 0 {
            return true;
        }
        if meta.uid() == self.uid {
            return mode & 0o200 != 0;
        }
        if self.gids.contains(&meta.gid()) {
            return mode & 0o020 != 0;
        }
        mode & 0o002 != 0
    }
}

impl FileFacts for LocalFacts {
    fn requester_can_write(&self, path: &Path) -> Result<bool, String> {
        let unknown = |p: &Path, e: std::io::Error| format!("cannot inspect {}: {e}", p.display());
        // Walk from the root: a writable directory on the way lets the requester replace
        // whatever follows, unless the sticky bit protects entries it does not own.
        let mut current = PathBuf::from("/");
        let mut parent_meta =
            std::fs::symlink_metadata(&current).map_err(|e| unknown(&current, e))?;
        let components: Vec<Component> = path.components().collect();
        for component in components {
            let name = match component {
                Component::RootDir | Component::CurDir => continue,
                Component::ParentDir => {
                    current.pop();
                    parent_meta =
                        std::fs::symlink_metadata(&current).map_err(|e| unknown(&current, e))?;
                    continue;
                }
                Component::Normal(n) => n,
                Component::Prefix(_) => continue,
            };
            let child = current.join(name);
            let dir_writable = self.may_write(&parent_meta);
            match std::fs::symlink_metadata(&child) {
                Ok(meta) => {
                    let sticky = parent_meta.mode() & 0o1000 != 0;
                    let protected =
                        sticky && meta.uid() != self.uid && parent_meta.uid() != self.uid;
                    if dir_writable && !protected {
                        return Ok(true);
                    }
                    if meta.file_type().is_symlink() {
                        if meta.uid() == self.uid {
                            return Ok(true);
                        }
                        // Follow it: the target is what gets used.
                        let target =
                            std::fs::canonicalize(&child).map_err(|e| unknown(&child, e))?;
                        let rest: PathBuf = path
                            .strip_prefix(&child)
                            .map(Path::to_path_buf)
                            .unwrap_or_default();
                        return self.requester_can_write(&target.join(rest));
                    }
                    current = child;
                    parent_meta = meta;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // It does not exist: whoever can write the directory can create it.
                    return Ok(dir_writable);
                }
                Err(e) => return Err(unknown(&child, e)),
            }
        }
        Ok(self.may_write(&parent_meta))
    }

    fn world_writable(&self, dir: &Path) -> Result<bool, String> {
        let meta =
            std::fs::metadata(dir).map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
        Ok(meta.mode() & 0o002 != 0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    fn request(argv: &str, env: &[(&str, &str)]) -> Request {
        crate::testing::request(argv, env)
    }

    /// Facts from fixed answers, so the pure part of `assess` can be tested.
    struct Fixed {
        writable: Vec<&'static str>,
        world_cwd: bool,
    }
    impl FileFacts for Fixed {
        fn requester_can_write(&self, p: &Path) -> Result<bool, String> {
            Ok(self.writable.iter().any(|w| Path::new(w) == p))
        }
        fn world_writable(&self, _: &Path) -> Result<bool, String> {
            Ok(self.world_cwd)
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
        let mut r = request("cp ./a.txt /etc/b --target=/srv/x plain", &[]);
        r.cwd = "/home/agent".into();
        assert_eq!(
            path_arguments(&r),
            vec![
                PathBuf::from("/home/agent/./a.txt"),
                PathBuf::from("/etc/b"),
                PathBuf::from("/srv/x")
            ]
        );
    }

    #[test]
    fn assess_uses_file_facts() {
        let mut r = request("cp /home/agent/x /etc/y", &[("LD_PRELOAD", "x")]);
        r.program = "/home/agent/bin/cp".into();
        let facts = Fixed {
            writable: vec!["/home/agent/bin/cp", "/home/agent/x"],
            world_cwd: true,
        };
        let risks = assess(&r, &facts);
        assert_eq!(
            risks,
            vec![
                Risk::RunAsRoot,
                Risk::LoaderEnv(vec!["LD_PRELOAD".into()]),
                Risk::WritableProgram,
                Risk::WritableArgument("/home/agent/x".into()),
                Risk::WorldWritableCwd,
            ]
        );
        let none = Fixed {
            writable: vec![],
            world_cwd: false,
        };
        let mut plain = request("ls /", &[]);
        plain.run_as = "nobody".into();
        assert!(assess(&plain, &none).is_empty());
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
    fn local_write_access_from_permission_bits() {
        // Run as root in CI, so judge for an unprivileged uid that owns nothing here.
        let dir = std::env::temp_dir().join(format!("assent-risk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("locked")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("locked"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(dir.join("locked/prog"), b"x").unwrap();
        std::fs::set_permissions(
            dir.join("locked/prog"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("open")).unwrap();
        std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(dir.join("open/prog"), b"x").unwrap();
        std::fs::create_dir_all(dir.join("sticky")).unwrap();
        std::fs::set_permissions(dir.join("sticky"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::write(dir.join("sticky/prog"), b"x").unwrap();
        std::fs::set_permissions(
            dir.join("sticky/prog"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(dir.join("locked/world"), b"x").unwrap();
        std::fs::set_permissions(
            dir.join("locked/world"),
            std::fs::Permissions::from_mode(0o646),
        )
        .unwrap();

        let me = std::fs::metadata(&dir).unwrap();
        // Only meaningful if the temp dir chain is not writable by our fake user; uid 54321
        // owns nothing and belongs to no group that owns these files.
        let facts = LocalFacts::new(54321, vec![54321]);
        assert_eq!(
            facts.requester_can_write(&dir.join("locked/prog")),
            Ok(false)
        );
        assert_eq!(
            facts.requester_can_write(&dir.join("open/prog")),
            Ok(true),
            "replaceable via 0777 dir"
        );
        assert_eq!(
            facts.requester_can_write(&dir.join("open/new")),
            Ok(true),
            "creatable"
        );
        assert_eq!(
            facts.requester_can_write(&dir.join("sticky/prog")),
            Ok(false),
            "sticky protects"
        );
        assert_eq!(facts.requester_can_write(&dir.join("sticky/new")), Ok(true));
        assert_eq!(
            facts.requester_can_write(&dir.join("locked/world")),
            Ok(true),
            "o+w file"
        );
        assert_eq!(
            facts.requester_can_write(&dir.join("locked/absent")),
            Ok(false)
        );
        let owner = LocalFacts::new(me.uid(), vec![me.gid()]);
        assert_eq!(
            owner.requester_can_write(&dir.join("locked/prog")),
            Ok(true)
        );
        assert_eq!(facts.world_writable(&dir.join("open")), Ok(true));
        assert_eq!(facts.world_writable(&dir.join("locked")), Ok(false));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
