//! The sandbox page in a real browser (headless Chromium over WebDriver):
//! the main story a newcomer clicks through, and the Block Kit gallery.
//!
//! The story, on a fresh sandbox with the demo contacts: open Home →
//! `/warm campaign` → fill the composer → preview → request approval →
//! switch to an approver → Approve → the progress and the summary appear in
//! the request's thread → the emails are in the outbox → unsubscribe from
//! one (the link inside the captured email opens the real `/u/TOKEN` page)
//! → a second campaign skips that contact. Each step's screenshot is
//! written to `docs/screenshots/` (the README links them).
//!
//! Every wait is on something the page shows, with a deadline; nothing
//! sleeps to synchronise.

use std::{path::PathBuf, time::Duration};

use fantoccini::{Client, Locator, elements::Element};
use sea_orm::{FromQueryResult, Statement, Value as Sql};
use serde_json::Value;
use warmline::sandbox::{self, cast};

use crate::{
    browser::{ChromeDriver, PAGE_WAIT},
    sandbox::{SandboxApp, count, spawn_sandbox_with},
};

/// The tag of the demo contacts the story writes to (14 of them have
/// email consent: more than `approval.min_recipients`).
const AUDIENCE_TAG: &str = "customer";

/// How long the campaign may take to be sent and summarised.
const SEND_WAIT: Duration = Duration::from_secs(60);

async fn spawn() -> SandboxApp {
    spawn_sandbox_with(sandbox::Demo::Always, |s| {
        // Progress and summary at once rather than every 5 s; Slack's pace
        // per channel (one post a second) kept, as the page shows it.
        s.campaigns.progress_interval_secs = 1;
        // The demo's cold contacts would otherwise have their revival
        // drafts posted to #approvals beside the story's request.
        s.triggers.enabled = false;
    })
    .await
}

/// Writes `docs/screenshots/sandbox-<name>.png`.
async fn snap(b: &Client, name: &str) -> anyhow::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir)?;
    let png = b.screenshot().await?;
    std::fs::write(dir.join(format!("sandbox-{name}.png")), png)?;
    Ok(())
}

async fn find(b: &Client, css: &str, within: Duration) -> anyhow::Result<Element> {
    b.wait()
        .at_most(within)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
        .map_err(|e| anyhow::anyhow!("waiting for {css}: {e}"))
}

/// Waits until the text of `css` contains `needle`.
async fn wait_text(b: &Client, css: &str, needle: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut texts = Vec::new();
        for e in b.find_all(Locator::Css(css)).await? {
            texts.push(e.text().await.unwrap_or_default());
        }
        if texts.iter().any(|t| t.contains(needle)) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no {css} contains {needle:?}; seen: {texts:#?}"
        );
        // A WebDriver poll: the page signals nothing to the test.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `act` on the last (or first) element matching `css`, finding it
/// again when the page re-rendered it in between (a stale element): the
/// page re-renders a message or a list when the workspace changes, which
/// the test does not control.
async fn on_fresh<T, F, Fut>(b: &Client, css: &str, last: bool, act: F) -> anyhow::Result<T>
where
    F: Fn(Element) -> Fut,
    Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
{
    let deadline = tokio::time::Instant::now() + PAGE_WAIT;
    loop {
        let mut found = b.find_all(Locator::Css(css)).await?;
        let element = if last {
            found.pop()
        } else {
            found.into_iter().next()
        };
        let retry = match element {
            Some(e) => match act(e).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_stale_element_reference() || e.is_element_not_interactable() => {
                    format!("{e}")
                }
                Err(e) => return Err(anyhow::anyhow!("{css}: {e}")),
            },
            None => "not found".to_string(),
        };
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{css}: {retry}");
        // A WebDriver poll: the page signals nothing to the test.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(b: &Client, css: &str) -> anyhow::Result<()> {
    on_fresh(
        b,
        css,
        false,
        |e| async move { e.click().await.map(|_| ()) },
    )
    .await
}

async fn click_last(b: &Client, css: &str) -> anyhow::Result<()> {
    on_fresh(b, css, true, |e| async move { e.click().await.map(|_| ()) }).await
}

/// Types into the input of `action_id` in the open modal.
async fn fill(b: &Client, action_id: &str, text: &str) -> anyhow::Result<()> {
    let input = find(
        b,
        &format!(".modal [data-action-id='{action_id}']"),
        PAGE_WAIT,
    )
    .await?;
    input.clear().await?;
    input.send_keys(text).await?;
    Ok(())
}

async fn choose(b: &Client, action_id: &str, value: &str) -> anyhow::Result<()> {
    find(
        b,
        &format!(".modal select[data-action-id='{action_id}']"),
        PAGE_WAIT,
    )
    .await?
    .select_by_value(value)
    .await?;
    Ok(())
}

async fn open_channel(b: &Client, channel: &str) -> anyhow::Result<()> {
    click(b, &format!("a[data-channel-id='{channel}']")).await?;
    find(
        b,
        &format!("#messages .message[data-channel='{channel}'], #messages"),
        PAGE_WAIT,
    )
    .await?;
    Ok(())
}

async fn act_as(b: &Client, user: &str) -> anyhow::Result<()> {
    find(b, "#acting-user", PAGE_WAIT)
        .await?
        .select_by_value(user)
        .await?;
    Ok(())
}

/// `/warm campaign` in #general, the composer filled for the audience,
/// Preview, then Request approval.
async fn compose_and_request(b: &Client, name: &str, shots: bool) -> anyhow::Result<()> {
    open_channel(b, cast::GENERAL).await?;
    let composer = find(b, "#composer", PAGE_WAIT).await?;
    composer.send_keys("/warm campaign").await?;
    click(b, "#composer-send").await?;
    find(b, ".modal[data-callback-id='campaign_modal']", PAGE_WAIT).await?;
    fill(b, "name", name).await?;
    choose(b, "channel", "email").await?;
    fill(b, "tags", AUDIENCE_TAG).await?;
    choose(b, "template", "check_in").await?;
    if shots {
        snap(b, "02-composer").await?;
    }
    click(b, ".modal .modal-submit").await?;
    find(b, ".modal[data-callback-id='campaign_preview']", PAGE_WAIT).await?;
    if shots {
        snap(b, "03-preview").await?;
    }
    click(b, ".modal .modal-submit").await?;
    wait_text(b, ".modal", "awaiting approval", PAGE_WAIT).await?;
    if shots {
        snap(b, "04-requested").await?;
    }
    click(b, ".modal .modal-close, .modal .modal-x").await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct Campaign {
    id: i64,
    state: String,
}

async fn campaigns(sb: &SandboxApp) -> Vec<Campaign> {
    Campaign::find_by_statement(Statement::from_string(
        sb.app.db.get_database_backend(),
        "SELECT id, state FROM campaigns ORDER BY id",
    ))
    .all(&sb.app.db)
    .await
    .unwrap()
}

/// Approvers click Approve on the newest request until the campaign is
/// approved (a risky audience needs two of them).
async fn approve(b: &Client, sb: &SandboxApp, shots: bool) -> anyhow::Result<()> {
    for approver in [cast::APPROVER_1, cast::APPROVER_2] {
        act_as(b, approver).await?;
        open_channel(b, cast::APPROVALS).await?;
        find(b, "button[data-action-id='approval_approve']", PAGE_WAIT).await?;
        if shots && approver == cast::APPROVER_1 {
            snap(b, "05-approval-request").await?;
        }
        click_last(b, "button[data-action-id='approval_approve']").await?;
        if find(b, ".confirm-dialog .confirm-ok", Duration::from_secs(2))
            .await
            .is_ok()
        {
            click(b, ".confirm-dialog .confirm-ok").await?;
        }
        // The decision is recorded before Slack gets its answer.
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        while decisions_by(sb, approver).await == 0 {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{approver}'s approval was not recorded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let last = campaigns(sb).await.pop().expect("a campaign");
        if last.state != "awaiting_approval" {
            return Ok(());
        }
    }
    anyhow::bail!("the campaign was not approved by two approvers")
}

/// Approvals `approver` gave on the newest approval request.
async fn decisions_by(sb: &SandboxApp, approver: &str) -> i64 {
    count(
        sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approval_decisions \
         WHERE approver = $1 AND approval_id = (SELECT MAX(id) FROM approvals)",
        vec![Sql::from(approver)],
    )
    .await
}

async fn address_consent(sb: &SandboxApp, email: &str) -> Option<bool> {
    #[derive(FromQueryResult)]
    struct Row {
        granted: bool,
    }
    Row::find_by_statement(Statement::from_sql_and_values(
        sb.app.db.get_database_backend(),
        "SELECT k.granted FROM consents k JOIN contacts c ON c.id = k.contact_id \
         WHERE lower(c.email) = lower($1) AND k.channel = 'email' ORDER BY k.id DESC LIMIT 1",
        [Sql::from(email)],
    ))
    .one(&sb.app.db)
    .await
    .unwrap()
    .map(|r| r.granted)
}

#[tokio::test]
async fn a_newcomer_runs_a_campaign_end_to_end_in_the_sandbox_page() {
    // Arrange
    let sb = spawn().await;
    let url = sb.url(&format!("/?user={}#home", cast::REQUESTER));
    let driver = ChromeDriver::start().await;
    let b = driver.session_sized(1366, 900).await;
    let mut unsubscribed = String::new();

    // Act
    let story = async {
        // Home.
        b.goto(&url).await?;
        find(&b, ".home-blocks", PAGE_WAIT).await?;
        snap(&b, "01-home").await?;

        // The first campaign, requested by Riley, approved by the approvers.
        compose_and_request(&b, "Winter check-in", true).await?;
        approve(&b, &sb, true).await?;

        // The thread fills: progress, then the summary.
        wait_text(&b, "#messages .thread-replies", "Summary of", SEND_WAIT).await?;
        snap(&b, "06-thread").await?;

        // The outbox holds the emails.
        click(&b, "a[data-view='outbox']").await?;
        let first = "article.capture[data-channel='email']";
        find(&b, first, PAGE_WAIT).await?;
        unsubscribed = on_fresh(&b, &format!("{first} .capture-to"), false, |e| async move {
            e.text().await
        })
        .await?
        .trim()
        .to_string();
        snap(&b, "07-outbox").await?;

        // Unsubscribe from inside the captured email: the link opens the
        // real page in a new tab, as from a mail client.
        let page = b.window().await?;
        on_fresh(
            &b,
            &format!("{first} iframe.capture-html"),
            false,
            |e| async move { e.enter_frame().await },
        )
        .await?;
        b.wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::LinkText("Unsubscribe"))
            .await?
            .click()
            .await?;
        b.enter_parent_frame().await?;
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        let tab = loop {
            if let Some(w) = b.windows().await?.into_iter().find(|w| w != &page) {
                break w;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no tab opened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        b.switch_to_window(tab).await?;
        b.wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::XPath(
                "//button[normalize-space()='Unsubscribe from these emails']",
            ))
            .await?
            .click()
            .await?;
        b.wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css("#confirmation"))
            .await?;
        snap(&b, "08-unsubscribed").await?;
        b.close_window().await?;
        b.switch_to_window(page).await?;

        // A second campaign to the same audience.
        act_as(&b, cast::REQUESTER).await?;
        compose_and_request(&b, "Winter check-in, again", false).await?;
        approve(&b, &sb, false).await?;
        wait_text(
            &b,
            "#messages .thread-replies",
            "Winter check-in, again",
            SEND_WAIT,
        )
        .await?;
        snap(&b, "09-second-campaign").await?;
        anyhow::Ok(())
    }
    .await;
    let _ = b.close().await;
    drop(driver);
    story.expect("the story clicks through");

    // Assert
    assert!(
        unsubscribed.contains('@'),
        "the first capture names its recipient: {unsubscribed:?}"
    );
    assert_eq!(
        address_consent(&sb, &unsubscribed).await,
        Some(false),
        "unsubscribed in the ledger"
    );
    let c = campaigns(&sb).await;
    assert_eq!(c.len(), 2);
    // The second campaign sent nothing to the person who unsubscribed,
    // and something to the others.
    let to_them = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages m JOIN contacts k ON k.id = m.contact_id \
         WHERE m.campaign_id = $1 AND lower(k.email) = lower($2) AND m.state IN ('queued', 'sending', 'sent', 'delivered')",
        vec![Sql::from(c[1].id), Sql::from(unsubscribed.as_str())],
    )
    .await;
    assert_eq!(
        to_them, 0,
        "the second campaign skips the unsubscribed contact"
    );
    let captured_twice = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sandbox_outbox WHERE lower(recipient) = lower($1)",
        vec![Sql::from(unsubscribed.as_str())],
    )
    .await;
    assert_eq!(
        captured_twice, 1,
        "only the first campaign's email reached the outbox"
    );
    let skipped_for_consent = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages m JOIN contacts k ON k.id = m.contact_id \
         WHERE m.campaign_id = $1 AND lower(k.email) = lower($2) \
           AND m.state = 'skipped' AND m.skip_reason = 'no_consent'",
        vec![Sql::from(c[1].id), Sql::from(unsubscribed.as_str())],
    )
    .await;
    assert_eq!(skipped_for_consent, 1, "skipped because they opted out");
    sb.shutdown().await;
}

#[tokio::test]
async fn the_page_renders_every_block_kit_layout_the_bot_sends() {
    // Arrange
    let sb = spawn_sandbox_with(sandbox::Demo::Never, |_| {}).await;
    let url = sb.url("/sandbox/kit");
    let driver = ChromeDriver::start().await;
    let b = driver.session_sized(1366, 900).await;

    // Act
    let result = async {
        b.goto(&url).await?;
        find(&b, "body[data-kit-done='1']", PAGE_WAIT).await?;
        let unsupported = b
            .find(Locator::Css("#kit-unsupported"))
            .await?
            .text()
            .await?;
        let mut rendered = Vec::new();
        for s in b.find_all(Locator::Css("section.kit-layout")).await? {
            rendered.push(s.attr("data-name").await?.unwrap_or_default());
        }
        snap(&b, "kit").await?;
        anyhow::Ok((unsupported, rendered))
    }
    .await;
    let _ = b.close().await;
    drop(driver);
    let (unsupported, mut rendered) = result.expect("the gallery renders");

    // Assert
    let unsupported: Value = serde_json::from_str(&unsupported).expect("a JSON list");
    assert_eq!(
        unsupported,
        serde_json::json!([]),
        "types the page cannot render"
    );
    let mut expected = warmline::slack::blocks::Blocks::names();
    expected.push("every-type".into());
    expected.sort();
    rendered.sort();
    assert_eq!(
        rendered, expected,
        "every layout in blocks/, and the every-type sample"
    );
    sb.shutdown().await;
}
