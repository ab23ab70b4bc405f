//! Policies over what the registry holds: [`cleanup`] deletes the versions a registry's cleanup policy
//! selects, [`gc`] removes the chunks nothing references any more.

pub mod cleanup;
pub mod gc;
