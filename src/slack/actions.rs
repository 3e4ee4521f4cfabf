//! The action ids and modal `callback_id`s the bot's Block Kit layouts use:
//! the one vocabulary shared by the layouts' senders and the interaction
//! router. A leaf module (it imports nothing), so any feature can name an
//! action without depending on the code that handles it.

/// The Home tab's "Refresh" button.
pub const HOME_REFRESH: &str = "home_refresh";
/// On a delivery alert: send an ambiguous message again.
pub const AMBIGUOUS_SEND_AGAIN: &str = "ambiguous_send_again";
/// On a delivery alert: record an ambiguous message as sent.
pub const AMBIGUOUS_MARK_SENT: &str = "ambiguous_mark_sent";
/// On a circuit breaker alert: resume the paused campaign.
pub const BREAKER_RESUME: &str = "breaker_resume";
/// On a circuit breaker alert: cancel the paused campaign.
pub const BREAKER_CANCEL: &str = "breaker_cancel";
/// On a campaign's progress message: pause / resume / cancel it.
pub const CAMPAIGN_PAUSE: &str = "campaign_pause";
pub const CAMPAIGN_RESUME: &str = "campaign_resume";
pub const CAMPAIGN_CANCEL: &str = "campaign_cancel";
/// On an approval request: approve (after Slack's confirm dialog).
pub const APPROVAL_APPROVE: &str = "approval_approve";
/// On an approval request: deny (opens the reason modal).
pub const APPROVAL_DENY: &str = "approval_deny";
/// On an approval request: the whole audience and risk, ephemeral.
pub const APPROVAL_DETAILS: &str = "approval_details";
/// `callback_id` of the deny reason modal.
pub const APPROVAL_DENY_REASON: &str = "approval_deny_reason";
/// In the list of matches of `/warm contact`: show that contact's card.
pub const CONTACT_SHOW: &str = "contact_show";
/// On a contact card: open the nudge modal.
pub const CONTACT_NUDGE: &str = "contact_nudge";
/// On a contact card: open the log-interaction modal.
pub const CONTACT_LOG: &str = "contact_log";
/// On a contact card: revoke one channel's consent (confirmed).
pub const CONTACT_OPT_OUT: &str = "contact_opt_out";
/// On a forget prompt: erase the contact (approvers, confirmed).
pub const CONTACT_FORGET: &str = "contact_forget";
/// In the nudge modal: the template select (re-renders the preview).
pub const NUDGE_TEMPLATE: &str = "nudge_template";
/// In `/warm drafts`: reopen a draft in the campaign modal.
pub const CAMPAIGN_OPEN: &str = "campaign_open";
/// In the campaign preview: save the draft.
pub const CAMPAIGN_SAVE: &str = "campaign_save";
/// In the campaign preview: back to the form.
pub const CAMPAIGN_EDIT: &str = "campaign_edit";
/// In a WhatsApp campaign's preview over the messaging tier: split it
/// across days.
pub const CAMPAIGN_SPLIT: &str = "campaign_split";
/// On an approved request of a campaign not started yet, and on the
/// Home tab: open the reschedule modal.
pub const CAMPAIGN_RESCHEDULE: &str = "campaign_reschedule";
/// `callback_id` of the reschedule modal.
pub const CAMPAIGN_RESCHEDULE_SUBMIT: &str = "campaign_reschedule_submit";
/// On an inbound SMS posted in Slack: answer it (approvers).
pub const INBOUND_ANSWER: &str = "inbound_answer";
/// `callback_id` of the modal an answer is written in.
pub const INBOUND_ANSWER_SUBMIT: &str = "inbound_answer_submit";
/// In the answer modal (WhatsApp, window closed): the template chosen;
/// the modal is re-rendered with one input per parameter.
pub const INBOUND_ANSWER_TEMPLATE: &str = "inbound_answer_template";
/// On an Instagram DM from an unknown sender: link the sender to a contact.
pub const INBOUND_LINK: &str = "inbound_link";
/// `callback_id` of the modal a sender is linked in.
pub const INBOUND_LINK_SUBMIT: &str = "inbound_link_submit";
