//! The dry-run report of `replay --report FILE.json`: one record per message and a
//! summary that answers "what would this config do to our mail?" before anyone deploys
//! it. The terminal gets the same summary table.
//!
//! Stage decisions are counted by their wording with every number replaced by `N`, so
//! "stripped part 3 (application/x-msdownload): extension exe" and the same on part 7
//! count together, while the extension, the representation a disclaimer went into, the
//! verdict's action and the reason something was left alone stay apart.

use crate::pipeline::{Outcome, RunResult};
use serde::Serialize;
use std::collections::BTreeMap;

/// One message's record.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRecord {
    pub input: String,
    /// `changed`, `unchanged`, `kept original`, `not a message` or `failed`.
    pub outcome: String,
    /// Why it was kept, not a message, or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub stages: Vec<StageDecision>,
    pub ambiguities: Vec<String>,
    pub repairs: Vec<String>,
    pub bytes_in: usize,
    pub bytes_out: usize,
    /// The delivery answer in words (`DROP for 1 recipient(s), DEFAULT for the rest`).
    pub response: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageDecision {
    pub stage: String,
    pub changed: bool,
    pub decisions: Vec<String>,
}

impl MessageRecord {
    pub fn of(input: &str, raw_len: usize, result: &RunResult<'_>) -> MessageRecord {
        let (outcome, reason) = match &result.outcome {
            Outcome::Changed => ("changed", None),
            Outcome::Unchanged => ("unchanged", None),
            Outcome::KeptOriginal(why) => ("kept original", Some(why.clone())),
            Outcome::NotAMessage(why) => ("not a message", Some(why.clone())),
        };
        MessageRecord {
            input: input.to_string(),
            outcome: outcome.to_string(),
            reason,
            stages: result
                .stages
                .iter()
                .map(|s| StageDecision {
                    stage: s.label.clone(),
                    changed: s.report.changed,
                    decisions: s.report.decisions.clone(),
                })
                .collect(),
            ambiguities: result.findings.clone(),
            repairs: result.repairs.clone(),
            bytes_in: raw_len,
            bytes_out: result.output.len(),
            response: result.actions.describe(),
        }
    }

    pub fn failed(input: &str, why: &str) -> MessageRecord {
        MessageRecord {
            input: input.to_string(),
            outcome: "failed".into(),
            reason: Some(why.to_string()),
            stages: Vec::new(),
            ambiguities: Vec::new(),
            repairs: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            response: String::new(),
        }
    }
}

/// The counts over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub messages: usize,
    /// Messages per outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Per stage, messages per decision (numbers as `N`).
    pub decisions: BTreeMap<String, BTreeMap<String, usize>>,
    /// Messages per ambiguity (numbers as `N`).
    pub ambiguities: BTreeMap<String, usize>,
    /// Messages per delivery answer.
    pub responses: BTreeMap<String, usize>,
    pub bytes_in: usize,
    pub bytes_out: usize,
}

/// Every number that stands as a word (`part 12`, `2 of 30`) as `N`; digits inside a
/// name (`utf-8`, `iso-8859-1`, `x509`) stay.
pub fn generalized(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let joined = |c: Option<&char>| {
                c.is_some_and(|c| c.is_alphanumeric() || *c == '-' || *c == '.' || *c == '_')
            };
            let before = start.checked_sub(1).and_then(|b| chars.get(b));
            if joined(before) || joined(chars.get(i)) {
                out.extend(&chars[start..i]);
            } else {
                out.push('N');
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

impl Summary {
    pub fn add(&mut self, r: &MessageRecord) {
        self.messages += 1;
        *self.outcomes.entry(r.outcome.clone()).or_default() += 1;
        for s in &r.stages {
            let per = self.decisions.entry(s.stage.clone()).or_default();
            // A message counts once per decision, however many parts it concerns.
            let mut seen = std::collections::BTreeSet::new();
            for d in &s.decisions {
                seen.insert(generalized(d));
            }
            for d in seen {
                *per.entry(d).or_default() += 1;
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &r.ambiguities {
            seen.insert(generalized(a));
        }
        for a in seen {
            *self.ambiguities.entry(a).or_default() += 1;
        }
        if !r.response.is_empty() {
            *self.responses.entry(generalized(&r.response)).or_default() += 1;
        }
        self.bytes_in += r.bytes_in;
        self.bytes_out += r.bytes_out;
    }

    /// The table for the terminal, a line per count, most frequent first.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let sorted = |m: &BTreeMap<String, usize>| {
            let mut v: Vec<(&String, &usize)> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            v.into_iter()
                .map(|(k, n)| (k.clone(), *n))
                .collect::<Vec<_>>()
        };
        for (stage, decisions) in &self.decisions {
            out.push_str(&format!("{stage}:\n"));
            for (d, n) in sorted(decisions) {
                out.push_str(&format!("  {n:>6}  {d}\n"));
            }
        }
        if !self.ambiguities.is_empty() {
            out.push_str("ambiguities:\n");
            for (a, n) in sorted(&self.ambiguities) {
                out.push_str(&format!("  {n:>6}  {a}\n"));
            }
        }
        if !self.responses.is_empty() {
            out.push_str("responses:\n");
            for (r, n) in sorted(&self.responses) {
                out.push_str(&format!("  {n:>6}  {r}\n"));
            }
        }
        out
    }
}

/// The whole `--report` file.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub config: String,
    pub summary: &'a Summary,
    pub messages: &'a [MessageRecord],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_generalized_but_words_stay() {
        assert_eq!(
            generalized("stripped part 12 (application/x-msdownload): extension exe"),
            "stripped part N (application/x-msdownload): extension exe"
        );
        assert_eq!(
            generalized("BOUNCE for 2 of 30 recipient(s)"),
            "BOUNCE for N of N recipient(s)"
        );
        assert_eq!(
            generalized("(utf-8, quoted-printable) 3.5"),
            "(utf-8, quoted-printable) 3.5"
        );
    }
}
