//! Standard output for listings and reports (`grants`, `status`, `keygen`, `--generate`).
//!
//! A reader that stops early (`assent grants | head -1`, `assent status | grep -q MISSING`)
//! closes the pipe, and `println!` would then panic. Here the first failed write ends the
//! output quietly; the command still finishes and exits with its own status, so the status
//! of `assent status` means the same whether or not anyone read to the end.

use std::fmt;
use std::io::{self, Write};

use crate::failure::say;

/// Where a command's report goes; see the module docs.
#[derive(Debug)]
pub struct Out<W: Write = io::Stdout> {
    /// `None` once a write has failed: nothing more is written.
    sink: Option<W>,
}

impl Out {
    pub fn stdout() -> Out {
        Out::new(io::stdout())
    }
}

impl<W: Write> Out<W> {
    pub fn new(sink: W) -> Out<W> {
        Out { sink: Some(sink) }
    }

    /// Write `text` and a newline.
    pub fn line(&mut self, text: impl fmt::Display) {
        self.write(format_args!("{text}\n"));
    }

    /// Write `text` as it is.
    pub fn text(&mut self, text: impl fmt::Display) {
        self.write(format_args!("{text}"));
    }

    /// Whether the reader has gone (or the output failed): nothing more will be written.
    pub fn closed(&self) -> bool {
        self.sink.is_none()
    }

    fn write(&mut self, args: fmt::Arguments<'_>) {
        let Some(sink) = &mut self.sink else {
            return;
        };
        if let Err(e) = sink.write_fmt(args).and_then(|()| sink.flush()) {
            // A closed pipe is the reader's choice; anything else (a full disk) is worth a line.
            if e.kind() != io::ErrorKind::BrokenPipe {
                say(format_args!("cannot write to standard output: {e}"));
            }
            self.sink = None;
        }
    }

    #[cfg(test)]
    pub fn into_inner(self) -> Option<W> {
        self.sink
    }
}

/// `outln!(out, "format", args…)`: one line to an [`Out`].
macro_rules! outln {
    ($out:expr) => {
        $out.line("")
    };
    ($out:expr, $($arg:tt)+) => {
        $out.line(format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `room` bytes, then fails every write with `kind`.
    struct Closing {
        room: usize,
        kind: io::ErrorKind,
        written: Vec<u8>,
        /// Writes refused so far.
        failures: usize,
    }

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                self.failures += 1;
                return Err(io::Error::from(self.kind));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_in_order() {
        let mut out = Out::new(Vec::new());
        outln!(out, "a {}", 1);
        outln!(out);
        out.text("b");
        assert!(!out.closed());
        assert_eq!(out.into_inner().unwrap(), b"a 1\n\nb");
    }

    #[test]
    fn a_broken_pipe_stops_the_output_without_a_panic() {
        let mut pipe = Closing {
            room: 4,
            kind: io::ErrorKind::BrokenPipe,
            written: Vec::new(),
            failures: 0,
        };
        let mut out = Out::new(&mut pipe);
        outln!(out, "one");
        assert!(!out.closed());
        outln!(out, "two");
        assert!(out.closed(), "the failed write closes the output");
        for _ in 0..100 {
            outln!(out, "more");
        }
        assert_eq!(pipe.written, b"one\n");
        assert_eq!(pipe.failures, 1, "nothing is tried after the failure");
    }

    #[test]
    fn other_write_errors_also_stop_the_output() {
        let mut disk = Closing {
            room: 0,
            kind: io::ErrorKind::StorageFull,
            written: Vec::new(),
            failures: 0,
        };
        let mut out = Out::new(&mut disk);
        outln!(out, "x");
        assert!(out.closed());
        for _ in 0..100 {
            outln!(out, "y");
        }
        assert_eq!(disk.failures, 1, "nothing is tried after the failure");
    }
}
