//! How many SMS segments a text takes, as carriers count them (3GPP TS
//! 23.038 / 23.040): what an SMS costs and what a preview should warn about.
//!
//! A text that fits the GSM-7 alphabet is packed at 7 bits a character:
//! 160 characters in one segment, 153 per segment once it is split (the
//! concatenation header takes 7). Characters of the extension table (`€`,
//! `[`, `{`, `|`, `~`, `^`, `\`, `]`, `}`, form feed) take two septets.
//! Anything else switches the whole text to UCS-2: 70 UTF-16 code units in
//! one segment, 67 per segment when split. An emoji is two code units, and
//! a split never cuts a surrogate pair or an escape sequence in half (the
//! providers' own counting, which the bill follows).

use serde::Serialize;

/// The encoding a text is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SmsEncoding {
    #[serde(rename = "GSM-7")]
    Gsm7,
    #[serde(rename = "UCS-2")]
    Ucs2,
}

/// A text's size on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SmsSegments {
    pub encoding: SmsEncoding,
    /// Segments billed; 1 for an empty text.
    pub count: usize,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets a character takes in GSM-7, or `None` outside the alphabet.
fn septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Splits `sizes` (each character's units, never cut) into segments of at
/// most `single` units, or `multi` once more than one is needed.
fn pack(sizes: &[usize], single: usize, multi: usize) -> (usize, usize) {
    let units: usize = sizes.iter().sum();
    if units <= single {
        return (1, units);
    }
    let (mut count, mut used) = (1, 0);
    for &size in sizes {
        if used + size > multi {
            count += 1;
            used = 0;
        }
        used += size;
    }
    (count, units)
}

/// Counts the segments `text` takes.
pub fn sms_segments(text: &str) -> SmsSegments {
    let gsm: Option<Vec<usize>> = text.chars().map(septets).collect();
    match gsm {
        Some(sizes) => {
            let (count, units) = pack(&sizes, 160, 153);
            SmsSegments {
                encoding: SmsEncoding::Gsm7,
                count,
                units,
            }
        }
        None => {
            let sizes: Vec<usize> = text.chars().map(char::len_utf16).collect();
            let (count, units) = pack(&sizes, 70, 67);
            SmsSegments {
                encoding: SmsEncoding::Ucs2,
                count,
                units,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_in_one_and_153_per_part_after() {
        assert_eq!(sms_segments("").count, 1);
        assert_eq!(sms_segments(&"a".repeat(160)).count, 1);
        assert_eq!(sms_segments(&"a".repeat(161)).count, 2);
        assert_eq!(sms_segments(&"a".repeat(306)).count, 2);
        assert_eq!(sms_segments(&"a".repeat(307)).count, 3);
        assert_eq!(sms_segments("Hi Ada").encoding, SmsEncoding::Gsm7);
    }

    #[test]
    fn extension_characters_take_two_septets_and_are_never_split() {
        let s = sms_segments(&"€".repeat(80));
        assert_eq!((s.encoding, s.units, s.count), (SmsEncoding::Gsm7, 160, 1));
        assert_eq!(sms_segments(&"€".repeat(81)).count, 2);
        // 152 septets then a two-septet `€`: it moves whole to part two.
        let s = sms_segments(&format!("{}€{}", "a".repeat(152), "a".repeat(10)));
        assert_eq!(s.count, 2);
    }

    #[test]
    fn anything_outside_gsm7_makes_it_ucs2_and_emoji_count_double() {
        let s = sms_segments("Hi Zoë — see you");
        assert_eq!(s.encoding, SmsEncoding::Ucs2);
        assert_eq!(sms_segments(&"ж".repeat(70)).count, 1);
        assert_eq!(sms_segments(&"ж".repeat(71)).count, 2);
        let s = sms_segments(&"🔥".repeat(35));
        assert_eq!((s.units, s.count), (70, 1));
        // 33 emoji = 66 units; the 34th would cut a pair at 67, so it
        // starts part two.
        assert_eq!(sms_segments(&"🔥".repeat(36)).count, 2);
        assert_eq!(
            sms_segments(&format!("{}{}", "ж".repeat(66), "🔥".repeat(3))).count,
            2
        );
    }
}
