//! The run's trace: every fault, operation outcome and check, stamped with virtual time. Its blake3
//! hash is what `arca-sim run` prints; two runs of one seed must give the same hash.

use std::sync::Mutex;

use tokio::time::Instant;

/// Events of one run.
pub struct Trace {
    started: Instant,
    inner: Mutex<TraceState>,
}

struct TraceState {
    hasher: blake3::Hasher,
    events: usize,
    lines: Option<Vec<String>>,
}

impl Trace {
    /// An empty trace whose clock starts now; `keep_lines` keeps the text of each event.
    pub fn new(keep_lines: bool) -> Trace {
        Trace {
            started: Instant::now(),
            inner: Mutex::new(TraceState {
                hasher: blake3::Hasher::new(),
                events: 0,
                lines: keep_lines.then(Vec::new),
            }),
        }
    }

    /// Virtual milliseconds since the run began.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Virtual microseconds since the run began (the tag history's timestamps).
    pub fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Records one event.
    pub fn event(&self, text: impl AsRef<str>) {
        let line = format!("{:>8} {}", self.now_ms(), text.as_ref());
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.hasher.update(line.as_bytes());
        state.hasher.update(b"\n");
        state.events += 1;
        if let Some(lines) = state.lines.as_mut() {
            lines.push(line);
        }
    }

    /// The hash of every event so far, hex.
    pub fn hash(&self) -> String {
        let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.hasher.finalize().to_hex()[..16].to_string()
    }

    /// How many events were recorded.
    pub fn events(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).events
    }

    /// The kept lines (empty unless the trace was made to keep them).
    pub fn lines(&self) -> Vec<String> {
        let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.lines.clone().unwrap_or_default()
    }
}
