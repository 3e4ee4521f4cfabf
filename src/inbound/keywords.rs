//! Opt-out, opt-in and help keywords in an inbound message.
//!
//! The rule is the carriers' and Twilio's default (CTIA; Twilio's "Advanced
//! Opt-Out" defaults, `shared/docs/providers-messaging.md` §2.7): the WHOLE
//! message must be a single keyword, in any case. "STOP" and "stop." are
//! STOP; "stop please", "STOP IT" and "don't stop" are ordinary replies.
//! Matching anything looser would revoke consent from people who merely used
//! the word in a sentence; matching anything stricter would ignore a plain
//! "Stop." typed on a phone that adds the period.
//!
//! Invariants:
//! - Only surrounding whitespace and punctuation are trimmed; anything left
//!   must be one word with no inner whitespace or punctuation.
//! - The lists below are the complete vocabulary; nothing else is a keyword.

/// What a keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    /// Revoke this channel's consent.
    Stop,
    /// Restore this channel's consent.
    Start,
    /// Answer with the help text.
    Help,
}

/// Opt-out words: Twilio's defaults, REVOKE and OPTOUT included (added April
/// 2025; also the FCC's 2024 list of definitive revocations).
pub const STOP_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
/// Opt-in words.
pub const START_WORDS: &[&str] = &["START", "YES", "UNSTOP"];
/// Help words.
pub const HELP_WORDS: &[&str] = &["HELP", "INFO"];

impl Keyword {
    /// The name stored in `inbound_messages.keyword`.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Stop => "stop",
            Keyword::Start => "start",
            Keyword::Help => "help",
        }
    }
}

/// A keyword found in a message, with the word as the person typed it
/// (trimmed), which is kept as the consent record's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub keyword: Keyword,
    pub word: String,
}

/// The keyword `text` consists of, if it is exactly one.
pub fn parse(text: &str) -> Option<Found> {
    let word = text.trim_matches(|c: char| c.is_whitespace() || is_punctuation(c));
    if word.is_empty() || !word.chars().all(|c| c.is_alphabetic()) {
        return None;
    }
    let upper = word.to_uppercase();
    let keyword = if STOP_WORDS.contains(&upper.as_str()) {
        Keyword::Stop
    } else if START_WORDS.contains(&upper.as_str()) {
        Keyword::Start
    } else if HELP_WORDS.contains(&upper.as_str()) {
        Keyword::Help
    } else {
        return None;
    };
    Some(Found {
        keyword,
        word: word.to_string(),
    })
}

/// Punctuation a phone or a person may put around a one-word reply:
/// ASCII punctuation, and Unicode punctuation-like symbols ("¡", "¿", "…",
/// curly quotes) as well as emoji, which are neither letters nor digits.
fn is_punctuation(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(text: &str) -> Option<Keyword> {
        parse(text).map(|f| f.keyword)
    }

    #[test]
    fn every_keyword_matches_in_any_case() {
        for (words, expected) in [
            (STOP_WORDS, Keyword::Stop),
            (START_WORDS, Keyword::Start),
            (HELP_WORDS, Keyword::Help),
        ] {
            for w in words {
                let lower = w.to_lowercase();
                let mut title = lower.clone();
                title[..1].make_ascii_uppercase();
                for variant in [w.to_string(), lower, title] {
                    assert_eq!(kw(&variant), Some(expected), "{variant}");
                }
            }
        }
        assert_eq!(kw("sToP"), Some(Keyword::Stop));
        assert_eq!(kw("OptOut"), Some(Keyword::Stop));
    }

    #[test]
    fn surrounding_whitespace_and_punctuation_are_trimmed() {
        for text in [
            " stop ",
            "\tSTOP\n",
            "Stop.",
            "STOP!",
            "stop!!!",
            "\"stop\"",
            "(stop)",
            "¡Stop!",
            "stop…",
            "  Stop. ",
            "STOP 🛑",
        ] {
            assert_eq!(kw(text), Some(Keyword::Stop), "{text:?}");
        }
        assert_eq!(kw("Yes!"), Some(Keyword::Start));
        assert_eq!(kw("help?"), Some(Keyword::Help));
    }

    #[test]
    fn the_word_is_kept_as_typed() {
        assert_eq!(
            parse("  Stop. ").unwrap(),
            Found {
                keyword: Keyword::Stop,
                word: "Stop".into()
            }
        );
    }

    #[test]
    fn more_than_one_word_is_not_a_keyword() {
        for text in [
            "stop please",
            "STOP IT",
            "please stop",
            "don't stop",
            "opt out",
            "stop, thanks",
            "yes I'd love to",
            "help me",
        ] {
            assert_eq!(kw(text), None, "{text:?}");
        }
    }

    #[test]
    fn other_words_and_inner_punctuation_are_not_keywords() {
        for text in [
            "",
            "   ",
            "...",
            "stopp",
            "sto p",
            "s.t.o.p",
            "opt-out",
            "stop2",
            "unsubscribed",
            "no",
            "yes.no",
            "starting",
        ] {
            assert_eq!(kw(text), None, "{text:?}");
        }
    }
}
