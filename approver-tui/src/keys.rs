//! The one table of key bindings. [`crate::update`] looks keys up here and the `?` help is
//! rendered from the same table, so the help cannot drift from what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for in the normal mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Approve,
    Deny,
    CycleGrant,
    Longer,
    Shorter,
    NextView,
    Revoke,
    /// Open (or, in it, close) the full view of the selected request.
    Full,
    /// Close the help or the full view.
    Close,
    Help,
    Quit,
}

/// What a key does inside a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptCommand {
    /// Send the denial with the typed note.
    Send,
    /// Leave the prompt; nothing is signed.
    Cancel,
    /// Delete the last character of the note.
    Backspace,
    /// Confirm an `always` approval.
    Confirm,
}

/// A key as the table spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Tab,
    Enter,
    Esc,
    Backspace,
    /// Any key not bound otherwise (only meaningful in prompts).
    Other,
}

impl Key {
    pub fn label(self) -> String {
        match self {
            Key::Char(' ') => "Space".into(),
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("Ctrl-{c}"),
            Key::Up => "↑".into(),
            Key::Down => "↓".into(),
            Key::PageUp => "PgUp".into(),
            Key::PageDown => "PgDn".into(),
            Key::Home => "Home".into(),
            Key::End => "End".into(),
            Key::Tab => "Tab".into(),
            Key::Enter => "Enter".into(),
            Key::Esc => "Esc".into(),
            Key::Backspace => "Backspace".into(),
            Key::Other => "other key".into(),
        }
    }

    fn matches(self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match (self, ev.code) {
            (Key::Ctrl(c), KeyCode::Char(k)) => ctrl && k.eq_ignore_ascii_case(&c),
            (_, _) if ctrl => false,
            (Key::Char(c), KeyCode::Char(k)) => c == k,
            (Key::Up, KeyCode::Up)
            | (Key::Down, KeyCode::Down)
            | (Key::PageUp, KeyCode::PageUp)
            | (Key::PageDown, KeyCode::PageDown)
            | (Key::Home, KeyCode::Home)
            | (Key::End, KeyCode::End)
            | (Key::Tab, KeyCode::Tab)
            | (Key::Enter, KeyCode::Enter)
            | (Key::Esc, KeyCode::Esc)
            | (Key::Backspace, KeyCode::Backspace) => true,
            (Key::Other, _) => true,
            _ => false,
        }
    }
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every view.
    Global,
    /// Pending view.
    Pending,
    /// Grants view.
    Grants,
    /// The full view of one request (movement keys scroll it).
    FullView,
    /// The deny-note prompt.
    DenyPrompt,
    /// The `always` confirmation.
    ConfirmAlways,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "Everywhere",
            Scope::Pending => "Pending",
            Scope::Grants => "Grants",
            Scope::FullView => "Full view (the moving keys scroll it)",
            Scope::DenyPrompt => "Deny note prompt",
            Scope::ConfirmAlways => "Approve always",
        }
    }
}

/// What a binding does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Does {
    Command(Command),
    Prompt(PromptCommand),
}

#[derive(Debug)]
pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [Key],
    pub does: Does,
    /// For the help screen.
    pub help: &'static str,
    /// For the one-line hint under the list (None: not in the hint).
    pub hint: Option<&'static str>,
}

use Command as C;
use Does::{Command as Cmd, Prompt as P};
use PromptCommand as PC;

/// Every binding, in the order the help shows them.
pub static BINDINGS: &[Binding] = &[
    Binding {
        scope: Scope::Global,
        keys: &[Key::Char('j'), Key::Down],
        does: Cmd(C::Down),
        help: "move down",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::Char('k'), Key::Up],
        does: Cmd(C::Up),
        help: "move up",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::PageDown, Key::Char(' ')],
        does: Cmd(C::PageDown),
        help: "page down",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::PageUp],
        does: Cmd(C::PageUp),
        help: "page up",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::Home, Key::Char('g')],
        does: Cmd(C::Top),
        help: "first",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::End, Key::Char('G')],
        does: Cmd(C::Bottom),
        help: "last",
        hint: None,
    },
    Binding {
        scope: Scope::Pending,
        keys: &[Key::Char('a')],
        does: Cmd(C::Approve),
        help: "approve (chosen grant)",
        hint: Some("approve"),
    },
    Binding {
        scope: Scope::Pending,
        keys: &[Key::Char('d')],
        does: Cmd(C::Deny),
        help: "deny (optional note)",
        hint: Some("deny"),
    },
    Binding {
        scope: Scope::Pending,
        keys: &[Key::Char('t')],
        does: Cmd(C::CycleGrant),
        help: "once → timed → always",
        hint: Some("grant"),
    },
    Binding {
        scope: Scope::Pending,
        keys: &[Key::Char('+'), Key::Char('=')],
        does: Cmd(C::Longer),
        help: "timed: longer (5m…24h)",
        hint: None,
    },
    Binding {
        scope: Scope::Pending,
        keys: &[Key::Char('-')],
        does: Cmd(C::Shorter),
        help: "timed: shorter",
        hint: None,
    },
    Binding {
        scope: Scope::Pending,
        keys: &[Key::Char('f'), Key::Enter],
        does: Cmd(C::Full),
        help: "full view: all of it",
        hint: Some("full view"),
    },
    Binding {
        scope: Scope::Grants,
        keys: &[Key::Char('r')],
        does: Cmd(C::Revoke),
        help: "revoke, send status",
        hint: Some("revoke"),
    },
    Binding {
        scope: Scope::FullView,
        keys: &[Key::Char('a')],
        does: Cmd(C::Approve),
        help: "approve, once all was read",
        hint: Some("approve"),
    },
    Binding {
        scope: Scope::FullView,
        keys: &[Key::Char('d')],
        does: Cmd(C::Deny),
        help: "deny (optional note)",
        hint: Some("deny"),
    },
    Binding {
        scope: Scope::FullView,
        keys: &[Key::Char('f'), Key::Enter],
        does: Cmd(C::Close),
        help: "back to the list",
        hint: Some("back"),
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::Tab],
        does: Cmd(C::NextView),
        help: "next view",
        hint: Some("view"),
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::Esc],
        does: Cmd(C::Close),
        help: "close help or the full view",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::Char('?')],
        does: Cmd(C::Help),
        help: "help",
        hint: Some("help"),
    },
    Binding {
        scope: Scope::Global,
        keys: &[Key::Char('q'), Key::Ctrl('c')],
        does: Cmd(C::Quit),
        help: "quit (never signs)",
        hint: Some("quit"),
    },
    Binding {
        scope: Scope::DenyPrompt,
        keys: &[Key::Enter],
        does: P(PC::Send),
        help: "send the denial",
        hint: Some("send"),
    },
    Binding {
        scope: Scope::DenyPrompt,
        keys: &[Key::Esc],
        does: P(PC::Cancel),
        help: "cancel: nothing is signed",
        hint: Some("cancel"),
    },
    Binding {
        scope: Scope::DenyPrompt,
        keys: &[Key::Backspace],
        does: P(PC::Backspace),
        help: "delete a character",
        hint: None,
    },
    Binding {
        scope: Scope::ConfirmAlways,
        keys: &[Key::Char('y')],
        does: P(PC::Confirm),
        help: "approve until revoked",
        hint: Some("approve always"),
    },
    Binding {
        scope: Scope::ConfirmAlways,
        keys: &[Key::Other],
        does: P(PC::Cancel),
        help: "cancel: nothing is signed",
        hint: Some("cancel"),
    },
];

/// Bindings of one scope.
pub fn in_scope(scope: Scope) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.scope == scope)
}

/// The normal-mode command for a key, if it is bound.
pub fn command(ev: &KeyEvent) -> Option<Command> {
    lookup(&[Scope::Global, Scope::Pending, Scope::Grants], ev)
}

/// The command for a key in the full view: its own bindings first, then the global ones
/// (which scroll it) and the grant keys of Pending.
pub fn full_view_command(ev: &KeyEvent) -> Option<Command> {
    lookup(&[Scope::FullView], ev).or_else(|| command(ev))
}

fn lookup(scopes: &[Scope], ev: &KeyEvent) -> Option<Command> {
    BINDINGS
        .iter()
        .filter(|b| scopes.contains(&b.scope))
        .find(|b| b.keys.iter().any(|k| k.matches(ev)))
        .and_then(|b| match b.does {
            Does::Command(c) => Some(c),
            Does::Prompt(_) => None,
        })
}

/// The keys bound to `command` in `scope`, as the help spells them: `t`, `+ = -`.
pub fn keys_for(scope: Scope, commands: &[Command]) -> String {
    BINDINGS
        .iter()
        .filter(|b| b.scope == scope)
        .filter(|b| matches!(b.does, Does::Command(c) if commands.contains(&c)))
        .map(keys_label)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The prompt command for a key in `scope`, if it is bound.
pub fn prompt_command(scope: Scope, ev: &KeyEvent) -> Option<PromptCommand> {
    // Exact keys first, `Other` last.
    let bound = in_scope(scope);
    let (exact, other): (Vec<_>, Vec<_>) = bound.partition(|b| !b.keys.contains(&Key::Other));
    exact
        .into_iter()
        .chain(other)
        .find(|b| b.keys.iter().any(|k| k.matches(ev)))
        .and_then(|b| match b.does {
            Does::Prompt(p) => Some(p),
            Does::Command(_) => None,
        })
}

/// The keys of a binding, as the help shows them: `j ↓`.
pub fn keys_label(binding: &Binding) -> String {
    binding
        .keys
        .iter()
        .map(|k| k.label())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `a approve · d deny · …` for the hint line of a scope (plus the global hints).
pub fn hint_line(scopes: &[Scope]) -> String {
    BINDINGS
        .iter()
        .filter(|b| scopes.contains(&b.scope))
        .filter_map(|b| b.hint.map(|h| format!("{} {h}", b.keys[0].label())))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn spec_keys_are_bound() {
        assert_eq!(command(&key(KeyCode::Char('j'))), Some(Command::Down));
        assert_eq!(command(&key(KeyCode::Down)), Some(Command::Down));
        assert_eq!(command(&key(KeyCode::Char('k'))), Some(Command::Up));
        assert_eq!(command(&key(KeyCode::Up)), Some(Command::Up));
        assert_eq!(command(&key(KeyCode::Char('a'))), Some(Command::Approve));
        assert_eq!(command(&key(KeyCode::Char('d'))), Some(Command::Deny));
        assert_eq!(command(&key(KeyCode::Char('t'))), Some(Command::CycleGrant));
        assert_eq!(command(&key(KeyCode::Char('+'))), Some(Command::Longer));
        assert_eq!(command(&key(KeyCode::Char('-'))), Some(Command::Shorter));
        assert_eq!(command(&key(KeyCode::Tab)), Some(Command::NextView));
        assert_eq!(command(&key(KeyCode::Char('r'))), Some(Command::Revoke));
        assert_eq!(command(&key(KeyCode::Char('?'))), Some(Command::Help));
        assert_eq!(command(&key(KeyCode::Char('q'))), Some(Command::Quit));
        assert_eq!(
            command(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Command::Quit)
        );
        assert_eq!(
            command(&KeyEvent::new(KeyCode::Char('a'), KeyModifiers::CONTROL)),
            None,
            "Ctrl-a is not a"
        );
        assert_eq!(command(&key(KeyCode::Char('x'))), None);
        assert_eq!(command(&key(KeyCode::Char('f'))), Some(Command::Full));
        assert_eq!(command(&key(KeyCode::Enter)), Some(Command::Full));
        assert_eq!(command(&key(KeyCode::Esc)), Some(Command::Close));
        assert_eq!(command(&key(KeyCode::Char(' '))), Some(Command::PageDown));
    }

    #[test]
    fn the_full_view_has_its_own_keys_over_the_others() {
        assert_eq!(
            full_view_command(&key(KeyCode::Enter)),
            Some(Command::Close)
        );
        assert_eq!(
            full_view_command(&key(KeyCode::Char('f'))),
            Some(Command::Close)
        );
        assert_eq!(full_view_command(&key(KeyCode::Esc)), Some(Command::Close));
        assert_eq!(
            full_view_command(&key(KeyCode::Char('a'))),
            Some(Command::Approve)
        );
        assert_eq!(
            full_view_command(&key(KeyCode::Char('j'))),
            Some(Command::Down)
        );
        assert_eq!(
            full_view_command(&key(KeyCode::Char('t'))),
            Some(Command::CycleGrant)
        );
        assert_eq!(
            keys_for(Scope::Pending, &[Command::Longer, Command::Shorter]),
            "+ = -"
        );
        assert_eq!(keys_for(Scope::Global, &[Command::PageDown]), "PgDn Space");
    }

    #[test]
    fn prompt_keys() {
        use Scope::*;
        assert_eq!(
            prompt_command(DenyPrompt, &key(KeyCode::Enter)),
            Some(PromptCommand::Send)
        );
        assert_eq!(
            prompt_command(DenyPrompt, &key(KeyCode::Esc)),
            Some(PromptCommand::Cancel)
        );
        assert_eq!(
            prompt_command(DenyPrompt, &key(KeyCode::Char('x'))),
            None,
            "typed text"
        );
        assert_eq!(
            prompt_command(ConfirmAlways, &key(KeyCode::Char('y'))),
            Some(PromptCommand::Confirm)
        );
        assert_eq!(
            prompt_command(ConfirmAlways, &key(KeyCode::Char('Y'))),
            Some(PromptCommand::Cancel)
        );
        assert_eq!(
            prompt_command(ConfirmAlways, &key(KeyCode::Enter)),
            Some(PromptCommand::Cancel)
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_overlapping_scopes() {
        let normal: Vec<&Binding> = BINDINGS
            .iter()
            .filter(|b| matches!(b.scope, Scope::Global | Scope::Pending | Scope::Grants))
            .collect();
        for (i, a) in normal.iter().enumerate() {
            for b in &normal[i + 1..] {
                for k in a.keys {
                    assert!(!b.keys.contains(k), "{k:?} bound twice");
                }
            }
        }
    }
}
