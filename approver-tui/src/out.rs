//! Standard output whose reader may have gone (`assent-console list | head -1`, a closed
//! pipe): a failed write ends the output quietly, where `print!` would panic.

use std::fmt;
use std::io::Write as _;

/// Write `text` to stdout and flush; `false` once the reader is gone or the write failed,
/// so a caller printing many lines can stop.
pub fn print(text: impl fmt::Display) -> bool {
    let mut out = std::io::stdout().lock();
    write!(out, "{text}").and_then(|()| out.flush()).is_ok()
}

/// [`print`] with a newline.
pub fn line(text: impl fmt::Display) -> bool {
    print(format_args!("{text}\n"))
}
