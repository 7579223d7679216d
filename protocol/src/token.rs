//! The grant token (SPEC §4.8): what the shim hands the elevator.

use serde::{Deserialize, Serialize};

use crate::{Decision, Envelope, Error, Request, Signed, Status, b64};

/// Largest encoded token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 256 * 1024;

/// Base64 of `{"request": envelope, "decision": envelope, "status": envelope or null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantToken {
    pub request: Envelope,
    pub decision: Envelope,
    pub status: Option<Envelope>,
}

/// A token whose three envelopes all verified under their own namespaces.
#[derive(Debug, Clone)]
pub struct OpenedGrant {
    pub request: Signed<Request>,
    pub decision: Signed<Decision>,
    pub status: Option<Signed<Status>>,
}

impl GrantToken {
    pub fn encode(&self) -> String {
        b64::encode(
            serde_json::to_string(self)
                .expect("tokens always serialise")
                .as_bytes(),
        )
    }

    /// Strict decode: bounded size, canonical base64, exact JSON shape.
    pub fn decode(text: &str) -> Result<GrantToken, Error> {
        let text = text.trim_end_matches(['\n', '\r']);
        if text.len() > MAX_TOKEN_LEN {
            return Err(Error::Token(format!("longer than {MAX_TOKEN_LEN} bytes")));
        }
        let json = b64::decode(text).ok_or_else(|| Error::Token("not standard base64".into()))?;
        serde_json::from_slice(&json).map_err(|e| Error::Token(e.to_string()))
    }

    /// Verify all three envelopes. Binding them to each other is the caller's check
    /// ([`OpenedGrant::decision_binds_request`]) so that it can report which one failed.
    pub fn open(&self) -> Result<OpenedGrant, Error> {
        Ok(OpenedGrant {
            request: self.request.open()?,
            decision: self.decision.open()?,
            status: self.status.as_ref().map(Envelope::open).transpose()?,
        })
    }
}

impl OpenedGrant {
    /// The decision names this request by id and by the hash of its exact payload bytes.
    pub fn decision_binds_request(&self) -> bool {
        self.decision.payload.request_id == self.request.payload.id
            && self.decision.payload.request_sha256 == self.request.sha256
    }
}
