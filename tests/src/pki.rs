//! A private certificate authority for `wss://` tests, made with the real `openssl`, as an
//! operator would make one: a CA, and leaf certificates signed by it for the names given.
//!
//! The leaf is a separate certificate with `CA:FALSE` and a subjectAltName: rustls refuses a
//! CA certificate (`openssl req -x509` makes one) as a server's own certificate.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA's certificate and key, in a directory of the test's own.
#[derive(Debug, Clone)]
pub struct PrivateCa {
    dir: PathBuf,
    name: String,
}

/// A server certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed for the TLS tests (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new P-256 key and, with `-x509`, a self-signed certificate; else a signing request.
fn new_key(dir: &Path, key: &str, out: &str, subject: &str, x509: bool) {
    let mut args = vec!["req"];
    if x509 {
        args.extend(["-x509", "-days", "2"]);
    }
    args.extend([
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        out,
        "-subj",
        subject,
    ]);
    openssl(dir, &args);
}

impl PrivateCa {
    /// A CA called `name`, its files in `dir` (which must exist).
    pub fn new(dir: &Path, name: &str) -> PrivateCa {
        new_key(
            dir,
            &format!("{name}.key"),
            &format!("{name}.pem"),
            &format!("/CN=assent test CA {name}"),
            true,
        );
        PrivateCa {
            dir: dir.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The CA certificate (PEM): what a client trusts.
    pub fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// A server certificate for `names` (`DNS:localhost`, `IP:127.0.0.1`, …), signed by this
    /// CA, written as `STEM.pem` and `STEM.key`.
    pub fn leaf(&self, stem: &str, names: &[&str]) -> Leaf {
        let ext = format!("{stem}.ext");
        fs::write(
            self.dir.join(&ext),
            format!(
                "basicConstraints=CA:FALSE\nsubjectAltName={}\nextendedKeyUsage=serverAuth\n",
                names.join(",")
            ),
        )
        .expect("cannot write the extensions file");
        let (key, csr, cert) = (
            format!("{stem}.key"),
            format!("{stem}.csr"),
            format!("{stem}.pem"),
        );
        new_key(&self.dir, &key, &csr, "/CN=assent test relay", false);
        let ca_cert = format!("{}.pem", self.name);
        let ca_key = format!("{}.key", self.name);
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        Leaf {
            cert: self.dir.join(cert),
            key: self.dir.join(key),
        }
    }
}
