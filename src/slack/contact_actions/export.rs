//! `/warm contact export`: everything warmline holds on a contact as JSON,
//! cut into mrkdwn sections of one ephemeral message.
//!
//! Invariant: the export is shown whole or not at all — when it needs more
//! sections than one message holds, the caller gets its size instead.

use serde_json::json;
use slack_morphism::prelude::*;

use crate::{slack::mrkdwn::escape, state::App};

/// Slack's limit on a section's text.
const SECTION_TEXT: usize = 3000;
/// Sections of JSON one message may hold (50 blocks, less the intro and
/// the footer).
const MAX_EXPORT_SECTIONS: usize = 48;

/// The export as an ephemeral message, or `Err(bytes)` when it does not fit
/// in one message.
pub fn export_message(
    app: &App,
    name: &str,
    export: &serde_json::Value,
) -> anyhow::Result<Result<SlackMessageContent, usize>> {
    let text = serde_json::to_string_pretty(export)?;
    let Some(chunks) = chunk_for_sections(&text, SECTION_TEXT - 6, MAX_EXPORT_SECTIONS) else {
        return Ok(Err(text.len()));
    };
    let blocks = app.blocks.message_blocks(
        "contact_export.json.j2",
        json!({ "name": escape(name), "bytes": text.len(), "chunks": chunks }),
    )?;
    Ok(Ok(SlackMessageContent::new()
        .with_text(format!("Export of {name} ({} bytes of JSON)", text.len()))
        .with_blocks(blocks)))
}

/// Splits `text` into mrkdwn-escaped pieces of at most `max` characters,
/// cutting at line ends where it can and never inside an escape; `None`
/// when more than `max_chunks` pieces would be needed.
fn chunk_for_sections(text: &str, max: usize, max_chunks: usize) -> Option<Vec<String>> {
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    let mut push = |piece: &str, piece_len: usize, chunks: &mut Vec<String>| {
        if current_len + piece_len > max && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            current_len = 0;
        }
        current.push_str(piece);
        current_len += piece_len;
    };
    for line in text.split_inclusive('\n') {
        let escaped = escape(line);
        let len = escaped.chars().count();
        if len <= max {
            push(&escaped, len, &mut chunks);
        } else {
            // A line longer than a section: cut it between characters.
            for ch in line.chars() {
                let e = escape(&ch.to_string());
                let n = e.chars().count();
                push(&e, n, &mut chunks);
            }
        }
        if chunks.len() > max_chunks {
            return None;
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    (chunks.len() <= max_chunks).then_some(chunks)
}

#[cfg(test)]
mod tests {
    use super::chunk_for_sections;
    use crate::slack::mrkdwn::escape;

    #[test]
    fn chunks_respect_the_limit_and_keep_every_character() {
        let text = format!("{{\n  \"a\": \"{}\",\n  \"b\": \"<x>\"\n}}", "y".repeat(50));
        let chunks = chunk_for_sections(&text, 20, 100).unwrap();
        assert!(chunks.iter().all(|c| c.chars().count() <= 20), "{chunks:?}");
        let joined: String = chunks.concat();
        assert_eq!(joined, escape(&text));
    }

    #[test]
    fn too_many_chunks_is_none() {
        assert!(chunk_for_sections(&"x\n".repeat(100), 4, 3).is_none());
    }
}
