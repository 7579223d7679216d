//! What this host says about a request meant for it: whether the requester can write the files
//! it names, where symlinks are, what the elevator's secure path finds, and whether the
//! elevator's configuration would refuse it. The answers feed [`crate::risk::assess`].
//!
//! Best effort by design: the console runs as the approver, not root, so it may be unable to
//! look into some directories (then it says "unknown"); it reasons from permission bits and
//! ownership only (no ACLs, no capabilities); and what it sees is a snapshot. The elevator's
//! own checks are what make an approval safe; these flags only help the human judge.
//!
//! Every path here comes from the agent. None is followed into `/proc`, `/dev` or `/sys`, and
//! none longer than `PATH_MAX` is walked.

use std::ffi::CString;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use assent_common::elevator_config::{Config, MAX_CONFIG_LEN, Settings};
use assent_protocol::Request;

use crate::risk::{HostFacts, UnknownFacts, is_pseudo_file};

/// Longest path the kernel resolves; longer ones are not walked.
const PATH_MAX: usize = 4096;
/// Symlinks followed, one after another, before giving up.
const MAX_LINKS: usize = 8;

/// The elevator's configuration on this host, as the console could read it.
#[derive(Debug, Clone)]
pub enum Elevator {
    /// It parsed with the elevator's own strict parser.
    Listed { path: PathBuf, config: Config },
    /// There is no file: the elevator refuses everything.
    Missing(PathBuf),
    /// It does not parse: the elevator refuses everything.
    Invalid(String),
    /// The console may not read it (or it is not a file): nothing is known.
    Unreadable(String),
}

impl Elevator {
    /// Read and parse the file at `path`.
    pub fn read(path: &Path) -> Elevator {
        let shown = path.display();
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Elevator::Missing(path.to_path_buf());
            }
            Err(e) => return Elevator::Unreadable(format!("cannot read {shown}: {e}")),
        };
        let mut text = String::new();
        let read = file
            .metadata()
            .and_then(|m| {
                if m.is_file() {
                    Ok(m)
                } else {
                    Err(std::io::Error::other("not a regular file"))
                }
            })
            .and_then(|_| {
                (&mut file)
                    .take(MAX_CONFIG_LEN + 1)
                    .read_to_string(&mut text)
            });
        match read {
            Err(e) => Elevator::Unreadable(format!("cannot read {shown}: {e}")),
            Ok(n) if n as u64 > MAX_CONFIG_LEN => {
                Elevator::Invalid(format!("{shown} is larger than {MAX_CONFIG_LEN} bytes"))
            }
            Ok(_) => match Config::parse(&text, path) {
                Ok(config) => Elevator::Listed {
                    path: path.to_path_buf(),
                    config,
                },
                Err(why) => Elevator::Invalid(why),
            },
        }
    }

    /// The secure path the elevator and the shim use here.
    fn secure_path(&self) -> String {
        match self {
            Elevator::Listed { config, .. } => config.settings.secure_path.clone(),
            _ => Settings::default().secure_path,
        }
    }

    /// Why the elevator would refuse `request` by its configuration alone.
    fn refusals(&self, request: &Request) -> Vec<String> {
        match self {
            Elevator::Missing(path) => vec![format!(
                "there is no {} on this host, so the elevator refuses everything",
                path.display()
            )],
            Elevator::Invalid(why) => vec![format!(
                "{why}; the elevator refuses everything until it is fixed"
            )],
            Elevator::Unreadable(_) => Vec::new(),
            Elevator::Listed { path, config } => match config.requester(&request.user) {
                None => vec![format!(
                    "{} is not a [[requester]] in {}",
                    request.user,
                    path.display()
                )],
                Some(r) if !r.run_as.contains(&request.run_as) => vec![format!(
                    "{} may not run as {} (run_as = {:?} in {})",
                    request.user,
                    request.run_as,
                    r.run_as,
                    path.display()
                )],
                Some(_) => Vec::new(),
            },
        }
    }
}

/// File facts seen as one OS user (uid and every group).
#[derive(Debug, Clone)]
pub struct LocalFacts {
    uid: u32,
    gids: Vec<u32>,
}

impl LocalFacts {
    /// The requester's uid and all its groups, or why they cannot be had: `user` must exist
    /// here with `uid` (the elevator checks the caller against both).
    pub fn for_user(user: &str, uid: u32) -> Result<LocalFacts, String> {
        let entry = match nix::unistd::User::from_name(user) {
            Ok(Some(entry)) => entry,
            Ok(None) => return Err(format!("there is no user {user} on this host")),
            Err(e) => return Err(format!("cannot look up user {user}: {e}")),
        };
        if entry.uid.as_raw() != uid {
            return Err(format!(
                "user {user} has uid {} on this host, not {uid}",
                entry.uid
            ));
        }
        let name = CString::new(user).map_err(|_| format!("user name {user:?} holds a NUL"))?;
        let mut gids: Vec<u32> = nix::unistd::getgrouplist(&name, entry.gid)
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
        gids.push(entry.gid.as_raw());
        Ok(LocalFacts { uid, gids })
    }

    pub fn new(uid: u32, gids: Vec<u32>) -> LocalFacts {
        LocalFacts { uid, gids }
    }

    fn may_write(&self, meta: &std::fs::Metadata) -> bool {
        let mode = meta.mode();
        if self.uid == 0 {
            return true;
        }
        if meta.uid() == self.uid {
            return mode & 0o200 != 0;
        }
        if self.gids.contains(&meta.gid()) {
            return mode & 0o020 != 0;
        }
        mode & 0o002 != 0
    }

    /// Whether this user can change what `path` names: write it, or replace it through a
    /// directory on the way (unless the sticky bit protects what it does not own).
    pub fn can_write(&self, path: &Path) -> Result<bool, String> {
        self.can_write_following(path, 0)
    }

    fn can_write_following(&self, path: &Path, links: usize) -> Result<bool, String> {
        looked_at(path)?;
        let unknown = |p: &Path, e: std::io::Error| format!("cannot inspect {}: {e}", p.display());
        let mut current = PathBuf::from("/");
        let mut parent_meta =
            std::fs::symlink_metadata(&current).map_err(|e| unknown(&current, e))?;
        for component in path.components() {
            let name = match component {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
                Component::ParentDir => {
                    current.pop();
                    parent_meta =
                        std::fs::symlink_metadata(&current).map_err(|e| unknown(&current, e))?;
                    continue;
                }
                Component::Normal(n) => n,
            };
            let child = current.join(name);
            let dir_writable = self.may_write(&parent_meta);
            match std::fs::symlink_metadata(&child) {
                Ok(meta) => {
                    let sticky = parent_meta.mode() & 0o1000 != 0;
                    let protected =
                        sticky && meta.uid() != self.uid && parent_meta.uid() != self.uid;
                    if dir_writable && !protected {
                        return Ok(true);
                    }
                    if meta.file_type().is_symlink() {
                        if meta.uid() == self.uid {
                            return Ok(true);
                        }
                        if links >= MAX_LINKS {
                            return Err(format!("too many symlinks at {}", child.display()));
                        }
                        // Follow it: the target is what gets used. It is a root-owned link
                        // (or another user's); its target is checked like any path.
                        let target =
                            std::fs::canonicalize(&child).map_err(|e| unknown(&child, e))?;
                        let rest = path.strip_prefix(&child).unwrap_or(Path::new(""));
                        return self.can_write_following(&target.join(rest), links + 1);
                    }
                    current = child;
                    parent_meta = meta;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // It does not exist: whoever can write the directory can create it.
                    return Ok(dir_writable);
                }
                Err(e) => return Err(unknown(&child, e)),
            }
        }
        Ok(self.may_write(&parent_meta))
    }
}

/// Refuse to look at a path the console must not resolve in its own process.
fn looked_at(path: &Path) -> Result<(), String> {
    if path.as_os_str().len() > PATH_MAX {
        return Err(format!(
            "a path longer than {PATH_MAX} bytes was not looked at"
        ));
    }
    if is_pseudo_file(path) {
        return Err(format!(
            "{} is under /proc, /dev or /sys and was not looked at",
            path.display()
        ));
    }
    Ok(())
}

/// The first symlink on the way to `path`, walking from `/` without following any.
pub fn first_symlink(path: &Path) -> Result<Option<PathBuf>, String> {
    looked_at(path)?;
    let mut current = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => current.push(name),
            Component::ParentDir => {
                current.pop();
                continue;
            }
            _ => continue,
        }
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => return Ok(Some(current)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot inspect {}: {e}", current.display())),
        }
    }
    Ok(None)
}

/// Whether `dir` is writable by everyone; a symlink on the way is not followed.
pub fn world_writable(dir: &Path) -> Result<bool, String> {
    if let Some(link) = first_symlink(dir)? {
        return Err(format!("{} is a symlink; not followed", link.display()));
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
    Ok(meta.mode() & 0o002 != 0)
}

/// Facts for a request that runs on the console's own host.
#[derive(Debug, Clone)]
pub struct LocalHost {
    requester: Result<LocalFacts, String>,
    run_as_missing: Option<String>,
    elevator: Arc<Elevator>,
}

impl LocalHost {
    pub fn new(request: &Request, elevator: Arc<Elevator>) -> LocalHost {
        let run_as_missing = match nix::unistd::User::from_name(&request.run_as) {
            Ok(Some(_)) => None,
            Ok(None) => Some(format!("there is no user {} to run as", request.run_as)),
            Err(_) => None,
        };
        LocalHost {
            requester: LocalFacts::for_user(&request.user, request.uid),
            run_as_missing,
            elevator,
        }
    }
}

impl HostFacts for LocalHost {
    fn requester_can_write(&self, path: &Path) -> Result<bool, String> {
        self.requester
            .as_ref()
            .map_err(Clone::clone)?
            .can_write(path)
    }

    fn world_writable(&self, dir: &Path) -> Result<bool, String> {
        world_writable(dir)
    }

    fn symlink_on_path(&self, path: &Path) -> Result<Option<PathBuf>, String> {
        first_symlink(path)
    }

    fn secure_path_finds(&self, argv0: &str) -> Option<(PathBuf, PathBuf)> {
        let secure_path = self.elevator.secure_path();
        let dirs: Vec<&Path> = secure_path
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(Path::new)
            .collect();
        let found = if argv0.is_empty() || argv0 == "." || argv0 == ".." {
            None
        } else if !argv0.contains('/') {
            // As the shim looks a bare name up: the first executable regular file.
            dirs.iter().map(|d| d.join(argv0)).find(|candidate| {
                !is_pseudo_file(candidate)
                    && candidate
                        .metadata()
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        } else {
            let path = Path::new(argv0);
            path.parent()
                .filter(|parent| dirs.contains(parent))
                .map(|_| path.to_path_buf())
        }?;
        looked_at(&found).ok()?;
        let file = std::fs::canonicalize(&found).ok()?;
        (!is_pseudo_file(&file)).then_some((found, file))
    }

    fn secure_path(&self) -> Option<String> {
        matches!(*self.elevator, Elevator::Listed { .. }).then(|| self.elevator.secure_path())
    }

    fn refusals(&self, request: &Request) -> Vec<String> {
        let mut out = self.elevator.refusals(request);
        if let Err(why) = &self.requester {
            out.push(why.clone());
        }
        out.extend(self.run_as_missing.clone());
        out
    }
}

/// This host's name and elevator configuration, kept between requests (the file is read
/// again only when it changed).
#[derive(Debug)]
pub struct HostView {
    elevator_path: PathBuf,
    cached: Option<(Stamp, Arc<Elevator>)>,
}

/// What tells one version of a file from another without reading it.
type Stamp = Option<(u64, u64, i64, i64, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
}

impl HostView {
    pub fn new(elevator_path: impl Into<PathBuf>) -> HostView {
        HostView {
            elevator_path: elevator_path.into(),
            cached: None,
        }
    }

    /// The elevator's configuration as it is now.
    pub fn elevator(&mut self) -> Arc<Elevator> {
        let now = stamp(&self.elevator_path);
        match &self.cached {
            Some((seen, elevator)) if *seen == now && now.is_some() => elevator.clone(),
            _ => {
                let elevator = Arc::new(Elevator::read(&self.elevator_path));
                self.cached = Some((now, elevator.clone()));
                elevator
            }
        }
    }

    /// Facts for `request`: this host's when it is for this host, unknown otherwise.
    pub fn facts_for(&mut self, request: &Request) -> Box<dyn HostFacts + Send> {
        let here = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        if request.host != here {
            return Box::new(UnknownFacts(format!(
                "request is for host {}",
                request.host
            )));
        }
        Box::new(LocalHost::new(request, self.elevator()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::testing;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assent-host-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[test]
    fn local_write_access_from_permission_bits() {
        // Run as root in CI, so judge for an unprivileged uid that owns nothing here.
        let dir = std::env::temp_dir().join(format!("assent-host-risk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("locked")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("locked"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(dir.join("locked/prog"), b"x").unwrap();
        std::fs::set_permissions(
            dir.join("locked/prog"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("open")).unwrap();
        std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(dir.join("open/prog"), b"x").unwrap();
        std::fs::create_dir_all(dir.join("sticky")).unwrap();
        std::fs::set_permissions(dir.join("sticky"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::write(dir.join("sticky/prog"), b"x").unwrap();
        std::fs::set_permissions(
            dir.join("sticky/prog"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(dir.join("locked/world"), b"x").unwrap();
        std::fs::set_permissions(
            dir.join("locked/world"),
            std::fs::Permissions::from_mode(0o646),
        )
        .unwrap();

        let me = std::fs::metadata(&dir).unwrap();
        // Only meaningful if the temp dir chain is not writable by our fake user; uid 54321
        // owns nothing and belongs to no group that owns these files.
        let facts = LocalFacts::new(54321, vec![54321]);
        assert_eq!(facts.can_write(&dir.join("locked/prog")), Ok(false));
        assert_eq!(
            facts.can_write(&dir.join("open/prog")),
            Ok(true),
            "replaceable via 0777 dir"
        );
        assert_eq!(
            facts.can_write(&dir.join("open/new")),
            Ok(true),
            "creatable"
        );
        assert_eq!(
            facts.can_write(&dir.join("sticky/prog")),
            Ok(false),
            "sticky protects"
        );
        assert_eq!(facts.can_write(&dir.join("sticky/new")), Ok(true));
        assert_eq!(
            facts.can_write(&dir.join("locked/world")),
            Ok(true),
            "o+w file"
        );
        assert_eq!(facts.can_write(&dir.join("locked/absent")), Ok(false));
        let owner = LocalFacts::new(me.uid(), vec![me.gid()]);
        assert_eq!(owner.can_write(&dir.join("locked/prog")), Ok(true));
        assert_eq!(world_writable(&dir.join("open")), Ok(true));
        assert_eq!(world_writable(&dir.join("locked")), Ok(false));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pseudo_files_and_long_paths_are_not_looked_at() {
        let facts = LocalFacts::new(54321, vec![54321]);
        for path in [
            "/dev/stdin",
            "/proc/self/fd/0",
            "/sys/kernel",
            "/usr/../dev/fd/0",
        ] {
            let err = facts.can_write(Path::new(path)).unwrap_err();
            assert!(err.contains("was not looked at"), "{path}: {err}");
            assert!(first_symlink(Path::new(path)).is_err());
        }
        let long = format!("/tmp/{}", "a/".repeat(3000));
        assert!(facts.can_write(Path::new(&long)).is_err());
        // A root-owned symlink into /proc is not followed there either.
        let dir = scratch("links");
        symlink("/proc/self/fd/0", dir.join("stdin")).unwrap();
        let err = facts.can_write(&dir.join("stdin")).unwrap_err();
        assert!(err.contains("was not looked at"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlinked_cwd_is_not_followed_to_judge_it() {
        let dir = scratch("cwdlink");
        std::fs::create_dir_all(dir.join("open")).unwrap();
        std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        symlink(dir.join("open"), dir.join("link")).unwrap();
        assert_eq!(world_writable(&dir.join("open")), Ok(true));
        let err = world_writable(&dir.join("link")).unwrap_err();
        assert!(err.contains("is a symlink; not followed"), "{err}");
        assert!(world_writable(Path::new("/proc/self/cwd")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinks_on_the_way_are_found_not_followed() {
        let dir = scratch("symlink");
        std::fs::create_dir_all(dir.join("real/sub")).unwrap();
        symlink(dir.join("real"), dir.join("link")).unwrap();
        assert_eq!(first_symlink(&dir.join("real/sub")), Ok(None));
        assert_eq!(
            first_symlink(&dir.join("link/sub")),
            Ok(Some(dir.join("link")))
        );
        assert_eq!(first_symlink(&dir.join("absent/x")), Ok(None));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn config_text(requester: &str, run_as: &str, secure_path: &str) -> String {
        format!(
            "[[approver]]\nname = \"alice\"\nkey = \"{}\"\n\n[[requester]]\nuser = \"{requester}\"\nrun_as = [\"{run_as}\"]\n\n[settings]\nsecure_path = \"{secure_path}\"\n",
            testing::approver_key().public()
        )
    }

    #[test]
    fn the_elevator_configuration_says_what_it_refuses() {
        let dir = scratch("elevator");
        let path = dir.join("elevator.toml");
        let mut view = HostView::new(&path);
        let mut r = testing::request("id", &[]);
        r.user = "root".into();
        assert!(matches!(*view.elevator(), Elevator::Missing(_)));
        assert!(view.elevator().refusals(&r)[0].contains("there is no"));

        std::fs::write(&path, "[settings\n").unwrap();
        assert!(matches!(*view.elevator(), Elevator::Invalid(_)), "re-read");
        assert!(view.elevator().refusals(&r)[0].contains("refuses everything"));

        std::fs::write(&path, config_text("openclaw", "postgres", "/usr/bin:/bin")).unwrap();
        let elevator = view.elevator();
        let refusals = elevator.refusals(&r);
        assert_eq!(
            refusals,
            [format!("root is not a [[requester]] in {}", path.display())]
        );
        r.user = "openclaw".into();
        assert!(elevator.refusals(&r)[0].contains("openclaw may not run as root"));
        r.run_as = "postgres".into();
        assert!(elevator.refusals(&r).is_empty());
        assert_eq!(elevator.secure_path(), "/usr/bin:/bin");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_local_host_finds_argv0_in_the_secure_path() {
        let dir = scratch("secure");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::set_permissions(dir.join("bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("bin/dash"), b"#!/bin/true\n").unwrap();
        std::fs::set_permissions(dir.join("bin/dash"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        symlink("dash", dir.join("bin/sh")).unwrap();
        let path = dir.join("elevator.toml");
        let bin = dir.join("bin");
        std::fs::write(&path, config_text("root", "root", bin.to_str().unwrap())).unwrap();
        let mut r = testing::request("sh", &[]);
        r.user = "root".into();
        r.uid = 0;
        let host = LocalHost::new(&r, HostView::new(&path).elevator());
        assert_eq!(
            host.secure_path_finds("sh"),
            Some((bin.join("sh"), bin.join("dash")))
        );
        assert_eq!(
            host.secure_path_finds(bin.join("sh").to_str().unwrap()),
            Some((bin.join("sh"), bin.join("dash")))
        );
        assert_eq!(host.secure_path_finds("absent"), None);
        assert_eq!(host.secure_path_finds("/proc/self/exe"), None);
        assert_eq!(host.secure_path_finds("../sh"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
