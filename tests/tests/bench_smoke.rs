//! `bench/run --smoke` runs the whole benchmark pipeline with tiny counts, so the benchmark
//! cannot rot: every row of its table must be there with a measured number.

use std::path::Path;
use std::process::Command;

/// Rows every table must have (by the start of their first column), and whether "not
/// installed" is an acceptable result (sudo and doas are optional in a smoke run).
const ROWS: &[(&str, bool)] = &[
    ("/bin/true, bare", false),
    ("sudo -n /bin/true", true),
    ("doas /bin/true", true),
    ("setuid fork + exec, nothing else", false),
    ("floor / sudo", true),
    ("assent-elevate --grant TOKEN -- /bin/true", false),
    ("elevator / sudo", true),
    ("elevator / doas", true),
    ("assent run -- /bin/true", false),
    ("overhead over bare /bin/true", false),
    ("assent run -- /bin/true, cached timed grant", false),
    ("cached / elevator alone", false),
    ("relay round trips/s, saturated", false),
    ("ceiling from 1 signature check per round trip", false),
    ("relay latency p50 at", false),
    ("relay latency p99 at", false),
    ("relay RSS,", false),
    ("console frame,", false),
    ("console frame p99", false),
];

#[test]
fn bench_run_smoke_prints_every_row_with_a_number() {
    assent_tests::require_root();
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(top.join("bench/run"))
        .arg("--smoke")
        .current_dir(top)
        .output()
        .expect("bench/run runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/run --smoke failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("smoke"),
        "the table says it is a smoke run:\n{stdout}"
    );

    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| measurement"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), ROWS.len(), "one row per measurement:\n{stdout}");
    for (row, (name, optional)) in rows.iter().zip(ROWS) {
        assert_eq!(row.len(), 4, "four columns in {row:?}");
        assert!(
            row[0].starts_with(name),
            "row {name:?} in order, got {row:?}"
        );
        let result = row[1];
        let number = result
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<f64>().ok());
        match number {
            Some(n) => {
                assert!(n.is_finite() && n >= 0.0, "a measured number in {row:?}");
                if !row[2].is_empty() {
                    assert!(
                        row[3] == "met" || row[3] == "MISSED",
                        "a row with a target says met or MISSED: {row:?}"
                    );
                }
            }
            None => assert!(
                *optional && result == "not installed",
                "{name:?} has no number: {row:?}\n{stdout}"
            ),
        }
    }
    // The relay's and the elevator's figures are real measurements, not zeros.
    for name in ["assent-elevate", "relay round trips/s", "console frame,"] {
        let row = rows.iter().find(|r| r[0].starts_with(name)).unwrap();
        let n: f64 = row[1].split_whitespace().next().unwrap().parse().unwrap();
        assert!(n > 0.0, "{name} measured something: {row:?}");
    }
}
