//! A real S3 server for tests: moto's `moto_server` on 127.0.0.1, started per test and
//! killed when dropped. `.ci/run` installs it into `.venv-ci/`; elsewhere set
//! `MOTO_SERVER` or put `moto_server` on PATH (`pip install 'moto[server]'`). A missing
//! server fails the test: the end-to-end proof must not silently vanish.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-ci/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("moto_server"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "moto_server not found: run `python3 -m venv .venv-ci && .venv-ci/bin/pip install 'moto[server]'` (as .ci/run does) or set MOTO_SERVER"
            )
        })
}

/// A loopback port nothing listens on now, and that no other test of this process was
/// given: the port is released before the server binds it, and two tests running at
/// once could otherwise be handed the same one (the second server then fails to bind,
/// and its test talks to the first test's server until that one is killed).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Starts moto on a free loopback port and waits until it answers HTTP.
pub fn start() -> Moto {
    let port = free_port();
    let child = Command::new(moto_bin())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let mut moto = Moto { child, port };
    let started = Instant::now();
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut buf = [0u8; 8];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                return moto;
            }
        }
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!(
                "moto_server on port {} exited before answering: {status}",
                moto.port
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}
