//! A validating guard between a client's TCP socket and pgwire.
//!
//! pgwire 0.42's decoders trust message bodies: a truncated message (a Describe with no
//! body, a Bind whose parameter count runs past its end) panics inside pgwire, and a
//! body with bytes left over desynchronizes the stream. So pgwire never reads the client
//! socket: [`serve_connection`] runs it on one end of a `UnixStream` pair
//! (`process_socket_unix`) and this guard sits between the client and the other end:
//!
//! * client → pgwire: the guard reads the client's messages, validates each frame
//!   completely (length bounds and the body layout of every frontend message type), and
//!   forwards valid frames unchanged. The first invalid frame ends the connection with a
//!   FATAL ErrorResponse (SQLSTATE 08P01), sent after everything pgwire answered to the
//!   frames before it, as PostgreSQL would.
//! * pgwire → client: a plain byte copy.
//!
//! Startup: `process_socket_unix` expects the StartupMessage (or a CancelRequest) as the
//! first packet and does not negotiate encryption, so the guard does what pgwire's TCP
//! path does without a TLS acceptor: it answers SSLRequest and GSSENCRequest with 'N' and
//! reads the next startup packet; a TLS ClientHello (direct SSL) closes the connection.
//! Only then is pgwire started, with the StartupMessage or CancelRequest as its first
//! packet (pgwire's unix path calls the cancel handler, then closes).
//!
//! Limits: typed messages that carry data (Query, Parse, Bind, CopyData) up to
//! [`MAX_MESSAGE_LEN`] bytes; the other typed messages and startup packets up to 10 000
//! bytes, as in PostgreSQL (pgwire rejects longer ones too). Startup errors follow
//! PostgreSQL: packets that are not startup packets at all (a length below 8, a bad
//! CancelRequest, a TLS ClientHello) close the connection silently; a startup packet
//! over the limit, an unsupported protocol version or a bad parameter layout get a
//! FATAL ErrorResponse.
//!
//! Invariant: nothing a client sends panics the guard: all parsing goes through
//! [`BodyReader`] (checked slicing, no indexing) and lengths use checked arithmetic.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tracing::{debug, error, warn};

/// The largest Query, Parse, Bind or CopyData message, length word included.
pub(crate) const MAX_MESSAGE_LEN: usize = 64 << 20;
/// The largest message of the other types (PostgreSQL's `PQ_SMALL_MESSAGE_LIMIT`).
pub(crate) const MAX_SMALL_MESSAGE_LEN: usize = 10_000;
/// The largest startup packet (PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`).
pub(crate) const MAX_STARTUP_PACKET_LEN: usize = 10_000;
/// The largest `max_rows` of an Execute passed on as is (see [`sanitize_execute`]).
pub(crate) const MAX_EXECUTE_ROWS: i32 = 1 << 20;

/// A startup packet is at least a length and a code.
const MIN_STARTUP_PACKET_LEN: usize = 8;
const SSL_REQUEST_CODE: i32 = 80_877_103;
const GSSENC_REQUEST_CODE: i32 = 80_877_104;
const CANCEL_REQUEST_CODE: i32 = 80_877_102;
/// A CancelRequest: length, code, process id, then a 4 to 256 byte key (protocol 3.2).
const CANCEL_REQUEST_LEN: std::ops::RangeInclusive<usize> = 16..=268;
/// The protocol major version pgwire speaks (it negotiates any 3.x minor version).
const PROTOCOL_MAJOR: i32 = 3;
/// The first byte of a TLS handshake record: a client trying direct SSL.
const TLS_HANDSHAKE: u8 = 0x16;

/// How long a client has to send its StartupMessage (pgwire's own startup timeout).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// After the final message, how long the guard keeps reading (and dropping) what the
/// client still sends, so that closing with unread data (a TCP reset) cannot destroy
/// the FATAL ErrorResponse before the client reads it.
const LINGER: Duration = Duration::from_secs(1);
/// How much the guard asks the socket for at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Why the guard ends a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The SQLSTATE of the ErrorResponse.
    pub(crate) code: &'static str,
    /// The ErrorResponse's message text.
    pub(crate) message: String,
    /// Whether the client is told with a FATAL ErrorResponse or the connection just
    /// closes (for bytes that are not a PostgreSQL client's, as in PostgreSQL).
    pub(crate) report: bool,
}

impl Violation {
    /// A protocol violation the client is told about.
    fn reported(message: String) -> Violation {
        Violation {
            code: "08P01",
            message,
            report: true,
        }
    }

    /// A protocol violation that closes the connection without a word.
    fn silent(message: String) -> Violation {
        Violation {
            code: "08P01",
            message,
            report: false,
        }
    }
}

/// The kinds of untyped packets of the startup phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartupPacket {
    SslRequest,
    GssEncRequest,
    CancelRequest,
    StartupMessage,
}

/// Finds the startup packet at the start of `buf`: its kind and length, `None` if
/// `buf` does not hold all of it yet, or why it is invalid. `ssl_done` and `gss_done`
/// say whether the client already asked for SSL or GSS encryption (once each).
pub(crate) fn startup_frame(
    buf: &[u8],
    ssl_done: bool,
    gss_done: bool,
) -> Result<Option<(StartupPacket, usize)>, Violation> {
    if buf.first() == Some(&TLS_HANDSHAKE) {
        return Err(Violation::silent(
            "direct SSL connection is not supported".into(),
        ));
    }
    let Some(len) = read_i32(buf, 0) else {
        return Ok(None);
    };
    let Ok(len) = usize::try_from(len) else {
        return Err(Violation::silent(format!(
            "invalid length of startup packet: {len}"
        )));
    };
    if len < MIN_STARTUP_PACKET_LEN {
        return Err(Violation::silent(format!(
            "invalid length of startup packet: {len}"
        )));
    }
    if len > MAX_STARTUP_PACKET_LEN {
        return Err(Violation::reported(format!(
            "startup packet too large: {len} bytes exceeds the limit of \
             {MAX_STARTUP_PACKET_LEN} bytes"
        )));
    }
    let Some(packet) = buf.get(..len) else {
        return Ok(None);
    };
    let mut body = BodyReader::new(packet.get(4..).unwrap_or_default());
    let code = body.i32().map_err(|e| Violation::silent(e.to_string()))?;
    let kind = match code {
        CANCEL_REQUEST_CODE => {
            if !CANCEL_REQUEST_LEN.contains(&len) {
                return Err(Violation::silent(format!(
                    "invalid length of cancel request packet: {len}"
                )));
            }
            StartupPacket::CancelRequest
        }
        SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => {
            let (kind, done) = if code == SSL_REQUEST_CODE {
                (StartupPacket::SslRequest, ssl_done)
            } else {
                (StartupPacket::GssEncRequest, gss_done)
            };
            if done {
                // What PostgreSQL says to a second request of the same kind.
                return Err(unsupported_protocol(code));
            }
            if len != MIN_STARTUP_PACKET_LEN {
                return Err(Violation::reported(format!(
                    "invalid length of encryption request packet: {len}"
                )));
            }
            kind
        }
        _ => {
            if code >> 16 != PROTOCOL_MAJOR {
                return Err(unsupported_protocol(code));
            }
            check_startup_parameters(body)
                .map_err(|e| Violation::reported(format!("invalid startup packet layout: {e}")))?;
            StartupPacket::StartupMessage
        }
    };
    Ok(Some((kind, len)))
}

fn unsupported_protocol(code: i32) -> Violation {
    Violation {
        code: "0A000",
        message: format!(
            "unsupported frontend protocol {}.{}: server supports 3.0 to 3.2",
            code >> 16,
            code & 0xffff
        ),
        report: true,
    }
}

/// A StartupMessage's parameters: pairs of a name (not empty) and a value, then a NUL,
/// and nothing after it. Every layout error is PostgreSQL's one message.
fn check_startup_parameters(mut body: BodyReader<'_>) -> Result<(), BodyError> {
    let layout = |_| BodyError::Layout("expected terminator as last byte");
    loop {
        let name = body.cstring().map_err(layout)?;
        if name.is_empty() {
            return body.end().map_err(layout);
        }
        body.cstring().map_err(layout)?;
    }
}

/// The frontend message types, after startup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageKind {
    Query,
    Parse,
    Bind,
    Describe,
    Close,
    Execute,
    Sync,
    Flush,
    Terminate,
    CopyData,
    CopyDone,
    CopyFail,
    /// PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse: all 'p'.
    Password,
}

impl MessageKind {
    pub(crate) fn from_tag(tag: u8) -> Option<MessageKind> {
        Some(match tag {
            b'Q' => MessageKind::Query,
            b'P' => MessageKind::Parse,
            b'B' => MessageKind::Bind,
            b'D' => MessageKind::Describe,
            b'C' => MessageKind::Close,
            b'E' => MessageKind::Execute,
            b'S' => MessageKind::Sync,
            b'H' => MessageKind::Flush,
            b'X' => MessageKind::Terminate,
            b'd' => MessageKind::CopyData,
            b'c' => MessageKind::CopyDone,
            b'f' => MessageKind::CopyFail,
            b'p' => MessageKind::Password,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            MessageKind::Query => "Query",
            MessageKind::Parse => "Parse",
            MessageKind::Bind => "Bind",
            MessageKind::Describe => "Describe",
            MessageKind::Close => "Close",
            MessageKind::Execute => "Execute",
            MessageKind::Sync => "Sync",
            MessageKind::Flush => "Flush",
            MessageKind::Terminate => "Terminate",
            MessageKind::CopyData => "CopyData",
            MessageKind::CopyDone => "CopyDone",
            MessageKind::CopyFail => "CopyFail",
            MessageKind::Password => "password",
        }
    }

    /// The largest message of this kind, length word included.
    fn max_len(self) -> usize {
        match self {
            MessageKind::Query | MessageKind::Parse | MessageKind::Bind | MessageKind::CopyData => {
                MAX_MESSAGE_LEN
            }
            _ => MAX_SMALL_MESSAGE_LEN,
        }
    }

    /// Checks that `body` (what follows the length word) is a message of this kind.
    pub(crate) fn check_body(self, body: &[u8]) -> Result<(), BodyError> {
        let mut body = BodyReader::new(body);
        match self {
            MessageKind::Query | MessageKind::CopyFail => {
                body.cstring()?;
            }
            MessageKind::Parse => {
                body.cstring()?; // statement name
                body.cstring()?; // query
                for _ in 0..body.count("parameter types")? {
                    body.i32()?;
                }
            }
            MessageKind::Bind => {
                body.cstring()?; // portal name
                body.cstring()?; // statement name
                for _ in 0..body.count("parameter formats")? {
                    body.i16()?;
                }
                for _ in 0..body.count("parameters")? {
                    match body.i32()? {
                        -1 => {} // NULL
                        len => {
                            let len = usize::try_from(len)
                                .map_err(|_| BodyError::Negative("parameter length", len))?;
                            body.bytes(len)?;
                        }
                    }
                }
                for _ in 0..body.count("result formats")? {
                    body.i16()?;
                }
            }
            MessageKind::Describe | MessageKind::Close => {
                let target = body.u8()?;
                if !matches!(target, b'S' | b'P') {
                    return Err(BodyError::Target(target));
                }
                body.cstring()?;
            }
            MessageKind::Execute => {
                body.cstring()?; // portal name
                body.i32()?; // max rows
            }
            MessageKind::Sync
            | MessageKind::Flush
            | MessageKind::Terminate
            | MessageKind::CopyDone => {}
            MessageKind::CopyData | MessageKind::Password => return Ok(()),
        }
        body.end()
    }
}

/// Finds the typed message at the start of `buf`: its type byte and length (type byte
/// included), `None` if `buf` does not hold all of it yet, or why it is invalid. The
/// type and the length word are checked as soon as they arrive, the body once it is
/// all there.
pub(crate) fn message_frame(buf: &[u8]) -> Result<Option<(u8, usize)>, Violation> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    let Some(kind) = MessageKind::from_tag(tag) else {
        let shown = if tag.is_ascii_graphic() {
            format!(" ('{}')", char::from(tag))
        } else {
            String::new()
        };
        return Err(Violation::reported(format!(
            "invalid frontend message type {tag}{shown}"
        )));
    };
    let Some(len) = read_i32(buf, 1) else {
        return Ok(None);
    };
    let len = match usize::try_from(len) {
        Ok(len) if len >= 4 => len,
        _ => {
            return Err(Violation::reported(format!(
                "invalid {} message length: {len}",
                kind.name()
            )))
        }
    };
    if len > kind.max_len() {
        return Err(Violation::reported(format!(
            "message too large: {} message of {len} bytes exceeds the limit of {} bytes",
            kind.name(),
            kind.max_len()
        )));
    }
    let Some(total) = len.checked_add(1) else {
        return Err(Violation::reported("invalid message length".into()));
    };
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    kind.check_body(frame.get(5..).unwrap_or_default())
        .map_err(|e| Violation::reported(format!("invalid {} message: {e}", kind.name())))?;
    Ok(Some((tag, total)))
}

/// Rewrites an Execute frame's `max_rows` if pgwire cannot take it as is: pgwire
/// allocates room for `max_rows` rows up front, so a negative value (PostgreSQL: no
/// limit) overflows (a panic) and a huge one fails to allocate (an abort). Both become
/// 0, "no limit", which is what a negative value means in PostgreSQL and what a value
/// above [`MAX_EXECUTE_ROWS`] means unless the portal has more rows than that.
/// Returns whether the frame changed; other frames are left alone.
pub(crate) fn sanitize_execute(frame: &mut [u8]) -> bool {
    if frame.first() != Some(&b'E') {
        return false;
    }
    let Some(start) = frame.len().checked_sub(4) else {
        return false;
    };
    let Some(max_rows) = read_i32(frame, start) else {
        return false;
    };
    if (0..=MAX_EXECUTE_ROWS).contains(&max_rows) {
        return false;
    }
    match frame.get_mut(start..) {
        Some(field) => {
            field.fill(0);
            true
        }
        None => false,
    }
}

/// The big-endian i32 at `at` in `buf`, if `buf` is long enough.
fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    let end = at.checked_add(4)?;
    let bytes: [u8; 4] = buf.get(at..end)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// What is wrong with a message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// The body ends before a field.
    Short,
    /// A string field has no NUL terminator.
    Unterminated,
    /// Bytes follow the last field.
    LeftOver(usize),
    /// A count or length field is negative.
    Negative(&'static str, i32),
    /// A Describe or Close target other than 'S' or 'P'.
    Target(u8),
    /// A StartupMessage's parameter list is malformed.
    Layout(&'static str),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Short => write!(f, "insufficient data left in message"),
            BodyError::Unterminated => write!(f, "invalid string in message"),
            BodyError::LeftOver(n) => write!(f, "{n} bytes left over after the last field"),
            BodyError::Negative(what, n) => write!(f, "invalid number of {what}: {n}"),
            BodyError::Target(t) => write!(f, "invalid target type {t}, expected 'S' or 'P'"),
            BodyError::Layout(what) => write!(f, "{what}"),
        }
    }
}

/// Reads the fields of a message body; every read checks that the field is there.
pub(crate) struct BodyReader<'a> {
    rest: &'a [u8],
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(body: &'a [u8]) -> BodyReader<'a> {
        BodyReader { rest: body }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        let head = self.rest.get(..n).ok_or(BodyError::Short)?;
        self.rest = self.rest.get(n..).unwrap_or_default();
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, BodyError> {
        let (&byte, rest) = self.rest.split_first().ok_or(BodyError::Short)?;
        self.rest = rest;
        Ok(byte)
    }

    fn i16(&mut self) -> Result<i16, BodyError> {
        let bytes: [u8; 2] = self.bytes(2)?.try_into().map_err(|_| BodyError::Short)?;
        Ok(i16::from_be_bytes(bytes))
    }

    fn i32(&mut self) -> Result<i32, BodyError> {
        let bytes: [u8; 4] = self.bytes(4)?.try_into().map_err(|_| BodyError::Short)?;
        Ok(i32::from_be_bytes(bytes))
    }

    /// A NUL-terminated string, without its NUL.
    fn cstring(&mut self) -> Result<&'a [u8], BodyError> {
        let nul = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(BodyError::Unterminated)?;
        let string = self.bytes(nul)?;
        self.bytes(1)?;
        Ok(string)
    }

    /// An i16 element count, which must not be negative.
    fn count(&mut self, what: &'static str) -> Result<u16, BodyError> {
        let n = self.i16()?;
        u16::try_from(n).map_err(|_| BodyError::Negative(what, i32::from(n)))
    }

    fn end(&self) -> Result<(), BodyError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(BodyError::LeftOver(n)),
        }
    }
}

/// A FATAL ErrorResponse: severity, SQLSTATE `code` and `message`.
pub(crate) fn fatal_error_response(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(message.len() + 32);
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        body.extend(value.bytes().filter(|&b| b != 0));
        body.push(0);
    }
    body.push(0);
    let len = i32::try_from(body.len().saturating_add(4)).unwrap_or(i32::MAX);
    let mut response = Vec::with_capacity(body.len() + 5);
    response.push(b'E');
    response.extend_from_slice(&len.to_be_bytes());
    response.extend_from_slice(&body);
    response
}

/// The client's side of the connection, read into a buffer.
struct ClientReader<R> {
    io: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> ClientReader<R> {
    /// Reads more bytes into the buffer; `false` at EOF (or when reading failed).
    async fn fill(&mut self) -> bool {
        self.buf.reserve(READ_CHUNK);
        match self.io.read_buf(&mut self.buf).await {
            Ok(n) => n > 0,
            Err(error) => {
                debug!(%error, "reading from a pgwire client failed");
                false
            }
        }
    }

    /// Drops what the client still sends, until EOF or [`LINGER`] is over.
    async fn linger(&mut self) {
        let drain = async {
            self.buf.clear();
            while self.fill().await {
                self.buf.clear();
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

/// How the client → pgwire direction ended.
enum Inbound {
    /// The client closed its side, sent Terminate, or sent its CancelRequest.
    Done,
    /// pgwire stopped reading.
    ServerGone,
    /// An invalid frame.
    Violation(Violation),
}

/// Serves one client connection: runs the guard between `socket` and pgwire, started by
/// `start_pgwire` on one end of a unix socket pair once the client sent a
/// StartupMessage or CancelRequest.
pub(crate) async fn serve_connection<F, Fut>(
    mut socket: TcpStream,
    peer: SocketAddr,
    start_pgwire: F,
) where
    F: FnOnce(UnixStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if let Err(error) = socket.set_nodelay(true) {
        debug!(%peer, %error, "setting TCP_NODELAY failed");
    }
    let (read, write) = socket.split();
    guard(read, write, peer, start_pgwire).await;
}

/// [`serve_connection`] over the two halves of any client stream.
pub(crate) async fn guard<R, W, F, Fut>(read: R, mut write: W, peer: SocketAddr, start_pgwire: F)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: FnOnce(UnixStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut client = ClientReader {
        io: read,
        buf: BytesMut::new(),
    };
    let first =
        match tokio::time::timeout(STARTUP_TIMEOUT, negotiate(&mut client, &mut write)).await {
            Ok(Ok(Some(first))) => first,
            Ok(Ok(None)) => return,
            Ok(Err(violation)) => {
                close(&mut client, &mut write, peer, Some(violation)).await;
                return;
            }
            Err(_) => {
                debug!(%peer, "pgwire client sent no startup packet in time");
                return;
            }
        };

    let (pgwire_end, guard_end) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(error) => {
            warn!(%peer, %error, "creating a socket pair for pgwire failed");
            let violation = Violation {
                code: "53000",
                message: "could not start a session: out of resources".into(),
                report: true,
            };
            close(&mut client, &mut write, peer, Some(violation)).await;
            return;
        }
    };
    let pgwire = tokio::spawn(start_pgwire(pgwire_end));
    let (from_pgwire, to_pgwire) = guard_end.into_split();

    let (inbound, pgwire_closed) = {
        let inbound = forward_client(&mut client, to_pgwire, first);
        let client_write = &mut write;
        let outbound = async move {
            let mut from_pgwire = from_pgwire;
            match tokio::io::copy(&mut from_pgwire, client_write).await {
                Ok(_) => true,
                Err(error) => {
                    debug!(%error, "copying pgwire's output to the client failed");
                    false
                }
            }
        };
        tokio::pin!(inbound, outbound);
        tokio::select! {
            // Whatever ended the client's side, pgwire has seen EOF: wait for it to
            // finish answering the frames before, so that a FATAL error comes last.
            end = &mut inbound => (end, (&mut outbound).await),
            // pgwire closed the connection: the client's remaining bytes are moot.
            pgwire_closed = &mut outbound => (Inbound::Done, pgwire_closed),
        }
    };

    let mut violation = match inbound {
        Inbound::Violation(violation) => Some(violation),
        Inbound::Done | Inbound::ServerGone => None,
    };
    // pgwire's end closed, so its task is ending: see whether it panicked.
    if pgwire_closed {
        if let Err(join_error) = pgwire.await {
            if join_error.is_panic() {
                error!(%peer, "the pgwire task of a connection panicked");
                violation.get_or_insert(Violation {
                    code: "XX000",
                    message: "internal error: the connection's session failed".into(),
                    report: true,
                });
            }
        }
    }
    close(&mut client, &mut write, peer, violation).await;
}

/// The StartupMessage or CancelRequest that starts pgwire.
struct FirstPacket {
    kind: StartupPacket,
    packet: Bytes,
}

/// The startup phase up to pgwire: answers encryption requests with 'N' (no), and
/// returns the first StartupMessage or CancelRequest; `None` if the client left.
async fn negotiate<R, W>(
    client: &mut ClientReader<R>,
    write: &mut W,
) -> Result<Option<FirstPacket>, Violation>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut ssl_done, mut gss_done) = (false, false);
    loop {
        let Some((kind, len)) = startup_frame(&client.buf, ssl_done, gss_done)? else {
            if client.fill().await {
                continue;
            }
            if !client.buf.is_empty() {
                debug!("pgwire client closed the connection within a startup packet");
            }
            return Ok(None);
        };
        let packet = client.buf.split_to(len.min(client.buf.len())).freeze();
        match kind {
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                ssl_done |= kind == StartupPacket::SslRequest;
                gss_done |= kind == StartupPacket::GssEncRequest;
                if write.write_all(b"N").await.is_err() || write.flush().await.is_err() {
                    return Ok(None);
                }
            }
            StartupPacket::CancelRequest | StartupPacket::StartupMessage => {
                return Ok(Some(FirstPacket { kind, packet }));
            }
        }
    }
}

/// Forwards the client's valid frames to pgwire, `first` first, until the client is
/// done, pgwire stops reading, or a frame is invalid (the valid frames before it are
/// forwarded). Dropping `to_pgwire` at the end is pgwire's EOF.
async fn forward_client<R, W>(
    client: &mut ClientReader<R>,
    mut to_pgwire: W,
    first: FirstPacket,
) -> Inbound
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if to_pgwire.write_all(&first.packet).await.is_err() {
        return Inbound::ServerGone;
    }
    if first.kind == StartupPacket::CancelRequest {
        // pgwire cancels and closes; nothing else is read on a cancel connection.
        return Inbound::Done;
    }
    loop {
        // Every complete frame in the buffer goes to pgwire in one write.
        let mut ready = 0;
        let mut end = None;
        loop {
            match message_frame(client.buf.get(ready..).unwrap_or_default()) {
                Ok(Some((tag, len))) => {
                    if let Some(frame) = client.buf.get_mut(ready..ready.saturating_add(len)) {
                        if sanitize_execute(frame) {
                            debug!("Execute max_rows outside pgwire's range: sent as 0");
                        }
                    }
                    ready = ready.saturating_add(len);
                    if tag == b'X' {
                        end = Some(Inbound::Done);
                        break;
                    }
                }
                Ok(None) => break,
                Err(violation) => {
                    end = Some(Inbound::Violation(violation));
                    break;
                }
            }
        }
        if ready > 0 {
            let frames = client.buf.split_to(ready.min(client.buf.len()));
            if to_pgwire.write_all(&frames).await.is_err() {
                return Inbound::ServerGone;
            }
        }
        if let Some(end) = end {
            return end;
        }
        if !client.fill().await {
            if !client.buf.is_empty() {
                debug!("pgwire client closed the connection within a message");
            }
            return Inbound::Done;
        }
    }
}

/// Ends the connection: the FATAL ErrorResponse of `violation` if the client is to be
/// told, then EOF, then what the client still sends is read and dropped for a moment
/// (until its EOF, at once for a client that closes when the server does).
async fn close<R, W>(
    client: &mut ClientReader<R>,
    write: &mut W,
    peer: SocketAddr,
    violation: Option<Violation>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if let Some(violation) = &violation {
        debug!(%peer, code = violation.code, message = %violation.message, report = violation.report,
            "pgwire connection ended by a protocol violation");
        if violation.report {
            let response = fatal_error_response(violation.code, &violation.message);
            if write.write_all(&response).await.is_err() {
                return;
            }
        }
    }
    if write.shutdown().await.is_ok() {
        client.linger().await;
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use tokio::io::{duplex, split, DuplexStream};
    use tokio::sync::oneshot;

    use super::*;

    /// A typed message: tag, length, body.
    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// An untyped startup packet: length, body.
    fn packet(body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    fn startup_body(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for (name, value) in params {
            body.extend_from_slice(name.as_bytes());
            body.push(0);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        body
    }

    fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        packet(&startup_body(params))
    }

    fn code_packet(code: i32) -> Vec<u8> {
        packet(&code.to_be_bytes())
    }

    fn cancel(pid: i32, key: i32) -> Vec<u8> {
        let mut body = CANCEL_REQUEST_CODE.to_be_bytes().to_vec();
        body.extend_from_slice(&pid.to_be_bytes());
        body.extend_from_slice(&key.to_be_bytes());
        packet(&body)
    }

    /// Concatenates byte strings.
    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn i16b(n: i16) -> [u8; 2] {
        n.to_be_bytes()
    }

    fn i32b(n: i32) -> [u8; 4] {
        n.to_be_bytes()
    }

    fn bind_body(formats: &[i16], params: &[Option<&[u8]>], results: &[i16]) -> Vec<u8> {
        let mut body = b"portal\0stmt\0".to_vec();
        body.extend_from_slice(&i16b(formats.len() as i16));
        for f in formats {
            body.extend_from_slice(&i16b(*f));
        }
        body.extend_from_slice(&i16b(params.len() as i16));
        for p in params {
            match p {
                None => body.extend_from_slice(&i32b(-1)),
                Some(v) => {
                    body.extend_from_slice(&i32b(v.len() as i32));
                    body.extend_from_slice(v);
                }
            }
        }
        body.extend_from_slice(&i16b(results.len() as i16));
        for r in results {
            body.extend_from_slice(&i16b(*r));
        }
        body
    }

    /// Well-formed frames of every frontend message type.
    fn valid_messages() -> Vec<Vec<u8>> {
        vec![
            msg(b'Q', b"SELECT 1\0"),
            msg(b'Q', b"\0"),
            msg(
                b'P',
                &cat(&[b"s1\0SELECT $1, $2\0", &i16b(2), &i32b(23), &i32b(0)]),
            ),
            msg(b'P', &cat(&[b"\0SELECT 1\0", &i16b(0)])),
            msg(b'B', &bind_body(&[], &[], &[])),
            msg(
                b'B',
                &bind_body(&[0, 1], &[Some(b"42"), None, Some(b"")], &[1]),
            ),
            msg(b'D', b"S\0"),
            msg(b'D', b"Pportal\0"),
            msg(b'C', b"Sstmt\0"),
            msg(b'C', b"P\0"),
            msg(b'E', &cat(&[b"\0", &i32b(0)])),
            msg(b'E', &cat(&[b"portal\0", &i32b(100)])),
            msg(b'S', b""),
            msg(b'H', b""),
            msg(b'X', b""),
            msg(b'c', b""),
            msg(b'd', b""),
            msg(b'd', b"any\0bytes\xff"),
            msg(b'f', b"client gave up\0"),
            msg(b'p', b"secret\0"),
            msg(b'p', b"\x00\x01 SASL bytes"),
        ]
    }

    /// Malformed frames: truncated, overlong and garbage variants.
    fn invalid_messages() -> Vec<(Vec<u8>, &'static str)> {
        vec![
            (msg(b'D', b""), "insufficient data"),
            (msg(b'D', b"S"), "invalid string"),
            (msg(b'D', b"X\0"), "invalid target type"),
            (msg(b'D', b"Sname\0extra"), "left over"),
            (msg(b'C', b""), "insufficient data"),
            (msg(b'C', b"Pname"), "invalid string"),
            (msg(b'E', b""), "invalid string"),
            (msg(b'E', b"\0\0\0"), "insufficient data"),
            (msg(b'E', &cat(&[b"\0", &i32b(0), b"!"])), "left over"),
            (msg(b'Q', b""), "invalid string"),
            (msg(b'Q', b"SELECT 1"), "invalid string"),
            (msg(b'Q', b"SELECT 1\0\0"), "left over"),
            (msg(b'P', b"s\0"), "invalid string"),
            (msg(b'P', b"s\0SELECT 1\0"), "insufficient data"),
            (
                msg(b'P', &cat(&[b"s\0SELECT 1\0", &i16b(2), &i32b(23)])),
                "insufficient data",
            ),
            (
                msg(b'P', &cat(&[b"s\0SELECT 1\0", &i16b(-1)])),
                "invalid number of parameter types",
            ),
            (
                msg(b'P', &cat(&[b"s\0SELECT 1\0", &i16b(0), b"x"])),
                "left over",
            ),
            (msg(b'B', b""), "invalid string"),
            (msg(b'B', b"\0\0"), "insufficient data"),
            (
                msg(b'B', &cat(&[b"\0\0", &i16b(0), &i16b(5), &i16b(0)])),
                "insufficient data",
            ),
            (
                msg(b'B', &cat(&[b"\0\0", &i16b(-1), &i16b(0), &i16b(0)])),
                "invalid number of parameter formats",
            ),
            (
                msg(b'B', &cat(&[b"\0\0", &i16b(0), &i16b(-3), &i16b(0)])),
                "invalid number of parameters",
            ),
            (
                msg(
                    b'B',
                    &cat(&[b"\0\0", &i16b(0), &i16b(1), &i32b(-2), &i16b(0)]),
                ),
                "invalid number of parameter length",
            ),
            (
                msg(
                    b'B',
                    &cat(&[b"\0\0", &i16b(0), &i16b(1), &i32b(100), b"ab", &i16b(0)]),
                ),
                "insufficient data",
            ),
            (
                msg(
                    b'B',
                    &cat(&[b"\0\0", &i16b(0), &i16b(0), &i16b(2), &i16b(0)]),
                ),
                "insufficient data",
            ),
            (
                msg(b'B', &cat(&[b"\0\0", &i16b(0), &i16b(0), &i16b(-1)])),
                "invalid number of result formats",
            ),
            (
                msg(b'B', &cat(&[&bind_body(&[], &[], &[]), b"z"])),
                "left over",
            ),
            (msg(b'S', b"x"), "left over"),
            (msg(b'H', b"x"), "left over"),
            (msg(b'X', b"x"), "left over"),
            (msg(b'c', b"x"), "left over"),
            (msg(b'f', b"no nul"), "invalid string"),
            (msg(b'f', b"a\0b"), "left over"),
            (
                b"D\0\0\0\x03".to_vec(),
                "invalid Describe message length: 3",
            ),
            (b"Q\0\0\0\0".to_vec(), "invalid Query message length: 0"),
            (
                b"Q\xff\xff\xff\xfe".to_vec(),
                "invalid Query message length: -2",
            ),
            (b"Q\x7f\xff\xff\xff".to_vec(), "message too large"),
            (b"d\x04\0\0\x01".to_vec(), "message too large"),
            (b"D\0\0\x27\x11".to_vec(), "message too large"),
            (b"S\0\0\x27\x11".to_vec(), "message too large"),
            (
                b"\x01\0\0\0\x04".to_vec(),
                "invalid frontend message type 1",
            ),
            (
                b"F\0\0\0\x04".to_vec(),
                "invalid frontend message type 70 ('F')",
            ),
            (b"G".to_vec(), "invalid frontend message type"),
            (b"\0\0\0\0\x08".to_vec(), "invalid frontend message type 0"),
        ]
    }

    /// pgwire's decoder after startup.
    fn message_context() -> DecodeContext {
        let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ctx.awaiting_frontend_ssl = false;
        ctx.awaiting_frontend_startup = false;
        ctx
    }

    /// pgwire's decoder for the first packet of the unix path (whose client starts at
    /// pgwire's default protocol version, 3.2: a CancelRequest's key may be long).
    fn startup_context() -> DecodeContext {
        let mut ctx = DecodeContext::new(ProtocolVersion::default());
        ctx.awaiting_frontend_ssl = false;
        ctx
    }

    /// What the guard accepts, pgwire decodes without panicking, consuming exactly the
    /// frame: nothing left over to desynchronize the stream.
    fn assert_pgwire_decodes(frame: &[u8], ctx: &DecodeContext) {
        let mut buf = BytesMut::from(frame);
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            PgWireFrontendMessage::decode(&mut buf, ctx)
        }));
        match decoded {
            Ok(Ok(Some(_))) => {}
            other => panic!("pgwire does not decode {frame:?}: {other:?}"),
        }
        assert!(buf.is_empty(), "pgwire left {buf:?} of {frame:?}");
    }

    #[test]
    fn valid_messages_pass_and_pgwire_decodes_them() {
        for frame in valid_messages() {
            assert_eq!(
                message_frame(&frame),
                Ok(Some((frame[0], frame.len()))),
                "{frame:?}"
            );
            assert_pgwire_decodes(&frame, &message_context());
            // With another message behind it, the frame ends where it should.
            let two = cat(&[&frame, &msg(b'S', b"")]);
            assert_eq!(message_frame(&two), Ok(Some((frame[0], frame.len()))));
            // Every proper prefix is incomplete, never an error.
            for cut in 0..frame.len() {
                assert_eq!(
                    message_frame(&frame[..cut]),
                    Ok(None),
                    "{frame:?} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn invalid_messages_are_rejected_with_08p01() {
        for (frame, expected) in invalid_messages() {
            let violation = match message_frame(&frame) {
                Err(violation) => violation,
                other => panic!("{frame:?} accepted: {other:?}"),
            };
            assert_eq!(violation.code, "08P01");
            assert!(violation.report, "{frame:?}");
            assert!(
                violation.message.contains(expected),
                "{frame:?}: {:?} lacks {expected:?}",
                violation.message
            );
        }
    }

    #[test]
    fn size_limits() {
        let query = |len: usize| {
            let mut body = vec![b'x'; len - 5];
            body.push(0);
            msg(b'Q', &body)
        };
        let at_limit = query(MAX_MESSAGE_LEN);
        assert_eq!(
            message_frame(&at_limit),
            Ok(Some((b'Q', MAX_MESSAGE_LEN + 1)))
        );
        let over = query(MAX_MESSAGE_LEN + 1);
        let violation = message_frame(&over[..5]).unwrap_err();
        assert!(
            violation.message.starts_with("message too large"),
            "{violation:?}"
        );
        assert!(violation.message.contains("67108864"), "{violation:?}");
        // Small message types: 10 000 bytes.
        let name = vec![b'n'; MAX_SMALL_MESSAGE_LEN - 6];
        let describe = msg(b'D', &cat(&[b"S", &name, b"\0"]));
        assert_eq!(describe.len(), MAX_SMALL_MESSAGE_LEN + 1);
        assert!(message_frame(&describe).unwrap().is_some());
        let describe = msg(b'D', &cat(&[b"S", &name, b"n\0"]));
        assert!(message_frame(&describe).is_err());
    }

    #[test]
    fn startup_packets() {
        let cases: Vec<(Vec<u8>, StartupPacket)> = vec![
            (
                startup(&[("user", "freshet")]),
                StartupPacket::StartupMessage,
            ),
            (startup(&[]), StartupPacket::StartupMessage),
            (
                startup(&[("user", "u"), ("database", ""), ("options", "-c a=b")]),
                StartupPacket::StartupMessage,
            ),
            (
                packet(&cat(&[&i32b(196_610), b"user\0u\0\0"])),
                StartupPacket::StartupMessage,
            ),
            (code_packet(SSL_REQUEST_CODE), StartupPacket::SslRequest),
            (
                code_packet(GSSENC_REQUEST_CODE),
                StartupPacket::GssEncRequest,
            ),
            (cancel(7, -5), StartupPacket::CancelRequest),
            (
                packet(&cat(&[&i32b(CANCEL_REQUEST_CODE), &i32b(7), &[9; 32]])),
                StartupPacket::CancelRequest,
            ),
        ];
        for (frame, kind) in cases {
            assert_eq!(
                startup_frame(&frame, false, false),
                Ok(Some((kind, frame.len()))),
                "{frame:?}"
            );
            if matches!(
                kind,
                StartupPacket::StartupMessage | StartupPacket::CancelRequest
            ) {
                assert_pgwire_decodes(&frame, &startup_context());
            }
            for cut in 0..frame.len() {
                assert_eq!(startup_frame(&frame[..cut], false, false), Ok(None));
            }
        }
        // One encryption request of each kind; the next startup packet may follow.
        assert!(startup_frame(&code_packet(SSL_REQUEST_CODE), false, true).is_ok());
        let again = startup_frame(&code_packet(SSL_REQUEST_CODE), true, false).unwrap_err();
        assert_eq!(
            again.message,
            "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.2"
        );
        assert!(again.report);
        assert!(startup_frame(&code_packet(GSSENC_REQUEST_CODE), false, true).is_err());
        assert_eq!(
            startup_frame(&startup(&[]), true, true),
            Ok(Some((StartupPacket::StartupMessage, 9)))
        );
    }

    #[test]
    fn bad_startup_packets() {
        // (packet, message, reported to the client)
        let cases: Vec<(Vec<u8>, &str, bool)> = vec![
            (
                i32b(4).to_vec(),
                "invalid length of startup packet: 4",
                false,
            ),
            (
                i32b(-1).to_vec(),
                "invalid length of startup packet: -1",
                false,
            ),
            (
                i32b(7).to_vec(),
                "invalid length of startup packet: 7",
                false,
            ),
            (i32b(10_001).to_vec(), "startup packet too large", true),
            (i32b(20_000).to_vec(), "startup packet too large", true),
            (
                b"GET / HTTP/1.1\r\n".to_vec(),
                "startup packet too large",
                true,
            ),
            (vec![0x16, 3, 1, 2, 0], "direct SSL", false),
            (
                packet(&cat(&[&i32b(CANCEL_REQUEST_CODE), &i32b(1)])),
                "invalid length of cancel request packet: 12",
                false,
            ),
            (
                packet(&cat(&[&i32b(CANCEL_REQUEST_CODE), &i32b(1), &[0; 257]])),
                "invalid length of cancel request packet: 269",
                false,
            ),
            (
                packet(&cat(&[&i32b(SSL_REQUEST_CODE), b"xxxx"])),
                "invalid length of encryption request packet: 12",
                true,
            ),
            (
                packet(&cat(&[&i32b(0x0002_0000), b"user\0u\0\0"])),
                "unsupported frontend protocol 2.0",
                true,
            ),
            (
                packet(&i32b(196_608)),
                "expected terminator as last byte",
                true,
            ),
            (
                packet(&cat(&[&i32b(196_608), b"user\0u\0"])),
                "expected terminator as last byte",
                true,
            ),
            (
                packet(&cat(&[&i32b(196_608), b"user\0u\0\0\0"])),
                "expected terminator as last byte",
                true,
            ),
            (
                packet(&cat(&[&i32b(196_608), b"user\0u"])),
                "expected terminator as last byte",
                true,
            ),
            (
                packet(&cat(&[&i32b(196_608), b"user\0"])),
                "expected terminator as last byte",
                true,
            ),
        ];
        for (frame, expected, report) in cases {
            let violation = match startup_frame(&frame, false, false) {
                Err(violation) => violation,
                other => panic!("{frame:?} accepted: {other:?}"),
            };
            assert!(
                violation.message.contains(expected),
                "{frame:?}: {:?} lacks {expected:?}",
                violation.message
            );
            assert_eq!(violation.report, report, "{frame:?}");
        }
    }

    #[test]
    fn execute_max_rows_is_made_safe_for_pgwire() {
        let execute = |rows: i32| msg(b'E', &cat(&[b"p\0", &i32b(rows)]));
        for rows in [0, 1, 100, MAX_EXECUTE_ROWS] {
            let mut frame = execute(rows);
            assert!(!sanitize_execute(&mut frame));
            assert_eq!(frame, execute(rows));
        }
        for rows in [-1, i32::MIN, MAX_EXECUTE_ROWS + 1, i32::MAX] {
            let mut frame = execute(rows);
            assert!(sanitize_execute(&mut frame));
            assert_eq!(frame, execute(0));
        }
        let mut query = msg(b'Q', b"\xff\xff\xff\xff\0");
        assert!(!sanitize_execute(&mut query));
        assert!(!sanitize_execute(&mut []));
        assert!(!sanitize_execute(&mut [b'E', 0]));
    }

    #[test]
    fn fatal_error_response_bytes() {
        let response = fatal_error_response("08P01", "message too large");
        let mut expected = vec![b'E'];
        let body = b"SFATAL\0VFATAL\0C08P01\0Mmessage too large\0\0";
        expected.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        expected.extend_from_slice(body);
        assert_eq!(response, expected);
        // NULs cannot end a field early.
        let response = fatal_error_response("08P01", "a\0b");
        assert!(response.windows(4).any(|w| w == b"Mab\0"));
    }

    /// Random bytes, and valid frames with random damage, never panic the validators;
    /// what they accept lies within the input, and pgwire decodes it cleanly.
    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(0x5eed_f00d);
        let valid = valid_messages();
        let startups = [
            startup(&[("user", "freshet"), ("database", "freshet")]),
            code_packet(SSL_REQUEST_CODE),
            cancel(1, 2),
        ];
        let mut accepted = 0;
        for i in 0..6000 {
            let mut bytes: Vec<u8> = match i % 3 {
                0 => {
                    let len = rng.gen_range(0..64);
                    (0..len).map(|_| rng.gen()).collect()
                }
                1 => valid[rng.gen_range(0..valid.len())].clone(),
                _ => startups[rng.gen_range(0..startups.len())].clone(),
            };
            if i % 3 != 0 {
                for _ in 0..rng.gen_range(1..4) {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = rng.gen_range(0..bytes.len());
                    match rng.gen_range(0..4) {
                        0 => bytes[at] = rng.gen(),
                        1 => bytes.truncate(at),
                        2 => bytes.insert(at, rng.gen()),
                        _ => {
                            bytes.remove(at);
                        }
                    }
                }
            }
            let result = catch_unwind(|| message_frame(&bytes));
            let Ok(result) = result else {
                panic!("message_frame panicked on {bytes:?}");
            };
            if let Ok(Some((tag, len))) = result {
                assert!(len <= bytes.len() && bytes.first() == Some(&tag));
                accepted += 1;
                let mut frame = bytes[..len].to_vec();
                sanitize_execute(&mut frame);
                assert_pgwire_decodes(&frame, &message_context());
            }
            let result = catch_unwind(|| startup_frame(&bytes, i % 2 == 0, i % 5 == 0));
            let Ok(result) = result else {
                panic!("startup_frame panicked on {bytes:?}");
            };
            if let Ok(Some((kind, len))) = result {
                assert!(len <= bytes.len());
                if matches!(
                    kind,
                    StartupPacket::StartupMessage | StartupPacket::CancelRequest
                ) {
                    assert_pgwire_decodes(&bytes[..len], &startup_context());
                }
            }
            for tag in [b'Q', b'P', b'B', b'D', b'C', b'E', b'f'] {
                let kind = MessageKind::from_tag(tag).unwrap();
                assert!(catch_unwind(|| kind.check_body(&bytes)).is_ok());
            }
        }
        assert!(
            accepted > 100,
            "the mutations hardly ever kept a frame valid"
        );
    }

    /// What the stand-in for pgwire runs.
    type FakePgwire = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    /// A stand-in for pgwire: reads until EOF, then writes `reply` and hands over what
    /// it read.
    fn fake_pgwire(
        reply: Vec<u8>,
    ) -> (
        impl FnOnce(UnixStream) -> FakePgwire,
        oneshot::Receiver<Vec<u8>>,
    ) {
        let (tx, rx) = oneshot::channel();
        let start = move |mut unix: UnixStream| -> FakePgwire {
            Box::pin(async move {
                let mut seen = Vec::new();
                let _ = unix.read_to_end(&mut seen).await;
                let _ = unix.write_all(&reply).await;
                let _ = tx.send(seen);
            })
        };
        (start, rx)
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    /// Runs the guard on one end of an in-memory stream; returns the client's end.
    fn spawn_guard<F, Fut>(start: F) -> DuplexStream
    where
        F: FnOnce(UnixStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (client, server) = duplex(1 << 20);
        tokio::spawn(async move {
            let (read, write) = split(server);
            guard(read, write, peer(), start).await;
        });
        client
    }

    async fn read_all(client: &mut DuplexStream) -> Vec<u8> {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut out))
            .await
            .expect("the guard closes the connection")
            .unwrap();
        out
    }

    #[tokio::test]
    async fn valid_frames_reach_pgwire_unchanged() {
        let (start, seen) = fake_pgwire(b"pgwire says hi".to_vec());
        let mut client = spawn_guard(start);
        let startup = startup(&[("user", "freshet")]);
        client
            .write_all(&code_packet(SSL_REQUEST_CODE))
            .await
            .unwrap();
        let mut answer = [0u8; 1];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"N");
        client
            .write_all(&code_packet(GSSENC_REQUEST_CODE))
            .await
            .unwrap();
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"N");
        let messages = valid_messages();
        let mut sent = startup.clone();
        for m in messages.iter().filter(|m| m[0] != b'X') {
            sent.extend_from_slice(m);
        }
        // Sent in pieces of every size, so that frames arrive split.
        for chunk in sent.chunks(7) {
            client.write_all(chunk).await.unwrap();
        }
        client.write_all(&msg(b'X', b"")).await.unwrap();
        let _ = client.write_all(b"ignored after Terminate").await;
        assert_eq!(read_all(&mut client).await, b"pgwire says hi");
        let mut expected = sent;
        expected.extend_from_slice(&msg(b'X', b""));
        assert_eq!(seen.await.unwrap(), expected);
    }

    #[tokio::test]
    async fn an_invalid_frame_ends_with_fatal_after_pgwire_output() {
        let (start, seen) = fake_pgwire(b"answers".to_vec());
        let mut client = spawn_guard(start);
        let startup = startup(&[]);
        let query = msg(b'Q', b"SELECT 1\0");
        let bad = b"D\0\0\0\x04".to_vec();
        client
            .write_all(&cat(&[&startup, &query, &bad, &query]))
            .await
            .unwrap();
        let received = read_all(&mut client).await;
        let fatal = fatal_error_response(
            "08P01",
            "invalid Describe message: insufficient data left in message",
        );
        assert_eq!(received, cat(&[b"answers", &fatal]));
        assert_eq!(seen.await.unwrap(), cat(&[&startup, &query]));
    }

    #[tokio::test]
    async fn execute_max_rows_is_rewritten() {
        let (start, seen) = fake_pgwire(Vec::new());
        let mut client = spawn_guard(start);
        let startup = startup(&[]);
        let execute = |rows: i32| msg(b'E', &cat(&[b"\0", &i32b(rows)]));
        client
            .write_all(&cat(&[
                &startup,
                &execute(-1),
                &execute(5),
                &execute(i32::MAX),
            ]))
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        read_all(&mut client).await;
        assert_eq!(
            seen.await.unwrap(),
            cat(&[&startup, &execute(0), &execute(5), &execute(0)])
        );
    }

    #[tokio::test]
    async fn oversized_startup_packet_is_fatal_and_pgwire_never_starts() {
        let (start, seen) = fake_pgwire(Vec::new());
        let mut client = spawn_guard(start);
        let mut big = i32b(20_000).to_vec();
        big.resize(20_000, b'a');
        client.write_all(&big).await.unwrap();
        let received = read_all(&mut client).await;
        assert_eq!(
            received,
            fatal_error_response(
                "08P01",
                "startup packet too large: 20000 bytes exceeds the limit of 10000 bytes"
            )
        );
        assert!(seen.await.is_err(), "pgwire started");
    }

    #[tokio::test]
    async fn short_startup_packet_closes_silently() {
        let (start, _seen) = fake_pgwire(Vec::new());
        let mut client = spawn_guard(start);
        client.write_all(&i32b(4)).await.unwrap();
        assert_eq!(read_all(&mut client).await, b"");
    }

    #[tokio::test]
    async fn cancel_request_is_forwarded_alone() {
        let (start, seen) = fake_pgwire(Vec::new());
        let mut client = spawn_guard(start);
        let request = cancel(42, 7);
        client
            .write_all(&cat(&[&request, b"trailing"]))
            .await
            .unwrap();
        assert_eq!(read_all(&mut client).await, b"");
        assert_eq!(seen.await.unwrap(), request);
    }

    #[tokio::test]
    async fn a_panic_in_pgwire_ends_with_fatal() {
        let start = |_unix: UnixStream| async move {
            panic!("pgwire broke");
        };
        let mut client = spawn_guard(start);
        client.write_all(&startup(&[])).await.unwrap();
        let received = read_all(&mut client).await;
        assert_eq!(
            received,
            fatal_error_response("XX000", "internal error: the connection's session failed")
        );
    }

    /// Random streams through the whole guard: it always closes, never panics.
    #[tokio::test]
    async fn random_streams_through_the_guard() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let (start, _seen) = fake_pgwire(Vec::new());
            let mut client = spawn_guard(start);
            let mut stream = if rng.gen_bool(0.5) {
                startup(&[])
            } else {
                Vec::new()
            };
            for _ in 0..rng.gen_range(0..4) {
                let mut frame = valid_messages()[rng.gen_range(0..valid_messages().len())].clone();
                if rng.gen_bool(0.3) && !frame.is_empty() {
                    let at = rng.gen_range(0..frame.len());
                    frame[at] = rng.gen();
                }
                stream.extend_from_slice(&frame);
            }
            let noise = rng.gen_range(0..32);
            stream.extend((0..noise).map(|_| rng.gen::<u8>()));
            let _ = client.write_all(&stream).await;
            let _ = client.shutdown().await;
            read_all(&mut client).await;
        }
    }
}
