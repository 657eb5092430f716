//! A fault-injecting hop between the AWS SDK and moto on 127.0.0.1: every request is
//! forwarded to moto as it came (the SDK's signature, Host and body untouched), except
//! the ones a rule picks out, which get an S3 error (or a wait) instead. moto itself has
//! no way to fail on purpose, and the failures to prove are S3's own: AccessDenied on
//! the upload, a 5xx, an UploadPart that fails, a part that takes too long.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// The S3 operations a rule can pick out, read from method and query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    PutObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    Other,
}

fn op_of(method: &Method, query: &str) -> Op {
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    match *method {
        Method::PUT if has("partNumber") => Op::UploadPart,
        Method::PUT if !has("tagging") && !has("acl") => Op::PutObject,
        Method::POST if has("uploads") => Op::CreateMultipartUpload,
        Method::POST if has("uploadId") => Op::CompleteMultipartUpload,
        Method::DELETE if has("uploadId") => Op::AbortMultipartUpload,
        _ => Op::Other,
    }
}

/// What a rule does to the requests it picks out.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and S3 error code.
    Error { status: u16, code: &'static str },
    /// Wait this long, then forward.
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    op: Op,
    fault: Fault,
    /// How many more requests it applies to.
    left: usize,
}

/// The hop's address and rules; dropping it stops it.
pub struct S3Faults {
    pub url: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    seen: Arc<Mutex<Vec<Op>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for S3Faults {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl S3Faults {
    /// Starts forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> S3Faults {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Op>>> = Arc::default();
        let (r, s) = (rules.clone(), seen.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (rules, seen, upstream) = (r.clone(), s.clone(), upstream.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (rules, seen, upstream) =
                            (rules.clone(), seen.clone(), upstream.clone());
                        async move { Ok::<_, Infallible>(handle(req, &rules, &seen, &upstream).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        S3Faults {
            url,
            rules,
            seen,
            server,
        }
    }

    /// Applies `fault` to the next `times` requests of `op`.
    pub fn inject(&self, op: Op, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(Rule {
            op,
            fault,
            left: times,
        });
    }

    /// The operations the hop has seen, in order.
    pub fn seen(&self) -> Vec<Op> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
    req: Request<Incoming>,
    rules: &Mutex<Vec<Rule>>,
    seen: &Mutex<Vec<Op>>,
    upstream: &str,
) -> Response<Full<Bytes>> {
    let op = op_of(req.method(), req.uri().query().unwrap_or(""));
    seen.lock().unwrap().push(op);
    let fault = {
        let mut rules = rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.op == op && r.left > 0)
            .map(|r| {
                r.left -= 1;
                r.fault.clone()
            })
    };
    let (parts, body) = req.into_parts();
    // Read the whole request first, as S3 would, before failing it.
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    match fault {
        Some(Fault::Error { status, code }) => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{code} (injected)</Message><RequestId>injected</RequestId></Error>"
            );
            return Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header("content-type", "application/xml")
                .body(Full::new(Bytes::from(xml)))
                .unwrap();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    forward(parts, body, upstream).await.unwrap_or_else(|e| {
        Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::from(format!("forwarding: {e}"))))
            .unwrap()
    })
}

async fn forward(
    parts: hyper::http::request::Parts,
    body: Bytes,
    upstream: &str,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::from_parts(parts, Full::new(body));
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}
