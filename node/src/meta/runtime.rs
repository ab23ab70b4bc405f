//! The async runtime openraft runs on: tokio, except that the random numbers openraft draws (its
//! election timeouts) come from a per-thread generator that [`seed_this_thread`] can seed. A real node
//! seeds it from the operating system; the simulator seeds it from its run's seed, so elections replay.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend, TokioRuntime};
use rand_08::rngs::StdRng;
use rand_08::{RngCore, SeedableRng};

/// tokio with a seedable election-timeout generator.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeededTokio;

thread_local! {
    static GENERATOR: RefCell<StdRng> = RefCell::new(StdRng::from_entropy());
}

/// Makes the random numbers openraft draws on this thread a function of `seed`.
pub fn seed_this_thread(seed: u64) {
    GENERATOR.with(|generator| *generator.borrow_mut() = StdRng::seed_from_u64(seed));
}

/// A handle to this thread's generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadGenerator;

impl RngCore for ThreadGenerator {
    fn next_u32(&mut self) -> u32 {
        GENERATOR.with(|generator| generator.borrow_mut().next_u32())
    }

    fn next_u64(&mut self) -> u64 {
        GENERATOR.with(|generator| generator.borrow_mut().next_u64())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        GENERATOR.with(|generator| generator.borrow_mut().fill_bytes(dest))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_08::Error> {
        GENERATOR.with(|generator| generator.borrow_mut().try_fill_bytes(dest))
    }
}

type Tokio = TokioRuntime;

impl AsyncRuntime for SeededTokio {
    type JoinError = <Tokio as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Tokio as AsyncRuntime>::Sleep;
    type Instant = <Tokio as AsyncRuntime>::Instant;
    type TimeoutError = <Tokio as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Tokio as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = ThreadGenerator;
    type OneshotSender<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotSender<T>;
    type OneshotReceiverError = <Tokio as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Tokio::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Tokio::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Tokio::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        ThreadGenerator
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        Tokio::oneshot()
    }
}
