//! A fake AWS Lambda Runtime API (2018-06-01) on 127.0.0.1, so the real `rewrite`
//! binary can run as Lambda runs it: it polls `GET .../invocation/next`, and posts each
//! answer to `.../invocation/{id}/response` or `/error`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};

/// What the function posted for one invocation.
#[derive(Debug, Clone)]
pub enum Answer {
    Response { request_id: String, body: Bytes },
    Error { request_id: String, body: Bytes },
    InitError { body: Bytes },
}

#[derive(Default)]
struct State {
    events: Mutex<VecDeque<(String, Bytes)>>,
    notify: Notify,
    first_poll: Mutex<Option<Instant>>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<State>,
    answers: tokio::sync::Mutex<mpsc::UnboundedReceiver<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<State> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let st = st.clone();
                        let tx = tx.clone();
                        async move { Ok::<_, Infallible>(handle(st, tx, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        RuntimeApi {
            addr,
            state,
            answers: tokio::sync::Mutex::new(rx),
            task,
        }
    }

    /// The value for the function's `AWS_LAMBDA_RUNTIME_API` (host:port, no scheme).
    pub fn env_value(&self) -> String {
        self.addr.to_string()
    }

    pub fn push_event(&self, request_id: &str, payload: impl Into<Bytes>) {
        self.state
            .events
            .lock()
            .unwrap()
            .push_back((request_id.to_string(), payload.into()));
        self.state.notify.notify_one();
    }

    /// When the function first asked for an event (its cold start ends there).
    pub fn first_poll(&self) -> Option<Instant> {
        *self.state.first_poll.lock().unwrap()
    }

    pub async fn next_answer(&self) -> Answer {
        self.answers
            .lock()
            .await
            .recv()
            .await
            .expect("runtime API stopped")
    }
}

fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body.into())).unwrap()
}

async fn handle(
    st: Arc<State>,
    tx: mpsc::UnboundedSender<Answer>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    if parts.method == "GET" && path == "/2018-06-01/runtime/invocation/next" {
        st.first_poll
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
        loop {
            let notified = st.notify.notified();
            if let Some((id, event)) = st.events.lock().unwrap().pop_front() {
                let deadline = (SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 30_000)
                    .to_string();
                return reply(
                    200,
                    &[
                        ("content-type", "application/json"),
                        ("lambda-runtime-aws-request-id", id.as_str()),
                        ("lambda-runtime-deadline-ms", deadline.as_str()),
                        (
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:rewrite",
                        ),
                    ],
                    event,
                );
            }
            notified.await;
        }
    }
    let accepted = || {
        reply(
            202,
            &[("content-type", "application/json")],
            r#"{"status":"OK"}"#,
        )
    };
    if parts.method == "POST" && path == "/2018-06-01/runtime/init/error" {
        let _ = tx.send(Answer::InitError { body });
        return accepted();
    }
    if parts.method == "POST"
        && let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/")
    {
        if let Some(id) = rest.strip_suffix("/response") {
            let _ = tx.send(Answer::Response {
                request_id: id.into(),
                body,
            });
            return accepted();
        }
        if let Some(id) = rest.strip_suffix("/error") {
            let _ = tx.send(Answer::Error {
                request_id: id.into(),
                body,
            });
            return accepted();
        }
    }
    reply(404, &[], "not found")
}
