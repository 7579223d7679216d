//! The relay's stdout may be closed under it (a supervisor that stopped reading, `| head`):
//! that is never a reason to stop relaying, nor to print a panic.

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_assent-relay");

/// Start the relay with `args`, its stdout a pipe whose reading end is already closed.
fn with_closed_stdout(args: &[&str]) -> Child {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    drop(child.stdout.take());
    child
}

fn stderr(child: &mut Child) -> String {
    let mut text = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut text);
    text
}

#[test]
fn a_closed_stdout_does_not_stop_the_relay() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut relay = with_closed_stdout(&["--listen", &listen]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "the relay never listened");
        assert!(
            relay.try_wait().unwrap().is_none(),
            "{}",
            stderr(&mut relay)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // It writes its "listening on" line right after it starts listening.
    std::thread::sleep(Duration::from_millis(300));
    let exited = relay.try_wait().unwrap();
    let _ = relay.kill();
    let _ = relay.wait();
    assert_eq!(exited, None, "the relay exited: {}", stderr(&mut relay));
}

#[test]
fn generating_into_a_closed_pipe_is_quiet() {
    let mut relay = with_closed_stdout(&["--generate", "man"]);
    let status = relay.wait().unwrap();
    let stderr = stderr(&mut relay);
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}
