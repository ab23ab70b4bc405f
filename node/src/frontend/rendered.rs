//! Documents a front-end renders from many records (Helm's `index.yaml` lists every chart version
//! of a registry): each is kept under its key while the metadata has not changed since it was
//! rendered (the same last applied Raft entry) and for at most [`FRESH_FOR`] (members that are
//! remote registries change without a commit here), and is rendered by one request at a time, so
//! concurrent readers share one render instead of each doing it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The longest a rendered document is served.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// A document as rendered.
struct Entry {
    applied: u64,
    at: Instant,
    body: Bytes,
}

/// The rendered documents of a node, by key.
#[derive(Default)]
pub struct Rendered {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Entry>>>>>,
}

impl Rendered {
    /// The document under `key` while it is as fresh as `applied` says (and younger than
    /// [`FRESH_FOR`]); else what `render` gives, kept. One render per key at a time: others wait
    /// for it.
    pub async fn get_or_render<E, Fut>(
        &self,
        key: &str,
        applied: u64,
        render: impl FnOnce() -> Fut,
    ) -> Result<Bytes, E>
    where
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            slots.entry(key.to_string()).or_default().clone()
        };
        let mut entry = slot.lock().await;
        if let Some(kept) = entry.as_ref()
            && kept.applied == applied
            && kept.at.elapsed() < FRESH_FOR
        {
            return Ok(kept.body.clone());
        }
        let body = render().await?;
        *entry = Some(Entry {
            applied,
            at: Instant::now(),
            body: body.clone(),
        });
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_document_is_rendered_again_only_after_a_change() {
        let rendered = Rendered::default();
        let renders = AtomicU32::new(0);
        let render = || async {
            renders.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(Bytes::from_static(b"index"))
        };
        for _ in 0..3 {
            assert_eq!(
                rendered.get_or_render("r", 7, render).await,
                Ok(Bytes::from_static(b"index"))
            );
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        rendered
            .get_or_render("r", 8, render)
            .await
            .expect("rendered");
        rendered
            .get_or_render("other", 8, render)
            .await
            .expect("rendered");
        assert_eq!(renders.load(Ordering::SeqCst), 3);
    }
}
