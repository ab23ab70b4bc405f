//! Deliberate defects the simulator turns on to prove that its invariants catch real bugs (in the
//! manner of FoundationDB's BUGGIFY). Each [`Defect`] is checked at the one place in the node's code
//! where the bug would live. They are off unless a simulation enables them, and only for the thread
//! that enabled them: a simulated cluster runs on one thread, so parallel simulations (and the real
//! node) never see each other's defects.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

/// A bug that can be switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Defect {
    /// The Raft log acknowledges appended entries (and votes) before they are fsynced.
    AckBeforeFsync,
    /// Chunks read from disk or fetched from a peer are served without checking their blake3 hash.
    SkipChunkVerification,
    /// Garbage collection takes every unreferenced chunk it finds: no fence (so a write in flight
    /// whose chunks it takes may still commit), no grace period, and no regard for the chunks that
    /// writes hold.
    GcWithoutFence,
    /// A linearizable read on a follower serves its local state without a read barrier.
    StaleFollowerRead,
}

impl Defect {
    /// Every defect, in a fixed order.
    pub const ALL: [Defect; 4] = [
        Defect::AckBeforeFsync,
        Defect::SkipChunkVerification,
        Defect::GcWithoutFence,
        Defect::StaleFollowerRead,
    ];

    /// The name the simulator's `--inject` takes.
    pub fn name(self) -> &'static str {
        match self {
            Defect::AckBeforeFsync => "ack-before-fsync",
            Defect::SkipChunkVerification => "skip-chunk-verification",
            Defect::GcWithoutFence => "gc-without-fence",
            Defect::StaleFollowerRead => "stale-follower-read",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A defect name that is not one of [`Defect::ALL`].
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown defect {0:?} (known: ack-before-fsync, skip-chunk-verification, gc-without-fence, stale-follower-read)"
)]
pub struct UnknownDefect(String);

impl FromStr for Defect {
    type Err = UnknownDefect;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Defect::ALL
            .into_iter()
            .find(|defect| defect.name() == name)
            .ok_or_else(|| UnknownDefect(name.to_string()))
    }
}

thread_local! {
    static ENABLED: Cell<u8> = const { Cell::new(0) };
}

/// Turns exactly `defects` on for the current thread (an empty slice turns every defect off).
pub fn enable_on_this_thread(defects: &[Defect]) {
    let bits = defects.iter().fold(0, |bits, defect| bits | defect.bit());
    ENABLED.with(|enabled| enabled.set(bits));
}

/// True when `defect` is on for the current thread.
pub fn enabled(defect: Defect) -> bool {
    ENABLED.with(|enabled| enabled.get() & defect.bit() != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defects_are_per_thread_and_parse_by_name() {
        let defect: Defect = "gc-without-fence".parse().expect("known name");
        enable_on_this_thread(&[defect]);
        assert!(enabled(Defect::GcWithoutFence));
        assert!(!enabled(Defect::AckBeforeFsync));
        let elsewhere = std::thread::spawn(|| enabled(Defect::GcWithoutFence))
            .join()
            .expect("thread");
        assert!(!elsewhere);
        enable_on_this_thread(&[]);
        assert!(!enabled(Defect::GcWithoutFence));
        assert!("no-such-bug".parse::<Defect>().is_err());
    }
}
