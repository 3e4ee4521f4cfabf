//! The unsubscribe page in a real browser: Debian's headless Chromium,
//! driven over WebDriver by chromedriver (both installed by
//! `scripts/ensure-test-tools`), against the app on loopback.
//!
//! The browser opens `/u/{token}` as a person would from an email, reads the
//! address, clicks, and the test checks the stored result in the database.
//! Every wait has a deadline; nothing sleeps to synchronise. chromedriver is
//! started per test on a free port and killed, with its browser, on drop.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::{
    helpers::{TestApp, spawn_app_on},
    test_db::{Backend, TestDb},
    unsubscribe::{ledger_rows, seed_contact},
};

/// How long one page may take to show what the test waits for.
pub(crate) const PAGE_WAIT: Duration = Duration::from_secs(20);

/// `name`'s full path on `PATH`, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A chromedriver process of this test's, in its own process group so that
/// the browsers it starts go with it.
pub(crate) struct ChromeDriver {
    child: Child,
    url: String,
    chromium: PathBuf,
    /// Chromium's profile, removed on drop.
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    pub(crate) async fn start() -> Self {
        let missing = || {
            panic!(
                "chromium and chromedriver are needed for the browser tests: \
                 run scripts/ensure-test-tools"
            )
        };
        let chromium = on_path("chromium").unwrap_or_else(missing);
        let driver = on_path("chromedriver").unwrap_or_else(missing);
        // chromedriver takes no `--port=0`: ask the OS for a free port and
        // hand it over. Another process may take it meanwhile, so retry.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let mut cmd = Command::new(&driver);
            cmd.arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            #[cfg(unix)]
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd.spawn().expect("chromedriver starts");
            let mut this = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
                chromium: chromium.clone(),
                profile: tempfile::tempdir().expect("a profile directory"),
            };
            if this.wait_ready().await {
                return this;
            }
            // Dropping `this` kills it; try another port.
        }
        panic!("chromedriver did not become ready on any port");
    }

    /// Polls `/status` until chromedriver says it is ready; false if it
    /// exited (its port was taken) or the deadline passed.
    async fn wait_ready(&mut self) -> bool {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        while tokio::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if let Ok(r) = http.get(format!("{}/status", self.url)).send().await
                && let Ok(v) = r.json::<serde_json::Value>().await
                && v["value"]["ready"] == true
            {
                return true;
            }
            // A poll interval under a deadline: chromedriver signals nothing.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// A headless browser session, 1024×900.
    pub(crate) async fn session(&self) -> Client {
        self.session_sized(1024, 900).await
    }

    /// A headless browser session with a window of `width`×`height`.
    pub(crate) async fn session_sized(&self, width: u32, height: u32) -> Client {
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("chromedriver opens a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole process group: chromedriver and any browser it started.
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn app() -> TestApp {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    spawn_app_on(db, |s| s.email.product_name = Some("Acme Relations".into())).await
}

/// Runs `scenario` in a fresh browser session and always ends the session
/// (so Chromium exits) before reporting the scenario's result.
pub(crate) async fn in_browser<F, Fut>(scenario: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let driver = ChromeDriver::start().await;
    let client = driver.session().await;
    let result = scenario(client.clone()).await;
    let _ = client.close().await;
    drop(driver);
    result.expect("the browser scenario");
}

pub(crate) async fn wait_for(
    client: &Client,
    css: &str,
) -> anyhow::Result<fantoccini::elements::Element> {
    client
        .wait()
        .at_most(PAGE_WAIT)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
        .map_err(|e| anyhow::anyhow!("waiting for {css}: {e}"))
}

/// Saves a screenshot to `$WARMLINE_SCREENSHOTS/<name>.png` when that
/// variable is set (to look at the page; the tests assert nothing on it).
async fn snap(client: &Client, name: &str) -> anyhow::Result<()> {
    if let Some(dir) = std::env::var_os("WARMLINE_SCREENSHOTS") {
        let png = client.screenshot().await?;
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png)?;
    }
    Ok(())
}

/// A button as a person finds it: by what it says.
pub(crate) async fn button(
    client: &Client,
    text: &str,
) -> anyhow::Result<fantoccini::elements::Element> {
    let xpath = format!("//button[normalize-space()='{text}']");
    client
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::XPath(&xpath))
        .await
        .map_err(|e| anyhow::anyhow!("no button '{text}': {e}"))
}

#[tokio::test]
async fn a_person_unsubscribes_in_the_browser() {
    // Arrange
    let app = app().await;
    let (contact, email) = seed_contact(&app.app.db, None, &[("email", true)]).await;
    let token = app
        .app
        .composer
        .signer()
        .sign(contact, "email")
        .await
        .unwrap();
    let url = app.url(&format!("/u/{token}"));

    // Act
    in_browser(|b| async move {
        b.goto(&url).await?;
        let shown = wait_for(&b, "#address").await?.text().await?;
        anyhow::ensure!(shown == email, "the page shows {shown:?}, not {email:?}");
        let title = b.title().await?;
        anyhow::ensure!(title.contains("Acme Relations"), "title {title:?}");
        snap(&b, "unsubscribe-page").await?;
        button(&b, "Unsubscribe from these emails")
            .await?
            .click()
            .await?;
        let confirmation = wait_for(&b, "#confirmation").await?.text().await?;
        anyhow::ensure!(
            confirmation.contains("You’re unsubscribed") && confirmation.contains(&email),
            "confirmation reads {confirmation:?}"
        );
        snap(&b, "unsubscribe-confirmed").await?;
        Ok(())
    })
    .await;

    // Assert
    let rows = ledger_rows(&app.app.db, contact).await;
    let last = rows.last().unwrap();
    assert_eq!(rows.len(), 2, "the grant and the revocation");
    assert!(!last.granted);
    assert_eq!(last.channel, "email");
    assert_eq!(last.source, "preferences_page");
}

#[tokio::test]
async fn a_person_changes_preferences_in_the_browser() {
    // Arrange: email granted, SMS never asked, a phone on file.
    let app = app().await;
    let (contact, _) = seed_contact(&app.app.db, Some("+14155550123"), &[("email", true)]).await;
    let token = app
        .app
        .composer
        .signer()
        .sign(contact, "email")
        .await
        .unwrap();
    let url = app.url(&format!("/u/{token}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();

    // Act: tick SMS by its label, as a person would, and save.
    in_browser(|b| async move {
        b.goto(&url).await?;
        let sms = wait_for(&b, "#channel-sms").await?;
        let email_box = b.find(Locator::Css("#channel-email")).await?;
        anyhow::ensure!(email_box.is_selected().await?, "email shows as subscribed");
        anyhow::ensure!(!sms.is_selected().await?, "SMS shows as not subscribed");
        b.find(Locator::Css("label[for='channel-sms']"))
            .await?
            .click()
            .await?;
        anyhow::ensure!(sms.is_selected().await?, "the label ticks the box");
        let text = b.find(Locator::Css("#text-sms")).await?.text().await?;
        let _ = tx.send(text);
        button(&b, "Save preferences").await?.click().await?;
        wait_for(&b, "#confirmation").await?;
        let sms_now = wait_for(&b, "#summary li[data-channel='sms']")
            .await?
            .text()
            .await?;
        anyhow::ensure!(
            sms_now.ends_with(": subscribed"),
            "summary reads {sms_now:?}"
        );
        let sms_box = b.find(Locator::Css("#channel-sms")).await?;
        anyhow::ensure!(
            sms_box.is_selected().await?,
            "the saved page shows it ticked"
        );
        snap(&b, "preferences-saved").await?;
        Ok(())
    })
    .await;

    // Assert: SMS granted from the page, with the very text it showed;
    // email untouched.
    let shown_text = rx.await.expect("the scenario read the consent text");
    let now = warmline::consent::current(&app.app.db, contact)
        .await
        .unwrap();
    assert!(now["email"].granted);
    assert!(now["sms"].granted);
    assert_eq!(now["sms"].source, "preferences_page");
    let rows = ledger_rows(&app.app.db, contact).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].consent_text.as_deref(), Some(shown_text.as_str()));
}
