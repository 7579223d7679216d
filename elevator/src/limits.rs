//! The command's resource limits (SPEC §13.3): PID 1's, or the `[settings.limits]` overrides,
//! never the caller's.
//!
//! A caller chooses its own limits and the elevator inherits them across exec. Left to the
//! command, a file size limit stops an approved root `cp` at a byte the caller chose; CPU,
//! open-file and memory limits make it fail wherever the caller likes. So the command gets the
//! limits of PID 1 — read from `/proc/1/limits`, root's file, walked like the elevator's own —
//! or what the administrator set. Raising a hard limit needs `CAP_SYS_RESOURCE`; where the
//! elevator lacks it and the caller's hard limit is below the soft limit wanted, the attempt is
//! refused before the grant is spent (check `limits`, in [`crate::checks::limits`]).

use std::io::Read as _;
use std::path::Path;

use assent_common::elevator_config::{Limit, LimitOverrides, LimitValue};
use nix::fcntl::OFlag;
use nix::libc::{RLIM_INFINITY, rlim_t};
use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use nix::sys::stat::Mode;

use crate::trusted::{Policy, WalkedDir};

/// Where PID 1's limits are read.
pub const ROOT_LIMITS: &str = "/proc/1/limits";

/// The most of `/proc/1/limits` read (the kernel writes about 1.3 KiB).
const MAX_LIMITS_LEN: u64 = 16 * 1024;

/// A soft and a hard limit as the kernel counts them (`RLIM_INFINITY` for none).
pub type Pair = (rlim_t, rlim_t);

/// The kernel's resource for a limit.
pub fn resource(limit: Limit) -> Resource {
    match limit {
        Limit::Cpu => Resource::RLIMIT_CPU,
        Limit::Fsize => Resource::RLIMIT_FSIZE,
        Limit::Data => Resource::RLIMIT_DATA,
        Limit::Stack => Resource::RLIMIT_STACK,
        Limit::Core => Resource::RLIMIT_CORE,
        Limit::Rss => Resource::RLIMIT_RSS,
        Limit::Nproc => Resource::RLIMIT_NPROC,
        Limit::Nofile => Resource::RLIMIT_NOFILE,
        Limit::Memlock => Resource::RLIMIT_MEMLOCK,
        Limit::As => Resource::RLIMIT_AS,
        Limit::Locks => Resource::RLIMIT_LOCKS,
        Limit::Sigpending => Resource::RLIMIT_SIGPENDING,
        Limit::Msgqueue => Resource::RLIMIT_MSGQUEUE,
        Limit::Nice => Resource::RLIMIT_NICE,
        Limit::Rtprio => Resource::RLIMIT_RTPRIO,
        Limit::Rttime => Resource::RLIMIT_RTTIME,
    }
}

/// The line label of a limit in `/proc/PID/limits` (fs/proc/base.c).
pub fn proc_label(limit: Limit) -> &'static str {
    match limit {
        Limit::Cpu => "Max cpu time",
        Limit::Fsize => "Max file size",
        Limit::Data => "Max data size",
        Limit::Stack => "Max stack size",
        Limit::Core => "Max core file size",
        Limit::Rss => "Max resident set",
        Limit::Nproc => "Max processes",
        Limit::Nofile => "Max open files",
        Limit::Memlock => "Max locked memory",
        Limit::As => "Max address space",
        Limit::Locks => "Max file locks",
        Limit::Sigpending => "Max pending signals",
        Limit::Msgqueue => "Max msgqueue size",
        Limit::Nice => "Max nice priority",
        Limit::Rtprio => "Max realtime priority",
        Limit::Rttime => "Max realtime timeout",
    }
}

/// A limit value for people: a number or `unlimited`.
pub fn shown(value: rlim_t) -> String {
    if value == RLIM_INFINITY {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

fn kernel_value(value: LimitValue) -> rlim_t {
    match value {
        LimitValue::Finite(n) => n,
        LimitValue::Unlimited => RLIM_INFINITY,
    }
}

/// Every limit's soft and hard value from the text of `/proc/PID/limits`, in [`Limit::ALL`]
/// order. Lines the kernel may add for new limits are ignored; each known limit must appear
/// exactly once with a soft limit not above its hard one.
pub fn parse_proc_limits(text: &str) -> Result<[Pair; 16], String> {
    let mut found: [Option<Pair>; 16] = [None; 16];
    for line in text.lines() {
        let Some((i, rest)) = Limit::ALL.iter().enumerate().find_map(|(i, &limit)| {
            line.strip_prefix(proc_label(limit))
                .filter(|rest| rest.starts_with(' '))
                .map(|rest| (i, rest))
        }) else {
            continue;
        };
        let label = proc_label(Limit::ALL[i]);
        let mut words = rest.split_whitespace();
        let mut value = || match words.next() {
            Some("unlimited") => Ok(RLIM_INFINITY),
            Some(n) => n
                .parse::<rlim_t>()
                .ok()
                .filter(|&n| n != RLIM_INFINITY)
                .ok_or_else(|| format!("{label:?} has the value {n:?}")),
            None => Err(format!("{label:?} has no value")),
        };
        let pair = (value()?, value()?);
        if pair.0 > pair.1 {
            return Err(format!("{label:?} has a soft limit above its hard limit"));
        }
        if found[i].replace(pair).is_some() {
            return Err(format!("{label:?} appears twice"));
        }
    }
    let mut pairs = [(0, 0); 16];
    for (i, pair) in found.into_iter().enumerate() {
        pairs[i] = pair.ok_or_else(|| format!("no {:?} line", proc_label(Limit::ALL[i])))?;
    }
    Ok(pairs)
}

/// PID 1's limits, read from `/proc/1/limits` through a walk that requires root-owned
/// directories and file (so no one but root can have put it there).
pub fn read_root_limits() -> Result<[Pair; 16], String> {
    let path = Path::new(ROOT_LIMITS);
    let fail = |why: String| format!("cannot read PID 1's limits from {ROOT_LIMITS}: {why}");
    let dir = WalkedDir::open(Path::new("/proc/1"), Policy::RootOwned).map_err(|e| fail(e.0))?;
    let file = dir
        .open_trusted_file("limits", OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| fail(e.0))?;
    let mut text = String::new();
    file.take(MAX_LIMITS_LEN)
        .read_to_string(&mut text)
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    parse_proc_limits(&text).map_err(fail)
}

/// What the command should get, limit by limit: the override where `[settings.limits]` sets
/// one, else PID 1's (read only when some limit is not overridden).
pub fn wanted(
    overrides: &LimitOverrides,
    root: impl FnOnce() -> Result<[Pair; 16], String>,
) -> Result<Vec<Wanted>, String> {
    let root = if overrides.covers_all() {
        None
    } else {
        Some(root()?)
    };
    Ok(Limit::ALL
        .iter()
        .enumerate()
        .map(|(i, &limit)| match (overrides.get(limit), &root) {
            (Some(pair), _) => Wanted {
                limit,
                soft: kernel_value(pair.soft),
                hard: kernel_value(pair.hard),
                source: Source::Settings,
            },
            (None, Some(root)) => Wanted {
                limit,
                soft: root[i].0,
                hard: root[i].1,
                source: Source::Pid1,
            },
            (None, None) => unreachable!("PID 1's limits are read unless all are overridden"),
        })
        .collect())
}

/// Where a wanted limit comes from, to name it in a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Pid1,
    Settings,
}

/// One limit the command should run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub limit: Limit,
    pub soft: rlim_t,
    pub hard: rlim_t,
    pub source: Source,
}

/// The limits to set for the command (those this process does not have already), each one
/// checked to be settable (check `limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitPlan(pub Vec<(Limit, Pair)>);

impl LimitPlan {
    /// Set every limit, while still root. Every hard limit here is at most the current one
    /// (the check raised it where it had to), so this cannot fail for lack of a capability.
    pub fn apply(&self) -> Result<(), String> {
        for &(limit, (soft, hard)) in &self.0 {
            setrlimit(resource(limit), soft, hard).map_err(|e| {
                format!(
                    "cannot set the command's {limit} limit to {}:{}: {}",
                    shown(soft),
                    shown(hard),
                    e.desc()
                )
            })?;
        }
        Ok(())
    }
}

/// This process's current soft and hard limit.
pub fn current(limit: Limit) -> Pair {
    getrlimit(resource(limit)).unwrap_or((0, 0))
}

/// Try to raise this process's hard limit to `hard`, keeping the soft one; whether it worked.
/// Raising never hurts the elevator itself; it fails without `CAP_SYS_RESOURCE` (or, for
/// `nofile`, above `fs.nr_open`).
pub fn raise_hard(limit: Limit, hard: rlim_t) -> bool {
    let (soft, _) = current(limit);
    setrlimit(resource(limit), soft.min(hard), hard).is_ok()
}

/// CPU time this process has used so far, in whole seconds. A CPU limit counts the time a
/// process used before it exec'd, so that time counts against the command too.
pub fn cpu_used_s() -> u64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(u64::MAX, |usage| {
        let total = usage.user_time() + usage.system_time();
        u64::try_from(total.tv_sec()).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_hosts_pid_1_limits_are_read() {
        let limits = read_root_limits().expect("PID 1's limits");
        let text = std::fs::read_to_string(ROOT_LIMITS).unwrap();
        assert_eq!(parse_proc_limits(&text).unwrap(), limits);
        for (i, limit) in Limit::ALL.into_iter().enumerate() {
            let (soft, hard) = limits[i];
            assert!(soft <= hard, "{limit}");
        }
    }

    fn sample() -> String {
        let mut text =
            "Limit                     Soft Limit           Hard Limit           Units     \n"
                .to_owned();
        for (i, limit) in Limit::ALL.into_iter().enumerate() {
            text += &format!(
                "{:<26}{:<21}{:<21}{:<10}\n",
                proc_label(limit),
                i,
                if i % 2 == 0 {
                    "unlimited".to_owned()
                } else {
                    (i * 10).to_string()
                },
                limit.unit()
            );
        }
        text
    }

    #[test]
    fn every_line_of_proc_limits_is_parsed_by_its_label() {
        let limits = parse_proc_limits(&sample()).unwrap();
        assert_eq!(limits[0], (0, RLIM_INFINITY), "Max cpu time");
        assert_eq!(limits[1], (1, 10), "Max file size, not Max core file size");
        assert_eq!(limits[4], (4, RLIM_INFINITY), "Max core file size");
        assert_eq!(limits[10], (10, RLIM_INFINITY), "Max file locks");
        assert_eq!(limits[15], (15, 150), "Max realtime timeout");
        let newer = sample()
            + "Max future thing          1                    2                    things    \n";
        assert_eq!(
            parse_proc_limits(&newer).unwrap(),
            limits,
            "unknown lines are ignored"
        );
    }

    #[test]
    fn a_damaged_proc_limits_is_refused() {
        // The sample with the line of `label` replaced by `label` + `values` (or dropped).
        let with = |label: &str, values: Option<&str>| {
            sample()
                .lines()
                .filter_map(|l| match (l.starts_with(label), values) {
                    (false, _) => Some(format!("{l}\n")),
                    (true, Some(values)) => Some(format!("{label} {values}\n")),
                    (true, None) => None,
                })
                .collect::<String>()
        };
        let max = u64::MAX.to_string();
        for (text, expect) in [
            (String::new(), "no \"Max cpu time\" line"),
            (with("Max open files", None), "no \"Max open files\" line"),
            (sample() + "Max open files 1 2 files\n", "appears twice"),
            (
                with("Max data size", Some("x 20 bytes")),
                "has the value \"x\"",
            ),
            (
                with("Max stack size", Some("300 30 bytes")),
                "soft limit above",
            ),
            (with("Max nice priority", Some("")), "has no value"),
            (
                with("Max cpu time", Some(&format!("{max} {max}"))),
                "has the value",
            ),
        ] {
            let err = parse_proc_limits(&text).unwrap_err();
            assert!(err.contains(expect), "{expect:?} not in {err:?}");
        }
    }

    #[test]
    fn overrides_win_and_pid_1_fills_the_rest() {
        use assent_common::elevator_config::LimitPair;
        let mut overrides = LimitOverrides::default();
        overrides.0.insert(
            Limit::Nofile,
            LimitPair {
                soft: LimitValue::Finite(64),
                hard: LimitValue::Finite(128),
            },
        );
        let root = parse_proc_limits(&sample()).unwrap();
        let wanted = wanted(&overrides, || Ok(root)).unwrap();
        assert_eq!(wanted.len(), 16);
        let nofile = wanted.iter().find(|w| w.limit == Limit::Nofile).unwrap();
        assert_eq!(
            (nofile.soft, nofile.hard, nofile.source),
            (64, 128, Source::Settings)
        );
        let fsize = wanted.iter().find(|w| w.limit == Limit::Fsize).unwrap();
        assert_eq!(
            (fsize.soft, fsize.hard, fsize.source),
            (1, 10, Source::Pid1)
        );

        let err = super::wanted(&overrides, || Err("no /proc".into())).unwrap_err();
        assert_eq!(err, "no /proc");
        for limit in Limit::ALL {
            overrides.0.insert(
                limit,
                LimitPair {
                    soft: LimitValue::Unlimited,
                    hard: LimitValue::Unlimited,
                },
            );
        }
        let all = super::wanted(&overrides, || panic!("PID 1's limits are not needed")).unwrap();
        assert!(
            all.iter()
                .all(|w| w.source == Source::Settings && w.hard == RLIM_INFINITY)
        );
    }
}
