//! Man pages and shell completions for assent's binaries, generated from each binary's real
//! clap command line so that neither can drift from what the binary accepts.
//!
//! Each binary takes the hidden flag [`GenerateFlag`] (`--generate KIND`) and answers it with
//! [`generate`]. Its man page is put together with [`Manual`] from clap's own sections and the
//! binary's own roff (description, files, exit statuses), written with the helpers here:
//! [`commands`] for the subcommands, [`entries`] for `.TP` lists, [`exit_status`] and
//! [`see_also`].
#![forbid(unsafe_code)]

pub use clap_complete::Shell;
pub use clap_mangen::roff;

use clap::{Arg, ArgAction, Args, Command, ValueEnum};
use roff::{Inline, Roff, bold, italic, roman};

/// What `--generate` prints (for packagers; hidden from `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page (roff), for section 1.
    Man,
    /// Completions for bash.
    CompleteBash,
    /// Completions for zsh.
    CompleteZsh,
    /// Completions for fish.
    CompleteFish,
}

impl Generate {
    /// Every kind, in the order `--help` of a packager's script would list them.
    pub const ALL: [Generate; 4] = [
        Generate::Man,
        Generate::CompleteBash,
        Generate::CompleteZsh,
        Generate::CompleteFish,
    ];

    /// The completion scripts.
    pub const COMPLETIONS: [Generate; 3] = [
        Generate::CompleteBash,
        Generate::CompleteZsh,
        Generate::CompleteFish,
    ];

    /// The shell a completion script is for; `None` for the man page.
    pub fn shell(self) -> Option<Shell> {
        match self {
            Generate::Man => None,
            Generate::CompleteBash => Some(Shell::Bash),
            Generate::CompleteZsh => Some(Shell::Zsh),
            Generate::CompleteFish => Some(Shell::Fish),
        }
    }
}

/// The hidden `--generate KIND` flag; `#[command(flatten)]` it into a binary's `Cli`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Args)]
pub struct GenerateFlag {
    /// Print the man page or a shell completion script to stdout, then exit.
    #[arg(
        id = "generate",
        long = "generate",
        hide = true,
        value_enum,
        value_name = "KIND"
    )]
    pub kind: Option<Generate>,
}

/// clap's error as one line, with where to look next: "MESSAGE; see `BIN --help`".
pub fn usage_line(e: &clap::Error, bin: &str) -> String {
    let text = e.render().to_string();
    // The message is the first paragraph; usage and tips follow after a blank line.
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("{message}; see `{bin} --help`")
}

/// What `BIN --generate KIND` prints: `man_page(cmd)` for the man page, else the completion
/// script for `cmd` under the name `bin`.
pub fn generate(
    kind: Generate,
    cmd: Command,
    bin: &str,
    man_page: impl FnOnce(Command) -> String,
) -> String {
    match kind.shell() {
        None => man_page(cmd),
        Some(shell) => completions(shell, cmd, bin),
    }
}

/// A completion script for `shell`, completing `cmd` when typed as `bin`. Hidden options and
/// subcommands are left out: clap_complete would offer them.
pub fn completions(shell: Shell, mut cmd: Command, bin: &str) -> String {
    // Built first, so that the help and version flags are among its arguments.
    cmd.build();
    let mut cmd = visible_only(&cmd);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Built `cmd` with only what `--help` shows: its visible arguments and, recursively, its
/// visible subcommands. Enough to complete; not meant to parse.
fn visible_only(cmd: &Command) -> Command {
    // A command that writes its own `help` or `version` keeps it instead of clap's.
    let own = |id: &str| cmd.get_arguments().any(|a| a.get_id() == id);
    let mut out = Command::new(cmd.get_name().to_owned())
        .disable_help_flag(cmd.is_disable_help_flag_set() || own("help"))
        .disable_version_flag(cmd.is_disable_version_flag_set() || own("version"))
        .disable_help_subcommand(
            cmd.is_disable_help_subcommand_set() || cmd.find_subcommand("help").is_some(),
        )
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version.to_owned());
    }
    for alias in cmd.get_visible_aliases() {
        out = out.visible_alias(alias.to_owned());
    }
    out.subcommands(
        cmd.get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .map(visible_only),
    )
}

/// A man page being written, section by section, in the order the calls come.
///
/// ```
/// # use assent_cli_manual::{Manual, roff::roman};
/// let page = Manual::new(clap::Command::new("tool").about("Does one thing."))
///     .synopsis()
///     .description(|page| {
///         page.control("PP", []).text([roman("More than --help says.")]);
///     })
///     .options()
///     .finish();
/// assert!(page.contains(".TH tool 1"));
/// assert!(page.contains("More than \\-\\-help says."));
/// ```
pub struct Manual {
    cmd: Command,
    man: clap_mangen::Man,
    out: Vec<u8>,
}

impl Manual {
    /// Starts the page of `cmd` (built, without clap's `help` subcommand) with its title line
    /// and NAME section.
    pub fn new(cmd: Command) -> Manual {
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        let man = clap_mangen::Man::new(cmd.clone());
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = man.render_title(&mut out);
        let _ = man.render_name_section(&mut out);
        Manual { cmd, man, out }
    }

    /// The built command the page is about.
    pub fn command(&self) -> &Command {
        &self.cmd
    }

    /// The SYNOPSIS section with each option's value placeholder (`[--relay URL]`, which
    /// clap's own section leaves out): the command's own line, then one line per visible
    /// subcommand.
    pub fn synopsis(self) -> Manual {
        self.roff(|page, cmd| {
            page.control("SH", ["SYNOPSIS"]);
            // The command's global options are its own on its own line.
            let mut line = vec![bold(cmd.get_name())];
            for arg in cmd
                .get_arguments()
                .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
            {
                line.push(roman(" "));
                line.extend(arg_synopsis(arg));
            }
            page.text(line);
            for sub in visible_subcommands(cmd) {
                page.control("br", []);
                page.text(subcommand_synopsis(cmd.get_name(), sub));
            }
        })
    }

    /// clap's DESCRIPTION section (the long about), then the paragraphs `more` writes: what
    /// `--help` cannot say at length.
    pub fn description(mut self, more: impl FnOnce(&mut Roff)) -> Manual {
        let _ = self.man.render_description_section(&mut self.out);
        self.roff(|page, _| more(page))
    }

    /// clap's OPTIONS section (the visible top-level options).
    pub fn options(mut self) -> Manual {
        let _ = self.man.render_options_section(&mut self.out);
        self
    }

    /// Roff of the binary's own, written by `write` with the built command at hand.
    pub fn roff(mut self, write: impl FnOnce(&mut Roff, &Command)) -> Manual {
        let mut page = Roff::new();
        write(&mut page, &self.cmd);
        self.out.extend(page.render().into_bytes());
        self
    }

    /// Ends the page with clap's VERSION section (when the command has a version) and returns
    /// it.
    pub fn finish(mut self) -> String {
        if self.cmd.get_version().is_some() || self.cmd.get_long_version().is_some() {
            let _ = self.man.render_version_section(&mut self.out);
        }
        String::from_utf8_lossy(&self.out).into_owned()
    }
}

/// The subcommands shown to users (not the hidden ones).
pub fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// `NAME [--option VALUE] ... PROGRAM`: one line of a synopsis, `cmd`'s own arguments after
/// `name`.
pub fn usage(name: &str, cmd: &Command) -> Vec<Inline> {
    let mut words = vec![bold(name)];
    for arg in cmd.get_arguments().filter(|a| own_arg(a)) {
        words.push(roman(" "));
        words.extend(arg_synopsis(arg));
    }
    words
}

/// `BIN SUB [--option VALUE] ... PROGRAM`: a subcommand's line of a synopsis.
pub fn subcommand_synopsis(bin: &str, sub: &Command) -> Vec<Inline> {
    usage(&format!("{bin} {}", sub.get_name()), sub)
}

/// The COMMANDS section: for each visible subcommand its synopsis, what it does (one
/// paragraph per paragraph of its long about) and an entry for each of its own options and
/// documented positionals, with the default value and the environment variable it falls
/// back to.
pub fn commands(page: &mut Roff, cmd: &Command, bin: &str) {
    page.control("SH", ["COMMANDS"]);
    for sub in visible_subcommands(cmd) {
        page.control("SS", [sub.get_name()]);
        page.text(subcommand_synopsis(bin, sub));
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            for paragraph in about.to_string().split("\n\n") {
                page.control("PP", [])
                    .text([roman(sentence(&paragraph.replace('\n', " ")))]);
            }
        }
        for arg in sub.get_arguments().filter(|a| own_arg(a)) {
            let help = arg
                .get_long_help()
                .or_else(|| arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            if arg.is_positional() && help.trim().is_empty() {
                // Named in the synopsis; there is nothing more to say about it.
                continue;
            }
            page.control("TP", []).text(option_words(arg));
            page.text([roman(arg_help(arg, &help))]);
        }
    }
}

/// An argument's help as a sentence, with its default and its environment variable.
fn arg_help(arg: &Arg, help: &str) -> String {
    let mut help = sentence(help);
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if takes_value(arg) && !defaults.is_empty() {
        help.push_str(&format!(" Default: {}.", defaults.join(", ")));
    }
    if let Some(env) = arg.get_env().filter(|_| !arg.is_hide_env_set()) {
        help.push_str(&format!(" Also taken from {}.", env.to_string_lossy()));
    }
    help.trim_start().to_owned()
}

/// clap drops a one-line doc comment's final period; the man page puts it back.
pub fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() || text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// Arguments a command declares itself (not hidden ones, the global ones or the generated
/// `--help` and `--version`).
pub fn own_arg(arg: &Arg) -> bool {
    !arg.is_hide_set()
        && !arg.is_global_set()
        && !matches!(arg.get_id().as_str(), "help" | "version")
}

/// How an argument reads in a synopsis: `[--as USER]`, `[--env NAME=VALUE]...`, `[--force]`,
/// `[--verbose]...`, `ID`, or `[--] PROGRAM [ARGS...]` for a trailing positional.
pub fn arg_synopsis(arg: &Arg) -> Vec<Inline> {
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
    if matches!(arg.get_action(), ArgAction::Append | ArgAction::Count) {
        words.push(roman("..."));
    }
    words
}

/// `--grant GRANT`, `--force`, or `PROGRAM` for a positional.
pub fn option_words(arg: &Arg) -> Vec<Inline> {
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

/// The argument's first value name, else its id in capitals.
pub fn value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
}

/// Whether the argument takes a value (not a flag).
pub fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

/// How the term of an [`entries`] list is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// Commands, options, variables, exit statuses.
    Bold,
    /// File names.
    Italic,
}

/// A `.TP` list: each term in `face`, then its text.
pub fn entries<T, U>(page: &mut Roff, face: Face, rows: impl IntoIterator<Item = (T, U)>)
where
    T: Into<String>,
    U: Into<String>,
{
    for (term, text) in rows {
        let term = match face {
            Face::Bold => bold(term),
            Face::Italic => italic(term),
        };
        page.control("TP", []).text([term]).text([roman(text)]);
    }
}

/// The EXIT STATUS section: an optional lead line, then each code and what it means.
pub fn exit_status<T, U>(
    page: &mut Roff,
    lead: Vec<Inline>,
    codes: impl IntoIterator<Item = (T, U)>,
) where
    T: Into<String>,
    U: Into<String>,
{
    page.control("SH", ["EXIT STATUS"]);
    if !lead.is_empty() {
        page.text(lead);
    }
    entries(page, Face::Bold, codes);
}

/// The SEE ALSO section: `name(section), ...`.
pub fn see_also(page: &mut Roff, pages: &[(&str, u8)]) {
    let mut words = Vec::new();
    for (i, (name, section)) in pages.iter().enumerate() {
        let comma = if i + 1 < pages.len() { ", " } else { "" };
        words.push(bold(*name));
        words.push(roman(format!("({section}){comma}")));
    }
    page.control("SH", ["SEE ALSO"]).text(words);
}

/// An option as roff writes it: `\-\-no\-notify`.
fn roff_option(long: &str) -> String {
    format!("\\-\\-{}", long.replace('-', "\\-"))
}

/// The sections every man page of assent's has; COMMANDS too when there are subcommands.
pub const SECTIONS: [&str; 6] = [
    "NAME",
    "SYNOPSIS",
    "DESCRIPTION",
    "OPTIONS",
    "EXIT STATUS",
    "SEE ALSO",
];

/// What `page`, the man page of `cmd`, gets wrong about it (for the binaries' tests): a title
/// line for another name, one of [`SECTIONS`] or of `own_sections` it lacks, a visible
/// option or subcommand it leaves out, or a hidden one it shows. Empty when none.
pub fn man_page_problems(page: &str, cmd: &Command, own_sections: &[&str]) -> Vec<String> {
    let mut cmd = cmd.clone().disable_help_subcommand(true);
    cmd.build();
    let mut problems = Vec::new();
    if !page.contains(&format!("\n.TH {} 1 ", cmd.get_name())) {
        problems.push(format!("lacks the title line .TH {} 1", cmd.get_name()));
    }
    problems.extend(
        missing_sections(page, &SECTIONS)
            .into_iter()
            .chain(missing_sections(page, own_sections))
            .map(|name| format!("lacks the section {name}")),
    );
    if visible_subcommands(&cmd).next().is_some() && !page.contains(".SH COMMANDS\n") {
        problems.push("lacks the section COMMANDS".to_owned());
    }
    let check = |arg: &Arg, visible: bool, problems: &mut Vec<String>| {
        let Some(long) = arg.get_long() else { return };
        if visible && !page.contains(&roff_option(long)) {
            problems.push(format!("lacks --{long}"));
        }
        if arg.is_hide_set() && page.contains(&format!("{}\\fR", roff_option(long))) {
            problems.push(format!("shows the hidden --{long}"));
        }
    };
    for arg in cmd.get_arguments() {
        check(arg, !arg.is_hide_set(), &mut problems);
    }
    for sub in cmd.get_subcommands() {
        let heading = format!(".SS {}\n", sub.get_name());
        match (sub.is_hide_set(), page.contains(&heading)) {
            (false, false) => problems.push(format!("lacks the subcommand {}", sub.get_name())),
            (true, true) => {
                problems.push(format!("shows the hidden subcommand {}", sub.get_name()))
            }
            _ => {}
        }
        for arg in sub.get_arguments().filter(|a| !a.is_global_set()) {
            check(arg, !sub.is_hide_set() && own_arg(arg), &mut problems);
        }
    }
    problems
}

/// The sections `page` lacks, of `names` (`NAME`, `EXIT STATUS`, ...).
pub fn missing_sections<'a>(page: &str, names: &[&'a str]) -> Vec<&'a str> {
    names
        .iter()
        .copied()
        .filter(|name| {
            let heading = if name.contains(' ') {
                format!(".SH \"{name}\"\n")
            } else {
                format!(".SH {name}\n")
            };
            !page.contains(&heading)
        })
        .collect()
}

/// The exit statuses `page` has no entry for, of `codes`.
pub fn missing_exit_statuses<T: ToString>(
    page: &str,
    codes: impl IntoIterator<Item = T>,
) -> Vec<String> {
    codes
        .into_iter()
        .map(|code| code.to_string())
        .filter(|code| !page.contains(&format!(".TP\n\\fB{code}\\fR\n")))
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::{Parser, Subcommand};

    use super::*;

    /// A small command line with every kind of argument the helpers handle.
    #[derive(Debug, Parser)]
    #[command(name = "tool", version, about = "Does tools' things.")]
    struct Cli {
        /// A global option, shown only in OPTIONS.
        #[arg(long, global = true, value_name = "URL")]
        relay: Option<String>,
        /// Say more (-v, -vv).
        #[arg(short, long, action = ArgAction::Count)]
        verbose: u8,
        #[command(flatten)]
        generate: GenerateFlag,
        #[command(subcommand)]
        command: Option<Sub>,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        /// Run something.
        ///
        /// A second paragraph,
        /// on two lines.
        Run {
            /// Whom to run as
            #[arg(long = "as", value_name = "USER", default_value = "root")]
            run_as: String,
            /// Why.
            #[arg(long, value_name = "TEXT", env = "TOOL_REASON")]
            reason: Option<String>,
            /// Extra variable (repeatable)
            #[arg(long, value_name = "NAME=VALUE")]
            env: Vec<String>,
            /// Replace it
            #[arg(long)]
            force: bool,
            #[arg(long, hide = true)]
            secret: bool,
            /// The program and its arguments
            #[arg(value_name = "PROGRAM", trailing_var_arg = true, num_args = 1..)]
            command: Vec<String>,
        },
        /// Approve one.
        Approve { id: String },
        #[command(hide = true)]
        Hidden,
    }

    #[test]
    fn completions_offer_what_help_shows_and_nothing_hidden() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = completions(shell, cmd(), "tool");
            for shown in ["reason", "force", "approve", "help"] {
                assert!(script.contains(shown), "{shell} lacks {shown}:\n{script}");
            }
            for hidden in ["secret", "hidden", "Hidden"] {
                assert!(
                    !script.contains(hidden),
                    "{shell} offers {hidden}:\n{script}"
                );
            }
        }
    }

    fn cmd() -> Command {
        use clap::CommandFactory;
        let mut cmd = Cli::command().disable_help_subcommand(true);
        cmd.build();
        cmd
    }

    fn sub(name: &str) -> Command {
        cmd().find_subcommand(name).unwrap().clone()
    }

    fn arg(sub_name: &str, id: &str) -> Arg {
        sub(sub_name)
            .get_arguments()
            .find(|a| a.get_id() == id)
            .unwrap_or_else(|| panic!("{sub_name} has no {id}"))
            .clone()
    }

    /// What `write` renders, without the preamble every rendered block starts with.
    fn render(write: impl FnOnce(&mut Roff)) -> String {
        let mut page = Roff::new();
        write(&mut page);
        let text = page.render();
        let preamble = Roff::new().render();
        text.strip_prefix(&preamble)
            .unwrap_or_else(|| panic!("no preamble: {text}"))
            .to_owned()
    }

    fn line(inlines: Vec<Inline>) -> String {
        render(|page| {
            page.text(inlines);
        })
    }

    #[test]
    fn the_flag_takes_each_kind_by_its_documented_name_and_nothing_else() {
        for (word, kind) in [
            ("man", Generate::Man),
            ("complete-bash", Generate::CompleteBash),
            ("complete-zsh", Generate::CompleteZsh),
            ("complete-fish", Generate::CompleteFish),
        ] {
            let cli = Cli::try_parse_from(["tool", "--generate", word]).unwrap();
            assert_eq!(cli.generate.kind, Some(kind), "{word}");
        }
        assert_eq!(Cli::try_parse_from(["tool"]).unwrap().generate.kind, None);
        for line in [&["tool", "--generate", "pdf"][..], &["tool", "--generate"]] {
            assert!(Cli::try_parse_from(line).is_err(), "{line:?}");
        }
        assert_eq!(
            Generate::ALL.map(Generate::shell),
            [None, Some(Shell::Bash), Some(Shell::Zsh), Some(Shell::Fish)]
        );
        let help = cmd().render_long_help().to_string();
        assert!(!help.contains("--generate"), "the flag is hidden: {help}");
    }

    #[test]
    fn completions_are_for_the_named_binary_and_shell() {
        let bash = completions(Shell::Bash, cmd(), "tool");
        assert!(bash.contains("complete -F _tool"), "{bash}");
        let zsh = completions(Shell::Zsh, cmd(), "tool");
        assert!(zsh.starts_with("#compdef tool"), "{zsh}");
        let fish = completions(Shell::Fish, cmd(), "tool");
        assert!(fish.contains("complete -c tool"), "{fish}");
        for script in [&bash, &zsh, &fish] {
            for word in ["run", "approve", "relay", "reason", "force"] {
                assert!(script.contains(word), "{word}: {script}");
            }
        }
    }

    #[test]
    fn generate_calls_the_man_page_writer_only_for_the_man_page() {
        let man = generate(Generate::Man, cmd(), "tool", |cmd| {
            format!("page of {}", cmd.get_name())
        });
        assert_eq!(man, "page of tool");
        for kind in Generate::COMPLETIONS {
            let script = generate(kind, cmd(), "other", |_| panic!("not a man page"));
            assert_eq!(
                script,
                completions(kind.shell().unwrap(), cmd(), "other"),
                "{kind:?}"
            );
            assert!(script.contains("other"), "{kind:?}");
        }
    }

    #[test]
    fn the_manual_puts_sections_in_the_order_asked() {
        use clap::CommandFactory;
        let page = Manual::new(Cli::command())
            .synopsis()
            .description(|page| {
                page.control("PP", []).text([roman("OWN PARAGRAPH")]);
            })
            .options()
            .roff(|page, cmd| {
                assert!(cmd.find_subcommand("help").is_none(), "no help subcommand");
                page.control("SH", ["LAST"]);
            })
            .finish();
        assert!(page.contains(".TH tool 1"), "{page}");
        let at = |needle: &str| {
            page.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing:\n{page}"))
        };
        let order = [
            at(".SH NAME"),
            at(".SH SYNOPSIS"),
            at(".SH DESCRIPTION"),
            at("OWN PARAGRAPH"),
            at(".SH OPTIONS"),
            at(".SH LAST"),
            at(".SH VERSION"),
        ];
        assert!(order.is_sorted(), "{order:?}\n{page}");
        assert!(page.contains("\\-\\-relay"), "{page}");
        let synopsis = &page[at(".SH SYNOPSIS")..at(".SH DESCRIPTION")];
        for placeholder in [
            "\\fBtool\\fR [\\fB\\-\\-relay\\fR \\fIURL\\fR]",
            "\\fBtool run\\fR [\\fB\\-\\-as\\fR \\fIUSER\\fR]",
        ] {
            assert!(
                synopsis.contains(placeholder),
                "{placeholder} in:\n{synopsis}"
            );
        }
        assert!(
            !page.contains("generate"),
            "hidden flags stay hidden:\n{page}"
        );
    }

    /// The tool's page as a binary would write it.
    fn tool_page() -> String {
        use clap::CommandFactory;
        Manual::new(Cli::command())
            .synopsis()
            .description(|_| {})
            .options()
            .roff(|page, cmd| {
                commands(page, cmd, "tool");
                exit_status(page, Vec::new(), [("0", "Fine."), ("64", "Usage.")]);
                see_also(page, &[("tool-admin", 8)]);
            })
            .finish()
    }

    #[test]
    fn a_whole_page_passes_the_checks_and_a_page_with_gaps_fails_them() {
        use clap::CommandFactory;
        let page = tool_page();
        assert_eq!(
            man_page_problems(&page, &Cli::command(), &["COMMANDS"]),
            Vec::<String>::new()
        );
        assert_eq!(missing_exit_statuses(&page, [0, 64]), Vec::<String>::new());

        assert_eq!(
            missing_sections(&page, &["FILES", "NAME", "THE END"]),
            ["FILES", "THE END"]
        );
        assert_eq!(missing_exit_statuses(&page, ["0", "1", "78"]), ["1", "78"]);
        assert_eq!(
            man_page_problems(&page.replace(".TH tool", ".TH other"), &Cli::command(), &[]),
            ["lacks the title line .TH tool 1"]
        );
        let gaps = page
            .replace(".SH COMMANDS\n", ".SH COMMAND\n")
            .replace(".SH \"SEE ALSO\"\n", "")
            .replace(".SS approve\n", ".SS nothing\n")
            .replace("\\-\\-force", "force")
            .replace("\\-\\-relay", "relay");
        assert_eq!(
            man_page_problems(&gaps, &Cli::command(), &["FILES"]),
            [
                "lacks the section SEE ALSO",
                "lacks the section FILES",
                "lacks the section COMMANDS",
                "lacks --relay",
                "lacks --force",
                "lacks the subcommand approve",
            ]
        );
        let shows = format!("{page}\n\\fB\\-\\-secret\\fR\n.SS hidden\n\\fB\\-\\-generate\\fR\n");
        assert_eq!(
            man_page_problems(&shows, &Cli::command(), &[]),
            [
                "shows the hidden --generate",
                "shows the hidden --secret",
                "shows the hidden subcommand hidden",
            ]
        );
    }

    #[test]
    fn synopses_show_each_kind_of_argument() {
        assert_eq!(
            line(arg_synopsis(&arg("run", "run_as"))),
            "[\\fB\\-\\-as\\fR \\fIUSER\\fR]\n"
        );
        assert_eq!(
            line(arg_synopsis(&arg("run", "env"))),
            "[\\fB\\-\\-env\\fR \\fINAME=VALUE\\fR]...\n"
        );
        assert_eq!(
            line(arg_synopsis(&arg("run", "force"))),
            "[\\fB\\-\\-force\\fR]\n"
        );
        assert_eq!(
            line(arg_synopsis(&arg("run", "command"))),
            "[\\-\\-] \\fIPROGRAM\\fR [\\fIARGS\\fR...]\n"
        );
        assert_eq!(line(arg_synopsis(&arg("approve", "id"))), "\\fIID\\fR\n");
        assert_eq!(
            line(subcommand_synopsis("tool", &sub("approve"))),
            "\\fBtool approve\\fR \\fIID\\fR\n"
        );
        let top = line(usage("tool", &cmd()));
        assert_eq!(
            top, "\\fBtool\\fR [\\fB\\-\\-verbose\\fR]...\n",
            "no --help, --version, global or hidden option"
        );
        let run = line(subcommand_synopsis("tool", &sub("run")));
        assert!(
            run.starts_with("\\fBtool run\\fR [\\fB\\-\\-as\\fR"),
            "{run}"
        );
        assert!(!run.contains("secret"), "hidden: {run}");
        assert!(!run.contains("relay"), "global: {run}");
        assert!(!run.contains("help"), "generated: {run}");
    }

    #[test]
    fn option_words_value_names_and_taking_values() {
        assert_eq!(
            line(option_words(&arg("run", "reason"))),
            "\\fB\\-\\-reason\\fR \\fITEXT\\fR\n"
        );
        assert_eq!(
            line(option_words(&arg("run", "force"))),
            "\\fB\\-\\-force\\fR\n"
        );
        assert_eq!(line(option_words(&arg("approve", "id"))), "\\fIID\\fR\n");
        assert_eq!(value_name(&arg("run", "run_as")), "USER");
        assert_eq!(value_name(&arg("approve", "id")), "ID");
        assert!(takes_value(&arg("run", "reason")));
        assert!(!takes_value(&arg("run", "force")));
        assert!(own_arg(&arg("run", "reason")));
        assert!(!own_arg(&arg("run", "secret")));
        assert!(!own_arg(&arg("run", "relay")), "global");
        assert!(!own_arg(&arg("run", "help")));
    }

    #[test]
    fn sentences_end_with_one_stop() {
        assert_eq!(sentence("Replace it"), "Replace it.");
        assert_eq!(sentence("Why.  "), "Why.");
        assert_eq!(sentence("Really?"), "Really?");
        assert_eq!(sentence("[default: 5m]"), "[default: 5m].");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn commands_lists_visible_subcommands_with_their_own_arguments() {
        let page = render(|page| commands(page, &cmd(), "tool"));
        assert!(
            page.starts_with(".SH COMMANDS\n.SS run\n\\fBtool run\\fR"),
            "{page}"
        );
        assert!(
            page.contains(".SS approve\n\\fBtool approve\\fR \\fIID\\fR\n.PP\nApprove one.\n"),
            "{page}"
        );
        assert!(
            !page.contains("hidden") && !page.contains("Hidden"),
            "{page}"
        );
        assert!(
            page.contains(".PP\nRun something.\n.PP\nA second paragraph, on two lines.\n"),
            "each paragraph of the long about is one: {page}"
        );
        for entry in [
            ".TP\n\\fB\\-\\-as\\fR \\fIUSER\\fR\nWhom to run as. Default: root.\n",
            ".TP\n\\fB\\-\\-reason\\fR \\fITEXT\\fR\nWhy. Also taken from TOOL_REASON.\n",
            ".TP\n\\fB\\-\\-env\\fR \\fINAME=VALUE\\fR\nExtra variable (repeatable).\n",
            ".TP\n\\fB\\-\\-force\\fR\nReplace it.\n",
            ".TP\n\\fIPROGRAM\\fR\nThe program and its arguments.\n",
        ] {
            assert!(page.contains(entry), "{entry}\n---\n{page}");
        }
        assert!(
            !page.contains(".TP\n\\fIID\\fR"),
            "an undocumented positional gets no entry: {page}"
        );
        assert!(
            !page.contains("secret") && !page.contains("relay"),
            "{page}"
        );
    }

    #[test]
    fn entries_exit_status_and_see_also() {
        let page = render(|page| {
            entries(page, Face::Italic, [("/etc/tool.toml", "The config.")]);
            entries(
                page,
                Face::Bold,
                [("TOOL_X".to_owned(), "A variable.".to_owned())],
            );
        });
        assert_eq!(
            page,
            ".TP\n\\fI/etc/tool.toml\\fR\nThe config.\n.TP\n\\fBTOOL_X\\fR\nA variable.\n"
        );

        let codes = [(0.to_string(), "Fine."), (64.to_string(), "Usage.")];
        let page = render(|page| exit_status(page, Vec::new(), codes.clone()));
        assert_eq!(
            page,
            ".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR\nFine.\n.TP\n\\fB64\\fR\nUsage.\n"
        );
        let page = render(|page| exit_status(page, vec![bold("tool run"), roman(":")], codes));
        assert!(
            page.starts_with(".SH \"EXIT STATUS\"\n\\fBtool run\\fR:\n.TP\n\\fB0\\fR"),
            "{page}"
        );

        let page = render(|page| see_also(page, &[("tool", 1), ("tool-admin", 8)]));
        assert_eq!(
            page,
            ".SH \"SEE ALSO\"\n\\fBtool\\fR(1), \\fBtool\\-admin\\fR(8)\n"
        );
        let page = render(|page| see_also(page, &[("tool", 1)]));
        assert_eq!(page, ".SH \"SEE ALSO\"\n\\fBtool\\fR(1)\n");
    }
}
