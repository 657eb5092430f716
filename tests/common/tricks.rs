//! Messages crafted the ways senders hide an attachment from a filter: structure two
//! readers split differently, names two readers decode differently, and files tucked
//! where a filter does not look. Each carries `evil.exe` (the bytes `MZ...`, base64
//! `TVqQAAMAAAAEAAAA`) somewhere; the tests check that after `strip_attachments` no
//! reader still finds it, or that the message is refused.

/// The base64 of the hidden file's first bytes, so tests can look for it in output.
pub const EXE_B64: &str = "TVqQAAMAAAAEAAAA";

fn msg(top: &str, body: &str) -> Vec<u8> {
    format!(
        "From: a@partner.example\nTo: b@corp.example\nSubject: t\nMIME-Version: 1.0\n{top}\n{body}"
    )
    .into_bytes()
}

fn exe_part(headers: &str) -> String {
    format!("{headers}\nContent-Transfer-Encoding: base64\n\n{EXE_B64}\n")
}

const TEXT: &str = "Content-Type: text/plain\n\nhello\n";

/// Every trick, named.
pub fn all() -> Vec<(String, Vec<u8>)> {
    let ct_exe = "Content-Type: application/octet-stream; name=\"evil.exe\"";
    let cd_exe = "Content-Disposition: attachment; filename=\"evil.exe\"";
    let plain_exe = format!("{ct_exe}\n{cd_exe}");
    let mixed = |parts: &[String]| {
        let mut b = String::new();
        for p in parts {
            b.push_str("--B\n");
            b.push_str(p);
        }
        b.push_str("--B--\n");
        msg("Content-Type: multipart/mixed; boundary=\"B\"\n", &b)
    };
    let mut v: Vec<(String, Vec<u8>)> = vec![
        (
            "plain_attachment".into(),
            mixed(&[TEXT.into(), exe_part(&plain_exe)]),
        ),
        (
            "boundary_in_the_middle_of_a_line".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\n",
                &format!("--B\n{TEXT}text --B\n{}--B--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "duplicate_content_type_text_first".into(),
            msg(
                "Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=\"B\"\n",
                &format!("--B\n{TEXT}--B\n{}--B--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "duplicate_content_type_multipart_first".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\nContent-Type: text/plain\n",
                &format!("--B\n{TEXT}--B\n{}--B--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "duplicate_boundary_parameter".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"A\"; boundary=\"B\"\n",
                &format!("--A\n{TEXT}--B\n{}--B--\n--A--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "boundary_prefix_of_inner_boundary".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\n",
                &format!(
                    "--B\nContent-Type: multipart/alternative; boundary=\"BB\"\n\n--BB\n{TEXT}--BB\n{}--BB--\n--B--\n",
                    exe_part(&plain_exe)
                ),
            ),
        ),
        (
            "unclosed_inner_multipart".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\n",
                &format!(
                    "--B\nContent-Type: multipart/alternative; boundary=\"I\"\n\n--I\n{TEXT}--B\n{}--B--\n",
                    exe_part(&plain_exe)
                ),
            ),
        ),
        (
            "missing_close_delimiter".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\n",
                &format!("--B\n{TEXT}--B\n{}", exe_part(&plain_exe)),
            ),
        ),
        (
            "header_line_that_is_not_a_field".into(),
            msg(
                "X-Note this is no field\nContent-Type: multipart/mixed; boundary=\"B\"\n",
                &format!("--B\n{TEXT}--B\n{}--B--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "space_before_colon".into(),
            msg(
                "Content-Type : multipart/mixed; boundary=\"B\"\n",
                &format!("--B\n{TEXT}--B\n{}--B--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "folded_boundary_parameter".into(),
            msg(
                "Content-Type: multipart/mixed;\n boundary=\"B\"\n",
                &format!("--B\n{TEXT}--B\n{}--B--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "delimiter_with_transport_padding".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\n",
                &format!("--B \t\n{TEXT}--B  \n{}--B--  \n", exe_part(&plain_exe)),
            ),
        ),
        (
            "bare_cr_delimiters".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\n",
                &format!(
                    "--B\n{TEXT}hi\r--B\r{ct_exe}\r{cd_exe}\rContent-Transfer-Encoding: base64\r\r{EXE_B64}\r--B--\n"
                ),
            ),
        ),
        (
            "part_after_the_close_delimiter".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\n",
                &format!("--B\n{TEXT}--B--\n{}", exe_part(&plain_exe)),
            ),
        ),
        (
            "part_in_the_preamble".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\n",
                &format!("{}\n--B\n{TEXT}--B--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "forwarded_message_with_attachment".into(),
            mixed(&[
                TEXT.into(),
                format!(
                    "Content-Type: message/rfc822\n\nFrom: c@x.example\nSubject: fwd\nContent-Type: multipart/mixed; boundary=\"C\"\n\n--C\n{TEXT}--C\n{}--C--\n",
                    exe_part(&plain_exe)
                ),
            ]),
        ),
        (
            "base64_forwarded_message".into(),
            mixed(&[TEXT.into(), {
                use base64::Engine;
                let inner = format!(
                    "From: c@x.example\nContent-Type: multipart/mixed; boundary=\"C\"\n\n--C\n{TEXT}--C\n{}--C--\n",
                    exe_part(&plain_exe)
                );
                let b = base64::engine::general_purpose::STANDARD.encode(inner);
                format!("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{b}\n")
            }]),
        ),
        (
            "name_only_in_content_type".into(),
            mixed(&[TEXT.into(), exe_part(ct_exe)]),
        ),
        (
            "filename_only_in_disposition".into(),
            mixed(&[
                TEXT.into(),
                exe_part(&format!("Content-Type: application/octet-stream\n{cd_exe}")),
            ]),
        ),
        (
            "name_and_filename_differ".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream; name=\"evil.exe\"\nContent-Disposition: attachment; filename=\"report.pdf\"",
                ),
            ]),
        ),
        (
            "duplicate_disposition".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"report.pdf\"\nContent-Disposition: attachment; filename=\"evil.exe\"",
                ),
            ]),
        ),
        (
            "rfc2231_continuation".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*0=\"ev\"; filename*1=\"il.e\"; filename*2=\"xe\"",
                ),
            ]),
        ),
        (
            "rfc2231_encoded".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''evil%2Eexe",
                ),
            ]),
        ),
        (
            "rfc2047_in_quoted_name".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream; name=\"=?utf-8?B?ZXZpbC5leGU=?=\"\nContent-Disposition: attachment",
                ),
            ]),
        ),
        (
            "rfc2047_without_padding".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream; name=\"=?utf-8?B?ZXZpbC5leGU?=\"\nContent-Disposition: attachment",
                ),
            ]),
        ),
        (
            "nul_in_name".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"evil.exe\0.txt\"",
                ),
            ]),
        ),
        (
            "trailing_dots_and_spaces".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"evil.exe. . .\"",
                ),
            ]),
        ),
        (
            "ntfs_stream_suffix".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"evil.exe::$DATA\"",
                ),
            ]),
        ),
        (
            "folded_inside_the_name".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment;\n filename=\"evil.\n exe\"",
                ),
            ]),
        ),
        (
            "uppercase_extension".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"EVIL.EXE\"",
                ),
            ]),
        ),
        (
            "right_to_left_override".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"=?utf-8?B?ZXZpbOKArmZkcC5leGU=?=\"",
                ),
            ]),
        ),
        (
            "uuencoded_in_body_text".into(),
            msg(
                "Content-Type: text/plain\n",
                "hello\n\nbegin 644 evil.exe\nM35J0``,````$````__\\`\n`\nend\n",
            ),
        ),
        (
            "single_part_attachment".into(),
            msg(
                &format!("{ct_exe}\n{cd_exe}\nContent-Transfer-Encoding: base64\n"),
                &format!("{EXE_B64}\n"),
            ),
        ),
        (
            "inline_disposition_with_exe_name".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: application/octet-stream; name=\"evil.exe\"\nContent-Disposition: inline",
                ),
            ]),
        ),
        (
            "text_plain_typed_exe".into(),
            mixed(&[
                TEXT.into(),
                exe_part(
                    "Content-Type: text/plain; name=\"evil.exe\"\nContent-Disposition: attachment",
                ),
            ]),
        ),
        (
            "multipart_without_boundary_holding_a_part".into(),
            msg(
                "Content-Type: multipart/mixed\n",
                &format!("--B\n{TEXT}--B\n{}--B--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "signed_wrapper".into(),
            msg(
                "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=\"S\"\n",
                &format!(
                    "--S\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\n{TEXT}--B\n{}--B--\n--S\nContent-Type: application/pkcs7-signature; name=smime.p7s\n\nAAAA\n--S--\n",
                    exe_part(&plain_exe)
                ),
            ),
        ),
        (
            "missing_blank_line_after_part_header".into(),
            mixed(&[
                TEXT.into(),
                format!("{plain_exe}\nContent-Transfer-Encoding: base64\n{EXE_B64}\n"),
            ]),
        ),
        (
            "case_changed_boundary".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"b\"\n",
                &format!("--b\n{TEXT}--B\n{}--b--\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "digest_default_type".into(),
            msg(
                "Content-Type: multipart/digest; boundary=\"D\"\n",
                &format!(
                    "--D\n\nFrom: c@x.example\nContent-Type: multipart/mixed; boundary=\"C\"\n\n--C\n{TEXT}--C\n{}--C--\n--D--\n",
                    exe_part(&plain_exe)
                ),
            ),
        ),
        (
            "crlf_and_lf_mixed".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B\"\r\n",
                &format!("--B\r\n{TEXT}--B\n{}--B--\r\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "no_empty_line_after_the_message_header".into(),
            format!(
                "From: a@partner.example\nSubject: t\nContent-Type: multipart/mixed; boundary=\"B\"\n--B\n{TEXT}--B\n{}--B--\n",
                exe_part(&plain_exe)
            )
            .into_bytes(),
        ),
        (
            "boundary_with_trailing_space".into(),
            msg(
                "Content-Type: multipart/mixed; boundary=\"B \"\n",
                &format!("--B \n{TEXT}--B\n{}--B --\n", exe_part(&plain_exe)),
            ),
        ),
        (
            "leading_whitespace_first_line".into(),
            [
                b" \n".as_slice(),
                &mixed(&[TEXT.into(), exe_part(&plain_exe)]),
            ]
            .concat(),
        ),
    ];
    // The same tricks with CRLF line ends, where that is not the trick itself.
    let crlf: Vec<(String, Vec<u8>)> = v
        .iter()
        .filter(|(n, raw)| !n.contains("bare_cr") && !n.contains("crlf") && !raw.contains(&b'\r'))
        .map(|(n, raw)| {
            let text = String::from_utf8_lossy(raw).replace('\n', "\r\n");
            (format!("{n}_crlf"), text.into_bytes())
        })
        .collect();
    v.extend(crlf);
    v
}
