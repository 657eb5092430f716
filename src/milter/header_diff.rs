//! The header actions that turn the header the MTA sent into the header the pipeline
//! wrote: a milter cannot hand back a whole message, only edits (change the n-th field of
//! a name, insert at a position, append, and a body replacement), so the two headers are
//! aligned and the difference is said in those edits.
//!
//! Fields the pipeline kept are matched by a longest common subsequence, so a field that
//! did not change is never touched, whatever moved around it. A removed field is deleted
//! by changing it to an empty value, a field whose value changed is changed in place,
//! and a new field is inserted where it stands (appended when it stands at the end).

use super::codec::Reply;
use workmail_flow_core::header_field::read_header_block;

/// One header field as the milter protocol carries it: its name and its value (the bytes
/// after the colon, folded lines joined by `\n`, no final line break).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: Vec<u8>,
}

/// The fields of a header block (the bytes before the empty line), in the protocol's form.
pub fn fields(header: &[u8]) -> Vec<Field> {
    let (raw, _) = read_header_block(header);
    raw.iter()
        .map(|f| {
            let bytes = &header[f.range.clone()];
            let after_colon = &bytes[f.name.len() + 1..];
            let trimmed = after_colon.strip_suffix(b"\n").unwrap_or(after_colon);
            let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
            Field {
                name: f.name.clone(),
                value: crlf_to_lf(trimmed),
            }
        })
        .collect()
}

fn crlf_to_lf(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'\r' && value.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(value[i]);
        i += 1;
    }
    out
}

/// What became of one field of the original in the rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Kept,
    Deleted,
    /// Changed to the rewrite's field at this position.
    Changed(usize),
}

/// The header replies that make `before` into `after`, in the order the MTA must apply
/// them. `leading_space` says whether values carry the space after the colon (the MTA
/// agreed to `SMFIP_HDR_LEADSPC`); without it one leading space is left out of each.
/// `hidden_above` is how many fields the MTA keeps above the ones it sent and counts in
/// an insert's position: Postfix's own Received field is never sent to a milter, yet
/// `SMFIR_INSHEADER` index 0 goes above it (measured against Postfix 3.7 by
/// tests/postfix_transports.rs), so with Postfix it is 1.
pub fn replies(
    before: &[Field],
    after: &[Field],
    leading_space: bool,
    hidden_above: u32,
) -> Vec<Reply> {
    let kept = common_subsequence(before, after);
    let mut fate = vec![Fate::Deleted; before.len()];
    let mut inserted = vec![true; after.len()];
    for &(i, j) in &kept {
        fate[i] = Fate::Kept;
        inserted[j] = false;
    }
    // Between two kept pairs, a removed field and a new field of the same name are one
    // field whose value changed: changed in place, so it keeps its position.
    let mut bounds: Vec<(usize, usize)> = vec![(0, 0)];
    bounds.extend(kept.iter().map(|&(i, j)| (i + 1, j + 1)));
    let mut ends: Vec<(usize, usize)> = kept.clone();
    ends.push((before.len(), after.len()));
    for (&(bi, bj), &(ei, ej)) in bounds.iter().zip(&ends) {
        // Pairs never cross, so the changed fields stay in the rewrite's order.
        let mut from = bj;
        for i in bi..ei {
            let same_name = (from..ej).find(|&j| after[j].name == before[i].name);
            if let Some(j) = same_name {
                fate[i] = Fate::Changed(j);
                inserted[j] = false;
                from = j + 1;
            }
        }
    }
    let value = |v: &[u8]| -> Vec<u8> {
        if leading_space {
            v.to_vec()
        } else {
            v.strip_prefix(b" ").unwrap_or(v).to_vec()
        }
    };
    let mut out = Vec::new();
    // Changes and deletions by occurrence, last first: deleting a field renumbers the
    // later fields of its name, never the earlier ones.
    for i in (0..before.len()).rev() {
        let new_value = match fate[i] {
            Fate::Kept => continue,
            Fate::Deleted => Vec::new(),
            Fate::Changed(j) => value(&after[j].value),
        };
        let occurrence = before[..=i]
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(&before[i].name))
            .count();
        out.push(Reply::ChangeHeader {
            index: occurrence as u32,
            name: before[i].name.clone(),
            value: new_value,
        });
    }
    // Insertions first to last, each at its final position: every field before it is in
    // place by then. New fields at the end are appended.
    let tail_from = (0..after.len())
        .rev()
        .take_while(|&j| inserted[j])
        .last()
        .unwrap_or(after.len());
    for (j, field) in after.iter().enumerate() {
        if !inserted[j] {
            continue;
        }
        if j >= tail_from {
            out.push(Reply::AddHeader {
                name: field.name.clone(),
                value: value(&field.value),
            });
        } else {
            out.push(Reply::InsertHeader {
                index: j as u32 + hidden_above,
                name: field.name.clone(),
                value: value(&field.value),
            });
        }
    }
    out
}

/// Index pairs of the longest common subsequence of equal fields (same name, same
/// bytes). Headers are short, so the quadratic table is small; a header past a few
/// thousand fields is matched greedily instead, keeping memory bounded.
fn common_subsequence(a: &[Field], b: &[Field]) -> Vec<(usize, usize)> {
    let same = |x: &Field, y: &Field| x.name == y.name && x.value == y.value;
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        let mut pairs = Vec::new();
        let mut j = 0;
        for (i, x) in a.iter().enumerate() {
            if let Some(k) = (j..b.len()).find(|&k| same(x, &b[k])) {
                pairs.push((i, k));
                j = k + 1;
            }
        }
        return pairs;
    }
    let (n, m) = (a.len(), b.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if same(&a[i], &b[j]) {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut pairs = Vec::new();
    while i < n && j < m {
        if same(&a[i], &b[j]) {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if table[at(i + 1, j)] >= table[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies replies as the MTA does (libmilter's documented semantics), to check that
    /// they rebuild the rewrite's header.
    fn apply(before: &[Field], replies: &[Reply]) -> Vec<Field> {
        let mut list = before.to_vec();
        for r in replies {
            match r {
                Reply::ChangeHeader { index, name, value } => {
                    let pos = list
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| f.name.eq_ignore_ascii_case(name))
                        .nth(*index as usize - 1)
                        .map(|(p, _)| p)
                        .expect("the occurrence exists");
                    if value.is_empty() {
                        list.remove(pos);
                    } else {
                        list[pos].value = value.clone();
                    }
                }
                Reply::InsertHeader { index, name, value } => list.insert(
                    *index as usize,
                    Field {
                        name: name.clone(),
                        value: value.clone(),
                    },
                ),
                Reply::AddHeader { name, value } => list.push(Field {
                    name: name.clone(),
                    value: value.clone(),
                }),
                other => panic!("not a header reply: {other:?}"),
            }
        }
        list
    }

    fn check(before: &[u8], after: &[u8]) -> Vec<Reply> {
        let (b, a) = (fields(before), fields(after));
        let r = replies(&b, &a, true, 0);
        assert_eq!(apply(&b, &r), a, "replies {r:?}");
        r
    }

    #[test]
    fn folded_values_keep_their_bytes_with_lf_between_lines() {
        let f = fields(b"Subject: a\r\n\tb\r\nTo:x@y\r\n");
        assert_eq!(f[0].value, b" a\n\tb");
        assert_eq!(f[1].value, b"x@y");
    }

    #[test]
    fn an_unchanged_header_needs_no_reply() {
        assert!(check(b"From: a\r\nSubject: s\r\n", b"From: a\r\nSubject: s\r\n").is_empty());
    }

    #[test]
    fn a_changed_subject_is_changed_in_place_by_occurrence() {
        let r = check(
            b"Received: 1\r\nSubject: s\r\nReceived: 2\r\n",
            b"Received: 1\r\nSubject: [EXT] s\r\nReceived: 2\r\n",
        );
        assert_eq!(r.len(), 1);
        assert!(matches!(&r[0], Reply::ChangeHeader { index: 1, name, .. } if name == "Subject"));
    }

    #[test]
    fn a_field_added_at_the_end_is_appended_and_one_in_the_middle_inserted() {
        let r = check(
            b"From: a\r\nTo: b\r\n",
            b"From: a\r\nTo: b\r\nX-Stamp: 1\r\n",
        );
        assert!(matches!(&r[..], [Reply::AddHeader { .. }]));
        let r = check(
            b"From: a\r\nTo: b\r\n",
            b"X-Top: 0\r\nFrom: a\r\nX-Mid: 1\r\nTo: b\r\n",
        );
        assert!(
            r.iter().all(|x| matches!(x, Reply::InsertHeader { .. })),
            "{r:?}"
        );
    }

    #[test]
    fn removing_repeated_fields_renumbers_nothing_that_is_still_to_be_removed() {
        check(
            b"X-A: 1\r\nX-A: 2\r\nX-A: 3\r\nX-B: keep\r\nX-A: 4\r\n",
            b"X-A: 2\r\nX-B: keep\r\n",
        );
        check(
            b"X-A: 1\r\nX-A: 2\r\nX-A: 3\r\n",
            b"X-A: one\r\nX-A: 2\r\nX-A: three\r\nX-N: new\r\n",
        );
    }

    #[test]
    fn moved_and_renamed_fields_are_deleted_and_inserted() {
        check(b"A: 1\r\nB: 2\r\nC: 3\r\n", b"C: 3\r\nA: 1\r\nb: 2\r\n");
        check(b"A: 1\r\nB: 2\r\n", b"B: 3\r\nA: 4\r\n");
        check(
            b"Content-Type: text/plain\r\nX: 1\r\n",
            b"X: 1\r\nContent-Type: multipart/mixed;\r\n boundary=\"b\"\r\n",
        );
    }

    #[test]
    fn inserts_count_the_fields_the_mta_keeps_hidden_above() {
        let r = replies(
            &fields(b"From: a\r\nTo: b\r\n"),
            &fields(b"From: a\r\nX-Mid: 1\r\nTo: b\r\n"),
            true,
            1,
        );
        assert!(
            matches!(&r[..], [Reply::InsertHeader { index: 2, .. }]),
            "{r:?}"
        );
    }

    #[test]
    fn without_leading_space_one_space_is_left_out_of_values() {
        let r = replies(
            &fields(b"Subject: s\r\n"),
            &fields(b"Subject: t\r\n"),
            false,
            0,
        );
        assert_eq!(
            r,
            vec![Reply::ChangeHeader {
                index: 1,
                name: "Subject".into(),
                value: b"t".to_vec()
            }]
        );
    }
}
