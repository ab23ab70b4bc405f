//! Where blocking work (file and database I/O) runs. On a multi-threaded runtime it goes to tokio's
//! blocking pool, off the async workers. On a current-thread runtime (the simulator, unit tests) it
//! runs as an ordinary task on the runtime's one thread: there are no workers to keep free, and the
//! order in which work finishes then depends on the schedule alone, so a simulation replays exactly.

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;

/// Runs `work` where blocking work belongs on the current runtime (see the module docs).
pub fn spawn<R, F>(work: F) -> JoinHandle<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    if Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread {
        tokio::spawn(async move { work() })
    } else {
        tokio::task::spawn_blocking(work)
    }
}
