use std::fmt;

/// Everything that can be wrong with keys, signatures and payloads.
///
/// Messages are written for the person who has to act on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A public key line or blob that is not an OpenSSH Ed25519 key.
    PublicKey(String),
    /// A private key file that is not a usable OpenSSH Ed25519 key.
    PrivateKey(String),
    /// An SSHSIG blob that is malformed.
    SignatureFormat(String),
    /// A well-formed SSHSIG made for another namespace.
    WrongNamespace { expected: String, found: String },
    /// The signature does not verify for the payload and key it names.
    BadSignature,
    /// The envelope's JSON or base64 is malformed.
    Envelope(String),
    /// The payload is not a valid v1 payload of the expected kind.
    Payload(String),
    /// The grant token is malformed.
    Token(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Details may quote what a sender chose (serde names unknown fields as decoded), so
        // control characters are escaped: the message is always one printable line.
        let shown = |why: &str| -> String {
            why.chars()
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect()
        };
        match self {
            Error::PublicKey(why) => {
                write!(f, "not an OpenSSH ssh-ed25519 public key: {}", shown(why))
            }
            Error::PrivateKey(why) => write!(f, "unusable OpenSSH private key: {}", shown(why)),
            Error::SignatureFormat(why) => write!(f, "malformed SSHSIG signature: {}", shown(why)),
            Error::WrongNamespace { expected, found } => write!(
                f,
                "signature was made for namespace {found:?}, not {expected:?}"
            ),
            Error::BadSignature => f.write_str("signature does not verify"),
            Error::Envelope(why) => write!(f, "malformed envelope: {}", shown(why)),
            Error::Payload(why) => write!(f, "invalid payload: {}", shown(why)),
            Error::Token(why) => write!(f, "malformed grant token: {}", shown(why)),
        }
    }
}

impl std::error::Error for Error {}
