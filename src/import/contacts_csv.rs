//! `warmline import contacts.csv`: contacts from a CSV file.
//!
//! The header row (line 1) names the columns; unknown columns go to the
//! contact's metadata. Each row is parsed into domain types first; a row that
//! fails is reported with its line number and reason, and every valid row is
//! still imported. Contacts merge by email (else external id, else phone);
//! non-empty values in the file win, tags are unioned, metadata is merged.
//!
//! Consent is never invented: only a `consent_<channel>` column grants (yes)
//! or records a revocation (no), each as an append-only ledger row naming its
//! source. A forgotten contact (erasure tombstone) is refused, not revived.

use std::{
    collections::{BTreeMap, HashMap},
    io::Read,
};

use anyhow::Context;
use chrono::Utc;
use indicatif::ProgressBar;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Func},
};
use serde_json::{Map, Value};

use crate::domain::tombstone_hash;
use crate::{
    db::entities::{consents, contacts},
    domain::{Channel, E164Phone, EmailAddress},
};

const KNOWN: &[&str] = &[
    "email",
    "phone",
    "first_name",
    "last_name",
    "name",
    "external_id",
    "timezone",
    "status",
    "pipeline_stage",
    "tags",
    "consent_email",
    "consent_sms",
    "consent_whatsapp",
    "consent_source",
];

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub default_region: Option<phonenumber::country::Id>,
    pub batch_size: usize,
    /// Names the file in consent sources (`import:<name>` when no
    /// `consent_source` column says otherwise).
    pub source_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line in the file; the header is line 1.
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: usize,
    pub imported: usize,
    pub merged: usize,
    pub rejected: Vec<RowError>,
    pub consent_records: usize,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} rows read: {} imported, {} merged, {} rejected ({} consent records)",
            self.rows,
            self.imported,
            self.merged,
            self.rejected.len(),
            self.consent_records
        )?;
        for e in &self.rejected {
            writeln!(f, "  line {}: {}", e.line, e.reason)?;
        }
        Ok(())
    }
}

/// A row that parsed.
#[derive(Debug, Clone, Default)]
struct Row {
    line: u64,
    email: Option<EmailAddress>,
    phone: Option<E164Phone>,
    first_name: Option<String>,
    last_name: Option<String>,
    external_id: Option<String>,
    timezone: Option<String>,
    status: Option<String>,
    pipeline_stage: Option<String>,
    tags: Vec<String>,
    consent: Vec<(&'static str, bool)>,
    consent_source: Option<String>,
    metadata: Map<String, Value>,
}

/// Where each known column sits in a record.
struct Columns {
    index: HashMap<&'static str, usize>,
    extra: Vec<(usize, String)>,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, String> {
        let mut index = HashMap::new();
        let mut extra = Vec::new();
        for (i, raw) in header.iter().enumerate() {
            let name = raw.trim().trim_start_matches('\u{feff}').to_lowercase();
            match KNOWN.iter().find(|k| **k == name) {
                Some(k) => {
                    if index.insert(*k, i).is_some() {
                        return Err(format!("column '{name}' appears twice in the header"));
                    }
                }
                None if name.is_empty() => {}
                None => extra.push((i, raw.trim().to_string())),
            }
        }
        if !["email", "phone", "external_id"]
            .iter()
            .any(|k| index.contains_key(k))
        {
            return Err("the header names none of email, phone or external_id".into());
        }
        Ok(Self { index, extra })
    }

    fn get<'r>(&self, rec: &'r csv::StringRecord, col: &str) -> Option<&'r str> {
        self.index
            .get(col)
            .and_then(|i| rec.get(*i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

fn parse_row(
    cols: &Columns,
    rec: &csv::StringRecord,
    line: u64,
    opts: &ImportOptions,
) -> Result<Row, String> {
    let mut row = Row {
        line,
        ..Row::default()
    };
    if let Some(e) = cols.get(rec, "email") {
        row.email = Some(EmailAddress::parse(e).map_err(|e| e.to_string())?);
    }
    if let Some(p) = cols.get(rec, "phone") {
        row.phone = Some(E164Phone::parse(p, opts.default_region).map_err(|e| e.to_string())?);
    }
    row.external_id = cols.get(rec, "external_id").map(String::from);
    if row.email.is_none() && row.phone.is_none() && row.external_id.is_none() {
        return Err("no email, phone or external_id".into());
    }
    row.first_name = cols.get(rec, "first_name").map(String::from);
    row.last_name = cols.get(rec, "last_name").map(String::from);
    if row.first_name.is_none()
        && row.last_name.is_none()
        && let Some(name) = cols.get(rec, "name")
    {
        match name.split_once(char::is_whitespace) {
            Some((first, last)) => {
                row.first_name = Some(first.to_string());
                row.last_name = Some(last.trim().to_string());
            }
            None => row.first_name = Some(name.to_string()),
        }
    }
    if let Some(tz) = cols.get(rec, "timezone") {
        let parsed: chrono_tz::Tz = tz
            .parse()
            .map_err(|_| format!("'{tz}' is not an IANA time zone (e.g. Europe/Paris)"))?;
        row.timezone = Some(parsed.name().to_string());
    }
    row.status = cols.get(rec, "status").map(|s| s.to_lowercase());
    row.pipeline_stage = cols.get(rec, "pipeline_stage").map(String::from);
    if let Some(tags) = cols.get(rec, "tags") {
        row.tags = tags
            .split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
    }
    // A CSV carries consent for the channels its address columns reach.
    for channel in Channel::ALL.into_iter().filter(|c| c.has_contact_address()) {
        let col = format!("consent_{channel}");
        if let Some(v) = cols.get(rec, &col) {
            let granted = match v.to_lowercase().as_str() {
                "yes" | "y" | "true" | "1" => true,
                "no" | "n" | "false" | "0" => false,
                other => return Err(format!("{col} must be yes or no, not '{other}'")),
            };
            let needs = match channel {
                Channel::Email => row.email.is_some(),
                _ => row.phone.is_some(),
            };
            if granted && !needs {
                return Err(format!(
                    "{col} is yes but the row has no address for that channel"
                ));
            }
            row.consent.push((channel.as_str(), granted));
        }
    }
    row.consent_source = cols.get(rec, "consent_source").map(String::from);
    for (i, name) in &cols.extra {
        if let Some(v) = rec.get(*i).map(str::trim).filter(|v| !v.is_empty()) {
            row.metadata
                .insert(name.clone(), Value::String(v.to_string()));
        }
    }
    Ok(row)
}

/// Imports contacts from CSV text. Returns the report; only infrastructure
/// failures (the database) are errors, never a bad row.
pub async fn import<R: Read>(
    db: &DatabaseConnection,
    reader: R,
    opts: &ImportOptions,
    progress: &ProgressBar,
) -> anyhow::Result<ImportReport> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(LineIndex::new(reader));
    let header = csv
        .headers()
        .context("Failed to read the CSV header")?
        .clone();
    let cols = Columns::from_header(&header).map_err(|e| anyhow::anyhow!("line 1: {e}"))?;
    let mut report = ImportReport::default();
    let mut batch: Vec<Row> = Vec::with_capacity(opts.batch_size);
    let mut raw = csv::ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut raw) {
            Ok(false) => break,
            Ok(true) => {
                report.rows += 1;
                let line = record_line(&mut csv, &raw);
                let record = match csv::StringRecord::from_byte_record(std::mem::take(&mut raw)) {
                    Ok(r) => r,
                    Err(e) => {
                        report.rejected.push(RowError {
                            line,
                            reason: format!(
                                "unreadable CSV: field {} is not UTF-8 (save the file as UTF-8)",
                                e.utf8_error().field() + 1
                            ),
                        });
                        continue;
                    }
                };
                if record.iter().all(|f| f.trim().is_empty()) {
                    report.rows -= 1;
                    continue;
                }
                if record.len() != header.len() {
                    report.rejected.push(RowError {
                        line,
                        reason: format!(
                            "has {} fields, but the header has {}",
                            record.len(),
                            header.len()
                        ),
                    });
                    continue;
                }
                match parse_row(&cols, &record, line, opts) {
                    Ok(row) => batch.push(row),
                    Err(reason) => report.rejected.push(RowError { line, reason }),
                }
            }
            Err(e) => {
                // Only reading the file itself fails here (byte records skip
                // UTF-8 checks and `flexible` allows any field count), and
                // nothing after such a failure can be trusted.
                report.rows += 1;
                let at = csv.position().byte();
                report.rejected.push(RowError {
                    line: csv.get_mut().line_of(at),
                    reason: format!("unreadable CSV: {e}"),
                });
                break;
            }
        }
        if batch.len() >= opts.batch_size {
            write_batch(db, std::mem::take(&mut batch), opts, &mut report).await?;
            progress.set_position(report.rows as u64);
        }
    }
    if !batch.is_empty() {
        write_batch(db, batch, opts, &mut report).await?;
    }
    progress.set_position(report.rows as u64);
    report.rejected.sort_by_key(|e| e.line);
    Ok(report)
}

/// The file line a record just read starts on (header = line 1).
///
/// Worked out from where the record ends rather than taken from
/// `Position::line`, which is one short after every CRLF line ending
/// (BurntSushi/rust-csv#395: the reader stops between `\r` and `\n`) and
/// does not count the blank lines the reader skips before a record. The
/// reader has consumed the record and the first byte of its terminator (or
/// reached the end of the file), so the byte before its position is on the
/// record's last line; the newlines inside quoted fields are the lines the
/// record spans.
fn record_line<R: Read>(csv: &mut csv::Reader<LineIndex<R>>, raw: &csv::ByteRecord) -> u64 {
    let end = csv.position().byte();
    let last = csv.get_mut().line_of(end.saturating_sub(1));
    let inner = raw
        .iter()
        .map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64)
        .sum::<u64>();
    std::cmp::max(last.saturating_sub(inner), 1)
}

/// A reader that remembers where the newlines it passed on are, so a byte
/// offset can be turned into a line number. Offsets are asked for in
/// increasing order, so newlines behind the last one asked about are only
/// counted, not kept: memory stays at one read-ahead buffer's worth.
struct LineIndex<R> {
    inner: R,
    /// Bytes read so far.
    offset: u64,
    /// Offsets of the newlines not yet passed by [`LineIndex::line_of`].
    ahead: std::collections::VecDeque<u64>,
    /// Newlines before the offset last asked about.
    behind: u64,
}

impl<R> LineIndex<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            ahead: std::collections::VecDeque::new(),
            behind: 0,
        }
    }

    /// The 1-based line of the byte at `at` (a `\n` belongs to the line it
    /// ends). `at` must not be smaller than in the previous call.
    fn line_of(&mut self, at: u64) -> u64 {
        while self.ahead.front().is_some_and(|&o| o < at) {
            self.ahead.pop_front();
            self.behind += 1;
        }
        self.behind + 1
    }
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.offset;
        self.ahead.extend(
            buf[..n]
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| start + i as u64),
        );
        self.offset += n as u64;
        Ok(n)
    }
}

/// A consent ledger entry waiting for its contact's id: channel, granted, source.
type ConsentEntry = (&'static str, bool, String);

/// What identifies an inserted contact in RETURNING rows: email, external id, phone.
type ContactKey = (Option<String>, Option<String>, Option<String>);

/// Identity used to merge: email, else external id, else phone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    Email(String),
    External(String),
    Phone(String),
}

fn identity(row: &Row) -> Identity {
    if let Some(e) = &row.email {
        Identity::Email(e.as_str().to_lowercase())
    } else if let Some(x) = &row.external_id {
        Identity::External(x.clone())
    } else {
        Identity::Phone(
            row.phone
                .as_ref()
                .expect("parse_row guarantees one identity")
                .to_string(),
        )
    }
}

async fn write_batch(
    db: &DatabaseConnection,
    rows: Vec<Row>,
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let now = crate::clock::now();
    // Immediate on SQLite: the batch reads (forgotten identities, existing
    // contacts) before it writes, and a deferred transaction fails with
    // SQLITE_BUSY_SNAPSHOT when Slack or a worker commits in between.
    let txn = crate::db::begin_write(db)
        .await
        .context("Failed to start an import transaction")?;

    // Rows forgotten by an erasure request are refused.
    let hashes: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            [
                r.email.as_ref().map(|e| e.to_string()),
                r.phone.as_ref().map(|p| p.to_string()),
            ]
            .into_iter()
            .flatten()
        })
        .map(|i| tombstone_hash(&i))
        .collect();
    let forgotten = forgotten_hashes(&txn, &hashes).await?;

    // Existing contacts for this batch, by each identity kind.
    // Emails merge case-insensitively (the identity is lowercased), so the
    // look-up compares lowercased too.
    let emails: Vec<String> = rows
        .iter()
        .filter_map(|r| r.email.as_ref().map(|e| e.as_str().to_lowercase()))
        .collect();
    let externals: Vec<String> = rows
        .iter()
        .filter(|r| r.email.is_none())
        .filter_map(|r| r.external_id.clone())
        .collect();
    let phones: Vec<String> = rows
        .iter()
        .filter(|r| r.email.is_none() && r.external_id.is_none())
        .filter_map(|r| r.phone.as_ref().map(|p| p.to_string()))
        .collect();
    let mut existing: HashMap<Identity, contacts::Model> = HashMap::new();
    if !emails.is_empty() {
        for m in contacts::Entity::find()
            .filter(Expr::expr(Func::lower(Expr::col(contacts::Column::Email))).is_in(emails))
            .all(&txn)
            .await
            .context("Failed to look up contacts by email")?
        {
            existing.insert(
                Identity::Email(m.email.clone().unwrap_or_default().to_lowercase()),
                m,
            );
        }
    }
    if !externals.is_empty() {
        for m in contacts::Entity::find()
            .filter(contacts::Column::ExternalId.is_in(externals))
            .all(&txn)
            .await
            .context("Failed to look up contacts by external id")?
        {
            existing.insert(
                Identity::External(m.external_id.clone().unwrap_or_default()),
                m,
            );
        }
    }
    if !phones.is_empty() {
        for m in contacts::Entity::find()
            .filter(contacts::Column::Phone.is_in(phones))
            .filter(contacts::Column::Email.is_null())
            .all(&txn)
            .await
            .context("Failed to look up contacts by phone")?
        {
            existing.insert(Identity::Phone(m.phone.clone().unwrap_or_default()), m);
        }
    }

    // Who already owns each external id the batch mentions (it is unique).
    let all_externals: Vec<String> = rows.iter().filter_map(|r| r.external_id.clone()).collect();
    let mut owners: HashMap<String, i64> = HashMap::new();
    if !all_externals.is_empty() {
        for m in contacts::Entity::find()
            .filter(contacts::Column::ExternalId.is_in(all_externals))
            .all(&txn)
            .await
            .context("Failed to look up external ids")?
        {
            if let Some(ext) = m.external_id {
                owners.insert(ext, m.id);
            }
        }
    }
    let mut claimed_externals: HashMap<String, Identity> = HashMap::new();

    // Fold the batch: rows sharing an identity merge in file order.
    let mut order: Vec<Identity> = Vec::new();
    let mut merged: HashMap<Identity, (contacts::Model, bool, Vec<ConsentEntry>)> = HashMap::new();
    for row in rows {
        let keys = [
            row.email.as_ref().map(|e| e.to_string()),
            row.phone.as_ref().map(|p| p.to_string()),
        ];
        if keys
            .iter()
            .flatten()
            .any(|k| forgotten.contains(&tombstone_hash(k)))
        {
            report.rejected.push(RowError {
                line: row.line,
                reason: "this contact asked to be forgotten; it is not imported again".into(),
            });
            continue;
        }
        let id = identity(&row);
        if let Some(ext) = &row.external_id {
            // A row may not take an external id another contact holds: the
            // database would refuse the whole batch, so refuse the row.
            let target = existing
                .get(&id)
                .map(|m| m.id)
                .or_else(|| merged.get(&id).map(|(m, _, _)| m.id).filter(|i| *i != 0));
            let taken_in_db = owners.get(ext).is_some_and(|owner| Some(*owner) != target);
            let taken_in_file = claimed_externals.get(ext).is_some_and(|other| *other != id);
            if taken_in_db || taken_in_file {
                report.rejected.push(RowError {
                    line: row.line,
                    reason: format!("external_id '{ext}' already belongs to another contact"),
                });
                continue;
            }
            claimed_externals.insert(ext.clone(), id.clone());
        }
        let source = format!(
            "import:{}",
            row.consent_source
                .clone()
                .unwrap_or_else(|| opts.source_name.clone())
        );
        let consent: Vec<_> = row
            .consent
            .iter()
            .map(|(c, g)| (*c, *g, source.clone()))
            .collect();
        match merged.get_mut(&id) {
            Some((model, _, consents)) => {
                apply(model, &row, now);
                consents.extend(consent);
                report.merged += 1;
            }
            None => {
                let (model, is_new) = match existing.remove(&id) {
                    Some(mut m) => {
                        apply(&mut m, &row, now);
                        report.merged += 1;
                        (m, false)
                    }
                    None => {
                        let mut m = contacts::Model::blank(now);
                        apply(&mut m, &row, now);
                        report.imported += 1;
                        (m, true)
                    }
                };
                order.push(id.clone());
                merged.insert(id, (model, is_new, consent));
            }
        }
    }

    let mut new_models = Vec::new();
    let mut consent_for: Vec<(usize, Vec<ConsentEntry>)> = Vec::new();
    let mut consent_existing: Vec<(i64, Vec<ConsentEntry>)> = Vec::new();
    for id in &order {
        let (model, is_new, consent) = merged
            .remove(id)
            .expect("every ordered identity was merged");
        if is_new {
            if !consent.is_empty() {
                consent_for.push((new_models.len(), consent));
            }
            new_models.push(model);
        } else {
            let cid = model.id;
            update(&txn, model).await?;
            if !consent.is_empty() {
                consent_existing.push((cid, consent));
            }
        }
    }
    let inserted_ids = insert_new(&txn, &new_models).await?;
    let mut ledger = Vec::new();
    for (idx, consent) in consent_for {
        consent_existing.push((inserted_ids[idx], consent));
    }
    for (contact_id, consent) in consent_existing {
        for (channel, granted, source) in consent {
            ledger.push(consents::ActiveModel {
                contact_id: Set(contact_id),
                channel: Set(channel.to_string()),
                granted: Set(granted),
                source: Set(source),
                actor: Set(Some("warmline import".into())),
                consent_text: Set(None),
                recorded_at: Set(now),
                ..Default::default()
            });
        }
    }
    report.consent_records += ledger.len();
    for chunk in ledger.chunks(500) {
        consents::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await
            .context("Failed to record consent")?;
    }
    txn.commit()
        .await
        .context("Failed to commit an import batch")?;
    Ok(())
}

/// Merges a row into a contact: the file's non-empty values win.
fn apply(m: &mut contacts::Model, row: &Row, now: chrono::DateTime<Utc>) {
    fn set(field: &mut Option<String>, value: &Option<String>) {
        if value.is_some() {
            field.clone_from(value);
        }
    }
    set(&mut m.email, &row.email.as_ref().map(|e| e.to_string()));
    set(&mut m.phone, &row.phone.as_ref().map(|p| p.to_string()));
    set(&mut m.first_name, &row.first_name);
    set(&mut m.last_name, &row.last_name);
    set(&mut m.external_id, &row.external_id);
    set(&mut m.timezone, &row.timezone);
    set(&mut m.pipeline_stage, &row.pipeline_stage);
    if let Some(s) = &row.status {
        m.status.clone_from(s);
    }
    if !row.tags.is_empty() {
        let mut tags: Vec<String> = serde_json::from_str(&m.tags).unwrap_or_default();
        for t in &row.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        m.tags = serde_json::to_string(&tags).expect("strings serialize");
    }
    if !row.metadata.is_empty() {
        let mut meta: BTreeMap<String, Value> =
            serde_json::from_str(&m.metadata).unwrap_or_default();
        meta.extend(row.metadata.clone());
        m.metadata = serde_json::to_string(&meta).expect("JSON values serialize");
    }
    m.updated_at = now;
}

async fn update(txn: &impl ConnectionTrait, m: contacts::Model) -> anyhow::Result<()> {
    contacts::Entity::update(m.into_set_model(true))
        .exec(txn)
        .await
        .context("Failed to update a contact")?;
    Ok(())
}

/// Inserts new contacts, returning their ids in order.
async fn insert_new(
    txn: &impl ConnectionTrait,
    models: &[contacts::Model],
) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(models.len());
    // 15 columns a row keeps each statement well under SQLite's and
    // PostgreSQL's bound-parameter limits.
    for chunk in models.chunks(500) {
        let inserted =
            contacts::Entity::insert_many(chunk.iter().cloned().map(|m| m.into_set_model(false)))
                .exec_with_returning(txn)
                .await
                .context("Failed to insert contacts")?;
        // RETURNING preserves VALUES order on both SQLite and PostgreSQL
        // for a single multi-row INSERT; match on identity to be certain.
        let mut by_key: HashMap<ContactKey, i64> = inserted
            .into_iter()
            .map(|m| ((m.email, m.external_id, m.phone), m.id))
            .collect();
        for m in chunk {
            let key = (m.email.clone(), m.external_id.clone(), m.phone.clone());
            ids.push(
                by_key
                    .remove(&key)
                    .context("an inserted contact was not returned")?,
            );
        }
    }
    Ok(ids)
}

async fn forgotten_hashes(
    txn: &impl ConnectionTrait,
    hashes: &[String],
) -> anyhow::Result<std::collections::HashSet<String>> {
    use sea_orm::{
        FromQueryResult,
        sea_query::{Alias, Expr, ExprTrait, Query},
    };
    #[derive(FromQueryResult)]
    struct H {
        hash: String,
    }
    if hashes.is_empty() {
        return Ok(Default::default());
    }
    let mut found = std::collections::HashSet::new();
    for chunk in hashes.chunks(900) {
        let stmt = Query::select()
            .column(Alias::new("hash"))
            .from(Alias::new("tombstones"))
            .and_where(Expr::col(Alias::new("hash")).is_in(chunk.iter().cloned()))
            .to_owned();
        let backend = txn.get_database_backend();
        let rows = H::find_by_statement(backend.build(&stmt))
            .all(txn)
            .await
            .context("Failed to check erasure tombstones")?;
        found.extend(rows.into_iter().map(|h| h.hash));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per read, so line
    /// endings fall across reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// (first field, line) of every record after the header.
    fn record_lines(input: &str, chunk: usize) -> Vec<(String, u64)> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(LineIndex::new(Trickle(input.as_bytes(), chunk)));
        csv.headers().unwrap();
        let mut raw = csv::ByteRecord::new();
        let mut out = Vec::new();
        while csv.read_byte_record(&mut raw).unwrap() {
            let line = record_line(&mut csv, &raw);
            out.push((String::from_utf8_lossy(&raw[0]).into_owned(), line));
        }
        out
    }

    #[test]
    fn records_are_numbered_by_their_first_file_line_whatever_the_line_endings() {
        // Lines: 1 header, 2 a, 3 blank, 4 c, 5–6 quoted field over two
        // lines, 7 e (no final newline).
        let lf = "h1,h2\na,b\n\nc,d\n\"x\ny\",z\ne,f";
        let crlf = lf.replace('\n', "\r\n");
        let expected: Vec<(String, u64)> = [("a", 2), ("c", 4), ("x\ny", 5), ("e", 7)]
            .iter()
            .map(|(f, l)| (f.to_string(), *l))
            .collect();
        for chunk in [1, 2, 3, 7, 8192] {
            assert_eq!(record_lines(lf, chunk), expected, "LF, chunk {chunk}");
            let with_cr: Vec<(String, u64)> = expected
                .iter()
                .map(|(f, l)| (f.replace('\n', "\r\n"), *l))
                .collect();
            assert_eq!(record_lines(&crlf, chunk), with_cr, "CRLF, chunk {chunk}");
        }
    }

    #[test]
    fn a_final_line_ending_does_not_move_the_last_record() {
        assert_eq!(record_lines("h\na\nb\n", 8192)[1], ("b".to_string(), 3));
        assert_eq!(
            record_lines("h\r\na\r\nb\r\n", 8192)[1],
            ("b".to_string(), 3)
        );
    }

    fn opts() -> ImportOptions {
        ImportOptions {
            default_region: Some(phonenumber::country::Id::US),
            batch_size: 2,
            source_name: "test.csv".into(),
        }
    }

    fn parse(header: &str, line: &str) -> Result<Row, String> {
        let h = csv::StringRecord::from(header.split(',').collect::<Vec<_>>());
        let r = csv::StringRecord::from(line.split(',').collect::<Vec<_>>());
        parse_row(&Columns::from_header(&h).unwrap(), &r, 2, &opts())
    }

    #[test]
    fn a_full_row_parses_into_domain_values() {
        let row = parse(
            "email,phone,name,timezone,tags,consent_email,consent_source,company",
            "Ann@Example.com,(415) 555-2671,Ann Lee,Europe/Paris,vip; investor,yes,webinar,Acme",
        )
        .unwrap();
        assert_eq!(row.email.unwrap().as_str(), "Ann@example.com");
        assert_eq!(row.phone.unwrap().as_str(), "+14155552671");
        assert_eq!(row.first_name.as_deref(), Some("Ann"));
        assert_eq!(row.last_name.as_deref(), Some("Lee"));
        assert_eq!(row.tags, vec!["vip", "investor"]);
        assert_eq!(row.consent, vec![("email", true)]);
        assert_eq!(
            row.metadata.get("company"),
            Some(&Value::String("Acme".into()))
        );
    }

    #[test]
    fn bad_values_are_named() {
        assert!(
            parse("email", "not-an-email")
                .unwrap_err()
                .contains("not a valid email")
        );
        assert!(
            parse("email,timezone", "a@b.co,Mars/Olympus")
                .unwrap_err()
                .contains("IANA")
        );
        assert!(
            parse("email,consent_email", "a@b.co,maybe")
                .unwrap_err()
                .contains("yes or no")
        );
        assert!(parse("email,phone", ",").unwrap_err().contains("no email"));
        assert!(
            parse("email,consent_sms", "a@b.co,yes")
                .unwrap_err()
                .contains("no address")
        );
    }

    #[test]
    fn no_consent_column_means_no_consent() {
        assert!(parse("email", "a@b.co").unwrap().consent.is_empty());
    }

    #[test]
    fn a_header_without_identity_is_refused() {
        let h = csv::StringRecord::from(vec!["first_name", "last_name"]);
        assert!(Columns::from_header(&h).is_err());
    }
}
