//! Every Block Kit layout in `blocks/` renders from its sample context in
//! `blocks/samples/` and passes the checks Slack would otherwise fail
//! silently: no `Unknown` blocks, an unchanged round trip, Slack's limits.

use std::path::PathBuf;

use serde_json::{Value, json};
use warmline::slack::blocks::{
    Blocks, BlocksError, Surface, check_limits, parse_blocks, parse_view,
};

fn sample_path(name: &str) -> PathBuf {
    let stem = name
        .strip_suffix(".json.j2")
        .expect("layout names end in .json.j2");
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("blocks/samples")
        .join(format!("{stem}.json"))
}

/// Renders, parses and checks one layout with its sample context.
fn check_layout(blocks: &Blocks, name: &str) -> Result<(), String> {
    let path = sample_path(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{name}: missing sample context {} ({e})", path.display()))?;
    let ctx: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let rendered = blocks.render_json(name, &ctx).map_err(|e| e.to_string())?;
    match &rendered {
        Value::Array(_) => parse_blocks(name, &rendered, Surface::Message).map(|b| b.len()),
        Value::Object(_) => parse_view(name, &rendered).map(|_| 0),
        other => {
            return Err(format!(
                "{name} rendered neither an array nor a view: {other}"
            ));
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn there_are_layouts() {
    // Arrange / Act
    let names = Blocks::names();

    // Assert
    assert!(!names.is_empty(), "blocks/ has no *.json.j2 layouts");
    for expected in ["home.json.j2", "setup_status.json.j2", "usage.json.j2"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} is missing from {names:?}"
        );
    }
}

#[test]
fn every_layout_has_a_sample_and_passes_the_checks() {
    // Arrange
    let blocks = Blocks::new();

    // Act
    let failures: Vec<String> = Blocks::names()
        .iter()
        .filter_map(|name| check_layout(&blocks, name).err())
        .collect();

    // Assert
    assert!(
        failures.is_empty(),
        "layouts failing:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_sample_belongs_to_a_layout() {
    // Arrange
    let names = Blocks::names();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("blocks/samples");

    // Act
    let orphans: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|f| {
            let stem = f.strip_suffix(".json").unwrap_or(f);
            !names.iter().any(|n| n == &format!("{stem}.json.j2"))
        })
        .collect();

    // Assert
    assert!(orphans.is_empty(), "samples without a layout: {orphans:?}");
}

#[test]
fn rendering_with_a_missing_variable_is_an_error() {
    // Arrange: strict undefined behaviour must catch a context that forgot a field.
    let blocks = Blocks::new();

    // Act
    let err = blocks
        .render_json("usage.json.j2", json!({"notice": null}))
        .unwrap_err();

    // Assert
    assert!(matches!(err, BlocksError::Render { .. }), "{err}");
}

#[test]
fn home_renders_into_a_home_view() {
    // Arrange
    let blocks = Blocks::new();
    let ctx: Value =
        serde_json::from_str(&std::fs::read_to_string(sample_path("home.json.j2")).unwrap())
            .unwrap();

    // Act
    let view = blocks.view("home.json.j2", &ctx).expect("home renders");

    // Assert
    assert!(matches!(view, slack_morphism::prelude::SlackView::Home(_)));
}

#[test]
fn an_unknown_block_is_caught() {
    // Arrange
    let json = json!([{"type": "sparkle", "text": {"type": "plain_text", "text": "hi"}}]);

    // Act
    let err = parse_blocks("t", &json, Surface::Message).unwrap_err();

    // Assert
    assert!(err.to_string().contains("not a block type"), "{err}");
}

#[test]
fn a_known_block_missing_a_required_field_is_caught() {
    // Arrange: `{"type":"header"}` without text parses as Unknown in slack-morphism.
    let json = json!([{"type": "header"}]);

    // Act
    let err = parse_blocks("t", &json, Surface::Message).unwrap_err();

    // Assert
    assert!(err.to_string().contains("not a block type"), "{err}");
}

#[test]
fn a_misspelled_field_is_caught_by_the_round_trip() {
    // Arrange
    let json =
        json!([{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}, "blok_id": "b1"}]);

    // Act
    let err = parse_blocks("t", &json, Surface::Message).unwrap_err();

    // Assert
    assert!(err.to_string().contains("round-trip"), "{err}");
    assert!(
        err.to_string().contains("blok_id"),
        "the error names the dropped field: {err}"
    );
}

#[test]
fn a_misspelled_field_in_a_view_is_caught() {
    // Arrange
    let json = json!({"type": "home", "blocks": [{"type": "divider"}], "callbak_id": "x"});

    // Act
    let err = parse_view("t", &json).unwrap_err();

    // Assert
    assert!(err.to_string().contains("callbak_id"), "{err}");
}

#[test]
fn an_over_long_header_is_caught() {
    // Arrange
    let json = json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]);
    let at_limit =
        json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(150)}}]);

    // Act
    let err = parse_blocks("t", &json, Surface::Message).unwrap_err();

    // Assert
    assert!(err.to_string().contains("over 150"), "{err}");
    assert!(
        parse_blocks("t", &at_limit, Surface::Message).is_ok(),
        "150 characters is allowed"
    );
}

#[test]
fn block_count_limits_depend_on_the_surface() {
    // Arrange
    let blocks = |n: usize| Value::Array((0..n).map(|_| json!({"type": "divider"})).collect());

    // Act / Assert
    assert!(parse_blocks("t", &blocks(50), Surface::Message).is_ok());
    assert!(parse_blocks("t", &blocks(51), Surface::Message).is_err());
    assert!(check_limits(&blocks(100), Surface::View).is_ok());
    assert!(check_limits(&blocks(101), Surface::View).is_err());
    let home = json!({"type": "home", "blocks": blocks(101)});
    assert!(parse_view("t", &home).is_err());
}

#[test]
fn other_limits_are_checked() {
    // Arrange
    let long_button = json!([{"type": "actions", "elements": [
        {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b".repeat(76)}}
    ]}]);
    let long_section =
        json!([{"type": "section", "text": {"type": "mrkdwn", "text": "s".repeat(3001)}}]);
    let long_title = json!({"type": "modal", "title": {"type": "plain_text", "text": "t".repeat(25)}, "blocks": []});

    // Act
    let button = check_limits(&long_button, Surface::Message);
    let section = check_limits(&long_section, Surface::Message);
    let title = check_limits(&long_title, Surface::View);

    // Assert
    assert!(button.unwrap_err().contains("over 75"));
    assert!(section.unwrap_err().contains("over 3000"));
    assert!(title.unwrap_err().contains("over 24"));
}
