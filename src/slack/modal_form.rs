//! Reading a submitted modal's fields and answering with field errors: the
//! one place the campaign composer, the nudge and the log-interaction
//! modals share. Fields are looked up by block id; the action id is the same
//! as the block id by convention, else the block's only element is taken.

use std::collections::HashMap;

use slack_morphism::prelude::*;

/// A view submission's `state.values`.
pub type Values = HashMap<SlackBlockId, HashMap<SlackActionId, SlackViewStateValue>>;

/// The values a submitted modal carries (empty when it has none).
pub fn submitted(view: &SlackStatefulView) -> Values {
    view.state_params
        .state
        .as_ref()
        .map(|s| s.values.clone())
        .unwrap_or_default()
}

pub fn field<'a>(values: &'a Values, block: &str) -> Option<&'a SlackViewStateValue> {
    values.get(&SlackBlockId(block.into())).and_then(|m| {
        m.get(&SlackActionId(block.into()))
            .or_else(|| m.values().next())
    })
}

/// A text input's value, trimmed; `None` when empty.
pub fn text_of(values: &Values, block: &str) -> Option<String> {
    field(values, block)
        .and_then(|v| v.value.clone())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A select's chosen value.
pub fn option_of(values: &Values, block: &str) -> Option<String> {
    field(values, block).and_then(|v| v.selected_option.as_ref().map(|o| o.value.clone()))
}

/// `response_action: errors`, each message shown on its block.
pub fn errors(pairs: Vec<(&str, String)>) -> SlackInteractionResponse {
    SlackInteractionResponse::ViewSubmission(SlackViewSubmissionResponse::Errors(
        SlackViewSubmissionErrorsResponse::new(
            pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ),
    ))
}
