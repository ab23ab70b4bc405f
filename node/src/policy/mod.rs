//! Policies over what the registry holds: [`gc`] removes the chunks nothing references any more.

pub mod gc;
