//! Delivers the outbox (`qm_app::notify`): e-mail over SMTP, and webhooks signed in the Standard
//! Webhooks format. A task reads new ledger entries into the outbox every `notify_every_ms`, then
//! tries every message that is due; each attempt's outcome is recorded before the next, so a
//! restart resumes where it stopped. Delivery is at least once: a message sent just before the
//! process died, and not yet marked, is sent again, under the same id (`webhook-id`, `Message-ID`)
//! by which a receiver deduplicates.

use crate::SiteHandle;
use base64::Engine;
use hmac::{Hmac, Mac};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use qm_app::notify::{read_secret_file, Attempt, NotifyConfig, SmtpTls};
use qm_store::OutboxMessage;
use std::sync::Arc;
use std::time::Duration;

type HmacSha256 = Hmac<sha2::Sha256>;

/// The Standard Webhooks signature of a message: `v1,` and the base64 HMAC-SHA256, under the
/// secret's key, of `id.timestamp.body`.
pub fn webhook_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Checks a received Standard Webhooks message: the timestamp within `tolerance_s` of `now`, and
/// one of the space-separated signatures (`v1,…`) right, compared in constant time.
pub fn verify_webhook(
    key: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<(), String> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| format!("webhook-timestamp {timestamp:?} is not a number of seconds"))?;
    if (now - ts).abs() > tolerance_s {
        return Err(format!("webhook-timestamp {ts} is more than {tolerance_s} s from now ({now})"));
    }
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    for s in signatures.split_whitespace() {
        if let Some(b64) = s.strip_prefix("v1,") {
            if let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(b64) {
                if mac.clone().verify_slice(&sig).is_ok() {
                    return Ok(());
                }
            }
        }
    }
    Err("no webhook-signature matches the body".into())
}

/// The channels, built once from the configuration.
pub struct Notifier {
    pub cfg: Arc<NotifyConfig>,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    http: reqwest::Client,
}

impl Notifier {
    /// From the notifications file (checked against the books), or the defaults without one.
    pub fn configured(file: Option<&str>, state: &qm_core::State) -> Result<Arc<Notifier>, String> {
        let cfg = match file {
            Some(p) => NotifyConfig::load(std::path::Path::new(p), state).map_err(|e| e.to_string())?,
            None => NotifyConfig::default(),
        };
        Notifier::new(cfg).map(Arc::new).map_err(|e| format!("notifications: {e}"))
    }

    pub fn new(cfg: NotifyConfig) -> Result<Notifier, String> {
        let smtp = match &cfg.smtp {
            None => None,
            Some(s) => {
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
                    .port(s.port())
                    .timeout(Some(Duration::from_secs(s.timeout_s.max(1))));
                if s.tls != SmtpTls::None {
                    let mut p = TlsParameters::builder(s.host.clone());
                    if let Some(ca) = &s.ca_file {
                        let pem = std::fs::read(ca).map_err(|e| format!("smtp.ca_file {}: {e}", ca.display()))?;
                        p = p.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| format!("smtp.ca_file {}: {e}", ca.display()))?);
                    }
                    let p = p.build_rustls().map_err(|e| format!("smtp: TLS: {e}"))?;
                    b = b.tls(if s.tls == SmtpTls::Tls { Tls::Wrapper(p) } else { Tls::Required(p) });
                }
                if let (Some(user), Some(file)) = (&s.username, &s.password_file) {
                    let password = read_secret_file(file, "smtp.password_file", "notifications")?;
                    b = b.credentials(Credentials::new(user.clone(), password));
                }
                let from: Mailbox = s.from.parse().map_err(|e| format!("smtp.from {:?}: {e}", s.from))?;
                Some((b.build(), from))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("Quartermaster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Notifier { cfg: Arc::new(cfg), smtp, http })
    }

    /// One attempt to deliver a message.
    pub async fn deliver(&self, m: &OutboxMessage) -> Attempt {
        match m.channel.as_str() {
            "email" => self.email(m).await,
            "webhook" => self.webhook(m).await,
            other => Err(format!("no channel {other:?}")),
        }
    }

    async fn email(&self, m: &OutboxMessage) -> Attempt {
        let Some((smtp, from)) = &self.smtp else { return Err("no [smtp] is configured".into()) };
        let to: Mailbox = m.target.parse().map_err(|e| format!("address {:?}: {e}", m.target))?;
        let host = from.email.domain().to_string();
        let email = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&m.subject)
            .message_id(Some(format!("<{}@{host}>", m.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| format!("building the e-mail: {e}"))?;
        smtp.send(email).await.map(|_| ()).map_err(|e| format!("SMTP {}: {e}", self.cfg.smtp.as_ref().map_or("", |s| s.host.as_str())))
    }

    async fn webhook(&self, m: &OutboxMessage) -> Attempt {
        let w = self.cfg.webhooks.get(&m.target).ok_or_else(|| format!("no webhook {:?} is configured now", m.target))?;
        let key = self.cfg.webhook_secret(&m.target)?;
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let r = self
            .http
            .post(&w.url)
            .header("content-type", "application/json")
            .header("webhook-id", &m.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", webhook_signature(&key, &m.id, ts, m.body.as_bytes()))
            .body(m.body.clone())
            .send()
            .await
            .map_err(|e| format!("POST {}: {}", w.url, causes(&e)))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("POST {}: answered {}", w.url, r.status()))
        }
    }
}

/// An error with its causes (reqwest's own says only "error sending request").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        next = c.source();
    }
    text
}

/// Most messages tried in one round.
const ROUND_MAX: usize = 50;

/// One round: new entries into the outbox, then every message due, each outcome recorded.
/// Returns false when the site has stopped.
pub async fn round(site: &SiteHandle, n: &Notifier) -> bool {
    let cfg = n.cfg.clone();
    match site.call(move |s| s.notify_enqueue(&cfg, time::OffsetDateTime::now_utc())).await {
        Err(_) => return false,
        Ok(Err(e)) => tracing::warn!("reading the ledger into the outbox failed (tried again later): {e}"),
        Ok(Ok(_)) => {}
    }
    let due = match site.call(|s| s.outbox_due(time::OffsetDateTime::now_utc(), ROUND_MAX)).await {
        Err(_) => return false,
        Ok(Err(e)) => {
            tracing::warn!("reading the outbox failed (tried again later): {e}");
            return true;
        }
        Ok(Ok(due)) => due,
    };
    for m in due {
        let outcome = n.deliver(&m).await;
        if let Err(e) = &outcome {
            tracing::warn!(id = %m.id, channel = %m.channel, target = %m.target, attempt = m.attempts + 1, "notification not delivered: {e}");
        }
        let retry = n.cfg.retry.clone();
        match site.call(move |s| s.outbox_attempted(&m, &outcome, &retry, time::OffsetDateTime::now_utc())).await {
            Err(_) => return false,
            Ok(Err(e)) => tracing::warn!("recording a delivery attempt failed: {e}"),
            Ok(Ok(())) => {}
        }
    }
    true
}

/// Starts the delivery task: a round every `every`.
pub fn spawn(site: SiteHandle, n: Arc<Notifier>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            if !round(&site, &n).await {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (standard-webhooks/spec, "Signature scheme").
    #[test]
    fn signature_matches_the_specification_example() {
        let key = qm_app::notify::webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = webhook_signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify_webhook(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &format!("v1,bad {sig}"), body, 1614265331, 300).is_ok());
        let tampered = verify_webhook(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &sig, b"{}", 1614265331, 300);
        assert!(tampered.unwrap_err().contains("no webhook-signature"));
        let late = verify_webhook(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &sig, body, 1614265330 + 301, 300);
        assert!(late.unwrap_err().contains("more than 300 s"));
    }
}
