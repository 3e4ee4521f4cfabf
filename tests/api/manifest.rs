//! The Slack app manifest: `manifest.yml` as committed, `render()` and the
//! binary's `warmline manifest` all validate against Slack's official schema
//! (kept in `../shared/specs/`, never copied into the repo), and the
//! manifest asks for exactly what the code uses.

use std::{collections::BTreeSet, process::Command};

use serde_json::Value;
use warmline::slack::manifest::{MANIFEST, render, required_bot_scopes};

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/specs/slack-manifest.schema.1.0.0.json"
);

/// YAML → JSON value, the way Slack reads the manifest.
fn yaml_to_json(text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).expect("the manifest is valid YAML")
}

/// Panics with every schema violation when `manifest` does not validate.
fn assert_valid(what: &str, manifest: &Value) {
    let schema_text = std::fs::read_to_string(SCHEMA_PATH)
        .unwrap_or_else(|e| panic!("read the manifest schema at {SCHEMA_PATH}: {e}"));
    let schema: Value = serde_json::from_str(&schema_text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles offline");
    let errors: Vec<String> = validator
        .iter_errors(manifest)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}",
        errors.join("\n")
    );
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("manifest has no string at {pointer}"))
}

fn strings_at(v: &Value, pointer: &str) -> BTreeSet<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("manifest has no array at {pointer}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn the_committed_manifest_is_the_embedded_one_and_validates() {
    // Arrange
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/manifest.yml")).unwrap();

    // Act
    let manifest = yaml_to_json(&on_disk);

    // Assert
    assert_eq!(
        on_disk, MANIFEST,
        "the binary embeds manifest.yml as committed"
    );
    assert_valid("manifest.yml", &manifest);
}

#[test]
fn a_misspelled_key_fails_the_schema() {
    // Arrange: the validator must actually reject something, or the test above proves nothing.
    let bad = MANIFEST.replace(
        "request_url: https://warmline.example.com/slack/events",
        "request_uri: https://x.example.com/e",
    );
    assert_ne!(bad, MANIFEST);
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(SCHEMA_PATH).unwrap()).unwrap();

    // Act
    let valid = jsonschema::validator_for(&schema)
        .unwrap()
        .is_valid(&yaml_to_json(&bad));

    // Assert
    assert!(!valid, "request_uri should be refused by the schema");
}

#[test]
fn bot_scopes_are_exactly_what_the_code_needs() {
    // Arrange
    let manifest = yaml_to_json(MANIFEST);
    let needed: BTreeSet<String> = required_bot_scopes()
        .into_iter()
        .map(String::from)
        .collect();

    // Act
    let declared = strings_at(&manifest, "/oauth_config/scopes/bot");

    // Assert
    let extra: Vec<_> = declared.difference(&needed).collect();
    let missing: Vec<_> = needed.difference(&declared).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "manifest scopes differ from the code: not needed {extra:?}, missing {missing:?}"
    );
    let raw_count = manifest
        .pointer("/oauth_config/scopes/bot")
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(raw_count, declared.len(), "no scope is listed twice");
}

#[test]
fn command_and_request_urls_point_at_our_routes() {
    // Arrange
    let manifest = yaml_to_json(MANIFEST);

    // Act
    let commands = manifest
        .pointer("/features/slash_commands")
        .and_then(Value::as_array)
        .expect("slash commands");

    // Assert
    assert_eq!(commands.len(), 1);
    assert_eq!(str_at(&commands[0], "/command"), "/warm");
    assert!(str_at(&commands[0], "/url").ends_with("/slack/commands"));
    assert!(
        str_at(&manifest, "/settings/event_subscriptions/request_url").ends_with("/slack/events")
    );
    assert!(
        str_at(&manifest, "/settings/interactivity/request_url").ends_with("/slack/interactions")
    );
    assert_eq!(
        manifest.pointer("/settings/interactivity/is_enabled"),
        Some(&Value::Bool(true))
    );
}

#[test]
fn the_usage_hint_lists_exactly_the_subcommands_in_their_order() {
    // Arrange
    let manifest = yaml_to_json(MANIFEST);
    let subcommands: Vec<&str> = warmline::slack::commands::SUBCOMMANDS
        .iter()
        .map(|s| s.name())
        .collect();

    // Act: the first word of each `|`-separated alternative.
    let hint = str_at(&manifest, "/features/slash_commands/0/usage_hint");
    let hinted: Vec<&str> = hint
        .split(" | ")
        .map(|alt| alt.split_whitespace().next().unwrap_or_default())
        .collect();

    // Assert: every subcommand is hinted, and every hint is a subcommand.
    assert_eq!(hinted, subcommands, "usage_hint: {hint}");
}

#[test]
fn bot_events_are_exactly_those_handled() {
    // Arrange
    let manifest = yaml_to_json(MANIFEST);
    let handled: BTreeSet<String> = ["app_home_opened"].into_iter().map(String::from).collect();

    // Act
    let events = strings_at(&manifest, "/settings/event_subscriptions/bot_events");

    // Assert
    assert_eq!(events, handled);
}

#[test]
fn render_with_a_public_url_validates() {
    // Arrange
    let mut settings = warmline::settings::Settings::default();
    settings.server.public_url = Some("https://warm.acme.io/".parse().unwrap());

    // Act
    let manifest = yaml_to_json(&render(&settings));

    // Assert
    assert_valid("render()", &manifest);
    assert_eq!(
        str_at(&manifest, "/settings/event_subscriptions/request_url"),
        "https://warm.acme.io/slack/events"
    );
}

#[test]
fn warmline_manifest_prints_a_valid_manifest() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("empty.toml");
    std::fs::write(&config, "").unwrap();

    // Act
    let out = Command::new(env!("CARGO_BIN_EXE_warmline"))
        .arg("manifest")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARMLINE_PUBLIC_URL", "https://warm.acme.io")
        .env("WARMLINE_CONFIG", &config)
        .current_dir(dir.path())
        .output()
        .expect("run warmline manifest");

    // Assert
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = yaml_to_json(&stdout);
    assert_valid("warmline manifest", &manifest);
    assert_eq!(
        str_at(&manifest, "/settings/interactivity/request_url"),
        "https://warm.acme.io/slack/interactions"
    );
    assert!(
        !stdout.contains("warmline.example.com"),
        "the placeholder is replaced"
    );
}
