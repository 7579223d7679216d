//! The fixed paths of an install that several binaries share: the elevator reads them, the
//! shim and the console read some of them too, and every message that names one must name the
//! same file. Packagers may change them at build time only (environment variables read by
//! `option_env!` when compiling); nothing at run time can.

/// The elevator configuration: approvers, requesters, settings.
pub const ELEVATOR_CONFIG: &str = match option_env!("ASSENT_ELEVATOR_CONFIG") {
    Some(path) => path,
    None => "/etc/assent/elevator.toml",
};

/// This install's host id: one line of 32 lowercase hex digits (see
/// [`assent_protocol::HostId`]), root-owned, readable by all.
pub const HOST_ID: &str = match option_env!("ASSENT_HOST_ID") {
    Some(path) => path,
    None => "/etc/assent/host-id",
};

/// The elevator's single-use ledger directory.
pub const LEDGER_DIR: &str = match option_env!("ASSENT_LEDGER_DIR") {
    Some(path) => path,
    None => "/var/lib/assent",
};

/// The elevator's audit log, one JSON line per attempt.
pub const AUDIT_LOG: &str = match option_env!("ASSENT_AUDIT_LOG") {
    Some(path) => path,
    None => "/var/log/assent/audit.jsonl",
};

/// How to make a new host id, as root: the fix for a missing or malformed file, and the step
/// after cloning an image. Writes to a temporary file and renames it, so a reader never sees
/// half a line.
pub fn new_host_id_command() -> String {
    format!(
        "(umask 022; printf '%s\\n' \"$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\" > {HOST_ID}.new && mv {HOST_ID}.new {HOST_ID})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented command makes a file the protocol accepts.
    #[test]
    fn the_new_host_id_command_writes_a_valid_host_id() {
        let dir = std::env::temp_dir().join(format!("assent-host-id-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("host-id");
        let command = new_host_id_command().replace(HOST_ID, path.to_str().unwrap());
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &command])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read(&path).unwrap();
        assert!(
            assent_protocol::HostId::from_file(&text).is_some(),
            "{:?}",
            String::from_utf8_lossy(&text)
        );
        assert!(!dir.join("host-id.new").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The specification gives the same command, for the default path.
    #[test]
    fn the_protocol_document_gives_this_command() {
        let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
        let doc = std::fs::read_to_string(doc).unwrap();
        let command = new_host_id_command().replace(HOST_ID, "/etc/assent/host-id");
        assert!(doc.contains(&command), "{command}");
    }
}
