//! Webhooks in the replicated state: applying their commands ([`Table::Webhooks`], and each one's
//! delivery log in [`Table::WebhookDeliveries`], trimmed to the last [`WEBHOOK_LOG`] attempts).
//! What is delivered, when and by which node is the `webhooks` module's at the crate's root.

use arca_protocol::CommandError;
use arca_protocol::model::{Webhook, WebhookDelivery};

use super::apply::{Applied, Applier};
use super::keys::{self, Key};
use super::tables::{Table, WEBHOOK_LOG, scalar};
use super::view::{ReadResult, StateRead};

/// The key of a webhook.
pub fn webhook_key(name: &str) -> Vec<u8> {
    keys::of(&[name])
}

/// The key of the `number`th delivery logged for a webhook.
fn delivery_key(name: &str, number: u64) -> Vec<u8> {
    Key::new().part(name).number(number).into_bytes()
}

/// The webhook called `name`.
pub fn webhook(view: &impl StateRead, name: &str) -> ReadResult<Option<Webhook>> {
    view.get(Table::Webhooks, &webhook_key(name))
}

/// Every webhook, by name.
pub fn webhooks(view: &impl StateRead) -> ReadResult<Vec<Webhook>> {
    Ok(view
        .scan::<Webhook>(Table::Webhooks, &[], None, usize::MAX)?
        .into_iter()
        .map(|(_, webhook)| webhook)
        .collect())
}

/// The newest `limit` deliveries logged for `webhook`, newest first.
pub fn newest_deliveries(
    view: &impl StateRead,
    webhook: &Webhook,
    limit: usize,
) -> ReadResult<Vec<WebhookDelivery>> {
    let first = webhook.logged.saturating_sub(limit as u64);
    let prefix = webhook_key(&webhook.name);
    let after = first.checked_sub(1).map(|n| delivery_key(&webhook.name, n));
    let mut found: Vec<WebhookDelivery> = view
        .scan(Table::WebhookDeliveries, &prefix, after.as_deref(), limit)?
        .into_iter()
        .map(|(_, delivery)| delivery)
        .collect();
    found.reverse();
    Ok(found)
}

impl Applier<'_> {
    pub(crate) fn create_webhook(&mut self, mut webhook: Webhook) -> Applied {
        let key = webhook_key(&webhook.name);
        if self.contains(Table::Webhooks, &key)? {
            return Ok(Err(CommandError::AlreadyExists(format!(
                "webhook {}",
                webhook.name
            ))));
        }
        if let Some(registry) = &webhook.registry
            && self.registry_record(registry)?.is_none()
        {
            return Ok(Err(CommandError::NotFound(format!("registry {registry}"))));
        }
        webhook.cursor = self.counter(scalar::NEXT_AUDIT_ID)?.saturating_sub(1);
        webhook.failures = 0;
        webhook.logged = 0;
        self.put(Table::Webhooks, &key, &webhook)?;
        Ok(Ok(()))
    }

    pub(crate) fn delete_webhook(&mut self, name: &str) -> Applied {
        if !self.delete(Table::Webhooks, &webhook_key(name))? {
            return Ok(Err(CommandError::NotFound(format!("webhook {name}"))));
        }
        let log = self.scan_keys(
            Table::WebhookDeliveries,
            &webhook_key(name),
            None,
            usize::MAX,
        )?;
        for key in log {
            self.delete(Table::WebhookDeliveries, &key)?;
        }
        Ok(Ok(()))
    }

    pub(crate) fn set_webhook_enabled(
        &mut self,
        name: &str,
        enabled: bool,
        reason: Option<String>,
    ) -> Applied {
        let key = webhook_key(name);
        let Some(mut webhook) = self.get::<Webhook>(Table::Webhooks, &key)? else {
            return Ok(Err(CommandError::NotFound(format!("webhook {name}"))));
        };
        webhook.enabled = enabled;
        if enabled {
            webhook.failures = 0;
            webhook.disabled_reason = None;
        } else {
            webhook.disabled_reason = reason;
        }
        self.put(Table::Webhooks, &key, &webhook)?;
        Ok(Ok(()))
    }

    pub(crate) fn record_webhook_deliveries(
        &mut self,
        name: &str,
        id: u64,
        cursor: u64,
        deliveries: Vec<WebhookDelivery>,
        failures: Option<u32>,
        disable: Option<String>,
    ) -> Applied {
        let key = webhook_key(name);
        let Some(mut webhook) = self.get::<Webhook>(Table::Webhooks, &key)? else {
            return Ok(Ok(()));
        };
        if webhook.id != id {
            return Ok(Ok(()));
        }
        webhook.cursor = webhook.cursor.max(cursor);
        if let Some(failures) = failures {
            webhook.failures = failures;
        }
        if let Some(reason) = disable {
            webhook.enabled = false;
            webhook.disabled_reason = Some(reason);
        }
        for delivery in deliveries {
            self.put(
                Table::WebhookDeliveries,
                &delivery_key(name, webhook.logged),
                &delivery,
            )?;
            if let Some(oldest) = webhook.logged.checked_sub(WEBHOOK_LOG) {
                self.delete(Table::WebhookDeliveries, &delivery_key(name, oldest))?;
            }
            webhook.logged += 1;
        }
        self.put(Table::Webhooks, &key, &webhook)?;
        Ok(Ok(()))
    }
}
