//! Policies over what the registry holds: [`cleanup`] deletes the versions a registry's cleanup policy
//! selects, [`gc`] removes the chunks nothing references any more, [`firewall`] evaluates versions
//! against the dependency firewall and quarantines the ones it blocks.

pub mod cleanup;
pub mod firewall;
pub mod gc;
