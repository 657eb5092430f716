//! The milter protocol's wire format, version 6, as Sendmail's libmilter and Postfix's
//! `milter8.c` speak it: every packet is a 4-byte big-endian length (which counts the
//! command byte), one command byte, and the command's data. Strings are NUL-terminated.
//!
//! Written here because the maintained Rust milter crate is GPL-3.0; the protocol is
//! documented in Postfix's MILTER_README, libmilter's `mfdef.h` and the milter protocol
//! draft (draft-adams-milter-protocol). Only the framing and the fields live here: what a
//! session does with them is `session.rs`.

use std::fmt;

/// The protocol version this milter speaks (Sendmail 8.14+, Postfix 2.6+).
pub const VERSION: u32 = 6;

/// The largest packet accepted from the MTA. Body chunks are at most 64 KiB
/// (`MILTER_CHUNK_SIZE`) and macro lists are small; anything far larger is not a milter
/// peer, and is refused before it is buffered.
pub const MAX_PACKET: usize = 1024 * 1024;

/// The largest body chunk in one `SMFIR_REPLBODY` (libmilter's `MILTER_CHUNK_SIZE`).
pub const MAX_BODY_CHUNK: usize = 65535;

/// The modifications a milter may ask for (`SMFIF_*`), offered by the MTA and requested by
/// the milter in option negotiation.
pub mod action {
    pub const ADD_HEADERS: u32 = 0x01;
    pub const CHANGE_BODY: u32 = 0x02;
    pub const ADD_RCPT: u32 = 0x04;
    pub const DELETE_RCPT: u32 = 0x08;
    pub const CHANGE_HEADERS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
}

/// The protocol steps a milter may skip or not reply to (`SMFIP_*`).
pub mod protocol {
    pub const NO_CONNECT: u32 = 0x01;
    pub const NO_HELO: u32 = 0x02;
    pub const NO_UNKNOWN: u32 = 0x100;
    pub const NO_DATA: u32 = 0x200;
    /// Header values are sent with the space after the colon (and sent back so): the
    /// message is rebuilt byte for byte, and edits keep the original's spacing.
    pub const HEADER_LEADING_SPACE: u32 = 0x10_0000;
}

/// A command from the MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `O`: the MTA's version and what it offers.
    Negotiate {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// `D`: macros for the command `for_command`, as name/value pairs.
    Macros {
        for_command: u8,
        pairs: Vec<(String, String)>,
    },
    /// `C`: the client's host name and address, in words (`[192.0.2.1]:25`).
    Connect { hostname: String, address: String },
    /// `H`: the HELO/EHLO argument.
    Helo(String),
    /// `M`: the MAIL FROM arguments; the first is the address in angle brackets.
    MailFrom(Vec<String>),
    /// `R`: the RCPT TO arguments; the first is the address in angle brackets.
    Recipient(Vec<String>),
    /// `T`: DATA was given.
    Data,
    /// `L`: one header field: its name and its value (the bytes after the colon, with
    /// `\n` between folded lines).
    Header { name: Vec<u8>, value: Vec<u8> },
    /// `N`: the end of the header.
    EndOfHeader,
    /// `B`: a chunk of the body, line endings as CRLF.
    Body(Vec<u8>),
    /// `E`: the end of the message (may carry a last body chunk).
    EndOfBody(Vec<u8>),
    /// `A`: the current message is abandoned; the connection stays.
    Abort,
    /// `Q`: the connection is closing.
    Quit,
    /// `K`: the connection is closing and the MTA reuses the socket for a new one.
    QuitNewConnection,
    /// `U`: an SMTP command the MTA did not know.
    Unknown(Vec<u8>),
}

/// Why bytes from the MTA are not a milter command; names the command and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    pub command: Option<u8>,
    pub what: String,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.command {
            Some(c) if c.is_ascii_graphic() => {
                write!(f, "milter command '{}': {}", c as char, self.what)
            }
            Some(c) => write!(f, "milter command 0x{c:02x}: {}", self.what),
            None => write!(f, "milter packet: {}", self.what),
        }
    }
}

impl std::error::Error for CodecError {}

/// One command decoded from the front of `buf`, and how many bytes it took; `None` when
/// `buf` does not hold a whole packet yet.
pub fn decode(buf: &[u8]) -> Result<Option<(Command, usize)>, CodecError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 {
        return Err(CodecError {
            command: None,
            what: "a packet of length 0 (no command byte)".into(),
        });
    }
    if len > MAX_PACKET {
        return Err(CodecError {
            command: buf.get(4).copied(),
            what: format!("a packet of {len} bytes, over the {MAX_PACKET}-byte limit"),
        });
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let code = buf[4];
    let data = &buf[5..4 + len];
    let err = |what: String| CodecError {
        command: Some(code),
        what,
    };
    let command = match code {
        b'O' => {
            if data.len() < 12 {
                return Err(err(format!("{} bytes of data, 12 needed", data.len())));
            }
            let word =
                |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            Command::Negotiate {
                version: word(0),
                actions: word(4),
                protocol: word(8),
            }
        }
        b'D' => {
            let (&for_command, rest) = data
                .split_first()
                .ok_or_else(|| err("no command code".into()))?;
            let strings = nul_strings(rest).map_err(err)?;
            if strings.len() % 2 != 0 {
                return Err(err(format!(
                    "{} strings, not name/value pairs",
                    strings.len()
                )));
            }
            let pairs = strings
                .chunks(2)
                .map(|p| (lossy(p[0]), lossy(p[1])))
                .collect();
            Command::Macros { for_command, pairs }
        }
        b'C' => {
            let end = memchr::memchr(0, data)
                .ok_or_else(|| err("host name not NUL-terminated".into()))?;
            let hostname = lossy(&data[..end]);
            let rest = &data[end + 1..];
            let address = match rest.split_first() {
                Some((b'U', _)) | None => String::new(),
                Some((&family, tail)) => {
                    if tail.len() < 2 {
                        return Err(err("no port after the address family".into()));
                    }
                    let port = u16::from_be_bytes([tail[0], tail[1]]);
                    let addr = tail[2..].strip_suffix(b"\0").unwrap_or(&tail[2..]);
                    match family {
                        b'L' => lossy(addr),
                        _ => format!("[{}]:{port}", lossy(addr)),
                    }
                }
            };
            Command::Connect { hostname, address }
        }
        b'H' => Command::Helo(lossy(strip_nul(data))),
        b'M' => Command::MailFrom(
            nul_strings(data)
                .map_err(err)?
                .iter()
                .map(|s| lossy(s))
                .collect(),
        ),
        b'R' => Command::Recipient(
            nul_strings(data)
                .map_err(err)?
                .iter()
                .map(|s| lossy(s))
                .collect(),
        ),
        b'T' => Command::Data,
        b'L' => {
            let strings = nul_strings(data).map_err(err)?;
            match strings.as_slice() {
                [name, value] => Command::Header {
                    name: name.to_vec(),
                    value: value.to_vec(),
                },
                _ => {
                    return Err(err(format!(
                        "{} strings, a name and a value needed",
                        strings.len()
                    )));
                }
            }
        }
        b'N' => Command::EndOfHeader,
        b'B' => Command::Body(data.to_vec()),
        b'E' => Command::EndOfBody(data.to_vec()),
        b'A' => Command::Abort,
        b'Q' => Command::Quit,
        b'K' => Command::QuitNewConnection,
        b'U' => Command::Unknown(strip_nul(data).to_vec()),
        _ => return Err(err("unknown command".into())),
    };
    Ok(Some((command, 4 + len)))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn strip_nul(data: &[u8]) -> &[u8] {
    data.strip_suffix(b"\0").unwrap_or(data)
}

/// The NUL-terminated strings `data` is made of.
fn nul_strings(data: &[u8]) -> Result<Vec<&[u8]>, String> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = data.strip_suffix(b"\0") else {
        return Err(format!(
            "the last string (at byte {}) is not NUL-terminated",
            data.len()
        ));
    };
    Ok(body.split(|&b| b == 0).collect())
}

/// A reply to the MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `O`: what this milter speaks and wants.
    Negotiate {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// `c`: go on.
    Continue,
    /// `a`: accept the message (no more callbacks for it).
    Accept,
    /// `t`: the MTA answers 4xx; the sender retries.
    TempFail,
    /// `d`: accept and throw away.
    Discard,
    /// `y`: the MTA answers with this SMTP reply (`550 5.7.1 text`).
    ReplyCode(String),
    /// `h`: append a header field.
    AddHeader { name: String, value: Vec<u8> },
    /// `i`: insert a header field at a 0-based position.
    InsertHeader {
        index: u32,
        name: String,
        value: Vec<u8>,
    },
    /// `m`: change the `index`-th (1-based) field called `name`; an empty value deletes it.
    ChangeHeader {
        index: u32,
        name: String,
        value: Vec<u8>,
    },
    /// `b`: a chunk of the replacement body.
    ReplaceBody(Vec<u8>),
    /// `-`: remove an envelope recipient.
    DeleteRecipient(String),
    /// `q`: hold the message in the MTA's quarantine, with a reason.
    Quarantine(String),
}

impl Reply {
    /// The packet, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut data = Vec::new();
        let code = match self {
            Reply::Negotiate {
                version,
                actions,
                protocol,
            } => {
                for w in [version, actions, protocol] {
                    data.extend_from_slice(&w.to_be_bytes());
                }
                b'O'
            }
            Reply::Continue => b'c',
            Reply::Accept => b'a',
            Reply::TempFail => b't',
            Reply::Discard => b'd',
            Reply::ReplyCode(text) => {
                push_str(&mut data, text.as_bytes());
                b'y'
            }
            Reply::AddHeader { name, value } => {
                push_str(&mut data, name.as_bytes());
                push_str(&mut data, value);
                b'h'
            }
            Reply::InsertHeader { index, name, value } => {
                data.extend_from_slice(&index.to_be_bytes());
                push_str(&mut data, name.as_bytes());
                push_str(&mut data, value);
                b'i'
            }
            Reply::ChangeHeader { index, name, value } => {
                data.extend_from_slice(&index.to_be_bytes());
                push_str(&mut data, name.as_bytes());
                push_str(&mut data, value);
                b'm'
            }
            Reply::ReplaceBody(chunk) => {
                data.extend_from_slice(chunk);
                b'b'
            }
            Reply::DeleteRecipient(rcpt) => {
                push_str(&mut data, rcpt.as_bytes());
                b'-'
            }
            Reply::Quarantine(reason) => {
                push_str(&mut data, reason.as_bytes());
                b'q'
            }
        };
        let mut out = Vec::with_capacity(5 + data.len());
        out.extend_from_slice(&((data.len() + 1) as u32).to_be_bytes());
        out.push(code);
        out.extend_from_slice(&data);
        out
    }
}

/// A string and its NUL; a NUL inside would end it early on the other side, so it is
/// left out.
fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().copied().filter(|&b| b != 0));
    out.push(0);
}

/// The replacement body as `SMFIR_REPLBODY` chunks of at most [`MAX_BODY_CHUNK`] bytes
/// (one empty chunk for an empty body, so the MTA still replaces it).
pub fn replace_body(body: &[u8]) -> Vec<Reply> {
    if body.is_empty() {
        return vec![Reply::ReplaceBody(Vec::new())];
    }
    body.chunks(MAX_BODY_CHUNK)
        .map(|c| Reply::ReplaceBody(c.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u8, data: &[u8]) -> Vec<u8> {
        let mut p = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        p.push(code);
        p.extend_from_slice(data);
        p
    }

    #[test]
    fn a_partial_packet_waits_for_more_bytes() {
        let p = packet(b'H', b"client.example\0");
        for cut in 0..p.len() {
            assert_eq!(decode(&p[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (cmd, used) = decode(&p).unwrap().unwrap();
        assert_eq!(cmd, Command::Helo("client.example".into()));
        assert_eq!(used, p.len());
    }

    #[test]
    fn negotiation_connect_macros_and_envelope_decode() {
        let mut o = Vec::new();
        for w in [6u32, 0x1ff, 0x1f_ffff] {
            o.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(
            decode(&packet(b'O', &o)).unwrap().unwrap().0,
            Command::Negotiate {
                version: 6,
                actions: 0x1ff,
                protocol: 0x1f_ffff
            }
        );
        let mut c = b"mx.example\x004".to_vec();
        c.extend_from_slice(&2525u16.to_be_bytes());
        c.extend_from_slice(b"192.0.2.7\0");
        assert_eq!(
            decode(&packet(b'C', &c)).unwrap().unwrap().0,
            Command::Connect {
                hostname: "mx.example".into(),
                address: "[192.0.2.7]:2525".into()
            }
        );
        assert_eq!(
            decode(&packet(b'D', b"Mi\0ABC123\0{auth_authen}\0\0"))
                .unwrap()
                .unwrap()
                .0,
            Command::Macros {
                for_command: b'M',
                pairs: vec![
                    ("i".into(), "ABC123".into()),
                    ("{auth_authen}".into(), String::new())
                ]
            }
        );
        assert_eq!(
            decode(&packet(b'M', b"<a@x.example>\0SIZE=10\0"))
                .unwrap()
                .unwrap()
                .0,
            Command::MailFrom(vec!["<a@x.example>".into(), "SIZE=10".into()])
        );
    }

    #[test]
    fn headers_keep_their_bytes_and_bodies_pass_through() {
        let (cmd, _) = decode(&packet(b'L', b"Subject\0 caf\xc3\xa9\n\tmore\0"))
            .unwrap()
            .unwrap();
        assert_eq!(
            cmd,
            Command::Header {
                name: b"Subject".to_vec(),
                value: b" caf\xc3\xa9\n\tmore".to_vec()
            }
        );
        let body = b"line\r\n\0binary\xff".to_vec();
        assert_eq!(
            decode(&packet(b'B', &body)).unwrap().unwrap().0,
            Command::Body(body)
        );
    }

    #[test]
    fn malformed_packets_are_refused_naming_the_command() {
        let e = decode(&packet(b'O', b"\0\0\0\x06")).unwrap_err();
        assert!(e.to_string().contains("'O'"), "{e}");
        let e = decode(&packet(b'L', b"Subject\0no terminator")).unwrap_err();
        assert!(e.to_string().contains("not NUL-terminated"), "{e}");
        let e = decode(&packet(b'Z', b"")).unwrap_err();
        assert!(e.to_string().contains("unknown command"), "{e}");
        let huge = ((MAX_PACKET + 1) as u32).to_be_bytes();
        assert!(decode(&huge).unwrap_err().to_string().contains("limit"));
        assert!(decode(&[0, 0, 0, 0]).is_err());
    }

    #[test]
    fn replies_encode_with_length_code_and_nul_terminated_strings() {
        assert_eq!(Reply::Continue.encode(), vec![0, 0, 0, 1, b'c']);
        assert_eq!(
            Reply::ChangeHeader {
                index: 2,
                name: "Subject".into(),
                value: b" [EXT] hi".to_vec()
            }
            .encode(),
            packet(b'm', b"\0\0\0\x02Subject\0 [EXT] hi\0")
        );
        assert_eq!(
            Reply::ReplyCode("550 5.7.1 no".into()).encode(),
            packet(b'y', b"550 5.7.1 no\0")
        );
        assert_eq!(
            Reply::InsertHeader {
                index: 0,
                name: "X-A".into(),
                value: b" 1".to_vec()
            }
            .encode(),
            packet(b'i', b"\0\0\0\0X-A\0 1\0")
        );
    }

    #[test]
    fn a_large_body_is_replaced_in_chunks_no_larger_than_libmilters() {
        let body = vec![b'x'; MAX_BODY_CHUNK * 2 + 10];
        let chunks = replace_body(&body);
        assert_eq!(chunks.len(), 3);
        let joined: Vec<u8> = chunks
            .iter()
            .flat_map(|r| match r {
                Reply::ReplaceBody(c) => {
                    assert!(c.len() <= MAX_BODY_CHUNK);
                    c.clone()
                }
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(joined, body);
        assert_eq!(replace_body(b""), vec![Reply::ReplaceBody(Vec::new())]);
    }
}
