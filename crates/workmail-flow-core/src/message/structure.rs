//! Where a message's parts begin and end, read as RFC 5322 and RFC 2046 define it and as
//! mainstream readers (Python's email package, Postfix, Thunderbird) apply it. This is
//! the reading every edit is spliced into, so it must be the clients' reading:
//!
//! - a header section ends at the first empty line, or at the first line that is neither
//!   a field (`name:` with a name of printable ASCII other than the colon) nor a
//!   continuation (which then starts the body);
//! - a delimiter is a whole line: `--boundary`, optional transport padding (spaces and
//!   tabs), the line end; the close delimiter adds `--`. Text in the middle of a line,
//!   or after the boundary, is body;
//! - a line that is a delimiter of any enclosing multipart ends every part inside it, so
//!   an unclosed multipart ends where its parent's next delimiter or the message ends;
//! - the first Content-Type and Content-Transfer-Encoding field counts.
//!
//! One pass over the lines, with a stack of the open multiparts: the cost is linear in
//! the bytes and the parts (only lines that start with `--` are compared with the open
//! boundaries, and nesting is capped at [`MAX_NESTING`]).
//!
//! [`Reading`] names the other ways a reader could take the same bytes (a bare CR as a
//! line end, the last of two fields, a boundary matched as a prefix); security stages
//! scan those too. Where readers could disagree the scan says so in [`Finding`]s.

use crate::message::header_field::{RawField, field_name};
use crate::message::params::{MediaValue, unfold};
use std::fmt;
use std::ops::Range;

/// Multiparts and attached messages nested deeper than this are read as opaque leaves.
pub const MAX_NESTING: usize = 128;

/// Most parts read. A message of more (a 40 MB message can hold millions of empty
/// parts) would cost memory in proportion; past this the scan stops, the rest of the
/// message stays inside the multipart it was in, unread, and
/// [`FindingKind::TooManyParts`] says so. Far above WorkMail's 500 attachments, so
/// such a message is over the limits anyway (verdicts still apply, and
/// `strip_attachments` fails closed on it).
pub const MAX_PARTS: usize = 20_000;

/// Longest line RFC 5322 allows before its line break.
const MAX_LINE: usize = 998;

/// A way of reading the bytes. The default is the RFC's and Python's; the others are
/// readings some client or filter applies, which a security stage must also consider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// A CR on its own ends a line (Python splits lines on it; RFC 5322 does not).
    pub bare_cr_ends_lines: bool,
    /// Of two Content-Type (or Content-Transfer-Encoding) fields, and of two boundary
    /// parameters, the last one counts (some parsers overwrite as they go).
    pub last_field_wins: bool,
    /// Boundaries matched loosely, as some clients do: a line that starts with
    /// `--boundary` is a delimiter whatever follows it, case is ignored, and a
    /// multipart without a boundary parameter takes the first `--` line of its body.
    pub lenient_boundaries: bool,
}

impl Reading {
    /// The readings a security stage checks besides the default one.
    pub const ALTERNATIVES: [Reading; 3] = [
        Reading {
            bare_cr_ends_lines: true,
            last_field_wins: false,
            lenient_boundaries: false,
        },
        Reading {
            bare_cr_ends_lines: false,
            last_field_wins: true,
            lenient_boundaries: false,
        },
        Reading {
            bare_cr_ends_lines: false,
            last_field_wins: false,
            lenient_boundaries: true,
        },
    ];
}

/// How a header section ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderEnd {
    /// At an empty line, as it should.
    Blank,
    /// At a line that is not a field; that line is the body's first.
    NotAField,
    /// At the end of the part (a delimiter or the end of the message): no body.
    EndOfPart,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Leaf,
    Multipart(Vec<usize>),
    /// An attached message read in place: its root node, or `None` when it is not
    /// readable in place (a base64 or quoted-printable message/rfc822).
    Message(Option<usize>),
}

/// One part as the scan found it.
#[derive(Debug, Clone)]
pub struct Node {
    pub parent: Option<usize>,
    pub depth: usize,
    /// From the part's first byte to the end of its header section (the empty line
    /// included when there is one).
    pub header: Range<usize>,
    pub header_end: HeaderEnd,
    pub fields: Vec<RawField>,
    /// The body, without the line break that belongs to the next delimiter.
    pub body: Range<usize>,
    /// The Content-Type field that counts, parsed (empty when there is none).
    pub media: MediaValue,
    /// `type/subtype`, lowercase, defaults applied (text/plain, or message/rfc822 in a
    /// multipart/digest).
    pub content_type: String,
    /// The Content-Transfer-Encoding that counts, lowercase.
    pub transfer_encoding: Option<String>,
    pub kind: NodeKind,
    pub is_message_root: bool,
    /// For a multipart: its close delimiter was seen.
    pub closed: bool,
    /// The part ended at the end of the message inside a multipart that never closed.
    pub cut_short: bool,
    /// For a multipart: the boundary its delimiters use.
    pub boundary: Option<Vec<u8>>,
    /// For a multipart: the text before its first delimiter line.
    pub preamble: Range<usize>,
    /// For a multipart: where the text after its close delimiter starts (it runs to
    /// the end of the body).
    pub epilogue_start: Option<usize>,
}

impl Node {
    /// For a multipart: the text after its close delimiter.
    pub fn epilogue(&self) -> Option<Range<usize>> {
        self.epilogue_start.map(|s| s..self.body.end.max(s))
    }

    /// The first field with this name.
    pub fn field(&self, name: &str) -> Option<&RawField> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// Something readers could read two ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The part it concerns.
    pub part: usize,
    /// Byte offset where it is.
    pub offset: usize,
    pub kind: FindingKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// A structural field appears more than once in one header.
    DuplicateField(String),
    /// Two different boundary parameters (in one field or in two Content-Type fields).
    ConflictingBoundary,
    /// The names a part declares (name, filename, their RFC 2231 forms) differ.
    ConflictingNames,
    /// A declared name holds a NUL or another control character.
    ControlInName,
    /// A boundary is a prefix of another open boundary.
    BoundaryPrefix,
    /// A multipart whose close delimiter never comes.
    Unclosed,
    /// A boundary string stands in a body, not as a delimiter line.
    BoundaryInBody,
    /// A CR not followed by LF.
    BareCr,
    /// A header line over 998 bytes.
    LongHeaderLine,
    /// The message's first line is blank space or starts with white space.
    LeadingWhitespace,
    /// A message/rfc822 with a base64 or quoted-printable body.
    EncodedMessage,
    /// The header section ended at a line that is not a field instead of an empty line.
    HeaderNotTerminated,
    /// A multipart with no usable boundary parameter.
    NoBoundary,
    /// Nesting deeper than [`MAX_NESTING`].
    TooDeep,
    /// Text after a multipart's close delimiter (its epilogue), which some parsers
    /// read as more parts.
    TextAfterClose,
    /// The message starts with a UTF-8 byte order mark.
    ByteOrderMark,
    /// A delimiter line right after another: Python reads no part between them, other
    /// readers an empty one (and after an open one, a close delimiter is skipped).
    DoubledDelimiter,
    /// A Content-Type whose value is not `type/subtype` (read as text/plain).
    UnreadableType,
    /// A boundary that ends in white space, which RFC 2046 forbids: Python drops it,
    /// other readers keep it, and they split the body differently.
    BoundaryTrailingSpace,
    /// More than [`MAX_PARTS`] parts: the rest was not read.
    TooManyParts,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("part {} at byte {}", self.part, self.offset);
        match &self.kind {
            FindingKind::DuplicateField(name) => write!(f, "{name} appears twice ({at})"),
            FindingKind::ConflictingBoundary => write!(f, "conflicting boundary parameters ({at})"),
            FindingKind::ConflictingNames => write!(f, "name and filename differ ({at})"),
            FindingKind::ControlInName => write!(f, "control character in a file name ({at})"),
            FindingKind::BoundaryPrefix => {
                write!(f, "a boundary is a prefix of an enclosing one ({at})")
            }
            FindingKind::Unclosed => write!(f, "multipart never closed ({at})"),
            FindingKind::BoundaryInBody => write!(f, "boundary string inside a body ({at})"),
            FindingKind::BareCr => write!(f, "bare CR line end ({at})"),
            FindingKind::LongHeaderLine => write!(f, "header line over 998 bytes ({at})"),
            FindingKind::LeadingWhitespace => {
                write!(
                    f,
                    "first line is blank space or starts with white space ({at})"
                )
            }
            FindingKind::EncodedMessage => {
                write!(f, "attached message in a transfer encoding ({at})")
            }
            FindingKind::HeaderNotTerminated => {
                write!(f, "header ends at a line that is not a field ({at})")
            }
            FindingKind::NoBoundary => write!(f, "multipart without a boundary ({at})"),
            FindingKind::TooDeep => write!(f, "nesting deeper than {MAX_NESTING} ({at})"),
            FindingKind::TextAfterClose => {
                write!(f, "text after a close delimiter ({at})")
            }
            FindingKind::ByteOrderMark => write!(f, "starts with a byte order mark ({at})"),
            FindingKind::DoubledDelimiter => write!(f, "two delimiter lines in a row ({at})"),
            FindingKind::UnreadableType => {
                write!(
                    f,
                    "Content-Type is not type/subtype, read as text/plain ({at})"
                )
            }
            FindingKind::BoundaryTrailingSpace => write!(f, "boundary ends in white space ({at})"),
            FindingKind::TooManyParts => {
                write!(f, "more than {MAX_PARTS} parts, the rest not read ({at})")
            }
        }
    }
}

impl FindingKind {
    /// A short tag for summaries (`unclosed`, `bare-cr`).
    pub fn tag(&self) -> &'static str {
        match self {
            FindingKind::DuplicateField(_) => "duplicate-field",
            FindingKind::ConflictingBoundary => "conflicting-boundary",
            FindingKind::ConflictingNames => "conflicting-names",
            FindingKind::ControlInName => "control-in-name",
            FindingKind::BoundaryPrefix => "boundary-prefix",
            FindingKind::Unclosed => "unclosed",
            FindingKind::BoundaryInBody => "boundary-in-body",
            FindingKind::BareCr => "bare-cr",
            FindingKind::LongHeaderLine => "long-header-line",
            FindingKind::LeadingWhitespace => "leading-whitespace",
            FindingKind::EncodedMessage => "encoded-message",
            FindingKind::HeaderNotTerminated => "header-not-terminated",
            FindingKind::NoBoundary => "no-boundary",
            FindingKind::TooDeep => "too-deep",
            FindingKind::TextAfterClose => "text-after-close",
            FindingKind::ByteOrderMark => "byte-order-mark",
            FindingKind::DoubledDelimiter => "doubled-delimiter",
            FindingKind::UnreadableType => "unreadable-type",
            FindingKind::BoundaryTrailingSpace => "boundary-trailing-space",
            FindingKind::TooManyParts => "too-many-parts",
        }
    }
}

/// The scan's result: nodes in document order (0 is the message) and findings.
#[derive(Debug, Clone)]
pub struct Structure {
    pub nodes: Vec<Node>,
    pub findings: Vec<Finding>,
}

/// Reads the structure of `raw`.
pub fn scan(raw: &[u8], reading: Reading) -> Structure {
    let mut s = Scanner {
        raw,
        reading,
        capped: false,
        nodes: Vec::new(),
        findings: Vec::new(),
        frames: Vec::new(),
        open: Vec::new(),
    };
    s.begin_node(0, None, 0, true);
    let mut pos = 0;
    while pos < raw.len() && !s.capped {
        let (content_end, line_end) = s.line(pos);
        s.dispatch(pos, content_end, line_end);
        pos = line_end;
    }
    s.finish();
    if raw.starts_with(b"\xEF\xBB\xBF") {
        s.findings.push(Finding {
            part: 0,
            offset: 0,
            kind: FindingKind::ByteOrderMark,
        });
    }
    if has_bare_cr(raw) {
        let at = raw
            .windows(2)
            .position(|w| w[0] == b'\r' && w[1] != b'\n')
            .unwrap_or(raw.len().saturating_sub(1));
        s.findings.push(Finding {
            part: 0,
            offset: at,
            kind: FindingKind::BareCr,
        });
    }
    s.findings.sort_by_key(|f| (f.offset, f.part));
    Structure {
        nodes: s.nodes,
        findings: s.findings,
    }
}

fn has_bare_cr(raw: &[u8]) -> bool {
    memchr::memchr_iter(b'\r', raw).any(|i| raw.get(i + 1) != Some(&b'\n'))
}

enum Phase {
    /// Reading header lines; the field being read started at this offset.
    Header {
        field: Option<(String, usize)>,
    },
    Body,
}

struct Frame {
    node: usize,
    phase: Phase,
}

struct Open {
    node: usize,
    boundary: Vec<u8>,
    delimiters: usize,
}

struct Scanner<'a> {
    raw: &'a [u8],
    reading: Reading,
    /// [`MAX_PARTS`] was reached: the scan stops, the rest is left unread.
    capped: bool,
    nodes: Vec<Node>,
    findings: Vec<Finding>,
    frames: Vec<Frame>,
    open: Vec<Open>,
}

impl Scanner<'_> {
    /// The line at `pos`: where its content ends and where the next line starts.
    fn line(&self, pos: usize) -> (usize, usize) {
        let rest = &self.raw[pos..];
        if self.reading.bare_cr_ends_lines {
            return match memchr::memchr2(b'\r', b'\n', rest) {
                Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => {
                    (pos + i, pos + i + 2)
                }
                Some(i) => (pos + i, pos + i + 1),
                None => (self.raw.len(), self.raw.len()),
            };
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) if i > 0 && rest[i - 1] == b'\r' => (pos + i - 1, pos + i + 1),
            Some(i) => (pos + i, pos + i + 1),
            None => (self.raw.len(), self.raw.len()),
        }
    }

    /// The open multipart this line delimits (innermost first), and whether it closes it.
    fn delimiter(&self, line: &[u8]) -> Option<(usize, bool)> {
        let after_dashes = &line[2..];
        let lenient = self.reading.lenient_boundaries;
        for (k, open) in self.open.iter().enumerate().rev() {
            let b = open.boundary.as_slice();
            let starts = after_dashes.len() >= b.len()
                && if lenient {
                    after_dashes[..b.len()].eq_ignore_ascii_case(b)
                } else {
                    &after_dashes[..b.len()] == b
                };
            if !starts {
                continue;
            }
            let rest = &after_dashes[b.len()..];
            let (close, pad) = match rest.strip_prefix(b"--") {
                Some(p) => (true, p),
                None => (false, rest),
            };
            if lenient || pad.iter().all(|&b| b == b' ' || b == b'\t') {
                return Some((k, close));
            }
        }
        None
    }

    /// The length of the line break just before `pos`.
    fn break_before(&self, pos: usize) -> usize {
        let raw = self.raw;
        if pos >= 2 && raw[pos - 2] == b'\r' && raw[pos - 1] == b'\n' {
            2
        } else if pos >= 1
            && (raw[pos - 1] == b'\n' || self.reading.bare_cr_ends_lines && raw[pos - 1] == b'\r')
        {
            1
        } else {
            0
        }
    }

    fn begin_node(&mut self, start: usize, parent: Option<usize>, depth: usize, root: bool) {
        let id = self.nodes.len();
        self.nodes.push(Node {
            parent,
            depth,
            header: start..start,
            header_end: HeaderEnd::EndOfPart,
            fields: Vec::new(),
            body: start..start,
            media: MediaValue::default(),
            content_type: String::new(),
            transfer_encoding: None,
            kind: NodeKind::Leaf,
            is_message_root: root,
            closed: false,
            cut_short: false,
            boundary: None,
            preamble: start..start,
            epilogue_start: None,
        });
        if let Some(p) = parent {
            match &mut self.nodes[p].kind {
                NodeKind::Multipart(children) => children.push(id),
                NodeKind::Message(child) => *child = Some(id),
                NodeKind::Leaf => {}
            }
        }
        self.frames.push(Frame {
            node: id,
            phase: Phase::Header { field: None },
        });
    }

    /// One line: a delimiter of an open multipart, or a line of the innermost part.
    fn dispatch(&mut self, pos: usize, content_end: usize, line_end: usize) {
        let line = &self.raw[pos..content_end];
        if line.starts_with(b"--")
            && let Some((k, close)) = self.delimiter(line)
        {
            self.on_delimiter(k, close, pos, line_end);
        } else {
            self.on_line(pos, content_end, line_end);
        }
    }

    fn on_line(&mut self, pos: usize, content_end: usize, line_end: usize) {
        let Some(frame) = self.frames.last_mut() else {
            return;
        };
        let node = frame.node;
        let Phase::Header { field } = &mut frame.phase else {
            // Text after a close delimiter: readers ignore it, but some parsers read
            // parts there.
            let n = &self.nodes[node];
            if n.closed
                && self.raw[pos..content_end]
                    .iter()
                    .any(|b| !b.is_ascii_whitespace())
                && !self
                    .findings
                    .iter()
                    .rev()
                    .take(4)
                    .any(|f| f.part == node && f.kind == FindingKind::TextAfterClose)
            {
                self.findings.push(Finding {
                    part: node,
                    offset: pos,
                    kind: FindingKind::TextAfterClose,
                });
            }
            return;
        };
        let line = &self.raw[pos..content_end];
        if content_end - pos > MAX_LINE {
            self.findings.push(Finding {
                part: node,
                offset: pos,
                kind: FindingKind::LongHeaderLine,
            });
        }
        let first_line = pos == self.nodes[node].header.start;
        if line.is_empty() {
            let done = field.take();
            self.close_field(node, done, pos);
            self.header_done(node, line_end, line_end, HeaderEnd::Blank);
            return;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if field.is_none() && first_line && self.nodes[node].is_message_root {
                // Python ignores it (a defect); parsers that take it for the end of an
                // empty header read the whole message as body.
                self.findings.push(Finding {
                    part: node,
                    offset: pos,
                    kind: FindingKind::LeadingWhitespace,
                });
            }
            return;
        }
        if line.starts_with(b"From ") && self.nodes[node].is_message_root {
            // An mbox separator; Python skips it wherever it stands in a header.
            let done = field.take();
            self.close_field(node, done, pos);
            return;
        }
        match field_name(line) {
            Some(name) => {
                let done = field.replace((name, pos));
                self.close_field(node, done, pos);
            }
            None => {
                let done = field.take();
                self.close_field(node, done, pos);
                self.findings.push(Finding {
                    part: node,
                    offset: pos,
                    kind: FindingKind::HeaderNotTerminated,
                });
                self.header_done(node, pos, pos, HeaderEnd::NotAField);
                // The line is the body's first: it may be the first delimiter of the
                // multipart this header declared, or open an attached message's header,
                // so hand it on.
                self.dispatch(pos, content_end, line_end);
            }
        }
    }

    fn close_field(&mut self, node: usize, field: Option<(String, usize)>, end: usize) {
        if let Some((name, start)) = field {
            self.nodes[node].fields.push(RawField {
                name,
                range: start..end,
            });
        }
    }

    /// The header of `node` ended at `header_end`; its body starts at `body_start`.
    /// Decides what the node is and prepares to read its body.
    fn header_done(&mut self, node: usize, header_end: usize, body_start: usize, how: HeaderEnd) {
        let raw = self.raw;
        let last_wins = self.reading.last_field_wins;
        let pick = |fields: &[RawField], name: &str| -> Option<String> {
            let mut it = fields.iter().filter(|f| f.name.eq_ignore_ascii_case(name));
            let f = if last_wins { it.next_back() } else { it.next() }?;
            Some(field_value(raw, f))
        };
        let fields = &self.nodes[node].fields;
        let ct = pick(fields, "content-type");
        let cte = pick(fields, "content-transfer-encoding").map(|v| {
            v.split('(')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let media = ct.as_deref().map(MediaValue::parse).unwrap_or_default();
        let in_digest = self.nodes[node]
            .parent
            .is_some_and(|p| self.nodes[p].content_type == "multipart/digest");
        if ct.is_some() && media.media_type().is_none() {
            self.findings.push(Finding {
                part: node,
                offset: self.nodes[node].header.start,
                kind: FindingKind::UnreadableType,
            });
        }
        let n = &mut self.nodes[node];
        n.header.end = header_end;
        n.header_end = how;
        n.body = body_start..body_start;
        n.content_type = match media.media_type() {
            Some((main, sub)) => format!("{main}/{sub}"),
            None if in_digest && ct.is_none() => "message/rfc822".to_string(),
            None => "text/plain".to_string(),
        };
        n.media = media;
        n.transfer_encoding = cte;
        let depth = n.depth;
        for name in [
            "content-type",
            "content-transfer-encoding",
            "content-disposition",
        ] {
            let mut same = n
                .fields
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case(name));
            if let (Some(_), Some(second)) = (same.next(), same.next()) {
                let offset = second.range.start;
                self.findings.push(Finding {
                    part: node,
                    offset,
                    kind: FindingKind::DuplicateField(canonical_name(name)),
                });
            }
        }
        let n = &self.nodes[node];
        let frame = self
            .frames
            .last_mut()
            .expect("the node being read has a frame");
        frame.phase = Phase::Body;
        if n.content_type.starts_with("multipart/") {
            let boundaries: Vec<&str> = n.media.params_named("boundary").collect();
            let chosen = if self.reading.last_field_wins {
                boundaries.last()
            } else {
                boundaries.first()
            };
            if chosen.is_some_and(|b| b.ends_with([' ', '\t'])) {
                self.findings.push(Finding {
                    part: node,
                    offset: n.header.start,
                    kind: FindingKind::BoundaryTrailingSpace,
                });
            }
            let mut boundary = chosen.map(|b| b.trim_end().to_string());
            if boundary.as_deref().is_none_or(str::is_empty) && self.reading.lenient_boundaries {
                boundary = guess_boundary(&self.raw[body_start..]);
            }
            if boundaries.len() > 1 && boundaries.iter().any(|b| *b != boundaries[0]) {
                self.findings.push(Finding {
                    part: node,
                    offset: n.header.start,
                    kind: FindingKind::ConflictingBoundary,
                });
            }
            self.check_duplicate_boundaries(node);
            match boundary {
                Some(b) if !b.is_empty() && depth < MAX_NESTING => {
                    let b = b.into_bytes();
                    if self
                        .open
                        .iter()
                        .any(|o| o.boundary.starts_with(&b) || b.starts_with(&o.boundary))
                    {
                        self.findings.push(Finding {
                            part: node,
                            offset: self.nodes[node].header.start,
                            kind: FindingKind::BoundaryPrefix,
                        });
                    }
                    self.nodes[node].kind = NodeKind::Multipart(Vec::new());
                    self.nodes[node].boundary = Some(b.clone());
                    self.open.push(Open {
                        node,
                        boundary: b,
                        delimiters: 0,
                    });
                }
                Some(b) if !b.is_empty() => self.findings.push(Finding {
                    part: node,
                    offset: self.nodes[node].header.start,
                    kind: FindingKind::TooDeep,
                }),
                _ => self.findings.push(Finding {
                    part: node,
                    offset: self.nodes[node].header.start,
                    kind: FindingKind::NoBoundary,
                }),
            }
            return;
        }
        if matches!(n.content_type.as_str(), "message/rfc822" | "message/global") {
            let encoded = matches!(
                n.transfer_encoding.as_deref(),
                Some("base64" | "quoted-printable")
            );
            if encoded {
                self.findings.push(Finding {
                    part: node,
                    offset: n.header.start,
                    kind: FindingKind::EncodedMessage,
                });
                self.nodes[node].kind = NodeKind::Message(None);
            } else if depth < MAX_NESTING {
                self.nodes[node].kind = NodeKind::Message(None);
                self.begin_node(body_start, Some(node), depth + 1, true);
            } else {
                self.findings.push(Finding {
                    part: node,
                    offset: n.header.start,
                    kind: FindingKind::TooDeep,
                });
            }
        }
    }

    /// Two Content-Type fields whose boundaries differ: readers that take the other
    /// field split the body elsewhere.
    fn check_duplicate_boundaries(&mut self, node: usize) {
        let n = &self.nodes[node];
        let boundaries: Vec<Option<String>> = n
            .fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("content-type"))
            .map(|f| {
                MediaValue::parse(&field_value(self.raw, f))
                    .param("boundary")
                    .map(str::to_string)
            })
            .collect();
        if boundaries.len() > 1 && boundaries.iter().any(|b| *b != boundaries[0]) {
            self.findings.push(Finding {
                part: node,
                offset: n.header.start,
                kind: FindingKind::ConflictingBoundary,
            });
        }
    }

    fn on_delimiter(&mut self, k: usize, close: bool, line_start: usize, line_end: usize) {
        let multipart = self.open[k].node;
        // Right after an open delimiter of the same multipart, Python takes any further
        // delimiter line (a close one too) for a doubled boundary: the part starts
        // after it.
        if k + 1 == self.open.len()
            && let Some(frame) = self.frames.last()
            && matches!(frame.phase, Phase::Header { field: None })
            && frame.node != multipart
            && self.nodes[frame.node].parent == Some(multipart)
            && self.nodes[frame.node].header.start == line_start
            && self.nodes[frame.node].fields.is_empty()
        {
            let child = frame.node;
            self.nodes[child].header = line_end..line_end;
            self.nodes[child].body = line_end..line_end;
            self.findings.push(Finding {
                part: child,
                offset: line_start,
                kind: FindingKind::DoubledDelimiter,
            });
            return;
        }
        let end = line_start - self.break_before(line_start);
        // Everything open inside the multipart ends before this line.
        while let Some(frame) = self.frames.last() {
            if frame.node == multipart {
                break;
            }
            let frame = self.frames.pop().expect("checked");
            self.end_node(frame, end, line_start, false);
        }
        while self.open.len() > k + 1 {
            let inner = self.open.pop().expect("checked");
            self.unclosed(inner);
        }
        if self.open[k].delimiters == 0 {
            let start = self.nodes[multipart].body.start;
            self.nodes[multipart].preamble = start..end.max(start);
        }
        self.open[k].delimiters += 1;
        if close {
            let done = self.open.pop().expect("k is the top");
            self.check_body_for_boundary(&done, line_end);
            self.nodes[multipart].closed = true;
            self.nodes[multipart].epilogue_start = Some(line_end);
        } else if self.nodes.len() >= MAX_PARTS {
            self.capped = true;
            self.findings.push(Finding {
                part: multipart,
                offset: line_start,
                kind: FindingKind::TooManyParts,
            });
        } else {
            let depth = self.nodes[multipart].depth + 1;
            self.begin_node(line_end, Some(multipart), depth, false);
        }
    }

    fn unclosed(&mut self, open: Open) {
        let offset = self.nodes[open.node].header.start;
        self.findings.push(Finding {
            part: open.node,
            offset,
            kind: FindingKind::Unclosed,
        });
    }

    /// Counts the boundary's occurrences in the multipart's body: more than its
    /// delimiter lines means the string also stands inside a body, where a reader that
    /// matches it anywhere in a line would split.
    fn check_body_for_boundary(&mut self, open: &Open, end: usize) {
        let start = self.nodes[open.node].body.start;
        let mut needle = b"--".to_vec();
        needle.extend_from_slice(&open.boundary);
        let count = memchr::memmem::find_iter(&self.raw[start..end], &needle).count();
        if count > open.delimiters {
            self.findings.push(Finding {
                part: open.node,
                offset: start,
                kind: FindingKind::BoundaryInBody,
            });
        }
    }

    /// Ends a node whose body runs to `end` (`next` is where the following line starts).
    fn end_node(&mut self, frame: Frame, end: usize, next: usize, cut_short: bool) {
        let node = frame.node;
        if let Phase::Header { field } = frame.phase {
            // The part ended inside its header: a header-only part. Deciding what it is
            // may open a multipart or begin an attached message; both end here too.
            self.close_field(node, field, next);
            self.frames.push(Frame {
                node,
                phase: Phase::Header { field: None },
            });
            self.header_done(node, next, next, HeaderEnd::EndOfPart);
            loop {
                let top = self.frames.pop().expect("the node's own frame is below");
                if top.node == node {
                    break;
                }
                self.end_node(top, next, next, cut_short);
            }
            if self.open.last().is_some_and(|o| o.node == node) {
                let o = self.open.pop().expect("checked");
                self.unclosed(o);
            }
        }
        let n = &mut self.nodes[node];
        n.body.end = end.max(n.body.start);
        n.cut_short = cut_short;
    }

    fn finish(&mut self) {
        let eof = self.raw.len();
        let open_nodes: Vec<usize> = self.open.iter().map(|o| o.node).collect();
        while let Some(frame) = self.frames.pop() {
            let inside_unclosed = self.frames.iter().any(|f| open_nodes.contains(&f.node));
            self.end_node(frame, eof, eof, inside_unclosed);
        }
        while let Some(o) = self.open.pop() {
            self.unclosed(o);
        }
    }
}

/// The boundary a lenient reader guesses for a multipart that declares none: the first
/// line of the body that starts with `--`.
fn guess_boundary(body: &[u8]) -> Option<String> {
    body.split(|&b| b == b'\n')
        .take(1000)
        .find_map(|l| l.strip_prefix(b"--"))
        .map(|b| String::from_utf8_lossy(b).trim_end().to_string())
        .filter(|b| !b.is_empty())
}

/// A field's value after the colon, unfolded and trimmed.
pub fn field_value(raw: &[u8], f: &RawField) -> String {
    let bytes = &raw[f.range.start.min(raw.len())..f.range.end.min(raw.len())];
    let colon = bytes.iter().position(|&b| b == b':').map_or(0, |c| c + 1);
    unfold(&String::from_utf8_lossy(&bytes[colon..]))
        .trim()
        .to_string()
}

/// A field's value after the colon, as written (folds kept).
pub fn raw_field_value(raw: &[u8], f: &RawField) -> String {
    let bytes = &raw[f.range.start.min(raw.len())..f.range.end.min(raw.len())];
    let colon = bytes.iter().position(|&b| b == b':').map_or(0, |c| c + 1);
    String::from_utf8_lossy(&bytes[colon..]).into_owned()
}

fn canonical_name(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(s: &Structure) -> Vec<&str> {
        s.nodes.iter().map(|n| n.content_type.as_str()).collect()
    }

    #[test]
    fn a_boundary_in_the_middle_of_a_line_is_body_text() {
        let raw = b"Content-Type: multipart/mixed; boundary=B\n\n--B\n\ntext --B\nmore\n--B--\n";
        let s = scan(raw, Reading::default());
        assert_eq!(types(&s), ["multipart/mixed", "text/plain"]);
        assert_eq!(&raw[s.nodes[1].body.clone()], b"text --B\nmore");
    }

    #[test]
    fn a_delimiter_may_carry_transport_padding_but_nothing_else() {
        let raw = b"Content-Type: multipart/mixed; boundary=B\n\n--B \t\n\na\n--Bx\nb\n--B--\n";
        let s = scan(raw, Reading::default());
        assert_eq!(s.nodes.len(), 2);
        assert_eq!(&raw[s.nodes[1].body.clone()], b"a\n--Bx\nb");
        let prefix = scan(
            raw,
            Reading {
                lenient_boundaries: true,
                ..Reading::default()
            },
        );
        assert_eq!(prefix.nodes.len(), 3);
    }

    #[test]
    fn the_header_ends_at_a_line_that_is_not_a_field() {
        let raw = b"From: a@x\r\nSubject: hi\r\nthis is body\r\nX-Late: 1\r\n\r\nmore";
        let s = scan(raw, Reading::default());
        let n = &s.nodes[0];
        assert_eq!(n.fields.len(), 2);
        assert_eq!(n.header_end, HeaderEnd::NotAField);
        assert_eq!(&raw[n.body.clone()], &raw[24..]);
        assert!(
            s.findings
                .iter()
                .any(|f| f.kind == FindingKind::HeaderNotTerminated)
        );
    }

    #[test]
    fn an_unclosed_inner_multipart_ends_at_its_parents_next_delimiter() {
        let raw = b"Content-Type: multipart/mixed; boundary=A\n\n--A\nContent-Type: multipart/alternative; boundary=B\n\n--B\n\ninner\n--A\nContent-Type: application/x-msdownload; name=a.exe\n\nMZ\n--A--\n";
        let s = scan(raw, Reading::default());
        assert_eq!(
            types(&s),
            [
                "multipart/mixed",
                "multipart/alternative",
                "text/plain",
                "application/x-msdownload"
            ]
        );
        assert_eq!(s.nodes[3].parent, Some(0));
        assert_eq!(&raw[s.nodes[2].body.clone()], b"inner");
        assert!(s.findings.iter().any(|f| f.kind == FindingKind::Unclosed));
    }

    #[test]
    fn the_first_content_type_counts_and_the_duplicate_is_a_finding() {
        let raw = b"Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=B\n\n--B\n\nx\n--B--\n";
        let s = scan(raw, Reading::default());
        assert_eq!(types(&s), ["text/plain"]);
        assert!(
            s.findings
                .iter()
                .any(|f| f.kind == FindingKind::DuplicateField("Content-Type".into()))
        );
        let last = scan(
            raw,
            Reading {
                last_field_wins: true,
                ..Reading::default()
            },
        );
        assert_eq!(types(&last), ["multipart/mixed", "text/plain"]);
    }

    #[test]
    fn attached_messages_are_read_in_place_and_encoded_ones_are_opaque() {
        let raw = b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: message/rfc822\n\nSubject: in\n\ninner\n--B\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoKeQo=\n--B--\n";
        let s = scan(raw, Reading::default());
        assert_eq!(s.nodes[1].kind, NodeKind::Message(Some(2)));
        assert!(s.nodes[2].is_message_root);
        assert_eq!(&raw[s.nodes[2].body.clone()], b"inner");
        assert_eq!(s.nodes[3].kind, NodeKind::Message(None));
        assert!(
            s.findings
                .iter()
                .any(|f| f.kind == FindingKind::EncodedMessage)
        );
    }

    #[test]
    fn bare_cr_is_a_line_end_only_in_its_reading() {
        let raw = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\na\r--B\rContent-Type: application/octet-stream\r\r\nx\r\n--B--\r\n";
        assert_eq!(scan(raw, Reading::default()).nodes.len(), 2);
        let cr = scan(
            raw,
            Reading {
                bare_cr_ends_lines: true,
                ..Reading::default()
            },
        );
        assert_eq!(
            types(&cr),
            ["multipart/mixed", "text/plain", "application/octet-stream"]
        );
    }

    #[test]
    fn past_the_part_cap_the_rest_is_not_read_and_says_so() {
        let mut raw = b"Content-Type: multipart/mixed; boundary=b\n\n".to_vec();
        for _ in 0..MAX_PARTS + 10 {
            raw.extend_from_slice(b"--b\n\nx\n");
        }
        raw.extend_from_slice(b"--b--\n");
        let s = scan(&raw, Reading::default());
        assert_eq!(s.nodes.len(), MAX_PARTS);
        assert!(
            s.findings
                .iter()
                .any(|f| f.kind == FindingKind::TooManyParts)
        );
        assert_eq!(
            s.nodes[0].body.end,
            raw.len(),
            "the rest stays in the multipart"
        );
    }

    #[test]
    fn many_parts_scan_in_one_pass() {
        let mut raw = b"Content-Type: multipart/mixed; boundary=b\n\n".to_vec();
        for _ in 0..10_000 {
            raw.extend_from_slice(b"--b\n\nx\n");
        }
        raw.extend_from_slice(b"--b--\n");
        let s = scan(&raw, Reading::default());
        assert_eq!(s.nodes.len(), 10_001);
    }
}
