//! Block Kit payloads as data: every message, modal and Home tab the bot
//! sends is rendered from a minijinja file in `blocks/` (embedded in the
//! binary at build time), parsed into slack-morphism's types and checked
//! against Slack's limits before it leaves.
//!
//! Invariant: a payload that parses into an `Unknown` block, does not
//! round-trip unchanged (a misspelled field would be dropped silently), or
//! breaks a limit is an error here, not a surprise in Slack.

use include_dir::{Dir, include_dir};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;
use slack_morphism::prelude::*;

static BLOCKS_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/blocks");

/// Where a payload is shown decides its block budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Message,
    View,
}

impl Surface {
    pub fn max_blocks(self) -> usize {
        match self {
            Surface::Message => 50,
            Surface::View => 100,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlocksError {
    #[error("no block layout named {0}")]
    Missing(String),
    #[error("block layout {name} failed to render: {source}")]
    Render {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("block layout {name} is not valid JSON: {source}")]
    Json {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("block layout {name} is not valid Block Kit: {problem}")]
    Invalid { name: String, problem: String },
}

/// The loaded layouts.
pub struct Blocks {
    env: Environment<'static>,
}

impl Default for Blocks {
    fn default() -> Self {
        Self::new()
    }
}

impl Blocks {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for file in BLOCKS_DIR.files() {
            let name = file.path().to_string_lossy().to_string();
            if let Some(source) = file.contents_utf8() {
                env.add_template_owned(name, source.to_string())
                    .expect("layouts in blocks/ are checked by the blocks test");
            }
        }
        Self { env }
    }

    /// Names of every layout (`*.json.j2` at the top of `blocks/`).
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> = BLOCKS_DIR
            .files()
            .map(|f| f.path().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".json.j2"))
            .collect();
        names.sort();
        names
    }

    /// A layout's sample context (`blocks/samples/<stem>.json`), the data
    /// the blocks test and the sandbox's Block Kit gallery render it with.
    pub fn sample(name: &str) -> Option<Value> {
        let stem = name.strip_suffix(".json.j2")?;
        let file = BLOCKS_DIR.get_file(format!("samples/{stem}.json"))?;
        serde_json::from_str(file.contents_utf8()?).ok()
    }

    /// Renders a layout to JSON (any shape).
    pub fn render_json(&self, name: &str, ctx: impl Serialize) -> Result<Value, BlocksError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|_| BlocksError::Missing(name.to_string()))?;
        let text = template
            .render(minijinja::value::Serde(&ctx))
            .map_err(|source| BlocksError::Render {
                name: name.to_string(),
                source,
            })?;
        serde_json::from_str(&text).map_err(|source| BlocksError::Json {
            name: name.to_string(),
            source,
        })
    }

    /// Renders a layout whose JSON is an array of blocks, for a message.
    pub fn message_blocks(
        &self,
        name: &str,
        ctx: impl Serialize,
    ) -> Result<Vec<SlackBlock>, BlocksError> {
        let json = self.render_json(name, ctx)?;
        parse_blocks(name, &json, Surface::Message)
    }

    /// Renders a layout whose JSON is a view (`home` or `modal`).
    pub fn view(&self, name: &str, ctx: impl Serialize) -> Result<SlackView, BlocksError> {
        let json = self.render_json(name, ctx)?;
        parse_view(name, &json)
    }
}

/// Parses and checks an array of blocks.
pub fn parse_blocks(
    name: &str,
    json: &Value,
    surface: Surface,
) -> Result<Vec<SlackBlock>, BlocksError> {
    let invalid = |problem: String| BlocksError::Invalid {
        name: name.to_string(),
        problem,
    };
    let blocks: Vec<SlackBlock> =
        serde_json::from_value(json.clone()).map_err(|e| invalid(e.to_string()))?;
    check_blocks(&blocks, surface).map_err(invalid)?;
    let back = serde_json::to_value(&blocks).map_err(|e| invalid(e.to_string()))?;
    if &back != json {
        return Err(invalid(format!(
            "does not round-trip (a misspelled or unsupported field?): {}",
            first_difference(json, &back)
        )));
    }
    check_limits(json, surface).map_err(invalid)?;
    Ok(blocks)
}

/// Parses and checks a view.
pub fn parse_view(name: &str, json: &Value) -> Result<SlackView, BlocksError> {
    let invalid = |problem: String| BlocksError::Invalid {
        name: name.to_string(),
        problem,
    };
    let view: SlackView =
        serde_json::from_value(json.clone()).map_err(|e| invalid(e.to_string()))?;
    let blocks = match &view {
        SlackView::Home(h) => &h.blocks,
        SlackView::Modal(m) => &m.blocks,
    };
    check_blocks(blocks, Surface::View).map_err(invalid)?;
    let back = serde_json::to_value(&view).map_err(|e| invalid(e.to_string()))?;
    if &back != json {
        return Err(invalid(format!(
            "does not round-trip (a misspelled or unsupported field?): {}",
            first_difference(json, &back)
        )));
    }
    check_limits(json, Surface::View).map_err(invalid)?;
    Ok(view)
}

fn check_blocks(blocks: &[SlackBlock], surface: Surface) -> Result<(), String> {
    if let Some((i, _)) = blocks
        .iter()
        .enumerate()
        .find(|(_, b)| matches!(b, SlackBlock::Unknown(_)))
    {
        return Err(format!(
            "block {i} is not a block type slack-morphism knows (unknown type, unknown element, or a missing required field)"
        ));
    }
    if blocks.len() > surface.max_blocks() {
        return Err(format!(
            "{} blocks, over Slack's limit of {}",
            blocks.len(),
            surface.max_blocks()
        ));
    }
    Ok(())
}

/// Slack's text limits (from python-slack-sdk's model constants), checked on
/// the JSON so they hold whatever the typed model allows.
pub fn check_limits(json: &Value, surface: Surface) -> Result<(), String> {
    let mut problems = Vec::new();
    let blocks = match json {
        Value::Array(b) => {
            if b.len() > surface.max_blocks() {
                problems.push(format!("{} blocks, over {}", b.len(), surface.max_blocks()));
            }
            b.as_slice()
        }
        Value::Object(o) => {
            for (field, max) in [("title", 24), ("submit", 24), ("close", 24)] {
                if let Some(text) = o
                    .get(field)
                    .and_then(|t| t.get("text"))
                    .and_then(Value::as_str)
                {
                    limit(&mut problems, &format!("view {field}"), text, max);
                }
            }
            if let Some(meta) = o.get("private_metadata").and_then(Value::as_str) {
                limit(&mut problems, "private_metadata", meta, 3000);
            }
            for field in ["callback_id", "external_id"] {
                if let Some(v) = o.get(field).and_then(Value::as_str) {
                    limit(&mut problems, field, v, 255);
                }
            }
            o.get("blocks")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
        }
        _ => &[],
    };
    for (i, block) in blocks.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        let at = format!("block {i} ({kind})");
        if let Some(id) = block.get("block_id").and_then(Value::as_str) {
            limit(&mut problems, &format!("{at} block_id"), id, 255);
        }
        match kind {
            "header" => text_limit(&mut problems, &at, block.get("text"), 150),
            "section" => {
                text_limit(&mut problems, &at, block.get("text"), 3000);
                if let Some(fields) = block.get("fields").and_then(Value::as_array) {
                    if fields.len() > 10 {
                        problems.push(format!("{at}: {} fields, over 10", fields.len()));
                    }
                    for f in fields {
                        text_limit(&mut problems, &at, Some(f), 2000);
                    }
                }
                if let Some(acc) = block.get("accessory") {
                    element_limits(&mut problems, &at, acc);
                }
            }
            "context" => {
                if let Some(els) = block.get("elements").and_then(Value::as_array) {
                    if els.len() > 10 {
                        problems.push(format!("{at}: {} elements, over 10", els.len()));
                    }
                    for e in els {
                        if e.get("type").and_then(Value::as_str) != Some("image") {
                            text_limit(&mut problems, &at, Some(e), 3000);
                        }
                    }
                }
            }
            "actions" => {
                if let Some(els) = block.get("elements").and_then(Value::as_array) {
                    if els.len() > 25 {
                        problems.push(format!("{at}: {} elements, over 25", els.len()));
                    }
                    for e in els {
                        element_limits(&mut problems, &at, e);
                    }
                }
            }
            "input" => {
                text_limit(&mut problems, &at, block.get("label"), 2000);
                text_limit(&mut problems, &at, block.get("hint"), 2000);
                if let Some(e) = block.get("element") {
                    element_limits(&mut problems, &at, e);
                }
            }
            "markdown" => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    limit(&mut problems, &at, t, 12000);
                }
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn element_limits(problems: &mut Vec<String>, at: &str, e: &Value) {
    if let Some(id) = e.get("action_id").and_then(Value::as_str) {
        limit(problems, &format!("{at} action_id"), id, 255);
    }
    if e.get("type").and_then(Value::as_str) == Some("button") {
        text_limit(problems, &format!("{at} button"), e.get("text"), 75);
        if let Some(v) = e.get("value").and_then(Value::as_str) {
            limit(problems, &format!("{at} button value"), v, 2000);
        }
        if let Some(u) = e.get("url").and_then(Value::as_str) {
            limit(problems, &format!("{at} button url"), u, 3000);
        }
    }
    if let Some(options) = e.get("options").and_then(Value::as_array) {
        if options.len() > 100 {
            problems.push(format!("{at}: {} options, over 100", options.len()));
        }
        for o in options {
            text_limit(problems, &format!("{at} option"), o.get("text"), 75);
            if let Some(v) = o.get("value").and_then(Value::as_str) {
                limit(problems, &format!("{at} option value"), v, 150);
            }
        }
    }
    if let Some(c) = e.get("confirm") {
        text_limit(
            problems,
            &format!("{at} confirm title"),
            c.get("title"),
            100,
        );
        text_limit(problems, &format!("{at} confirm text"), c.get("text"), 300);
        text_limit(
            problems,
            &format!("{at} confirm button"),
            c.get("confirm"),
            30,
        );
        text_limit(problems, &format!("{at} deny button"), c.get("deny"), 30);
    }
}

fn text_limit(problems: &mut Vec<String>, at: &str, text: Option<&Value>, max: usize) {
    if let Some(t) = text.and_then(|t| t.get("text")).and_then(Value::as_str) {
        limit(problems, at, t, max);
    }
}

fn limit(problems: &mut Vec<String>, at: &str, s: &str, max: usize) {
    let n = s.chars().count();
    if n > max {
        problems.push(format!("{at}: {n} characters, over {max}"));
    }
}

/// The first JSON path where two values differ, for a readable error.
fn first_difference(a: &Value, b: &Value) -> String {
    fn walk(a: &Value, b: &Value, path: String) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, v) in x {
                    match y.get(k) {
                        None => return Some(format!("{path}.{k} was dropped")),
                        Some(w) => {
                            if let Some(d) = walk(v, w, format!("{path}.{k}")) {
                                return Some(d);
                            }
                        }
                    }
                }
                y.keys()
                    .find(|k| !x.contains_key(*k))
                    .map(|k| format!("{path}.{k} was added"))
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return Some(format!(
                        "{path} has {} items, {} after parsing",
                        x.len(),
                        y.len()
                    ));
                }
                x.iter()
                    .zip(y)
                    .enumerate()
                    .find_map(|(i, (v, w))| walk(v, w, format!("{path}[{i}]")))
            }
            _ if a != b => Some(format!("{path}: {a} became {b}")),
            _ => None,
        }
    }
    walk(a, b, "$".into()).unwrap_or_else(|| "no difference".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_misspelled_field_is_caught() {
        let json = json!([{"type": "section", "text": {"type": "mrkdwn", "txt": "hi"}}]);
        assert!(parse_blocks("t", &json, Surface::Message).is_err());
    }

    #[test]
    fn an_unknown_block_is_caught() {
        let json = json!([{"type": "sparkle", "text": "hi"}]);
        let err = parse_blocks("t", &json, Surface::Message).unwrap_err();
        assert!(err.to_string().contains("not a block type"), "{err}");
    }

    #[test]
    fn limits_are_enforced() {
        let long = "x".repeat(151);
        let json = json!([{"type": "header", "text": {"type": "plain_text", "text": long}}]);
        let err = parse_blocks("t", &json, Surface::Message).unwrap_err();
        assert!(err.to_string().contains("over 150"), "{err}");
        let many: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
        assert!(parse_blocks("t", &Value::Array(many), Surface::Message).is_err());
    }

    #[test]
    fn a_valid_section_round_trips() {
        let json = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]);
        assert_eq!(parse_blocks("t", &json, Surface::Message).unwrap().len(), 1);
    }
}
