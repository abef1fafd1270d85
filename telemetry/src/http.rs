//! A minimal HTTP/1.x endpoint for operators: one `GET` per connection,
//! answered by a handler and closed. Bounded so that a scraper gone wrong (or
//! an attacker) cannot hold it: the request head is at most [`MAX_HEAD`]
//! bytes and must arrive within [`HEAD_TIMEOUT`], and at most
//! [`MAX_CONNECTIONS`] are served at once (the others wait to be accepted).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8192;
/// How long a client may take to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;

/// A parsed request head: what the handler sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without its query string.
    pub path: String,
}

/// What the handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    /// A plain-text error or notice.
    pub fn text(status: u16, body: &str) -> Self {
        Response::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    /// The response's bytes on the wire (`Connection: close`).
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// Why a request head was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// More bytes are needed.
    Incomplete,
    /// The head is over [`MAX_HEAD`] bytes.
    TooLarge,
    /// Not an HTTP/1.x request line.
    Malformed(&'static str),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Incomplete => write!(f, "incomplete request head"),
            HeadError::TooLarge => write!(f, "request head over {MAX_HEAD} bytes"),
            HeadError::Malformed(why) => write!(f, "malformed request: {why}"),
        }
    }
}

/// Whether `buf` holds a whole request head; returns its length (through the
/// blank line).
pub fn check(buf: &[u8]) -> Result<usize, HeadError> {
    match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) if i + 4 <= MAX_HEAD => Ok(i + 4),
        Some(_) => Err(HeadError::TooLarge),
        None if buf.len() >= MAX_HEAD => Err(HeadError::TooLarge),
        None => Err(HeadError::Incomplete),
    }
}

/// Parses a head that [`check`] accepted.
pub fn parse(head: &[u8]) -> Result<Request, HeadError> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(HeadError::Malformed("no request line"))?;
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| HeadError::Malformed("request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed("not HTTP/1.x"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HeadError::Malformed("bad method"));
    }
    if !target.starts_with('/') {
        return Err(HeadError::Malformed("target is not a path"));
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
    })
}

/// What to do with one request head (`buf` as read so far, `None` on
/// timeout): ask the handler, or answer an error at once.
pub fn route(buf: Option<&[u8]>) -> Result<Request, Response> {
    let Some(buf) = buf else {
        return Err(Response::text(408, "request head not received in time"));
    };
    let head = match check(buf) {
        Ok(n) => &buf[..n],
        Err(e @ HeadError::TooLarge) => return Err(Response::text(431, &e.to_string())),
        Err(e) => return Err(Response::text(400, &e.to_string())),
    };
    match parse(head) {
        Ok(req) if req.method == "GET" || req.method == "HEAD" => Ok(req),
        Ok(req) => Err(Response::text(
            405,
            &format!("method {} not allowed: use GET", req.method),
        )),
        Err(e) => Err(Response::text(400, &e.to_string())),
    }
}

/// The answer's bytes for one request head, with a synchronous handler.
pub fn respond(buf: Option<&[u8]>, handler: &dyn Fn(&Request) -> Response) -> Vec<u8> {
    match route(buf) {
        Ok(req) => handler(&req).encode(req.method == "HEAD"),
        Err(resp) => resp.encode(false),
    }
}

/// A response still being made (the handler may ask another task).
pub type Pending = Pin<Box<dyn Future<Output = Response> + Send>>;

/// What [`serve`] calls for each request; it runs on the runtime's thread.
pub type Handler = Arc<dyn Fn(Request) -> Pending + Send + Sync>;

/// A [`Handler`] from a function that answers at once.
pub fn sync_handler(f: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Handler {
    Arc::new(move |req: Request| {
        let resp = f(&req);
        Box::pin(async move { resp }) as Pending
    })
}

/// Serves `listener` until the runtime ends.
pub async fn serve(listener: TcpListener, handler: Handler) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            one(stream, &*handler).await;
            drop(permit);
        });
    }
}

async fn one(mut stream: TcpStream, handler: &(dyn Fn(Request) -> Pending + Send + Sync)) {
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            match check(&buf) {
                Err(HeadError::Incomplete) => {}
                _ => return true,
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let routed = match read {
        Ok(true) => route(Some(&buf)),
        Ok(false) => return, // the client went away
        Err(_) => route(None),
    };
    let out = match routed {
        Ok(req) => {
            let head_only = req.method == "HEAD";
            handler(req).await.encode(head_only)
        }
        Err(resp) => resp.encode(false),
    };
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(req: &Request) -> Response {
        Response::text(200, &format!("{} {}", req.method, req.path))
    }

    fn status(out: &[u8]) -> &str {
        std::str::from_utf8(&out[9..12]).unwrap()
    }

    #[test]
    fn check_waits_for_the_blank_line() {
        assert_eq!(
            check(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            Err(HeadError::Incomplete)
        );
        assert_eq!(check(b"GET / HTTP/1.1\r\n\r\nrest"), Ok(18));
    }

    #[test]
    fn parse_strips_the_query() {
        let r = parse(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(r.path, "/metrics");
        assert_eq!(r.method, "GET");
    }

    #[test]
    fn oversized_heads_get_431() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(check(&big), Err(HeadError::TooLarge));
        assert_eq!(status(&respond(Some(&big), &ok)), "431");
    }

    #[test]
    fn garbage_gets_400_and_other_methods_405() {
        assert_eq!(status(&respond(Some(b"\x00\x01\r\n\r\n"), &ok)), "400");
        assert_eq!(status(&respond(Some(b"GET /\r\n\r\n"), &ok)), "400");
        assert_eq!(status(&respond(Some(b"GET / SPDY/3\r\n\r\n"), &ok)), "400");
        assert_eq!(
            status(&respond(Some(b"GET x HTTP/1.0\r\n\r\n"), &ok)),
            "400"
        );
        assert_eq!(
            status(&respond(Some(b"POST / HTTP/1.1\r\n\r\n"), &ok)),
            "405"
        );
        assert_eq!(status(&respond(None, &ok)), "408");
    }

    #[test]
    fn get_reaches_the_handler_and_head_gets_no_body() {
        let out = respond(Some(b"GET /a HTTP/1.0\r\n\r\n"), &ok);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 7\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nGET /a\n"), "{text}");
        let out = respond(Some(b"HEAD /a HTTP/1.0\r\n\r\n"), &ok);
        assert!(String::from_utf8(out).unwrap().ends_with("\r\n\r\n"));
    }

    #[tokio::test]
    async fn serves_over_tcp_and_survives_a_bad_client() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, sync_handler(ok)));
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(&[0xff; 100]).await.unwrap();
        bad.write_all(b"\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        bad.read_to_end(&mut out).await.unwrap();
        assert_eq!(status(&out), "400");
        let mut good = TcpStream::connect(addr).await.unwrap();
        good.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        good.read_to_end(&mut out).await.unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("GET /x\n"));
    }
}
