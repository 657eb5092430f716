//! The delivery status notification (RFC 3464) a sender gets when a verdict bounced some
//! of a message's recipients and the others got it: the same report the pipe filter
//! sends, from the null sender, with the original's header (never its body).

use std::time::SystemTime;

/// The notification for `bounced` (recipient, text) to `sender`, written by
/// `reporting_mta`, holding `original_header` (the bytes before the empty line).
pub fn partial_bounce(
    reporting_mta: &str,
    sender: &str,
    bounced: &[(String, String)],
    original_header: &[u8],
    now: SystemTime,
) -> Vec<u8> {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let boundary = format!("workmail-flow-dsn-{}-{nanos}", std::process::id());
    let text = |s: &str| super::delivery::reply_text(s);
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n"
    ));
    m.push_str(&format!("To: <{sender}>\r\n"));
    m.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    m.push_str(&format!("Date: {}\r\n", httpdate::fmt_http_date(now)));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ));
    m.push_str("Your message was not delivered to these recipients:\r\n\r\n");
    for (rcpt, why) in bounced {
        m.push_str(&format!("  <{rcpt}>: {}\r\n", text(why)));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {reporting_mta}\r\n"));
    for (rcpt, why) in bounced {
        m.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.7.1\r\nDiagnostic-Code: smtp; 550 5.7.1 {}\r\n",
            text(why)
        ));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let mut out = m.into_bytes();
    out.extend_from_slice(original_header);
    if !original_header.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_each_bounced_recipient_and_carries_only_the_header() {
        let dsn = partial_bounce(
            "relay.example",
            "alice@example.com",
            &[(
                "old@closed.example".into(),
                "Mailbox closed\r\nBcc: x".into(),
            )],
            b"From: alice@example.com\r\nSubject: hi\r\n",
            SystemTime::UNIX_EPOCH,
        );
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("Final-Recipient: rfc822; old@closed.example\r\n"));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.7.1 Mailbox closed  Bcc: x\r\n"));
        assert!(text.contains("Subject: hi\r\n"));
        assert!(!text.contains("\nBcc:"), "a bounce text cannot add a field");
        assert!(text.contains("Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"));
    }
}
