//! SMS as a channel, beside `crate::email`: what one text says once it is
//! composed, what it costs, and the words previews use about it. Providers
//! (Twilio) only transport the result.
//!
//! Invariants:
//! - [`compose`] is the one place a text gets what its kind requires, for
//!   campaigns, nudges, triggers and the API alike. A marketing text starts
//!   with the sender's name ("Acme: …") and ends with [`STOP_FOOTER`], as
//!   CTIA's messaging principles ask; each is added only when the body does
//!   not already carry it, so neither ever appears twice. A transactional
//!   text (a verification code) carries neither.
//! - The ledger stores the composed text as `{"text": …}` ([`content`]), at
//!   enqueue time: segments and cost are counted on exactly what is sent,
//!   and a provider never adds to it.
//! - Segments are counted by [`crate::domain::sms_segments`], on the final
//!   text with its prefix and footer.

pub mod settings;

pub use settings::SmsSettings;

use crate::domain::{MessageKind, SmsEncoding, SmsSegments};

/// The opt-out instruction every marketing text ends with.
pub const STOP_FOOTER: &str = "Reply STOP to opt out.";

/// The name marketing texts identify their sender with: `[sms]
/// sender_name`, else the product's name (`email.product_name`, else
/// "warmline").
pub fn sender_name(settings: &crate::settings::Settings) -> String {
    settings
        .sms
        .sender_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| settings.email.product())
}

/// Whether `text` already tells the recipient how to opt out (any case).
pub fn has_stop_footer(text: &str) -> bool {
    text.to_lowercase()
        .contains(&STOP_FOOTER.trim_end_matches('.').to_lowercase())
}

/// Whether `text` already starts with the sender's name (any case).
fn starts_with_sender(text: &str, sender: &str) -> bool {
    text.to_lowercase().starts_with(&sender.to_lowercase())
}

/// The text as it is sent: for marketing, `"<sender>: <body>\n<footer>"`,
/// each part added only when missing; transactional texts unchanged but
/// for surrounding white space (which would only cost septets).
pub fn compose(body: &str, kind: MessageKind, sender: &str) -> String {
    let body = body.trim();
    if kind == MessageKind::Transactional {
        return body.to_string();
    }
    let sender = sender.trim();
    let mut text = if sender.is_empty() || starts_with_sender(body, sender) {
        body.to_string()
    } else {
        format!("{sender}: {body}")
    };
    if !has_stop_footer(&text) {
        text.push('\n');
        text.push_str(STOP_FOOTER);
    }
    text
}

/// The provider-neutral ledger payload of a text.
pub fn content(text: &str) -> serde_json::Value {
    serde_json::json!({ "text": text })
}

/// What sending texts costs: `segments` in all (every recipient's text
/// counted) at `price` per segment, in US dollars.
pub fn cost(segments: usize, price: f64) -> f64 {
    segments as f64 * price
}

/// "$0.12": dollars rounded to the cent, never shown as nothing for a
/// non-zero cost ("<$0.01").
pub fn dollars(amount: f64) -> String {
    if amount > 0.0 && amount < 0.005 {
        "<$0.01".into()
    } else {
        format!("${amount:.2}")
    }
}

/// "1 segment, GSM-7" or, for UCS-2, why the text is in it.
pub fn segments_words(s: &SmsSegments) -> String {
    let count = match s.count {
        1 => "1 segment".to_string(),
        n => format!("{n} segments"),
    };
    match s.encoding {
        SmsEncoding::Gsm7 => format!("{count}, GSM-7 ({} characters)", s.units),
        SmsEncoding::Ucs2 => format!(
            "{count}, UCS-2 ({} units): a single emoji or other character outside GSM-7 \
             switches the whole text to UCS-2, 70 characters a segment instead of 160",
            s.units
        ),
    }
}

/// "1 msg/s", "0.5 msg/s".
pub fn rate_words(requests_per_second: f64) -> String {
    let r = (requests_per_second * 100.0).round() / 100.0;
    format!("{r} msg/s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sms_segments;

    #[test]
    fn marketing_gets_the_sender_and_the_stop_footer() {
        // Act
        let text = compose(
            "  Hi Ada, our spring hours are up.  ",
            MessageKind::Marketing,
            "Acme",
        );

        // Assert
        assert_eq!(
            text,
            "Acme: Hi Ada, our spring hours are up.\nReply STOP to opt out."
        );
    }

    #[test]
    fn neither_part_is_added_twice() {
        // Arrange: the body already names the sender and says how to stop.
        let body = "ACME here: sale today. reply stop to opt out";

        // Act
        let text = compose(body, MessageKind::Marketing, "Acme");
        let again = compose(
            &compose("Hi", MessageKind::Marketing, "Acme"),
            MessageKind::Marketing,
            "Acme",
        );

        // Assert
        assert_eq!(text, body);
        assert_eq!(again, "Acme: Hi\nReply STOP to opt out.");
        assert_eq!(again.matches("Acme").count(), 1);
        assert_eq!(again.to_lowercase().matches("reply stop").count(), 1);
    }

    #[test]
    fn transactional_texts_carry_neither() {
        let text = compose(
            "Your Acme code is 493817.\n",
            MessageKind::Transactional,
            "Acme",
        );
        assert_eq!(text, "Your Acme code is 493817.");
        assert!(!has_stop_footer(&text));
    }

    #[test]
    fn segments_are_counted_on_the_final_text() {
        // Arrange: 140 GSM-7 characters fit one segment alone; the sender
        // and the footer push them into two.
        let body = "x".repeat(140);

        // Act
        let bare = sms_segments(&body);
        let sent = sms_segments(&compose(&body, MessageKind::Marketing, "Acme"));

        // Assert
        assert_eq!((bare.count, bare.encoding), (1, SmsEncoding::Gsm7));
        assert_eq!((sent.count, sent.encoding), (2, SmsEncoding::Gsm7));
    }

    #[test]
    fn the_sender_defaults_to_the_product() {
        let mut s = crate::settings::Settings::default();
        assert_eq!(sender_name(&s), "warmline");
        s.email.product_name = Some("Acme".into());
        assert_eq!(sender_name(&s), "Acme");
        s.sms.sender_name = Some("Acme Bikes".into());
        assert_eq!(sender_name(&s), "Acme Bikes");
        s.sms.sender_name = Some("  ".into());
        assert_eq!(sender_name(&s), "Acme");
    }

    #[test]
    fn words_for_people() {
        assert_eq!(dollars(cost(3 * 5, 0.0083)), "$0.12");
        assert_eq!(dollars(0.004), "<$0.01");
        assert_eq!(dollars(0.0), "$0.00");
        assert_eq!(rate_words(1.0), "1 msg/s");
        assert_eq!(rate_words(0.5), "0.5 msg/s");
        let emoji = sms_segments("Hi 👋");
        assert!(segments_words(&emoji).starts_with("1 segment, UCS-2"));
        assert!(segments_words(&emoji).contains("emoji"));
        assert_eq!(
            segments_words(&sms_segments("Hi")),
            "1 segment, GSM-7 (2 characters)"
        );
    }
}
