//! The message editor: stages queue edits against the parsed original, and the output is
//! built as the original's untouched byte ranges plus the new bytes, never as a
//! re-serialized message. Every byte no edit names stays identical.

use crate::message::header_field::{self, FieldError};
use crate::message::mime_tree::{MimeTree, PartId};
use crate::message::newline::Newline;
use crate::message::structure::HeaderEnd;
use std::io::{self, Write};
use std::ops::Range;

/// A change to one header block (the message's when `part` is 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    /// Appends a field at the end of the block.
    Add { name: String, value: String },
    /// Rewrites the first field of this name in place and removes the others; appends
    /// it when there is none.
    Set { name: String, value: String },
    /// Removes every field of this name.
    Remove { name: String },
}

impl HeaderOp {
    pub fn name(&self) -> &str {
        match self {
            HeaderOp::Add { name, .. } | HeaderOp::Set { name, .. } | HeaderOp::Remove { name } => {
                name
            }
        }
    }
}

/// A field written verbatim: its bytes already formatted (used where a stage keeps a
/// field's parameters and changes one, as with a charset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFieldEdit {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What stages have asked for so far, keyed by part.
#[derive(Debug, Default, Clone)]
pub struct Edits {
    headers: Vec<(PartId, HeaderOp)>,
    bodies: Vec<(PartId, Vec<u8>)>,
    parts: Vec<(PartId, Vec<u8>)>,
}

/// Why edits could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("header field {name}: {source}")]
    Field {
        name: String,
        #[source]
        source: FieldError,
    },
    #[error("edits overlap at byte {0}: two stages changed the same part")]
    Overlap(usize),
    #[error("part {0} has no header block the parser could read; its header is not edited")]
    NoHeaderBlock(PartId),
}

impl Edits {
    pub fn new() -> Edits {
        Edits::default()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.bodies.is_empty() && self.parts.is_empty()
    }

    /// Queues a change to a part's header block.
    pub fn header(&mut self, part: PartId, op: HeaderOp) {
        self.headers.push((part, op));
    }

    /// Replaces a part's body bytes (already transfer-encoded); the last call wins.
    pub fn replace_body(&mut self, part: PartId, body: Vec<u8>) {
        self.bodies.retain(|(p, _)| *p != part);
        self.bodies.push((part, body));
    }

    /// Replaces a whole part, headers and body, with `bytes`; the last call wins.
    pub fn replace_part(&mut self, part: PartId, bytes: Vec<u8>) {
        self.parts.retain(|(p, _)| *p != part);
        self.parts.push((part, bytes));
    }

    /// The header changes queued for a part, in order.
    pub fn header_ops(&self, part: PartId) -> impl Iterator<Item = &HeaderOp> {
        self.headers
            .iter()
            .filter(move |(p, _)| *p == part)
            .map(|(_, op)| op)
    }

    /// The new body queued for a part, if any.
    pub fn body(&self, part: PartId) -> Option<&[u8]> {
        self.bodies
            .iter()
            .find(|(p, _)| *p == part)
            .map(|(_, b)| b.as_slice())
    }

    /// Every part an edit names, in id order.
    pub fn touched_parts(&self) -> Vec<PartId> {
        let mut ids: Vec<PartId> = self
            .headers
            .iter()
            .map(|(p, _)| *p)
            .chain(self.bodies.iter().map(|(p, _)| *p))
            .chain(self.parts.iter().map(|(p, _)| *p))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Whether the part, or a part around it, is replaced or has a new body.
    pub fn touches_content(&self, tree: &MimeTree<'_>, part: PartId) -> bool {
        let mut cur = Some(part);
        while let Some(id) = cur {
            if self.parts.iter().any(|(p, _)| *p == id)
                || (self.bodies.iter().any(|(p, _)| *p == id))
            {
                return true;
            }
            cur = tree.part(id).parent;
        }
        false
    }

    /// The value a field will have once the queued header edits apply: the last Set or
    /// Add for that name, or the original's, or `None` once it is removed.
    pub fn pending_values(&self, tree: &MimeTree<'_>, part: PartId, name: &str) -> Vec<String> {
        self.after_ops(part, name, tree.field_values(part, name))
    }

    /// `values` (a field's values as they stand) after the queued ops on that field of
    /// `part`: Add appends, Set replaces all, Remove clears.
    pub fn after_ops(&self, part: PartId, name: &str, mut values: Vec<String>) -> Vec<String> {
        for op in self.header_ops(part) {
            if !op.name().eq_ignore_ascii_case(name) {
                continue;
            }
            match op {
                HeaderOp::Add { value, .. } => values.push(value.clone()),
                HeaderOp::Set { value, .. } => values = vec![value.clone()],
                HeaderOp::Remove { .. } => values.clear(),
            }
        }
        values
    }

    /// Builds the output: the original's ranges between edits, and the edits' bytes.
    pub fn apply<'a>(&self, tree: &MimeTree<'a>) -> Result<Output<'a>, EditError> {
        self.clone().into_output(tree)
    }

    /// [`Edits::apply`], moving the new bytes into the output instead of copying them:
    /// a 40 MB re-encoded part is held once.
    pub fn into_output<'a>(self, tree: &MimeTree<'a>) -> Result<Output<'a>, EditError> {
        let raw = tree.raw();
        let mut splices: Vec<Splice> = Vec::new();
        let replaced_ids: Vec<PartId> = self.parts.iter().map(|(x, _)| *x).collect();
        let body_ids: Vec<PartId> = self.bodies.iter().map(|(x, _)| *x).collect();
        let covered = |id: PartId| -> bool {
            // Edits under a replaced part or body are moot: that part's bytes are gone.
            let mut cur = tree.part(id).parent;
            while let Some(p) = cur {
                if replaced_ids.contains(&p) || body_ids.contains(&p) {
                    return true;
                }
                cur = tree.part(p).parent;
            }
            false
        };
        let header_ops = self.headers;
        for (id, mut bytes) in self.parts {
            if covered(id) {
                continue;
            }
            let p = tree.part(id);
            let range = p.header.start..p.body.end;
            // A part with an empty body ends with its header's empty line, whose line
            // break is also the next delimiter's: the replacement must keep one there,
            // or the delimiter would be glued to its last line.
            if raw[range.clone()].ends_with(b"\n") && !bytes.is_empty() && !bytes.ends_with(b"\n") {
                bytes.extend_from_slice(tree.newline_of(id).as_bytes());
            }
            splices.push(Splice::new(range, bytes));
        }
        let replaced = |id: PartId| replaced_ids.contains(&id);
        // Header splices go in before body splices: where a header without its empty line
        // meets an empty body, both insert at one offset, and the (stable) sort below
        // must keep the fields first.
        let mut header_parts: Vec<PartId> = header_ops.iter().map(|(p, _)| *p).collect();
        header_parts.sort_unstable();
        header_parts.dedup();
        for id in header_parts {
            if covered(id) || replaced(id) {
                continue;
            }
            // A message whose first line starts with white space reads as having no
            // header to some readers, and as a header to others; a field added in front
            // would change how everyone reads what follows.
            if tree.part(id).is_message_root && tree.header_is_ambiguous(id) {
                return Err(EditError::NoHeaderBlock(id));
            }
            let ops = header_ops
                .iter()
                .filter(|(p, _)| *p == id)
                .map(|(_, op)| op);
            header_splices(tree, id, ops, &mut splices)?;
        }
        for (id, bytes) in self.bodies {
            if covered(id) || replaced(id) {
                continue;
            }
            let body = tree.part(id).body.clone();
            if !bytes.is_empty() {
                let fields_added_here = splices
                    .iter()
                    .any(|s| s.range == (body.start..body.start) && !s.bytes.is_empty());
                let end =
                    missing_header_end(raw, body.start, fields_added_here, tree.newline_of(id));
                // Its own splice at the body's start, ahead of the body (the sort below is
                // stable), so a big new body is not moved to make room.
                if !end.is_empty() {
                    splices.push(Splice::new(body.start..body.start, end));
                }
            }
            splices.push(Splice::new(body, bytes));
        }
        splices.sort_by_key(|s| (s.range.start, s.range.end));
        let mut segments = Vec::with_capacity(splices.len() * 2 + 1);
        let mut pos = 0;
        for s in splices {
            if s.range.start < pos {
                return Err(EditError::Overlap(s.range.start));
            }
            if s.range.start > pos {
                segments.push(Segment::Original(&raw[pos..s.range.start]));
            }
            if !s.bytes.is_empty() {
                segments.push(Segment::New(s.bytes));
            }
            pos = s.range.end;
        }
        if pos < raw.len() {
            segments.push(Segment::Original(&raw[pos..]));
        }
        Ok(Output {
            original: raw,
            segments,
        })
    }
}

/// What must go before a new body so that it does not read as header fields: nothing
/// when the header block ends with its empty line, as it should; the empty line where a
/// header-only message lacks it (found by fuzzing: a notice replacing such a message's
/// body ran straight on from the last field); and the last field's line break too where
/// that is missing and no added field (which ends with its own) stands between.
fn missing_header_end(
    raw: &[u8],
    body_start: usize,
    fields_added_here: bool,
    nl: Newline,
) -> Vec<u8> {
    let before = &raw[..body_start.min(raw.len())];
    if before.is_empty() {
        // A message with no header section: new text at its start would read as header
        // fields ("Note: ..."), so an empty header goes first, unless added fields
        // (which bring their own empty line) stand there.
        return if fields_added_here {
            Vec::new()
        } else {
            nl.as_bytes().to_vec()
        };
    }
    if before == b"\n"
        || before == b"\r\n"
        || before.ends_with(b"\n\n")
        || before.ends_with(b"\n\r\n")
    {
        return Vec::new();
    }
    if fields_added_here || before.ends_with(b"\n") {
        nl.as_bytes().to_vec()
    } else {
        [nl.as_bytes(), nl.as_bytes()].concat()
    }
}

struct Splice {
    range: Range<usize>,
    bytes: Vec<u8>,
}

impl Splice {
    fn new(range: Range<usize>, bytes: Vec<u8>) -> Splice {
        Splice { range, bytes }
    }
}

/// The state of one field of a header block while ops apply.
struct FieldSlot {
    name: String,
    /// The original field's bytes, or `None` for a field an op added.
    original: Option<Range<usize>>,
    /// New bytes for the field; `Some(empty)` removes it.
    replacement: Option<Vec<u8>>,
}

fn header_splices<'o>(
    tree: &MimeTree<'_>,
    id: PartId,
    ops: impl Iterator<Item = &'o HeaderOp>,
    splices: &mut Vec<Splice>,
) -> Result<(), EditError> {
    let part = tree.part(id);
    let nl = tree.newline_of(id);
    let mut slots: Vec<FieldSlot> = part
        .fields
        .iter()
        .map(|f| FieldSlot {
            name: f.name.clone(),
            original: Some(f.range.clone()),
            replacement: None,
        })
        .collect();
    let format = |name: &str, value: &str| {
        header_field::format_field(name, value, nl).map_err(|source| EditError::Field {
            name: name.to_string(),
            source,
        })
    };
    let live = |s: &FieldSlot, name: &str| {
        s.name.eq_ignore_ascii_case(name) && s.replacement.as_ref().is_none_or(|r| !r.is_empty())
    };
    for op in ops {
        match op {
            HeaderOp::Add { name, value } => slots.push(FieldSlot {
                name: name.clone(),
                original: None,
                replacement: Some(format(name, value)?),
            }),
            HeaderOp::Set { name, value } => {
                let bytes = format(name, value)?;
                let mut first = true;
                for s in slots.iter_mut().filter(|s| live(s, name)) {
                    s.replacement = Some(if first { bytes.clone() } else { Vec::new() });
                    first = false;
                }
                if first {
                    slots.push(FieldSlot {
                        name: name.clone(),
                        original: None,
                        replacement: Some(bytes),
                    });
                }
            }
            HeaderOp::Remove { name } => {
                for s in slots.iter_mut().filter(|s| live(s, name)) {
                    s.replacement = Some(Vec::new());
                }
            }
        }
    }
    // New fields go after the last field of the block (before the empty line).
    let insert_at = part
        .fields
        .iter()
        .map(|f| f.range.end)
        .max()
        .unwrap_or(part.header.start);
    // Whether the last field of the block stays as it is: only then can its missing
    // line break show in the output (a rewritten field ends with its own, and a removed
    // one leaves the field before it, which a line break ends).
    let last_kept_as_is = part
        .fields
        .iter()
        .max_by_key(|f| f.range.end)
        .is_some_and(|last| {
            slots
                .iter()
                .any(|s| s.original.as_ref() == Some(&last.range) && s.replacement.is_none())
        });
    let mut added = Vec::new();
    for s in slots {
        match (s.original, s.replacement) {
            (Some(range), Some(bytes)) => splices.push(Splice::new(range, bytes)),
            (None, Some(bytes)) if !bytes.is_empty() => added.extend_from_slice(&bytes),
            _ => {}
        }
    }
    if !added.is_empty() {
        // A last field without a line break (a header-only message cut at its end) gets
        // one first, or the new field would be glued onto its value.
        let raw = tree.raw();
        if last_kept_as_is
            && insert_at > part.header.start
            && raw.get(insert_at - 1).is_some_and(|&b| b != b'\n')
        {
            added.splice(0..0, nl.as_bytes().iter().copied());
        }
        // A message with no header section (its first line is body text) gets one: the
        // new fields and the empty line that ends them.
        if part.fields.is_empty() && part.header_end == HeaderEnd::NotAField {
            added.extend_from_slice(nl.as_bytes());
        }
        splices.push(Splice::new(insert_at..insert_at, added));
    }
    Ok(())
}

/// One piece of the output.
#[derive(Debug, Clone)]
pub enum Segment<'a> {
    /// Bytes of the original, unchanged.
    Original(&'a [u8]),
    /// Bytes an edit wrote.
    New(Vec<u8>),
}

impl Segment<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Segment::Original(b) => b,
            Segment::New(b) => b,
        }
    }
}

/// The rewritten message as slices of the original and new bytes, written out as a
/// stream so a large message is never held twice.
#[derive(Debug, Clone)]
pub struct Output<'a> {
    original: &'a [u8],
    segments: Vec<Segment<'a>>,
}

impl<'a> Output<'a> {
    /// The original, unchanged.
    pub fn unchanged(original: &'a [u8]) -> Output<'a> {
        Output {
            original,
            segments: vec![Segment::Original(original)],
        }
    }

    pub fn segments(&self) -> &[Segment<'a>] {
        &self.segments
    }

    pub fn len(&self) -> usize {
        self.segments.iter().map(|s| s.bytes().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the output is byte for byte the original, compared piece by piece
    /// without joining the output.
    pub fn is_unchanged(&self) -> bool {
        if self.len() != self.original.len() {
            return false;
        }
        let mut pos = 0;
        for seg in &self.segments {
            let b = seg.bytes();
            if self.original[pos..pos + b.len()] != *b {
                return false;
            }
            pos += b.len();
        }
        true
    }

    /// The output in consecutive pieces of `size` bytes (the last may be shorter), each
    /// copied out as it is asked for: an upload in parts holds one piece at a time.
    pub fn chunks(&self, size: usize) -> OutputChunks<'_, 'a> {
        OutputChunks {
            output: self,
            segment: 0,
            offset: 0,
            size: size.max(1),
        }
    }

    /// The output's pieces in order, for checks that read it without joining it.
    pub fn slices(&self) -> Vec<&[u8]> {
        self.segments.iter().map(|s| s.bytes()).collect()
    }

    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        for s in &self.segments {
            out.write_all(s.bytes())?;
        }
        Ok(())
    }

    /// The output as one buffer, for checks that need it whole.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for s in &self.segments {
            v.extend_from_slice(s.bytes());
        }
        v
    }
}

impl Output<'_> {
    /// The output with its pieces of the original held as byte ranges, so it no longer
    /// borrows the original: a run on another thread can send it back beside the buffer
    /// it owns, and [`OutputPlan::into_output`] rebuilds the same output from both.
    pub fn into_plan(self) -> OutputPlan {
        let base = self.original.as_ptr() as usize;
        let end = base + self.original.len();
        let segments = self
            .segments
            .into_iter()
            .map(|seg| match seg {
                Segment::Original(b) => {
                    let start = b.as_ptr() as usize;
                    if start >= base && start + b.len() <= end {
                        PlannedSegment::Original(start - base..start - base + b.len())
                    } else {
                        // Not a piece of the original after all: keep its bytes.
                        PlannedSegment::New(b.to_vec())
                    }
                }
                Segment::New(b) => PlannedSegment::New(b),
            })
            .collect();
        OutputPlan { segments }
    }
}

/// An [`Output`] that does not borrow its original (see [`Output::into_plan`]).
#[derive(Debug, Clone)]
pub struct OutputPlan {
    segments: Vec<PlannedSegment>,
}

#[derive(Debug, Clone)]
enum PlannedSegment {
    Original(std::ops::Range<usize>),
    New(Vec<u8>),
}

impl OutputPlan {
    /// The output again, over `original`: the buffer the plan was made from. A range
    /// that does not fit `original` (another buffer) is cut to what fits.
    pub fn into_output(self, original: &[u8]) -> Output<'_> {
        let segments = self
            .segments
            .into_iter()
            .map(|seg| match seg {
                PlannedSegment::Original(r) => {
                    let end = r.end.min(original.len());
                    Segment::Original(&original[r.start.min(end)..end])
                }
                PlannedSegment::New(b) => Segment::New(b),
            })
            .collect();
        Output { original, segments }
    }
}

/// See [`Output::chunks`].
pub struct OutputChunks<'o, 'a> {
    output: &'o Output<'a>,
    segment: usize,
    offset: usize,
    size: usize,
}

impl Iterator for OutputChunks<'_, '_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut chunk = Vec::with_capacity(self.size);
        while chunk.len() < self.size {
            let Some(seg) = self.output.segments.get(self.segment) else {
                break;
            };
            let bytes = &seg.bytes()[self.offset..];
            let take = bytes.len().min(self.size - chunk.len());
            chunk.extend_from_slice(&bytes[..take]);
            self.offset += take;
            if self.offset == seg.bytes().len() {
                self.segment += 1;
                self.offset = 0;
            }
        }
        (!chunk.is_empty()).then_some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_output_in_order_across_segments() {
        let tree = MimeTree::parse(MSG).unwrap();
        let mut e = Edits::new();
        e.header(
            0,
            HeaderOp::Add {
                name: "X-New".into(),
                value: "v".into(),
            },
        );
        e.replace_body(1, b"HELLO".to_vec());
        let out = e.apply(&tree).unwrap();
        for size in [1, 7, 64, 10_000] {
            let chunks: Vec<Vec<u8>> = out.chunks(size).collect();
            assert!(chunks.iter().rev().skip(1).all(|c| c.len() == size));
            assert_eq!(chunks.concat(), out.to_vec(), "size {size}");
        }
    }

    const MSG: &[u8] = b"From: a@example.com\r\nSubject: hi\r\nX-Old: 1\r\nX-Old: 2\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--B--\r\n";

    fn apply(edits: &Edits, raw: &[u8]) -> Vec<u8> {
        let tree = MimeTree::parse(raw).unwrap();
        edits.apply(&tree).unwrap().to_vec()
    }

    #[test]
    fn a_new_body_for_a_header_only_message_follows_an_added_field_and_an_empty_line() {
        // Found by fuzzing: the body ran straight on from the last field, and the field
        // added at the same offset landed after it.
        let mut edits = Edits::new();
        edits.header(
            0,
            HeaderOp::Add {
                name: "X-A".into(),
                value: "1".into(),
            },
        );
        edits.replace_body(0, b"notice\r\n".to_vec());
        assert_eq!(
            apply(&edits, b"From: a@example.com\r\nSubject: hi\r\n"),
            b"From: a@example.com\r\nSubject: hi\r\nX-A: 1\r\n\r\nnotice\r\n"
        );
        let mut body_only = Edits::new();
        body_only.replace_body(0, b"notice\r\n".to_vec());
        assert_eq!(
            apply(&body_only, b"From: a@example.com\r\nSubject: hi"),
            b"From: a@example.com\r\nSubject: hi\r\n\r\nnotice\r\n"
        );
    }

    #[test]
    fn a_field_added_to_a_header_that_ends_without_a_line_break_gets_its_own_line() {
        // Found by fuzzing: the new field was glued onto the last value ("hiX-A: 1").
        let raw = b"From: a@example.com\r\nSubject: hi";
        let mut edits = Edits::new();
        edits.header(
            0,
            HeaderOp::Add {
                name: "X-A".into(),
                value: "1".into(),
            },
        );
        assert_eq!(
            apply(&edits, raw),
            b"From: a@example.com\r\nSubject: hi\r\nX-A: 1\r\n"
        );
    }

    #[test]
    fn no_edits_give_back_the_same_bytes() {
        let tree = MimeTree::parse(MSG).unwrap();
        let out = Edits::new().apply(&tree).unwrap();
        assert!(out.is_unchanged());
        assert_eq!(out.to_vec(), MSG);
    }

    #[test]
    fn add_appends_after_the_last_field_with_the_messages_line_ending() {
        let mut e = Edits::new();
        e.header(
            0,
            HeaderOp::Add {
                name: "X-New".into(),
                value: "v".into(),
            },
        );
        let out = apply(&e, MSG);
        let expected = String::from_utf8_lossy(MSG)
            .replace("boundary=B\r\n\r\n", "boundary=B\r\nX-New: v\r\n\r\n");
        assert_eq!(String::from_utf8_lossy(&out), expected);
        let lf = String::from_utf8_lossy(MSG).replace("\r\n", "\n");
        let out = apply(&e, lf.as_bytes());
        assert!(String::from_utf8_lossy(&out).contains("boundary=B\nX-New: v\n\n"));
    }

    #[test]
    fn set_rewrites_the_first_in_place_and_drops_the_rest() {
        let mut e = Edits::new();
        e.header(
            0,
            HeaderOp::Set {
                name: "x-old".into(),
                value: "3".into(),
            },
        );
        let out = String::from_utf8(apply(&e, MSG)).unwrap();
        assert!(out.contains("Subject: hi\r\nx-old: 3\r\nContent-Type"));
        assert!(!out.contains("X-Old"));
    }

    #[test]
    fn remove_drops_every_field_of_the_name() {
        let mut e = Edits::new();
        e.header(
            0,
            HeaderOp::Remove {
                name: "X-OLD".into(),
            },
        );
        let out = String::from_utf8(apply(&e, MSG)).unwrap();
        assert_eq!(
            out,
            String::from_utf8_lossy(MSG).replace("X-Old: 1\r\nX-Old: 2\r\n", "")
        );
    }

    #[test]
    fn body_and_part_replacement_leave_neighbours_identical() {
        let tree = MimeTree::parse(MSG).unwrap();
        let mut e = Edits::new();
        e.replace_body(1, b"HELLO".to_vec());
        e.replace_part(2, b"Content-Type: text/plain\r\n\r\nnotice".to_vec());
        let out = String::from_utf8(e.apply(&tree).unwrap().to_vec()).unwrap();
        let expected = String::from_utf8_lossy(MSG)
            .replace("hello", "HELLO")
            .replace("\r\nsecond", "\r\nnotice");
        assert_eq!(out, expected);
    }

    #[test]
    fn an_edit_inside_a_replaced_part_is_dropped() {
        let tree = MimeTree::parse(MSG).unwrap();
        let mut e = Edits::new();
        e.replace_body(0, b"--B--\r\n".to_vec());
        e.replace_body(1, b"ignored".to_vec());
        let out = e.apply(&tree).unwrap().to_vec();
        assert!(!String::from_utf8_lossy(&out).contains("ignored"));
    }

    #[test]
    fn a_value_with_a_line_break_is_an_error() {
        let tree = MimeTree::parse(MSG).unwrap();
        let mut e = Edits::new();
        e.header(
            0,
            HeaderOp::Add {
                name: "X".into(),
                value: "a\nBcc: b".into(),
            },
        );
        assert!(matches!(e.apply(&tree), Err(EditError::Field { .. })));
    }

    #[test]
    fn a_message_whose_header_the_parser_cannot_read_is_not_edited() {
        let raw = b"   \nDelivered-To: a@example.com\nFrom: b@example.com\n\nbody\n";
        let tree = MimeTree::parse(raw).unwrap();
        let mut e = Edits::new();
        e.header(
            0,
            HeaderOp::Add {
                name: "X-A".into(),
                value: "1".into(),
            },
        );
        assert!(matches!(e.apply(&tree), Err(EditError::NoHeaderBlock(0))));
    }

    #[test]
    fn pending_values_follow_queued_ops() {
        let tree = MimeTree::parse(MSG).unwrap();
        let mut e = Edits::new();
        assert_eq!(e.pending_values(&tree, 0, "x-old").len(), 2);
        e.header(
            0,
            HeaderOp::Set {
                name: "X-Old".into(),
                value: "9".into(),
            },
        );
        assert_eq!(e.pending_values(&tree, 0, "x-old"), vec!["9".to_string()]);
    }
}
