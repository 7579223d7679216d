//! What a request shows, field by field, for the detail pane and the full view.
//!
//! Each field is a label and rows of escaped text wrapped to the value column. The gutter
//! left of the value column is the console's own: labels, `↪` on a row that carries on a word
//! cut at the end of the row before, `⋮` on the last row shown of a field that was cut short.
//! Agent text never reaches it, so none of these marks can be forged.

use assent_protocol::Grant;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{Piece, Theme, wrap_words};
use assent_common::duration;

use crate::app::{App, PendingItem};
use crate::escape::{shell_quote, visible};
use crate::keys::{self, Command, Scope};
use crate::risk::Risk;

/// Label (7 cells), mark (1), space (1).
pub const GUTTER: usize = 9;
/// Marks a row that carries on a word cut at the end of the row before.
pub const CONTINUED: char = '↪';
/// Marks the last row shown of a field that has more.
pub const CUT: char = '⋮';

/// One row of a field's value.
#[derive(Debug, Clone)]
pub struct Row {
    pub spans: Vec<Span<'static>>,
    pub continued: bool,
    /// A label of its own in the gutter (argument numbers in the full view).
    pub label: Option<String>,
}

/// One labelled field.
#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    /// Keeps its first row at every size from 80×24 (SPEC §13.1): Program, Run, Cwd, Env,
    /// Grant and Expires, what the decision binds.
    pub pinned: bool,
    pub rows: Vec<Row>,
}

impl Field {
    fn new(label: &'static str, pinned: bool) -> Field {
        Field {
            label,
            pinned,
            rows: Vec::new(),
        }
    }

    /// Add `words` wrapped to `width`, in `style`.
    fn words<'a>(
        mut self,
        words: impl IntoIterator<Item = &'a str>,
        width: usize,
        style: Style,
    ) -> Field {
        self.push_pieces(wrap_words(words, width), style, None);
        self
    }

    fn push_pieces(&mut self, pieces: Vec<Piece>, style: Style, first_label: Option<String>) {
        for (i, piece) in pieces.into_iter().enumerate() {
            self.rows.push(Row {
                spans: vec![Span::styled(piece.text, style)],
                continued: piece.continued,
                label: if i == 0 { first_label.clone() } else { None },
            });
        }
    }

    /// One row of spans, not wrapped (the pane clips it).
    fn line(mut self, spans: Vec<Span<'static>>) -> Field {
        self.rows.push(Row {
            spans,
            continued: false,
            label: None,
        });
        self
    }
}

/// The gutter and value of row `i` of `field`; `cut` when it is the last row shown and the
/// field has more.
pub fn render_row(field: &Field, i: usize, cut: bool, theme: Theme) -> Line<'static> {
    let row = &field.rows[i];
    let label = match (&row.label, i) {
        (Some(label), _) => label.clone(),
        (None, 0) => field.label.to_string(),
        _ => String::new(),
    };
    let mark = if cut {
        CUT
    } else if row.continued {
        CONTINUED
    } else {
        ' '
    };
    let mut spans = vec![
        Span::styled(format!("{label:<7}"), theme.label()),
        Span::styled(format!("{mark} "), theme.warn()),
    ];
    spans.extend(row.spans.iter().cloned());
    Line::from(spans)
}

/// Every field of `item`, wrapped to a pane `width` cells wide. The full view (`full`) also
/// shows the whole SHA-256 and the agent's id, and env one variable a row.
pub fn fields(app: &App, item: &PendingItem, width: usize, full: bool, theme: Theme) -> Vec<Field> {
    let r = &item.request.payload;
    let w = width.saturating_sub(GUTTER).max(1);
    let plain = Style::new();
    let mut out = Vec::new();
    if full {
        out.push(Field::new("Ref", true).words(
            [
                item.request.sha256.to_hex().as_str(),
                "(SHA-256 of the signed request)",
            ],
            w,
            theme.dim(),
        ));
    }
    // Agent and Key come right after the pinned fields when rows are short.
    out.push(Field::new("Agent", false).words([visible(&r.agent).as_ref()], w, plain));
    let mut key = vec![item.fingerprint.as_str()];
    if item.first_seen() {
        key.push("★ first seen");
    }
    out.push(Field::new("Key", false).words(
        key,
        w,
        if item.first_seen() {
            theme.warn()
        } else {
            plain
        },
    ));
    let run = format!(
        "{} (uid {}) → {}  on {} (host id {})",
        visible(&r.user),
        r.uid,
        visible(&r.run_as),
        visible(&r.host),
        r.host_id.short()
    );
    let root = if r.run_as == "root" {
        theme.accent()
    } else {
        plain
    };
    out.push(Field::new("Run", true).words(run.split(' '), w, root));
    let differs = item
        .risks
        .iter()
        .any(|k| matches!(k, Risk::Argv0Differs { .. } | Risk::PseudoFileProgram));
    out.push(Field::new("Program", true).words(
        [visible(&r.program).as_ref()],
        w,
        if differs { theme.danger() } else { plain },
    ));
    let quoted: Vec<String> = r.argv.iter().map(|a| shell_quote(a).into_owned()).collect();
    let mut argv = Field::new("Argv", false);
    if full {
        argv = argv.line(vec![Span::styled(
            format!(
                "{} argument{}, shell-quoted; ↪ carries on a cut one",
                r.argv.len(),
                if r.argv.len() == 1 { "" } else { "s" }
            ),
            theme.dim(),
        )]);
    }
    out.push(argv.words(quoted.iter().map(String::as_str), w, theme.accent()));
    let mut risks = Field::new("Risks", false);
    if item.risks.is_empty() {
        risks = risks.words(["none flagged"], w, theme.ok());
    }
    for risk in &item.risks {
        let style = if risk.is_informational() {
            theme.dim()
        } else {
            theme.danger()
        };
        let text = format!("⚠ {}", risk.describe());
        risks.push_pieces(wrap_words(text.split(' '), w), style, None);
    }
    out.push(risks);
    out.push(Field::new("Cwd", true).words([visible(&r.cwd).as_ref()], w, plain));
    let env: Vec<String> = r
        .env
        .iter()
        .map(|(k, v)| format!("{}={}", visible(k), shell_quote(v)))
        .collect();
    let mut env_field = Field::new("Env", true);
    if env.is_empty() {
        env_field = env_field.words(["(none)"], w, theme.dim());
    } else if full {
        for pair in &env {
            env_field.push_pieces(wrap_words([pair.as_str()], w), plain, None);
        }
    } else {
        env_field = env_field.words(env.iter().map(String::as_str), w, plain);
    }
    out.push(env_field);
    let reason = visible(&r.reason);
    let reason_field = if reason.is_empty() {
        Field::new("Reason", false).words(["(none)"], w, theme.dim())
    } else {
        Field::new("Reason", false).words(reason.split(' '), w, plain)
    };
    out.push(reason_field);
    if full {
        out.push(Field::new("Id", false).words(
            [
                r.id.to_hex().as_str(),
                "(chosen by the agent; not a reference)",
            ],
            w,
            theme.dim(),
        ));
    }
    out.push(grant_field(app, item, theme));
    out.push(expires_field(app, item, theme));
    out
}

fn grant_field(app: &App, item: &PendingItem, theme: Theme) -> Field {
    let r = &item.request.payload;
    let asked = match r.ttl_s {
        Some(ttl) => format!("{} {}", r.grant, duration::format(ttl)),
        None => r.grant.to_string(),
    };
    let chosen = match item.grant {
        Grant::Timed => format!("timed {}", duration::format(item.ttl_s)),
        Grant::Once => format!("once (use within {})", duration::format(app.once_window_s)),
        Grant::Always => "always (until revoked)".into(),
    };
    let grant_style = if item.grant == Grant::Always {
        theme.danger()
    } else {
        theme.ok()
    };
    let hint = format!(
        "  [{}] [{}]",
        keys::keys_for(Scope::Pending, &[Command::CycleGrant]),
        keys::keys_for(Scope::Pending, &[Command::Longer, Command::Shorter])
    );
    Field::new("Grant", true).line(vec![
        Span::raw(format!("asked {asked} · approve as ")),
        Span::styled(chosen, grant_style),
        Span::styled(hint, theme.dim()),
    ])
}

fn expires_field(app: &App, item: &PendingItem, theme: Theme) -> Field {
    let r = &item.request.payload;
    let left = r.expires_at.saturating_sub(app.now);
    let time_style = if left < 60 {
        theme.danger()
    } else {
        Style::new()
    };
    let asked = if r.created_at > app.now {
        Span::styled(
            format!(
                "  (created {} in the future: check the clocks)",
                duration::countdown(r.created_at - app.now)
            ),
            theme.warn(),
        )
    } else {
        Span::styled(
            format!(
                "  (asked {} ago)",
                duration::countdown(app.now - r.created_at)
            ),
            theme.dim(),
        )
    };
    Field::new("Expires", true).line(vec![
        Span::styled(format!("in {}", duration::countdown(left)), time_style),
        asked,
    ])
}
