//! Where `replay`'s messages come from and where the results go, in the same form: single
//! files, folders (recursively), Maildirs, mbox files, zip archives, and
//! `s3://bucket/prefix` (where a WorkMail mailbox export lands).
//!
//! | input | messages | written to |
//! |---|---|---|
//! | a file | the file | `OUT/<file name>` |
//! | a folder | every file under it, recursively | `OUT/<folder name>/<same relative path>` |
//! | a Maildir (`cur/`, `new/`) | the files in `cur/` and `new/` | `OUT/<name>/cur/...`, `OUT/<name>/new/...` |
//! | an mbox (`.mbox`/`.mbx`, or a file starting with a `From ` line) | each message between `From ` lines | `OUT/<file name>`, an mbox again |
//! | a `.zip` | every file entry | `OUT/<file name>`, a zip with the same entry names |
//! | `s3://bucket/prefix` | every object under the prefix | `OUT/<bucket>/<key>` |
//!
//! In an mbox a message starts at a line beginning `From ` at the start of the file or
//! after an empty line. Body lines that begin `From ` are quoted with `>` when written:
//! `mboxrd` (the default) quotes and unquotes any number of `>` before `From `, so every
//! message reads back as it was; `mboxo` quotes only `From ` and unquotes only `>From `,
//! as older tools do.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// How `>From ` lines are read and written in an mbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MboxFormat {
    /// Any run of `>` before `From ` is one quote level (reversible).
    #[default]
    Mboxrd,
    /// Only `From ` is quoted, only `>From ` unquoted (the original mbox).
    Mboxo,
}

/// Lists and reads every object under a bucket and prefix: `(key, bytes)`.
pub type S3Lister = dyn Fn(&str, &str) -> Result<Vec<(String, Vec<u8>)>, String>;

/// One input as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Dir(PathBuf),
    Maildir(PathBuf),
    Mbox(PathBuf),
    Zip(PathBuf),
    S3 { bucket: String, prefix: String },
}

/// One message of a source: where it is in the source (its report name and relative
/// output path) and its bytes, read when asked for (a folder's files one at a time).
pub struct Item {
    /// Shown in the report: `samples/plain.eml`, `inbox.mbox#3`, `s3://b/k`.
    pub label: String,
    /// Where the result goes under OUT (files and folders), or the entry name (zip).
    pub out_path: PathBuf,
    /// For an mbox, the message's `From ` line, written back before it.
    pub from_line: Option<Vec<u8>>,
    data: ItemData,
}

enum ItemData {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

impl Item {
    /// The message's bytes.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match &self.data {
            ItemData::Path(p) => std::fs::read(p).map_err(|e| format!("cannot read: {e}")),
            ItemData::Bytes(b) => Ok(b.clone()),
        }
    }

    /// The file this message is read from, if it is one of its own (the input folder
    /// files and single files; never written to).
    pub fn path(&self) -> Option<&Path> {
        match &self.data {
            ItemData::Path(p) => Some(p),
            ItemData::Bytes(_) => None,
        }
    }
}

impl Source {
    /// Reads what an INPUT argument names.
    pub fn detect(arg: &Path) -> Result<Source, String> {
        let text = arg.to_string_lossy();
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{text}: no bucket; write s3://bucket/prefix"));
            }
            return Ok(Source::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        // A path that cannot be read is a message that fails on its own line (the rest
        // of the run goes on), as a single file would.
        let Ok(meta) = std::fs::metadata(arg) else {
            return Ok(Source::File(arg.to_path_buf()));
        };
        if meta.is_dir() {
            return Ok(if arg.join("cur").is_dir() || arg.join("new").is_dir() {
                Source::Maildir(arg.to_path_buf())
            } else {
                Source::Dir(arg.to_path_buf())
            });
        }
        let ext = arg
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let mut head = [0u8; 5];
        let Ok(n) = std::fs::File::open(arg).and_then(|mut f| f.read(&mut head)) else {
            return Ok(Source::File(arg.to_path_buf()));
        };
        let head = &head[..n];
        Ok(if ext == "zip" || head.starts_with(b"PK\x03\x04") {
            Source::Zip(arg.to_path_buf())
        } else if matches!(ext.as_str(), "mbox" | "mbx" | "mbs") || head == b"From " {
            Source::Mbox(arg.to_path_buf())
        } else {
            Source::File(arg.to_path_buf())
        })
    }

    /// The paths on this machine the source reads, for the check that OUT is not
    /// among them.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Source::File(p)
            | Source::Dir(p)
            | Source::Maildir(p)
            | Source::Mbox(p)
            | Source::Zip(p) => Some(p),
            Source::S3 { .. } => None,
        }
    }

    /// Whether results are written one file per message (else into one container file).
    pub fn is_container(&self) -> bool {
        matches!(self, Source::Mbox(_) | Source::Zip(_))
    }

    /// The source's name under OUT: the file or folder name, or the bucket.
    pub fn out_name(&self) -> PathBuf {
        match self {
            Source::S3 { bucket, .. } => PathBuf::from(bucket),
            // `.` and `..` name no folder; the folder they stand for does.
            other => other
                .local_path()
                .map(resolved)
                .and_then(|p| p.file_name().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("input")),
        }
    }

    /// Every message of the source, in order.
    pub fn items(&self, mbox: MboxFormat, s3: &S3Lister) -> Result<Vec<Item>, String> {
        match self {
            Source::File(p) => Ok(vec![Item {
                label: p.display().to_string(),
                out_path: self.out_name(),
                from_line: None,
                data: ItemData::Path(p.clone()),
            }]),
            Source::Dir(root) | Source::Maildir(root) => {
                let mut files = Vec::new();
                walk(root, root, &mut files)?;
                if matches!(self, Source::Maildir(_)) {
                    // Only delivered mail: tmp/ holds messages still being written.
                    files.retain(|rel| {
                        matches!(
                            rel.components().next(),
                            Some(Component::Normal(c)) if c == "cur" || c == "new"
                        )
                    });
                }
                files.sort();
                let name = self.out_name();
                Ok(files
                    .into_iter()
                    .map(|rel| Item {
                        label: root.join(&rel).display().to_string(),
                        out_path: name.join(&rel),
                        from_line: None,
                        data: ItemData::Path(root.join(&rel)),
                    })
                    .collect())
            }
            Source::Mbox(p) => {
                let raw =
                    std::fs::read(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
                Ok(split_mbox(&raw, mbox)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (from_line, message))| Item {
                        label: format!("{}#{}", p.display(), i + 1),
                        out_path: self.out_name(),
                        from_line: Some(from_line),
                        data: ItemData::Bytes(message),
                    })
                    .collect())
            }
            Source::Zip(p) => read_zip(p),
            Source::S3 { bucket, prefix } => Ok(s3(bucket, prefix)?
                .into_iter()
                .map(|(key, bytes)| Item {
                    label: format!("s3://{bucket}/{key}"),
                    out_path: Path::new(bucket).join(key_path(&key)),
                    from_line: None,
                    data: ItemData::Bytes(bytes),
                })
                .collect()),
        }
    }
}

/// An S3 key as a relative path that stays under OUT: `/`-separated segments, empty and
/// `.` ones dropped, `..` written `%2E%2E` (a key may hold anything; a path may not climb
/// out of the folder it is written to).
fn key_path(key: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for seg in key.split('/') {
        match seg {
            "" | "." => {}
            ".." => out.push("%2E%2E"),
            s => out.push(s),
        }
    }
    if out.as_os_str().is_empty() {
        out.push("%2F");
    }
    out
}

/// Every file under `dir`, as paths relative to `root` (symbolic links not followed, so
/// a link cannot lead the walk out of the folder or round in a loop).
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        let path = entry.path();
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// Whether `line` (without its line break) starts a message in an mbox.
fn is_from_line(line: &[u8]) -> bool {
    line.starts_with(b"From ")
}

/// Splits an mbox into its messages: each one's `From ` line (with its line break) and
/// its bytes, unquoted.
pub fn split_mbox(raw: &[u8], format: MboxFormat) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut messages: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut previous_empty = true;
    let mut pos = 0;
    while pos < raw.len() {
        let end = memchr::memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if previous_empty && is_from_line(text) {
            // The empty line before a From line belongs to the mbox, not the message.
            if let Some((_, body)) = messages.last_mut() {
                strip_one_line_break(body);
            }
            messages.push((line.to_vec(), Vec::new()));
        } else if let Some((_, body)) = messages.last_mut() {
            body.extend_from_slice(&unquote(line, format));
        } else {
            // Text before the first From line: a message of its own without one.
            messages.push((Vec::new(), line.to_vec()));
        }
        previous_empty = text.is_empty();
        pos = end;
    }
    // The empty line that ends the last message belongs to the mbox too.
    if let Some((from, body)) = messages.last_mut()
        && !from.is_empty()
    {
        strip_one_line_break(body);
    }
    messages
}

fn strip_one_line_break(body: &mut Vec<u8>) {
    if body.ends_with(b"\r\n\r\n") || body.ends_with(b"\n\r\n") {
        body.truncate(body.len() - 2);
    } else if body.ends_with(b"\n\n") {
        body.truncate(body.len() - 1);
    }
}

fn quote_depth(line: &[u8]) -> usize {
    line.iter().take_while(|&&b| b == b'>').count()
}

fn unquote(line: &[u8], format: MboxFormat) -> std::borrow::Cow<'_, [u8]> {
    let depth = quote_depth(line);
    let quoted = match format {
        MboxFormat::Mboxrd => depth > 0 && line[depth..].starts_with(b"From "),
        MboxFormat::Mboxo => depth == 1 && line[1..].starts_with(b"From "),
    };
    if quoted {
        std::borrow::Cow::Owned(line[1..].to_vec())
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

/// Writes one message into an mbox: its From line (a generic one if it had none), the
/// message with `From ` lines quoted, and the empty line that ends it.
pub fn write_mbox_message(
    out: &mut impl Write,
    from_line: Option<&[u8]>,
    message: &[u8],
    format: MboxFormat,
) -> std::io::Result<()> {
    match from_line.filter(|l| !l.is_empty()) {
        Some(line) => out.write_all(line)?,
        None => out.write_all(b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n")?,
    }
    let nl: &[u8] = if message.windows(2).any(|w| w == b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut pos = 0;
    while pos < message.len() {
        let end = memchr::memchr(b'\n', &message[pos..]).map_or(message.len(), |i| pos + i + 1);
        let line = &message[pos..end];
        let depth = quote_depth(line);
        let quote = match format {
            MboxFormat::Mboxrd => line[depth..].starts_with(b"From "),
            MboxFormat::Mboxo => line.starts_with(b"From "),
        };
        if quote {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
        pos = end;
    }
    if !message.is_empty() && !message.ends_with(b"\n") {
        out.write_all(nl)?;
    }
    out.write_all(nl)
}

fn read_zip(path: &Path) -> Result<Vec<Item>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("{}: not a zip archive: {e}", path.display()))?;
    let mut items = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("{}: entry {i}: {e}", path.display()))?;
        if !entry.is_file() {
            continue;
        }
        // The entry's own name, checked: no absolute paths or `..` out of the archive.
        let Some(name) = entry.enclosed_name() else {
            return Err(format!(
                "{}: entry {:?} points outside the archive",
                path.display(),
                entry.name()
            ));
        };
        let mut bytes = Vec::with_capacity(entry.size().min(64 << 20) as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {}: {e}", path.display(), name.display()))?;
        items.push(Item {
            label: format!("{}#{}", path.display(), name.display()),
            out_path: name,
            from_line: None,
            data: ItemData::Bytes(bytes),
        });
    }
    Ok(items)
}

/// A zip of `entries` (name, bytes), deflated, in order.
pub fn write_zip(path: &Path, entries: &[(PathBuf, Vec<u8>)]) -> Result<(), String> {
    let file = std::fs::File::create(path)
        .map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        let name = name.to_string_lossy().replace('\\', "/");
        zip.start_file(name.as_str(), options)
            .and_then(|()| zip.write_all(bytes).map_err(Into::into))
            .map_err(|e| format!("{}: {name}: {e}", path.display()))?;
    }
    zip.finish()
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(())
}

/// `path` made absolute with `.` and `..` resolved, and symbolic links followed in the
/// part that exists on disk.
pub fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut lexical = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut existing = lexical;
    let mut rest = Vec::new();
    while !existing.exists() {
        let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
            break;
        };
        rest.push(name);
        existing.pop();
    }
    let mut out = std::fs::canonicalize(&existing).unwrap_or(existing);
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBOX: &[u8] = b"From alice@x.example Mon Nov  2 09:00:00 2026\nFrom: alice@x.example\nSubject: one\n\nHello\nFrom the start, a body line.\n>From a quoted one.\n\nFrom bob@y.example Mon Nov  2 09:01:00 2026\nFrom: bob@y.example\nSubject: two\n\nBye\n\n";

    #[test]
    fn an_mbox_splits_at_from_lines_after_an_empty_line_and_unquotes_as_mboxrd() {
        let messages = split_mbox(MBOX, MboxFormat::Mboxrd);
        assert_eq!(messages.len(), 2);
        assert!(messages[0].0.starts_with(b"From alice@x.example"));
        let first = String::from_utf8_lossy(&messages[0].1).into_owned();
        assert_eq!(
            first,
            "From: alice@x.example\nSubject: one\n\nHello\nFrom the start, a body line.\nFrom a quoted one.\n"
        );
        assert_eq!(messages[1].1, b"From: bob@y.example\nSubject: two\n\nBye\n");
    }

    #[test]
    fn mboxrd_writing_and_reading_give_every_message_back_byte_for_byte() {
        let messages = [
            &b"Subject: a\n\nFrom here\n>From there\n>>From further\n"[..],
            b"Subject: b\r\n\r\nFrom crlf\r\n",
            b"Subject: c\n\nno final line break",
        ];
        let mut mbox = Vec::new();
        for m in messages {
            write_mbox_message(&mut mbox, None, m, MboxFormat::Mboxrd).unwrap();
        }
        let back = split_mbox(&mbox, MboxFormat::Mboxrd);
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].1, messages[0]);
        assert_eq!(back[1].1, messages[1]);
        assert_eq!(back[2].1, b"Subject: c\n\nno final line break\n");
    }

    #[test]
    fn mboxo_unquotes_only_one_level() {
        let raw = b"From a Mon Nov  2 09:00:00 2026\nSubject: a\n\n>From one\n>>From two\n";
        let m = split_mbox(raw, MboxFormat::Mboxo);
        assert_eq!(m[0].1, b"Subject: a\n\nFrom one\n>>From two\n");
    }

    #[test]
    fn a_file_with_one_leading_from_line_is_one_message() {
        let raw = b"From a@x.example Mon Nov  2 09:00:00 2026\nFrom: a@x.example\n\nbody\n";
        let m = split_mbox(raw, MboxFormat::Mboxrd);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].1, b"From: a@x.example\n\nbody\n");
    }

    #[test]
    fn an_s3_key_never_climbs_out_of_the_output_folder() {
        assert_eq!(key_path("export/u1/1.eml"), Path::new("export/u1/1.eml"));
        assert_eq!(
            key_path("../../etc/passwd"),
            Path::new("%2E%2E/%2E%2E/etc/passwd")
        );
        assert_eq!(key_path("/abs//./x"), Path::new("abs/x"));
        assert_eq!(key_path("/"), Path::new("%2F"));
        for k in ["../x", "/etc/x", "a/../../b"] {
            assert!(
                key_path(k)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{k}"
            );
        }
    }

    #[test]
    fn resolved_paths_see_through_dot_dot() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            resolved(Path::new("samples/../samples")),
            resolved(&here.join("samples"))
        );
        assert_eq!(
            resolved(Path::new("no-such/../samples")),
            resolved(Path::new("samples"))
        );
    }
}
