//! Link shaping for simulations: in-process connections (`/memory/N`) given
//! the latency, jitter, loss and bandwidth of a modelled link, and refused or
//! broken while a partition cuts the link.
//!
//! Both directions of a connection are shaped on the side that dialed it
//! (the listener's side passes bytes through), so each node needs only a
//! model of its own links: [`LinkModel::link`] by the remote's memory port.
//! Loss is modelled as a stream transport sees it: a lost segment arrives
//! late, after a retransmission timeout, never out of order or missing.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::PollSender;

/// Chunks in flight per direction of one connection (beyond it, the writer waits).
const IN_FLIGHT: usize = 256;
/// The retransmission timeout a lost segment costs, on top of a round trip.
const RETRANSMIT: Duration = Duration::from_millis(200);

/// One direction of a modelled link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkParams {
    /// One-way latency.
    pub latency: Duration,
    /// Extra delay, uniform in `0..jitter`, per segment (order is kept).
    pub jitter: Duration,
    /// Probability that a segment is lost and retransmitted (0 to 1).
    pub loss: f64,
    /// Bandwidth in bytes per second; 0 is unlimited.
    pub bytes_per_sec: u64,
}

/// A node's view of its links.
pub trait LinkModel: Send + Sync + fmt::Debug {
    /// The link to the node listening on memory port `remote`, or `None`
    /// while it is cut (dials fail, open connections break).
    fn link(&self, remote: u64) -> Option<LinkParams>;

    /// Counts `bytes` sent from this node to `remote` (`outbound`) or back.
    fn count(&self, remote: u64, bytes: usize, outbound: bool);

    /// Seed of the jitter and loss draws of connections to `remote`.
    fn seed(&self, remote: u64) -> u64;
}

/// When each segment of one direction arrives.
#[derive(Debug)]
struct Schedule {
    rng: u64,
    line_free: Instant,
    last_arrival: Instant,
}

impl Schedule {
    fn new(seed: u64) -> Self {
        let now = Instant::now();
        Schedule {
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            line_free: now,
            last_arrival: now,
        }
    }

    /// A uniform draw in `[0, 1)` (splitmix64).
    fn draw(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Arrival time of `len` bytes handed to the link at `sent`.
    fn arrival(&mut self, sent: Instant, len: usize, link: &LinkParams) -> Instant {
        let serialise = if link.bytes_per_sec == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(len as f64 / link.bytes_per_sec as f64)
        };
        self.line_free = self.line_free.max(sent) + serialise;
        let mut delay = link.latency + link.jitter.mul_f64(self.draw());
        if self.draw() < link.loss {
            delay += link.latency * 2 + RETRANSMIT;
        }
        self.last_arrival = self.last_arrival.max(self.line_free + delay);
        self.last_arrival
    }
}

/// Shapes a new in-process connection: the dialing side gets its node's
/// link model (a cut link fails the dial); the listening side passes
/// through. For `MemoryTransport::and_then`.
pub fn on_connect<S>(
    stream: S,
    endpoint: &libp2p::core::ConnectedPoint,
    model: Arc<dyn LinkModel>,
) -> Result<futures::future::Either<ShapedStream, S>, io::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let libp2p::core::ConnectedPoint::Dialer { address, .. } = endpoint else {
        return Ok(futures::future::Either::Right(stream));
    };
    let remote = address
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Memory(port) => Some(port),
            _ => None,
        })
        .unwrap_or(0);
    if model.link(remote).is_none() {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "link cut (partition)",
        ));
    }
    Ok(futures::future::Either::Left(shape(stream, remote, model)))
}

/// A shaped connection, as the dialing node's libp2p stack sees it.
pub struct ShapedStream {
    outgoing: PollSender<(Instant, Vec<u8>)>,
    incoming: mpsc::Receiver<io::Result<Vec<u8>>>,
    buffer: VecDeque<u8>,
}

impl fmt::Debug for ShapedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShapedStream")
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

/// Shapes `stream`, dialed to the node on memory port `remote`, with `model`.
/// Must be called within a tokio runtime (two tasks carry the bytes).
pub fn shape<S>(stream: S, remote: u64, model: Arc<dyn LinkModel>) -> ShapedStream
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (reader, writer) = stream.split();
    let (outgoing, from_app) = mpsc::channel(IN_FLIGHT);
    let (to_app, incoming) = mpsc::channel(IN_FLIGHT);
    let seed = model.seed(remote);
    tokio::spawn(carry_out(writer, from_app, remote, model.clone(), seed));
    tokio::spawn(carry_in(reader, to_app, remote, model, seed ^ 1));
    ShapedStream {
        outgoing: PollSender::new(outgoing),
        incoming,
        buffer: VecDeque::new(),
    }
}

fn cut() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "link cut (partition)")
}

/// Our bytes to the remote: each chunk leaves when the link would deliver it.
async fn carry_out<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut chunks: mpsc::Receiver<(Instant, Vec<u8>)>,
    remote: u64,
    model: Arc<dyn LinkModel>,
    seed: u64,
) {
    let mut schedule = Schedule::new(seed);
    while let Some((sent, chunk)) = chunks.recv().await {
        let Some(link) = model.link(remote) else {
            break;
        };
        tokio::time::sleep_until(schedule.arrival(sent, chunk.len(), &link)).await;
        if model.link(remote).is_none() || writer.write_all(&chunk).await.is_err() {
            break;
        }
        if writer.flush().await.is_err() {
            break;
        }
        model.count(remote, chunk.len(), true);
    }
    let _ = writer.close().await;
}

/// The remote's bytes to us: each chunk is handed over when the link would
/// have delivered it.
async fn carry_in<R: AsyncRead + Unpin>(
    mut reader: R,
    to_app: mpsc::Sender<io::Result<Vec<u8>>>,
    remote: u64,
    model: Arc<dyn LinkModel>,
    seed: u64,
) {
    let (timed, mut arrivals) = mpsc::channel::<(Instant, io::Result<Vec<u8>>)>(IN_FLIGHT);
    // Reading goes on while earlier chunks wait for their arrival time.
    let deliver = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = arrivals.recv() => next,
                () = to_app.closed() => None,
            };
            let Some((at, chunk)) = next else { break };
            tokio::time::sleep_until(at).await;
            let end = chunk.is_err();
            if to_app.send(chunk).await.is_err() || end {
                break;
            }
        }
    });
    let mut schedule = Schedule::new(seed);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // Stop reading when our side is gone, so the connection (and an
        // in-process dial port) is released at once.
        let read = tokio::select! {
            read = reader.read(&mut buffer) => read,
            () = timed.closed() => break,
        };
        let now = Instant::now();
        let (at, item) = match (read, model.link(remote)) {
            (Ok(0), _) => break,
            (Ok(_), None) => (now, Err(cut())),
            (Ok(n), Some(link)) => {
                model.count(remote, n, false);
                (schedule.arrival(now, n, &link), Ok(buffer[..n].to_vec()))
            }
            (Err(e), _) => (now, Err(e)),
        };
        let end = item.is_err();
        if timed.send((at, item)).await.is_err() || end {
            break;
        }
    }
    drop(timed);
    let _ = deliver.await;
}

impl AsyncRead for ShapedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        while self.buffer.is_empty() {
            match ready!(self.incoming.poll_recv(cx)) {
                Some(Ok(chunk)) => self.buffer.extend(chunk),
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(0)),
            }
        }
        let n = out.len().min(self.buffer.len());
        for (slot, byte) in out.iter_mut().zip(self.buffer.drain(..n)) {
            *slot = byte;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for ShapedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        if ready!(self.outgoing.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(cut()));
        }
        match self.outgoing.send_item((Instant::now(), bytes.to_vec())) {
            Ok(()) => Poll::Ready(Ok(bytes.len())),
            Err(_) => Poll::Ready(Err(cut())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes handed over are on the (modelled) wire.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outgoing.close();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_util::compat::TokioAsyncReadCompatExt;

    use super::*;

    #[derive(Debug)]
    struct OneLink {
        params: Mutex<Option<LinkParams>>,
        counted: Mutex<(usize, usize)>,
    }

    impl LinkModel for OneLink {
        fn link(&self, _: u64) -> Option<LinkParams> {
            *self.params.lock().expect("lock")
        }
        fn count(&self, _: u64, bytes: usize, outbound: bool) {
            let mut counted = self.counted.lock().expect("lock");
            if outbound {
                counted.0 += bytes;
            } else {
                counted.1 += bytes;
            }
        }
        fn seed(&self, remote: u64) -> u64 {
            remote
        }
    }

    fn model(params: LinkParams) -> Arc<OneLink> {
        Arc::new(OneLink {
            params: Mutex::new(Some(params)),
            counted: Mutex::new((0, 0)),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn latency_and_bandwidth_delay_each_direction_and_bytes_are_counted() {
        let link = model(LinkParams {
            latency: Duration::from_millis(50),
            bytes_per_sec: 100_000,
            ..LinkParams::default()
        });
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let mut shaped = shape(ours.compat(), 7, link.clone());
        let mut theirs = theirs.compat();
        let start = Instant::now();
        shaped.write_all(&[1u8; 10_000]).await.expect("write");
        let mut got = vec![0u8; 10_000];
        theirs.read_exact(&mut got).await.expect("read");
        // 10 kB at 100 kB/s is 100 ms on the line, then 50 ms of latency.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_millis(170), "{took:?}");
        // Back the other way: latency again.
        let start = Instant::now();
        theirs.write_all(b"ack").await.expect("write");
        let mut ack = [0u8; 3];
        shaped.read_exact(&mut ack).await.expect("read");
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(*link.counted.lock().expect("lock"), (10_000, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_pipeline_instead_of_waiting_a_latency_each() {
        let link = model(LinkParams {
            latency: Duration::from_millis(100),
            ..LinkParams::default()
        });
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let mut shaped = shape(ours.compat(), 7, link);
        let mut theirs = theirs.compat();
        let start = Instant::now();
        for _ in 0..50 {
            shaped.write_all(&[2u8; 100]).await.expect("write");
        }
        let mut got = vec![0u8; 5_000];
        theirs.read_exact(&mut got).await.expect("read");
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(150),
            "50 chunks in one latency: {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_segment_arrives_late_but_in_order() {
        let link = model(LinkParams {
            latency: Duration::from_millis(10),
            loss: 1.0,
            ..LinkParams::default()
        });
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let mut shaped = shape(ours.compat(), 7, link);
        let mut theirs = theirs.compat();
        let start = Instant::now();
        shaped.write_all(b"first").await.expect("write");
        shaped.write_all(b"second").await.expect("write");
        let mut got = [0u8; 11];
        theirs.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"firstsecond");
        assert!(start.elapsed() >= Duration::from_millis(10 + 20 + 200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_link_breaks_the_connection() {
        let link = model(LinkParams::default());
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let mut shaped = shape(ours.compat(), 7, link.clone());
        let mut theirs = theirs.compat();
        *link.params.lock().expect("lock") = None;
        theirs.write_all(b"across the cut").await.expect("write");
        let mut got = [0u8; 4];
        let read = shaped.read(&mut got).await;
        assert!(read.is_err(), "{read:?}");
    }
}
