//! Standard base64 as the protocol uses it: padded, canonical, no line breaks.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn encode_unpadded(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Strict decoding: padding required, non-canonical trailing bits and whitespace refused.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

/// Decode base64 that may be wrapped over several lines (PEM-style armour).
pub(crate) fn decode_wrapped<'a>(lines: impl Iterator<Item = &'a str>) -> Option<Vec<u8>> {
    let joined: String = lines.map(str::trim).collect();
    decode(&joined)
}

/// Wrap base64 at `width` columns, each line ending in `\n`.
pub(crate) fn wrap(encoded: &str, width: usize) -> String {
    let mut out = String::with_capacity(encoded.len() + encoded.len() / width + 1);
    for chunk in encoded.as_bytes().chunks(width) {
        // base64 output is ASCII, so byte chunks are valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}
