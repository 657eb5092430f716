//! Who sent a message, as the receiving service proved it: the `authenticated_sender`
//! condition's reading of `Authentication-Results` (RFC 8601).
//!
//! The envelope sender (MAIL FROM) and the From field are whatever the sender wrote. What
//! a sender cannot forge is the verdict the receiving service adds on top of the header
//! after checking DMARC and DKIM against DNS: Amazon SES (WorkMail's receiving service)
//! writes `Authentication-Results: amazonses.com; spf=pass ...; dkim=pass
//! header.i=@corp.example; dmarc=pass header.from=corp.example`. A sender can write such
//! a field too, but below the service's own: so only the topmost field from a trusted
//! authserv-id counts, and the From address is authenticated when that field says
//! - `dmarc=pass` with `header.from` equal to the From domain, or
//! - `dkim=pass` with a signing domain (`header.d`, else the domain of `header.i`) equal
//!   to the From domain or a parent of it (`corp.example` signs for
//!   `mail.corp.example`; a sub-domain's key never vouches for its parent).
//!
//! A message with no From, several From fields or several addresses in From is never
//! authenticated: readers would disagree on who it is from.

use crate::message::mime_tree::MimeTree;

/// The authserv-id trusted when the config names none: Amazon SES.
pub const DEFAULT_TRUSTED_AUTHSERV_ID: &str = "amazonses.com";

/// One `Authentication-Results` field, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// Who checked (lower case).
    pub authserv_id: String,
    pub results: Vec<MethodResult>,
}

/// One `method=result` with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// `dkim`, `dmarc`, `spf`... in lower case.
    pub method: String,
    /// `pass`, `fail`, `none`... in lower case.
    pub result: String,
    /// `header.from`, `header.d`, `smtp.mailfrom`... (names in lower case) and values.
    pub properties: Vec<(String, String)>,
}

impl MethodResult {
    fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Drops RFC 5322 comments (nested parentheses, with quoted strings and backslash
/// escapes respected), so what is left is the field's tokens.
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted || depth > 0 => {
                let next = chars.next();
                if depth == 0 {
                    out.push(c);
                    out.extend(next);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

/// Splits at `;` outside quoted strings.
fn statements(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// The `key=value` pairs of one statement; a value may be a quoted string, and white
/// space may stand around `=`.
fn pairs(statement: &str) -> Vec<(String, String)> {
    let s: Vec<char> = statement.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= s.len() {
            break;
        }
        let key_start = i;
        while i < s.len() && !s[i].is_whitespace() && s[i] != '=' {
            i += 1;
        }
        let key: String = s[key_start..i].iter().collect();
        skip_ws(&mut i);
        if i >= s.len() || s[i] != '=' {
            // A bare word (such as `none`, or an authres-version): no pair.
            continue;
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        if i < s.len() && s[i] == '"' {
            i += 1;
            while i < s.len() && s[i] != '"' {
                if s[i] == '\\' && i + 1 < s.len() {
                    i += 1;
                }
                value.push(s[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < s.len() && !s[i].is_whitespace() {
                value.push(s[i]);
                i += 1;
            }
        }
        out.push((key.to_ascii_lowercase(), value));
    }
    out
}

/// Reads one field value (unfolded). `None` when it names no authserv-id.
pub fn parse(value: &str) -> Option<AuthResults> {
    let text = without_comments(value);
    let mut parts = statements(&text).into_iter();
    let authserv_id = parts
        .next()?
        .split_whitespace()
        .next()?
        .trim_matches('"')
        .to_ascii_lowercase();
    let mut results = Vec::new();
    for statement in parts {
        let mut pairs = pairs(statement).into_iter();
        let Some((method, result)) = pairs.next() else {
            continue;
        };
        // `dkim/1=pass`: the method's version is not part of its name.
        let method = method.split('/').next().unwrap_or("").to_string();
        results.push(MethodResult {
            method,
            result: result.to_ascii_lowercase(),
            properties: pairs.filter(|(k, _)| k.contains('.')).collect(),
        });
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// The domain of an address or a bare domain, lower case, without a trailing dot.
fn domain_of(s: &str) -> String {
    let s = s.trim().trim_matches(|c| c == '<' || c == '>');
    let d = s.rsplit_once('@').map_or(s, |(_, d)| d);
    d.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `signer` may vouch for mail from `from`: the same domain or a parent of it.
fn aligned(signer: &str, from: &str) -> bool {
    !signer.is_empty() && (signer == from || from.ends_with(&format!(".{signer}")))
}

/// Whether these results prove mail from `from_domain`.
pub fn proves(results: &AuthResults, from_domain: &str) -> bool {
    results.results.iter().any(|r| {
        r.result == "pass"
            && match r.method.as_str() {
                "dmarc" => r
                    .property("header.from")
                    .is_some_and(|v| domain_of(v) == from_domain),
                "dkim" => r
                    .property("header.d")
                    .or_else(|| r.property("header.i"))
                    .is_some_and(|v| aligned(&domain_of(v), from_domain)),
                _ => false,
            }
    })
}

/// Why a message's From is not authenticated, in words for a report (never the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAuthenticated {
    NoSingleFrom,
    NoTrustedResults,
    NotProven,
}

impl std::fmt::Display for NotAuthenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotAuthenticated::NoSingleFrom => "the message has no single From address",
            NotAuthenticated::NoTrustedResults => {
                "no Authentication-Results from a trusted authserv-id"
            }
            NotAuthenticated::NotProven => {
                "the trusted Authentication-Results do not show DMARC or aligned DKIM passing for the From domain"
            }
        })
    }
}

/// The message's From address (lower case) when the topmost `Authentication-Results`
/// from one of `trusted` authserv-ids proves it (see the module docs).
pub fn authenticated_from(
    mail: &MimeTree<'_>,
    trusted: &[String],
) -> Result<String, NotAuthenticated> {
    let from = single_from(mail).ok_or(NotAuthenticated::NoSingleFrom)?;
    let results = mail
        .field_values(0, "Authentication-Results")
        .iter()
        .filter_map(|v| parse(v))
        .find(|r| {
            trusted
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&r.authserv_id))
        })
        .ok_or(NotAuthenticated::NoTrustedResults)?;
    if proves(&results, &domain_of(&from)) {
        Ok(from)
    } else {
        Err(NotAuthenticated::NotProven)
    }
}

/// The one address of the one From field, lower case.
fn single_from(mail: &MimeTree<'_>) -> Option<String> {
    if mail.field_values(0, "From").len() != 1 {
        return None;
    }
    let from = mail.message().from()?;
    let mut addresses = from.iter();
    let first = addresses.next()?.address.as_ref()?.to_ascii_lowercase();
    if addresses.next().is_some() || !first.contains('@') {
        return None;
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(header: &str) -> Vec<u8> {
        format!("{header}Subject: s\r\n\r\nbody\r\n").into_bytes()
    }

    fn check(raw: &[u8]) -> Result<String, NotAuthenticated> {
        let mail = MimeTree::parse(raw).unwrap();
        authenticated_from(&mail, &[DEFAULT_TRUSTED_AUTHSERV_ID.to_string()])
    }

    const SES_PASS: &str = "Authentication-Results: amazonses.com;\r\n spf=pass (spf: domain of corp.example designates 192.0.2.1 as permitted sender) client-ip=192.0.2.1; envelope-from=a@corp.example; helo=mail.corp.example;\r\n dkim=pass header.i=@corp.example;\r\n dmarc=pass header.from=corp.example;\r\n";

    #[test]
    fn reads_rfc_8601_fields_with_comments_quotes_versions_and_spaces() {
        let r = parse("authrestest4int 2; spf=fail reason (BAH) = \"just some (<>.%&! reason\" smtp.mailfrom=dogma.slashnull.org").unwrap();
        assert_eq!(r.authserv_id, "authrestest4int");
        assert_eq!(r.results[0].method, "spf");
        assert_eq!(r.results[0].result, "fail");
        assert_eq!(
            r.results[0].property("smtp.mailfrom"),
            Some("dogma.slashnull.org")
        );
        let r = parse("x.example; dkim/1=PASS (2048-bit key; unprotected) header.d=gmail.com header.i=\" foo bar \\\"xyz\\\"@gmail.com\" header.b=SI+iqkld;").unwrap();
        assert_eq!(r.results.len(), 1, "{r:?}");
        assert_eq!(r.results[0].method, "dkim");
        assert_eq!(r.results[0].result, "pass");
        assert_eq!(r.results[0].property("header.d"), Some("gmail.com"));
        assert_eq!(
            r.results[0].property("header.i"),
            Some(" foo bar \"xyz\"@gmail.com")
        );
        assert_eq!(parse("example.org; none").unwrap().results.len(), 0);
    }

    #[test]
    fn dmarc_or_aligned_dkim_from_ses_authenticates_the_from_address() {
        let raw = tree(&format!("{SES_PASS}From: Alice <Alice@Corp.Example>\r\n"));
        assert_eq!(check(&raw).unwrap(), "alice@corp.example");
        let dkim_only = tree(
            "Authentication-Results: amazonses.com; dkim=pass header.d=corp.example\r\nFrom: a@mail.corp.example\r\n",
        );
        assert!(check(&dkim_only).is_ok(), "a parent domain signs");
    }

    #[test]
    fn a_spoofed_from_is_not_authenticated() {
        for header in [
            // Nothing from SES.
            "From: ceo@corp.example\r\n".to_string(),
            // The sender's own field, from an id nobody trusts.
            "Authentication-Results: mx.attacker.example; dmarc=pass header.from=corp.example\r\nFrom: ceo@corp.example\r\n".into(),
            // SES says DMARC failed; a forged pass below it does not count.
            "Authentication-Results: amazonses.com; dmarc=fail header.from=corp.example\r\nAuthentication-Results: amazonses.com; dmarc=pass header.from=corp.example\r\nFrom: ceo@corp.example\r\n".into(),
            // A pass for another domain.
            "Authentication-Results: amazonses.com; dkim=pass header.d=attacker.example; dmarc=pass header.from=attacker.example\r\nFrom: ceo@corp.example\r\n".into(),
            // A sub-domain's signature does not vouch for its parent.
            "Authentication-Results: amazonses.com; dkim=pass header.d=evil.corp.example\r\nFrom: ceo@corp.example\r\n".into(),
            // A look-alike suffix is not a parent.
            "Authentication-Results: amazonses.com; dkim=pass header.d=rp.example\r\nFrom: ceo@corp.example\r\n".into(),
            // Two From fields, or two addresses in one: readers disagree.
            format!("{SES_PASS}From: ceo@corp.example\r\nFrom: ceo@attacker.example\r\n"),
            format!("{SES_PASS}From: ceo@corp.example, x@attacker.example\r\n"),
            // dkim=fail and dmarc=none prove nothing.
            "Authentication-Results: amazonses.com; dkim=fail header.d=corp.example; dmarc=none header.from=corp.example\r\nFrom: ceo@corp.example\r\n".into(),
        ] {
            assert!(check(&tree(&header)).is_err(), "{header}");
        }
    }

    #[test]
    fn the_corpus_authres_sample_reads_as_spamassassin_reads_it() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpus/spamassassin/nice/authres.eml");
        let raw = std::fs::read(path).unwrap();
        let mail = MimeTree::parse(&raw).unwrap();
        let all: Vec<AuthResults> = mail
            .field_values(0, "Authentication-Results")
            .iter()
            .filter_map(|v| parse(v))
            .collect();
        let ids: Vec<&str> = all.iter().map(|r| r.authserv_id.as_str()).collect();
        assert_eq!(ids[..2], ["authrestest1int", "authrestest2int"]);
        assert_eq!(all[0].results.len(), 3);
        assert_eq!(all[0].results[1].property("header.i"), Some("@example.org"));
        // Trusting the first id: DKIM passed for example.org, not for ximian.com.
        let trusted = ["authrestest1int".to_string()];
        assert_eq!(
            authenticated_from(&mail, &trusted),
            Err(NotAuthenticated::NotProven)
        );
    }
}
