//! Axum extractors whose rejections answer in Arca's error format ([`ApiError`]).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};

use super::ApiError;

/// A JSON request body; a body that does not parse is answered in Arca's error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// Query parameters; ones that do not parse are answered in Arca's error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

/// Path parameters; ones that do not parse are answered in Arca's error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathParams<T>(pub T);

/// Declares how an axum extractor rejection becomes an [`ApiError`] with the same status.
macro_rules! rejection_into_api_error {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for ApiError {
            fn from(rejection: $rejection) -> Self {
                ApiError::new(rejection.status(), "INVALID", rejection.body_text())
            }
        }
    )*};
}

rejection_into_api_error!(JsonRejection, QueryRejection, PathRejection);
