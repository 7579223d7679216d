//! The elevator's fixed paths. Packagers may change them at build time only (environment
//! variables read by `option_env!` when compiling); nothing at run time can.

/// The elevator configuration (SPEC §5).
pub const CONFIG_PATH: &str = match option_env!("ASSENT_ELEVATOR_CONFIG") {
    Some(path) => path,
    None => "/etc/assent/elevator.toml",
};

/// The single-use ledger directory.
pub const LEDGER_DIR: &str = match option_env!("ASSENT_LEDGER_DIR") {
    Some(path) => path,
    None => "/var/lib/assent",
};

/// The audit log, one JSON line per attempt.
pub const AUDIT_LOG: &str = match option_env!("ASSENT_AUDIT_LOG") {
    Some(path) => path,
    None => "/var/log/assent/audit.jsonl",
};
