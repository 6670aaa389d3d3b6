//! Property tests (proptest) for the wire encodings fxpd reads and writes, and a replay of the
//! fuzz corpus on stable Rust.
//!
//! - Address encodings round-trip: `PORT h1,h2,h3,h4,p1,p2` (RFC 959 4.1.2), `EPRT |1|..|` and
//!   `|2|..|` with any allowed delimiter (RFC 2428 2), and the 227/229 replies the server sends
//!   for PASV/EPSV (RFC 959 4.1.2, RFC 2428 3), read back the way clients read them.
//! - The command parser never panics; `LineReader` never yields a line over its bound and
//!   reassembles lines split at any chunk boundary, with cancellations in between.
//! - `Reply::to_bytes` always reads back as exactly one reply.
//! - Path resolution and S3 key building stay in the home (`checks::path_confinement`).
//! - Every file under `tests/fuzz/corpus/<target>/` goes through the same check as the fuzz
//!   target of that name (`tests/fuzz/checks.rs`), so `cargo test` covers the corpus without
//!   nightly. Fuzzing itself: `bash tests/fuzz/run.sh [SECONDS]`.

#[path = "fuzz/checks.rs"]
mod checks;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::Path;

use fxpd::control::codec::Line;
use fxpd::control::command::Command;
use fxpd::control::parser::{parse, parse_eprt, parse_port};
use fxpd::control::reply::{Code, Reply};
use proptest::prelude::*;

/// The text of the server's 227 reply (src/session/commands.rs, `pasv()`).
fn pasv_text(ip: Ipv4Addr, port: u16) -> String {
    let [a, b, c, d] = ip.octets();
    let [p1, p2] = port.to_be_bytes();
    format!("Entering Passive Mode ({a},{b},{c},{d},{p1},{p2}).")
}

/// The text of the server's 229 reply (src/session/commands.rs, `epsv()`).
fn epsv_text(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|).")
}

fn delimiter() -> impl Strategy<Value = char> {
    let all: Vec<char> = checks::eprt_delimiters().collect();
    proptest::sample::select(all)
}

/// Any address in either family, including IPv4-mapped IPv6 ones.
fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<Ipv4Addr>().prop_map(IpAddr::V4),
        any::<Ipv6Addr>().prop_map(IpAddr::V6),
        any::<Ipv4Addr>().prop_map(|a| IpAddr::V6(a.to_ipv6_mapped())),
    ]
}

/// Bytes a command line might contain, weighted toward the ones that matter to the parser.
fn line_bytes(len: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            2 => proptest::sample::select(b" ,|!.:0123456789".to_vec()),
            1 => proptest::sample::select(b"\r\n\0\xff".to_vec()),
        ],
        0..len,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn port_round_trips(addr in any::<SocketAddrV4>(), lower in any::<bool>(), pad in "[ \t]{0,2}") {
        let arg = checks::format_port(addr);
        let verb = if lower { "port" } else { "PORT" };
        prop_assert_eq!(parse(format!("{verb} {pad}{arg}{pad}").as_bytes()), Ok(Command::Port(addr)));
        prop_assert_eq!(parse_port(&arg), Ok(addr));
    }

    #[test]
    fn eprt_round_trips_v4_and_v6(ip in ip(), port in any::<u16>(), delim in delimiter()) {
        let addr = SocketAddr::new(ip, port);
        let arg = checks::format_eprt(addr, delim);
        let head = format!("{delim}{}{delim}", if ip.is_ipv4() { 1 } else { 2 });
        prop_assert!(arg.starts_with(&head), "{} does not start with {}", arg, head);
        prop_assert_eq!(parse_eprt(&arg), Ok(addr));
        prop_assert_eq!(parse(format!("EPRT {arg}").as_bytes()), Ok(Command::Eprt(addr)));
    }

    #[test]
    fn eprt_refuses_the_other_family(ip in ip(), port in any::<u16>()) {
        let wrong = if ip.is_ipv4() { 2 } else { 1 };
        let arg = format!("|{wrong}|{ip}|{port}|");
        prop_assert!(parse_eprt(&arg).is_err(), "{arg}");
    }

    #[test]
    fn pasv_reply_encodes_any_address_and_port(ip in any::<Ipv4Addr>(), port in any::<u16>()) {
        let wire = Reply::new(Code::PASSIVE, pasv_text(ip, port)).to_bytes();
        prop_assert!(wire.starts_with(b"227 Entering Passive Mode ("));
        prop_assert_eq!(checks::client_parse_227(&wire), Some(SocketAddrV4::new(ip, port)));
        // What a client reads is what it then sends in PORT for an FXP transfer.
        let port_line = format!("PORT {}", checks::format_port(SocketAddrV4::new(ip, port)));
        prop_assert_eq!(parse(port_line.as_bytes()), Ok(Command::Port(SocketAddrV4::new(ip, port))));
    }

    #[test]
    fn epsv_reply_encodes_any_port(port in any::<u16>()) {
        let wire = Reply::new(Code::EXTENDED_PASSIVE, epsv_text(port)).to_bytes();
        prop_assert!(wire.starts_with(b"229 Entering Extended Passive Mode (|||"));
        prop_assert_eq!(checks::client_parse_229(&wire), Some(port));
    }

    #[test]
    fn parser_never_panics(line in line_bytes(120)) {
        checks::parse_command(&line);
    }

    #[test]
    fn parser_never_panics_on_verbs_with_any_argument(
        verb in proptest::sample::select(fxpd::control::command::VERBS.to_vec()),
        arg in line_bytes(80),
    ) {
        let mut line = verb.as_bytes().to_vec();
        line.push(b' ');
        line.extend_from_slice(&arg);
        checks::parse_command(&line);
        checks::port_eprt(&arg);
    }

    #[test]
    fn line_reader_reassembles_lines_split_anywhere(
        lines in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>().prop_filter("no LF or IAC", |b| *b != b'\n' && *b != 0xff), 0..40), any::<bool>()),
            0..12,
        ),
        max in 0usize..48,
        plan in proptest::collection::vec((1usize..20, any::<bool>()), 0..8),
    ) {
        let mut input = Vec::new();
        let mut want = Vec::new();
        for (line, crlf) in &lines {
            input.extend_from_slice(line);
            input.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            // The bound counts the bytes before the LF, so a CR counts too; one CR before
            // the LF is removed, whether we sent it as the terminator or as the line's last byte.
            let sent = line.len() + usize::from(*crlf);
            let kept = if *crlf { &line[..] } else { line.strip_suffix(b"\r").unwrap_or(line) };
            want.push(if sent > max { Line::TooLong } else { Line::Command(kept.to_vec()) });
        }
        let got = checks::lines_cancelling(checks::ChunkedReader::new(input.clone(), plan.clone()), max);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(checks::lines_from_slice(&input, max), want);
    }

    #[test]
    fn line_reader_matches_its_model_on_any_bytes(
        input in proptest::collection::vec(
            prop_oneof![4 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(0xffu8), 1 => Just(b'\r')],
            0..700,
        ),
        max in prop_oneof![0usize..40, 500usize..520],
        plan in proptest::collection::vec((1usize..600, any::<bool>()), 0..8),
    ) {
        checks::check_lines(&input, max, plan);
    }

    #[test]
    fn reply_framing_reads_back_as_one_reply(
        code in 100u16..600,
        lines in proptest::collection::vec(
            prop_oneof![any::<String>(), "[0-9 \r\n-]{0,8}", "[1-5][0-9][0-9][ -].{0,5}"],
            0..6,
        ),
    ) {
        checks::check_framing(&Reply::multi(Code(code), lines));
    }

    #[test]
    fn policy_decisions_match_the_table(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        checks::policy(&data);
    }

    #[test]
    fn paths_and_keys_stay_in_the_home(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        checks::path_confinement(&data);
    }

    #[test]
    fn paths_resolve_like_the_model(cwd in "[a./\\\\]{0,12}", arg in "(/|\\.\\.|\\.|a|b|//|\\\\){0,10}") {
        let mut data = vec![cwd.len() as u8 + 1, 1];
        data.extend_from_slice(cwd.as_bytes());
        data.push(arg.len() as u8 + 1);
        data.push(1);
        data.extend_from_slice(arg.as_bytes());
        checks::path_confinement(&data);
    }
}

/// Every committed corpus file through its target's check; also that every target has a
/// corpus and every corpus directory a target.
#[test]
fn fuzz_corpus_replays_without_nightly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names: Vec<String> = checks::TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(dirs, names, "corpus directories and fuzz targets differ");

    for (name, check) in checks::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no corpus", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{name}: {} fails its check", file.display());
        }
    }
}
