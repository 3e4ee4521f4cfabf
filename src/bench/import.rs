//! CSV import benchmark: generates `rows` contacts (with a few bad rows and
//! duplicates mixed in), imports them into a fresh database, and reports
//! rows per second. Target: 100,000 rows in under 10 s.

use std::time::{Duration, Instant};

use crate::import::contacts_csv::{self, ImportOptions, ImportReport};

pub struct ImportBench {
    pub rows: usize,
    pub elapsed: Duration,
    pub report: ImportReport,
}

impl std::fmt::Display for ImportBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "import: {} rows in {:.2} s ({:.0} rows/s): {} imported, {} merged, {} rejected",
            self.rows,
            self.elapsed.as_secs_f64(),
            self.rows as f64 / self.elapsed.as_secs_f64(),
            self.report.imported,
            self.report.merged,
            self.report.rejected.len()
        )
    }
}

/// Builds the CSV: every 1000th row has a bad email, every 500th repeats an
/// earlier email (a merge).
pub fn generate(rows: usize) -> String {
    let mut out = String::with_capacity(rows * 120);
    out.push_str("email,phone,first_name,last_name,timezone,status,pipeline_stage,tags,consent_email,consent_source,company\n");
    for i in 0..rows {
        let email = if i % 1000 == 999 {
            format!("broken-{i}.example.com")
        } else if i % 500 == 499 {
            format!("contact{}@example.com", i - 1)
        } else {
            format!("contact{i}@example.com")
        };
        let phone = format!("+1415555{:04}", i % 10_000);
        let consent = if i % 3 == 0 { "yes" } else { "" };
        out.push_str(&format!(
            "{email},{phone},First{i},Last{i},America/New_York,active,lead,vip;investor,{consent},bench,Company {i}\n"
        ));
    }
    out
}

/// Runs the benchmark against `database_url`, or a temporary SQLite file.
pub async fn run(rows: usize, database_url: Option<&str>) -> anyhow::Result<ImportBench> {
    let dir = tempfile_dir()?;
    let url = match database_url {
        Some(u) => u.to_string(),
        None => format!("sqlite://{}/bench.db?mode=rwc", dir.display()),
    };
    let db = crate::db::connect(&url, 4).await?;
    <crate::migrations::Migrator as sea_orm_migration::MigratorTrait>::up(&db, None).await?;
    let csv = generate(rows);
    let opts = ImportOptions {
        default_region: Some(phonenumber::country::Id::US),
        batch_size: 1000,
        source_name: "bench.csv".into(),
    };
    let start = Instant::now();
    let report = contacts_csv::import(
        &db,
        csv.as_bytes(),
        &opts,
        &indicatif::ProgressBar::hidden(),
    )
    .await?;
    let elapsed = start.elapsed();
    db.close().await.ok();
    std::fs::remove_dir_all(&dir).ok();
    Ok(ImportBench {
        rows,
        elapsed,
        report,
    })
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("warmline-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
