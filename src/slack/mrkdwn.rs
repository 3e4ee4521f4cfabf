//! Text going into Slack mrkdwn: escaping user text and cutting it to a
//! length Slack accepts.
//!
//! Leaf utility code: it imports nothing from the crate, so any module may
//! use it. Invariants:
//! - [`escape`] leaves no `&`, `<` or `>` that Slack would read as markup, so
//!   user text cannot mention `@channel` (`<!channel>`), a user or a
//!   channel, or forge a link.
//! - [`truncate`] returns at most `max_chars` characters *including* the
//!   "…" it adds (Slack's field limits count the whole string) and only cuts
//!   on character boundaries.

/// Escapes the three characters Slack's mrkdwn treats as control
/// characters (`&`, `<`, `>`), as Slack's formatting guide asks; everything
/// else, `*`/`_`/`~` included, is left to format as the author meant.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` if it has at most `max_chars` characters; else its first
/// `max_chars - 1` characters and "…", so the result never exceeds
/// `max_chars` characters.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    // The byte index of the character after the last kept one, if the text
    // is longer than `max_chars` (found without counting the whole string).
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some(_) => {
            let keep = max_chars - 1;
            let end = text
                .char_indices()
                .nth(keep)
                .map_or(text.len(), |(at, _)| at);
            let mut out = String::with_capacity(end + '…'.len_utf8());
            out.push_str(&text[..end]);
            out.push('…');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_mentions_links_and_entities() {
        assert_eq!(escape("<!channel> & co"), "&lt;!channel&gt; &amp; co");
        assert_eq!(
            escape("<https://evil.example|bank> <@U123>"),
            "&lt;https://evil.example|bank&gt; &lt;@U123&gt;"
        );
        // An ampersand already spelled as an entity is escaped again, so the
        // reader sees exactly what was typed.
        assert_eq!(escape("&lt;"), "&amp;lt;");
    }

    #[test]
    fn escape_leaves_other_text_alone() {
        assert_eq!(
            escape("*bold* _it_ ~x~ `c` héllo 👋"),
            "*bold* _it_ ~x~ `c` héllo 👋"
        );
        assert_eq!(escape(""), "");
    }

    #[test]
    fn truncate_keeps_text_that_fits() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello", 6), "hello");
        assert_eq!(truncate("", 3), "");
    }

    #[test]
    fn truncate_counts_the_ellipsis_in_the_limit() {
        assert_eq!(truncate("hello", 4), "hel…");
        assert_eq!(truncate("hello", 1), "…");
        assert_eq!(truncate("hello", 0), "");
        for max in 0..12 {
            let t = truncate("hello world, again", max);
            assert!(t.chars().count() <= max, "{max}: {t}");
        }
    }

    #[test]
    fn truncate_cuts_on_character_boundaries() {
        assert_eq!(truncate("héllo", 3), "hé…");
        assert_eq!(truncate("👋👋👋👋", 3), "👋👋…");
        assert_eq!(truncate("日本語テキスト", 7), "日本語テキスト");
        assert_eq!(truncate("日本語テキスト", 6), "日本語テキ…");
    }
}
