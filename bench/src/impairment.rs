//! A userspace stand-in for a wide-area link (the kernel here has no netem): a UDP relay on 127.0.0.1
//! that holds every datagram for half the round trip in each direction and drops a fixed share of
//! them. Drops come from a seeded generator, so every run loses the same datagrams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UdpSocket;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the relay does to every datagram.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Round trip added (half each way).
    pub round_trip: Duration,
    /// Share of datagrams dropped, each way (0.01 is 1 %).
    pub loss: f64,
}

/// A running relay; dropping it stops it.
pub struct Relay {
    /// Where the client sends to (it stands for the server).
    pub addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Largest datagram relayed.
const DATAGRAM: usize = 65_536;

impl Relay {
    /// Starts a relay in front of `server` for one client (the first that sends to it).
    pub async fn start(server: SocketAddr, impairment: Impairment) -> anyhow::Result<Relay> {
        let front = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .context("binding the relay")?,
        );
        let back = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .context("binding the relay")?,
        );
        let addr = front.local_addr()?;
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let one_way = impairment.round_trip / 2;
        let mut tasks = JoinSet::new();
        // Client -> server.
        let (to_server, delayed) = mpsc::unbounded_channel();
        tasks.spawn(deliver(delayed, back.clone(), Target::Fixed(server)));
        tasks.spawn(receive(
            front.clone(),
            to_server,
            one_way,
            impairment.loss,
            1,
            Some(client.clone()),
        ));
        // Server -> client.
        let (to_client, delayed) = mpsc::unbounded_channel();
        tasks.spawn(deliver(delayed, front, Target::Learned(client)));
        tasks.spawn(receive(back, to_client, one_way, impairment.loss, 2, None));
        Ok(Relay { addr, tasks })
    }
}

/// Where a direction's datagrams go.
enum Target {
    Fixed(SocketAddr),
    Learned(Arc<Mutex<Option<SocketAddr>>>),
}

/// Receives datagrams on `socket`, drops a share `loss` of them, and queues the rest to leave after
/// `delay`; the first sender is remembered in `learn`.
async fn receive(
    socket: Arc<UdpSocket>,
    queue: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    delay: Duration,
    loss: f64,
    seed: u64,
    learn: Option<Arc<Mutex<Option<SocketAddr>>>>,
) {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ seed;
    let mut buffer = vec![0u8; DATAGRAM];
    while let Ok((length, from)) = socket.recv_from(&mut buffer).await {
        if let Some(learn) = &learn {
            learn.lock().await.get_or_insert(from);
        }
        // xorshift64*: a uniform draw in [0, 1).
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let draw = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        if draw < loss {
            continue;
        }
        let datagram = buffer[..length].to_vec();
        if queue.send((Instant::now() + delay, datagram)).is_err() {
            return;
        }
    }
}

/// Sends each queued datagram when its time comes (every one waits as long, so the queue is in
/// time order).
async fn deliver(
    mut queue: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    socket: Arc<UdpSocket>,
    target: Target,
) {
    while let Some((due, datagram)) = queue.recv().await {
        tokio::time::sleep_until(due).await;
        let to = match &target {
            Target::Fixed(addr) => Some(*addr),
            Target::Learned(learned) => *learned.lock().await,
        };
        if let Some(to) = to {
            // A datagram the socket refuses is one more loss.
            let _ = socket.send_to(&datagram, to).await;
        }
    }
}
