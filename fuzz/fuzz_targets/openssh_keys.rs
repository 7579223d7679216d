//! OpenSSH formats (SPEC §4.1, §4.2): public key lines and blobs, `openssh-key-v1` private
//! key files, armoured and binary SSHSIG signatures.
//!
//! Every input is tried as text (`PublicKey::parse`, `PrivateKey::from_openssh`,
//! `sshsig::dearmor`) and as the binary inside those formats (a key blob, a private key file
//! body wrapped in its armour here, an SSHSIG blob put into an envelope), so the fuzzer
//! reaches the wire parsers without having to produce base64. Nothing may panic, and what
//! parses must round-trip: a private key written with `to_openssh` reads back as the same
//! key and comment, a key blob re-encodes to the same bytes, armour gives back the same blob.
#![no_main]

use assent_protocol::{Envelope, Login, PrivateKey, PublicKey, Request, sshsig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        public_line(text);
        private_file(text);
        armored_signature(text);
    }

    if let Ok(key) = PublicKey::from_blob(data) {
        assert_eq!(key.blob(), data, "a key blob re-encodes differently");
        public_line(&key.to_openssh("comment"));
    }
    let wrapped = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        STANDARD.encode(data)
    );
    private_file(&wrapped);
    signature_blob(data);
});

fn public_line(text: &str) {
    let Ok((key, comment)) = PublicKey::parse_with_comment(text) else {
        assert!(PublicKey::parse(text).is_err());
        return;
    };
    assert_eq!(PublicKey::parse(text).ok(), Some(key));
    let line = key.to_openssh(&comment);
    let (again, again_comment) = PublicKey::parse_with_comment(&line)
        .unwrap_or_else(|e| panic!("to_openssh output {line:?} does not parse: {e}"));
    assert_eq!(again, key);
    assert_eq!(
        again_comment, comment,
        "the comment changed across a round trip"
    );
    assert_eq!(again.fingerprint(), key.fingerprint());
    assert!(key.fingerprint().as_str().starts_with("SHA256:"));
}

fn private_file(text: &str) {
    let Ok(key) = PrivateKey::from_openssh(text) else {
        return;
    };
    let written = key.to_openssh();
    let again = PrivateKey::from_openssh(&written)
        .unwrap_or_else(|e| panic!("to_openssh output does not parse again: {e}\n{written}"));
    assert_eq!(again.public(), key.public());
    assert_eq!(again.comment(), key.comment());
    // A key that parses must sign something that verifies as that key.
    let nonce = "0123456789abcdef0123456789abcdef";
    let login = Login {
        v: Default::default(),
        kind: Default::default(),
        nonce: nonce.to_owned(),
        role: assent_protocol::Role::Agent,
    };
    let signed = Envelope::seal(&key, &login)
        .open::<Login>()
        .unwrap_or_else(|e| panic!("a parsed private key's signature does not verify: {e}"));
    assert_eq!(signed.signer, key.public());
}

fn armored_signature(text: &str) {
    let Ok(blob) = sshsig::dearmor(text) else {
        return;
    };
    let again = sshsig::dearmor(&sshsig::armor(&blob))
        .unwrap_or_else(|e| panic!("armor() output does not dearmor: {e}"));
    assert_eq!(again, blob);
    signature_blob(&blob);
}

/// Put `blob` into an envelope as its SSHSIG: the verifier must refuse it without panicking
/// (no fuzzer finds a valid Ed25519 signature over this payload).
fn signature_blob(blob: &[u8]) {
    let envelope = Envelope::from_signature(b"{}", blob);
    assert!(envelope.open::<Request>().is_err());
    assert!(envelope.open::<Login>().is_err());
}
