//! The SSH wire encoding (RFC 4251 §5) that keys and SSHSIG blobs are made of.

/// Appends SSH wire types to a byte buffer.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A length-prefixed byte string.
    pub(crate) fn string(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        let bytes = bytes.as_ref();
        let len = u32::try_from(bytes.len()).expect("SSH strings are shorter than 4 GiB");
        self.u32(len);
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
}

/// Reads SSH wire types from a byte slice; every read is bounds-checked.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    pub(crate) fn raw(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.raw(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        self.raw(len)
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_truncation_is_caught() {
        let mut w = Writer::default();
        w.string(b"abc").u32(7);
        let mut r = Reader::new(&w.0);
        assert_eq!(r.string(), Some(&b"abc"[..]));
        assert_eq!(r.u32(), Some(7));
        assert!(r.is_empty());

        let truncated = &w.0[..5];
        assert_eq!(Reader::new(truncated).string(), None);
        // A length that claims more than there is.
        assert_eq!(Reader::new(&[0, 0, 0, 9, 1, 2]).string(), None);
    }
}
