//! The audit event of the request being served, carried into the Raft entry of the first change the
//! request commits, so that an acknowledged change always has its record: the two are one
//! [`Command::Batch`], applied all or nothing.
//!
//! The audit middleware opens a [`RequestAudit`] around a request with the event it will record (who,
//! from where, what, and the answer a change usually gets); [`super::Meta::propose`] takes the event
//! out of it for the first command the request proposes within that scope and batches the two. The
//! middleware then learns whether the event went in with a change ([`RequestAudit::recorded`]) and,
//! if the answer turned out different from the one recorded, settles it
//! ([`Command::SettleAuditEvent`]); when no change committed, it records the event on its own as before.
//! Work a request spawns (a background task) runs outside the scope and records nothing.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use arca_protocol::Command;
use arca_protocol::model::AuditEvent;

tokio::task_local! {
    static REQUEST: Arc<RequestAudit>;
}

/// What a request's audit event became.
#[derive(Debug, Default)]
struct Slot {
    /// Waiting for the first change.
    waiting: Option<AuditEvent>,
    /// Committed with a change.
    recorded: Option<AuditEvent>,
}

/// The audit event of one request.
#[derive(Debug)]
pub struct RequestAudit {
    slot: Mutex<Slot>,
}

impl RequestAudit {
    /// A scope for a request whose event (as recorded if a change commits) is `event`.
    pub fn new(event: AuditEvent) -> Arc<RequestAudit> {
        Arc::new(RequestAudit {
            slot: Mutex::new(Slot {
                waiting: Some(event),
                recorded: None,
            }),
        })
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `request` within this scope.
    pub async fn scope<F: Future>(self: &Arc<Self>, request: F) -> F::Output {
        REQUEST.scope(self.clone(), request).await
    }

    /// The event as it was committed with a change, if one was.
    pub fn recorded(&self) -> Option<AuditEvent> {
        self.slot().recorded.clone()
    }
}

/// `command` as it should be proposed: batched with the request's audit event when this is the
/// first change of an audited request; with the scope, to report back to ([`settle`]).
pub(super) fn attach(command: Command) -> (Command, Option<(Arc<RequestAudit>, AuditEvent)>) {
    let taken = REQUEST
        .try_with(|request| {
            let event = request.slot().waiting.take()?;
            Some((request.clone(), event))
        })
        .ok()
        .flatten();
    match taken {
        Some((request, event)) => {
            let batch = Command::Batch {
                commands: vec![
                    command,
                    Command::RecordAudit {
                        events: vec![event.clone()],
                    },
                ],
            };
            (batch, Some((request, event)))
        }
        None => (command, None),
    }
}

/// After a proposal that carried `event`: recorded when it committed, else waiting for the
/// request's next change again.
pub(super) fn settle(request: &RequestAudit, event: AuditEvent, committed: bool) {
    let mut slot = request.slot();
    if committed {
        slot.recorded = Some(event);
    } else {
        slot.waiting = Some(event);
    }
}
