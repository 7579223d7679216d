//! Ed25519 keys made by the real `ssh-keygen`, so every test also proves interoperability with
//! OpenSSH's key formats.

use std::path::{Path, PathBuf};
use std::process::Command;

use assent_protocol::{Fingerprint, PrivateKey, PublicKey};

/// A key pair on disk (`NAME` and `NAME.pub`) and loaded.
#[derive(Debug)]
pub struct KeyPair {
    pub name: String,
    pub private_path: PathBuf,
    pub public_path: PathBuf,
    /// The `ssh-ed25519 AAAA… comment` line, as `ssh-keygen` wrote it.
    pub public_line: String,
    pub private: PrivateKey,
    pub public: PublicKey,
}

impl KeyPair {
    /// `ssh-keygen -t ed25519 -N '' -C NAME@assent-tests -f DIR/NAME`.
    ///
    /// # Panics
    /// If `ssh-keygen` is missing or fails, or the files already exist.
    pub fn generate(dir: &Path, name: &str) -> KeyPair {
        let private_path = dir.join(name);
        let public_path = dir.join(format!("{name}.pub"));
        assert!(
            !private_path.exists(),
            "{} already exists: key names must be unique in a directory",
            private_path.display()
        );
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("{name}@assent-tests"))
            .arg("-f")
            .arg(&private_path)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run ssh-keygen ({e}): the tests need OpenSSH's ssh-keygen, install openssh-client"
                )
            });
        assert!(
            out.status.success(),
            "ssh-keygen failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let text = read(&private_path);
        let private = PrivateKey::from_openssh(&text).unwrap_or_else(|e| {
            panic!(
                "{} (made by ssh-keygen) does not load: {e}",
                private_path.display()
            )
        });
        let public_line = read(&public_path).trim_end().to_owned();
        let public = PublicKey::parse(&public_line).unwrap_or_else(|e| {
            panic!(
                "{} (made by ssh-keygen) does not parse: {e}",
                public_path.display()
            )
        });
        assert_eq!(
            public,
            private.public(),
            "ssh-keygen's public key does not match its private key"
        );
        KeyPair {
            name: name.to_owned(),
            private_path,
            public_path,
            public_line,
            private,
            public,
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint()
    }

    /// The fingerprint as `ssh-keygen -l` prints it (`SHA256:…`), independent of our code.
    pub fn ssh_keygen_fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(&self.public_path)
            .output()
            .expect("cannot run ssh-keygen -l");
        assert!(
            out.status.success(),
            "ssh-keygen -l failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("ssh-keygen -l printed no fingerprint")
            .to_owned()
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
