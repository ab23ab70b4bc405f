//! Package-manager front-ends, one module per protocol. Each turns its protocol into the calls of
//! [`crate::frontend`] (authentication, [`receive_blob`](crate::frontend::receive_blob),
//! [`serve_blob`](crate::frontend::serve_blob), errors) and of the core (metadata, chunk store,
//! policy); none imports another, nor the management API.

pub mod cargo;
pub mod composer;
pub mod conda;
pub mod debian;
pub mod generic;
pub mod go;
pub mod helm;
pub mod huggingface;
pub mod maven;
pub mod npm;
pub mod nuget;
pub mod oci;
pub mod pypi;
pub mod rpm;
pub mod rubygems;

use crate::frontend::FrontEnds;

/// Every front-end of this build.
pub fn front_ends() -> FrontEnds {
    FrontEnds::new(vec![
        Box::new(generic::Generic),
        Box::new(oci::Oci),
        Box::new(npm::Npm),
        Box::new(maven::Maven),
        Box::new(pypi::Pypi),
        Box::new(cargo::Cargo),
        Box::new(helm::Helm),
        Box::new(go::Go),
        Box::new(rubygems::RubyGems),
        Box::new(composer::Composer),
        Box::new(conda::Conda),
        Box::new(nuget::NuGet),
        Box::new(huggingface::HuggingFace),
        Box::new(debian::Debian),
        Box::new(rpm::Rpm),
    ])
}
