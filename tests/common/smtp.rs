//! Real mail servers and clients for the transport tests: aiosmtpd as the final hop and
//! Python's smtplib as the sender (tests/smtp/*.py, run by the venv's Python, which
//! `.ci/run` gives aiosmtpd), the `workmail-flow relay` and `milter` binaries, TLS
//! certificates made with rcgen, and a throwaway Postfix instance. Every server listens
//! on 127.0.0.1 and is killed when dropped. A missing tool fails the test.

use super::moto::free_port;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python with aiosmtpd: `WORKMAIL_FLOW_PYTHON`, else `.venv-ci/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("WORKMAIL_FLOW_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-ci/bin/python");
    assert!(
        venv.exists(),
        "{} not found: run `python3 -m venv .venv-ci && .venv-ci/bin/pip install aiosmtpd` (as .ci/run does) or set WORKMAIL_FLOW_PYTHON",
        venv.display()
    );
    venv
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/smtp")
        .join(name)
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wmf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until something accepts connections on `port`, or panics naming `what`.
pub fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on {port}: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// aiosmtpd keeping what it accepts.
pub struct FinalHop {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
    pub out: PathBuf,
}

/// One message the final hop kept.
#[derive(Debug)]
pub struct Kept {
    pub bytes: Vec<u8>,
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub tls: bool,
    /// The SMTP AUTH login the sender gave, if any.
    pub login: Option<String>,
}

impl FinalHop {
    /// Starts it; `extra` are final_hop.py's options (`--reply`, `--tls-cert`, ...).
    pub fn start(dir: &Path, extra: &[&str]) -> FinalHop {
        FinalHop::start_on(dir, free_port(), extra)
    }

    /// Starts it on `port` (one a relay was already pointed at).
    pub fn start_on(dir: &Path, port: u16, extra: &[&str]) -> FinalHop {
        let out = dir.join(format!("hop-{port}"));
        let mut child = Command::new(python())
            .arg(script("final_hop.py"))
            .args(["--port", &port.to_string(), "--out", out.to_str().unwrap()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start final_hop.py");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "final_hop.py did not start");
        wait_for_port(port, "final_hop.py", &mut child);
        FinalHop {
            child,
            _stdin: stdin,
            port,
            out,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What it kept so far, in arrival order.
    pub fn kept(&self) -> Vec<Kept> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .map(|json| {
                let meta: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
                Kept {
                    bytes: std::fs::read(json.with_extension("eml")).unwrap(),
                    mail_from: meta["mail_from"].as_str().unwrap().to_string(),
                    rcpt_tos: meta["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                    tls: meta["tls"].as_bool().unwrap(),
                    login: meta["login"].as_str().map(str::to_string),
                }
            })
            .collect()
    }

    /// Waits until it kept `n` messages (Postfix delivers asynchronously).
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Kept> {
        let started = Instant::now();
        loop {
            let kept = self.kept();
            if kept.len() >= n || started.elapsed() > limit {
                return kept;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FinalHop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `workmail-flow relay` or `milter` process, its stderr (the logs) kept in a file.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Starts `workmail-flow <command> --listen 127.0.0.1:<free port> <args>`.
    pub fn start(dir: &Path, command: &str, args: &[&str]) -> Server {
        Server::start_with_env(dir, command, args, &[])
    }

    pub fn start_with_env(
        dir: &Path,
        command: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let log = dir.join(format!("{command}-{port}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_workmail-flow"))
            .arg(command)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start workmail-flow");
        wait_for_port(port, command, &mut child);
        Server { child, port, log }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the server answered one send.
#[derive(Debug, Clone)]
pub struct Sent {
    pub code: Option<u16>,
    pub text: String,
    pub tls: bool,
}

/// Sends `file` with smtplib to 127.0.0.1:`port`; `extra` are send.py's options
/// (`--starttls`, `--count`, ...). One result per send.
pub fn send(port: u16, from: &str, to: &[&str], file: &Path, extra: &[&str]) -> Vec<Sent> {
    let mut cmd = Command::new(python());
    cmd.arg(script("send.py"))
        .args(["--port", &port.to_string(), "--from", from, "--file"])
        .arg(file);
    for t in to {
        cmd.args(["--to", t]);
    }
    let out = cmd.args(extra).output().expect("run send.py");
    assert!(
        out.status.success(),
        "send.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Sent {
                code: v["code"].as_u64().map(|c| c as u16),
                text: v["text"]
                    .as_str()
                    .or(v["error"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                tls: v["tls"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

/// A CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files.
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_certs(dir: &Path) -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "workmail-flow test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let certs = Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&certs.ca, ca.pem()).unwrap();
    std::fs::write(&certs.cert, cert.pem()).unwrap();
    std::fs::write(&certs.key, key.serialize_pem()).unwrap();
    certs
}

/// A message of about `size` bytes: a short text part and a base64 attachment.
pub fn large_message(size: usize) -> Vec<u8> {
    let mut m = b"From: Big Sender <big@partner.example>\r\nTo: bob@corp.example\r\nSubject: the archive\r\nDate: Mon, 02 Nov 2026 09:14:00 +0000\r\nMessage-ID: <big-1@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe archive is attached.\r\n\r\n--b1\r\nContent-Type: application/octet-stream; name=\"archive.bin\"\r\nContent-Disposition: attachment; filename=\"archive.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut n: u32 = 1;
    while m.len() < size {
        for _ in 0..76 {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            m.push(alphabet[(n >> 16) as usize % 64]);
        }
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"\r\n--b1--\r\n");
    m
}

/// A raw SMTP conversation for what smtplib cannot do (pipelining, holding a session).
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// One whole reply (its last line has a space after the code), or "" at EOF.
    pub fn reply(&mut self) -> String {
        let mut lines = String::new();
        loop {
            while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line).into_owned();
                let last = line.as_bytes().get(3) == Some(&b' ');
                lines.push_str(&line);
                if last {
                    return lines;
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return lines,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// A throwaway Postfix (Debian's package) on 127.0.0.1 with its own config, queue and
/// log under one folder; run as root, as the package's `postfix start` wants. Stopped
/// (`postfix abort`) when dropped.
pub struct Postfix {
    pub conf: PathBuf,
    pub port: u16,
    pub maillog: PathBuf,
}

/// The services a minimal Postfix runs, none chrooted; `{SMTPD}` is the listener.
const MASTER_CF: &str = "\
{SMTPD} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

impl Postfix {
    /// Starts Postfix listening on a free port, relaying everything to `relayhost`
    /// (`[127.0.0.1]:PORT`), with `main_extra` appended to main.cf (the milter, TLS).
    pub fn start(dir: &Path, relayhost: &str, main_extra: &str) -> Postfix {
        let root = dir.join("postfix");
        let conf = root.join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(root.join("queue")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        let chown = Command::new("chown")
            .args(["postfix"])
            .arg(root.join("data"))
            .status()
            .expect("chown (is Debian's postfix package installed?)");
        assert!(
            chown.success(),
            "the postfix user is missing: apt-get install postfix"
        );
        let port = free_port();
        let maillog = root.join("maillog");
        let main = format!(
            "compatibility_level = 3.6
queue_directory = {q}
data_directory = {d}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mta.test
mydestination =
local_recipient_maps =
relay_domains =
relayhost = {relayhost}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
maillog_file = {log}
maillog_file_prefixes = /tmp, {root}
message_size_limit = 100000000
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
anvil_rate_time_unit = 1s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
{main_extra}
",
            q = root.join("queue").display(),
            d = root.join("data").display(),
            log = maillog.display(),
            root = root.display(),
        );
        std::fs::write(conf.join("main.cf"), main).unwrap();
        std::fs::write(
            conf.join("master.cf"),
            MASTER_CF.replace("{SMTPD}", &format!("127.0.0.1:{port}")),
        )
        .unwrap();
        let postfix = Postfix {
            conf,
            port,
            maillog,
        };
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&postfix.conf)
            .arg("start")
            .output()
            .expect("postfix (apt-get install postfix, as .ci/run does)");
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            postfix.log()
        );
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "postfix did not listen on {port}: {}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        postfix
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// `postqueue -p`: what is still queued.
    pub fn queue(&self) -> String {
        let out = Command::new("postqueue")
            .arg("-c")
            .arg(&self.conf)
            .arg("-p")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `postqueue -f`: try every deferred message again now.
    pub fn flush(&self) {
        let _ = Command::new("postqueue")
            .arg("-c")
            .arg(&self.conf)
            .arg("-f")
            .status();
    }

    /// Waits until the log holds `needle`, at most `limit`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("abort")
            .output();
    }
}

/// `bytes` with every line ending as CRLF (what a mail server writes on the wire).
pub fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 40);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}
