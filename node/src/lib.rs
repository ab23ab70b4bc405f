//! arca-node: the Arca server.

pub mod meta;
