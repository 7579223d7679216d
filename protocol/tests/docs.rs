//! `docs/protocol.md` is the specification a third party builds from, so its examples must be
//! true: every example payload parses as its kind, and every digest, reference and
//! fingerprint it states is what this implementation computes. It must also stand alone.

use std::path::Path;

use assent_protocol::*;

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced block right after `<!-- example: NAME -->`, without the indentation the marker
/// has (in a list item).
fn example(name: &str) -> String {
    let text = doc("protocol.md");
    let marker = format!("<!-- example: {name} -->");
    let mut lines = text.lines().skip_while(|l| l.trim_start() != marker);
    let indent = lines
        .next()
        .unwrap_or_else(|| panic!("no example {name:?}"))
        .find('<')
        .unwrap_or(0);
    let mut lines = lines.map(|l| l.get(indent..).unwrap_or(""));
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "example {name:?} is not a fenced block"
    );
    lines
        .take_while(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The doc states `what = VALUE` (in backquotes or a block) for this value.
fn states(what: &str, value: &str) {
    let text = doc("protocol.md");
    assert!(
        text.contains(&format!("{what} = {value}")),
        "docs/protocol.md must state `{what} = {value}`"
    );
}

#[test]
fn every_example_parses_as_its_kind() {
    let request = example("request");
    let req = Request::from_bytes(request.as_bytes()).unwrap();
    let dec = Decision::from_bytes(example("decision").as_bytes()).unwrap();
    let st = Status::from_bytes(example("status").as_bytes()).unwrap();
    let w = Withdraw::from_bytes(example("withdraw").as_bytes()).unwrap();
    Login::from_bytes(example("login").as_bytes()).unwrap();

    // They are one story: the decision and the withdraw name the request, the status revokes
    // the decision, until its end.
    let request_sha256 = sha256(request.as_bytes());
    assert_eq!(dec.request_id, req.id);
    assert_eq!(dec.request_sha256, request_sha256);
    assert_eq!(dec.cmd_sha256, req.cmd_sha256());
    assert_eq!((w.request_id, w.request_sha256), (req.id, request_sha256));
    let decision_sha256 = sha256(example("decision").as_bytes());
    assert_eq!(st.console, dec.console);
    assert_eq!(
        st.revoked.get(&decision_sha256).map(|r| r.until),
        Some(dec.not_after)
    );
}

#[test]
fn the_stated_digests_are_right() {
    let request = example("request");
    let request_sha256 = sha256(request.as_bytes());
    states("request_sha256", &request_sha256.to_hex());
    assert!(
        doc("protocol.md").contains(&format!("These exact {} bytes", request.len())),
        "the byte count of the example request"
    );
    let reference = request_sha256.reference();
    assert!(doc("protocol.md").contains(&format!("reference is `{reference}`")));
    states(
        "decision_sha256",
        &sha256(example("decision").as_bytes()).to_hex(),
    );
}

#[test]
fn the_worked_command_hash_is_right() {
    let req = Request::from_bytes(example("request").as_bytes()).unwrap();
    let cmd = req.cmd_sha256();
    states("cmd_sha256", &cmd.to_hex());
    // The item list as the doc shows it: length in hex, two spaces, the item.
    let items: Vec<(usize, String)> = example("cmd-items")
        .lines()
        .map(|line| {
            let (len, item) = line.split_once("  ").expect("LENGTH  ITEM");
            (usize::from_str_radix(len, 16).unwrap(), item.to_owned())
        })
        .collect();
    let mut bytes = Vec::new();
    for (len, item) in &items {
        assert_eq!(*len, item.len(), "{item}");
        bytes.extend_from_slice(&u32::try_from(*len).unwrap().to_be_bytes());
        bytes.extend_from_slice(item.as_bytes());
    }
    assert_eq!(sha256(&bytes), cmd);
    let text = doc("protocol.md");
    assert!(text.contains(&format!("{} bytes in all", bytes.len())));
    let start: String = bytes[..28].iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&format!("which begin\n`{start}`")), "{start}");
}

#[test]
fn the_example_key_and_fingerprint_match() {
    let line = example("public-key");
    let (key, comment) = PublicKey::parse_with_comment(&line).unwrap();
    assert_eq!(comment, "alice@laptop");
    states("fingerprint", key.fingerprint().as_str());
}

#[test]
fn the_example_host_id_file_reads() {
    let id = HostId::from_hex(&example("host-id")).unwrap();
    assert_eq!(HostId::from_file(id.to_file().as_bytes()), Some(id));
}

/// The repository's docs stand alone: they cite no section of a specification that is not
/// part of it.
#[test]
fn the_protocol_docs_cite_no_outside_specification() {
    for name in ["protocol.md", "relay-protocol.md"] {
        let text = doc(name);
        assert!(!text.contains("SPEC"), "{name} cites SPEC");
    }
}
