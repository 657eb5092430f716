//! `workmail-flow milter` spoken to byte by byte over a Unix socket, as an MTA that does
//! not offer `SMFIP_HDR_LEADSPC` (Sendmail's default) would: the packets are written
//! here by hand from the protocol's description, not with the crate's own codec.

mod common;

use common::smtp::{Server, scratch};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn packet(code: u8, data: &[u8]) -> Vec<u8> {
    let mut p = ((data.len() + 1) as u32).to_be_bytes().to_vec();
    p.push(code);
    p.extend_from_slice(data);
    p
}

fn read_packet(s: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    (body[0], body[1..].to_vec())
}

fn header(name: &str, value: &str) -> Vec<u8> {
    let mut d = name.as_bytes().to_vec();
    d.push(0);
    d.extend_from_slice(value.as_bytes());
    d.push(0);
    packet(b'L', &d)
}

fn expect_continue(s: &mut UnixStream) {
    assert_eq!(read_packet(s).0, b'c');
}

/// Sends one message and returns the replies to its end, up to the final one.
fn message(s: &mut UnixStream, rcpt: &str, subject: &str) -> Vec<(u8, Vec<u8>)> {
    s.write_all(&packet(b'M', b"<a@partner.example>\0"))
        .unwrap();
    expect_continue(s);
    s.write_all(&packet(b'R', format!("<{rcpt}>\0").as_bytes()))
        .unwrap();
    expect_continue(s);
    for (n, v) in [
        ("From", "a@partner.example"),
        ("To", rcpt),
        ("Subject", subject),
    ] {
        s.write_all(&header(n, v)).unwrap();
        expect_continue(s);
    }
    s.write_all(&packet(b'N', b"")).unwrap();
    expect_continue(s);
    s.write_all(&packet(b'B', b"Hello\r\n")).unwrap();
    expect_continue(s);
    s.write_all(&packet(b'E', b"")).unwrap();
    let mut replies = Vec::new();
    loop {
        let r = read_packet(s);
        let last = matches!(r.0, b'a' | b'c' | b'r' | b't' | b'd' | b'y');
        replies.push(r);
        if last {
            return replies;
        }
    }
}

#[test]
fn an_mta_without_leading_space_gets_edits_without_it_over_a_unix_socket() {
    let dir = scratch("milter-unix");
    let flow = dir.join("flow.toml");
    std::fs::write(
        &flow,
        "[[stage]]\ntype = \"subject_tag\"\ntag = \"[EXT]\"\n\n[[stage]]\ntype = \"verdict\"\naction = \"bounce\"\nmessage = \"closed\"\nwhen = { recipient = [\"*@closed.example\"] }\n",
    )
    .unwrap();
    let socket = dir.join("milter.sock");
    let mut milter = std::process::Command::new(env!("CARGO_BIN_EXE_workmail-flow"))
        .args(["milter", "--config", flow.to_str().unwrap(), "--listen"])
        .arg(format!("unix:{}", socket.display()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut s = loop {
        if let Ok(s) = UnixStream::connect(&socket) {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "the MTA's group may connect, others may not");
    // Negotiation: version 6, every action, no protocol flags offered.
    let mut o = Vec::new();
    for w in [6u32, 0x1ff, 0] {
        o.extend_from_slice(&w.to_be_bytes());
    }
    s.write_all(&packet(b'O', &o)).unwrap();
    let (code, data) = read_packet(&mut s);
    assert_eq!(code, b'O');
    let word = |i: usize| u32::from_be_bytes(data[i..i + 4].try_into().unwrap());
    assert_eq!(word(0), 6);
    assert_eq!(word(4) & 0x10, 0x10, "asks to change headers");
    assert_eq!(
        word(8),
        0,
        "asks for no protocol flag the MTA did not offer"
    );
    s.write_all(&packet(b'D', b"Cj\0mta.test\0")).unwrap();
    let mut c = b"client.test\x004".to_vec();
    c.extend_from_slice(&25u16.to_be_bytes());
    c.extend_from_slice(b"192.0.2.1\0");
    s.write_all(&packet(b'C', &c)).unwrap();
    expect_continue(&mut s);

    let replies = message(&mut s, "bob@corp.example", "hello");
    let mut change = b"\0\0\0\x01Subject\0".to_vec();
    change.extend_from_slice(b"[EXT] hello\0");
    assert_eq!(
        replies,
        vec![(b'm', change), (b'a', Vec::new())],
        "no leading space added"
    );

    // An abandoned message leaves nothing behind for the next one on the connection.
    s.write_all(&packet(b'M', b"<x@y.example>\0")).unwrap();
    expect_continue(&mut s);
    s.write_all(&packet(b'A', b"")).unwrap();
    let replies = message(&mut s, "old@closed.example", "bye");
    assert_eq!(
        replies.last().unwrap(),
        &(b'y', b"550 5.7.1 closed\0".to_vec())
    );
    s.write_all(&packet(b'Q', b"")).unwrap();
    let _ = milter.kill();
    let _ = milter.wait();
}

#[test]
fn a_malformed_packet_closes_the_connection_and_the_milter_serves_the_next() {
    let dir = scratch("milter-malformed");
    let flow = dir.join("flow.toml");
    std::fs::write(
        &flow,
        "[[stage]]\ntype = \"subject_tag\"\ntag = \"[EXT]\"\n",
    )
    .unwrap();
    let milter = Server::start(&dir, "milter", &["--config", flow.to_str().unwrap()]);
    let mut bad = std::net::TcpStream::connect(("127.0.0.1", milter.port)).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    bad.write_all(&packet(b'Z', b"junk")).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(bad.read(&mut buf).unwrap_or(0), 0, "closed");
    let mut good = std::net::TcpStream::connect(("127.0.0.1", milter.port)).unwrap();
    let mut o = Vec::new();
    for w in [6u32, 0x3f, 0x10_0000] {
        o.extend_from_slice(&w.to_be_bytes());
    }
    good.write_all(&packet(b'O', &o)).unwrap();
    let mut len = [0u8; 4];
    good.read_exact(&mut len).unwrap();
    assert!(
        milter.logs().contains("unknown command"),
        "{}",
        milter.logs()
    );
}
