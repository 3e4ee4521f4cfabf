//! Who a campaign goes to: a segment of the contacts (warmth range, status,
//! pipeline stage, tags) or an explicit list of email addresses, resolved to
//! contact ids with one set-based query.
//!
//! Invariants:
//! - Every value is bound; no input reaches the SQL text (tags are matched
//!   as JSON strings with `LIKE`, escaped).
//! - The result is sorted and free of duplicates, so the same audience
//!   always hashes the same in the approval engine.

use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};

use crate::db::placeholders;

/// A segment: every condition given must hold (all tags too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub warmth_min: Option<f64>,
    pub warmth_max: Option<f64>,
    pub status: Option<String>,
    pub stage: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Audience {
    Segment(Segment),
    List { emails: Vec<String> },
}

/// An audience as contact ids, and the listed addresses no contact has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    pub ids: Vec<i64>,
    pub unknown: Vec<String>,
}

#[derive(FromQueryResult)]
struct Row {
    id: i64,
    email: Option<String>,
}

/// Escapes `%`, `_` and `\` for `LIKE … ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub async fn resolve(conn: &impl ConnectionTrait, audience: &Audience) -> anyhow::Result<Resolved> {
    let backend = conn.get_database_backend();
    match audience {
        Audience::Segment(s) => {
            let mut conds: Vec<String> = Vec::new();
            let mut values: Vec<Value> = Vec::new();
            let mut bind = |cond: &str, v: Value, conds: &mut Vec<String>| {
                values.push(v);
                conds.push(cond.replace('?', &format!("${}", values.len())));
            };
            if let Some(min) = s.warmth_min {
                bind("warmth >= ?", Value::from(min), &mut conds);
            }
            if let Some(max) = s.warmth_max {
                bind("warmth <= ?", Value::from(max), &mut conds);
            }
            if let Some(status) = &s.status {
                bind(
                    "LOWER(status) = ?",
                    Value::from(status.to_lowercase()),
                    &mut conds,
                );
            }
            if let Some(stage) = &s.stage {
                bind(
                    "LOWER(pipeline_stage) = ?",
                    Value::from(stage.to_lowercase()),
                    &mut conds,
                );
            }
            for tag in &s.tags {
                // Tags are stored as a JSON array of strings.
                let quoted = serde_json::to_string(&tag.to_lowercase())?;
                bind(
                    "LOWER(tags) LIKE ? ESCAPE '\\'",
                    Value::from(format!("%{}%", like_escape(&quoted))),
                    &mut conds,
                );
            }
            let where_ = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            };
            let rows = Row::find_by_statement(Statement::from_sql_and_values(
                backend,
                format!("SELECT id, email FROM contacts{where_} ORDER BY id"),
                values,
            ))
            .all(conn)
            .await?;
            Ok(Resolved {
                ids: rows.into_iter().map(|r| r.id).collect(),
                unknown: Vec::new(),
            })
        }
        Audience::List { emails } => {
            let mut wanted: Vec<String> = emails
                .iter()
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty())
                .collect();
            wanted.sort();
            wanted.dedup();
            let mut found: Vec<Row> = Vec::new();
            for chunk in wanted.chunks(500) {
                let sql = format!(
                    "SELECT id, email FROM contacts WHERE LOWER(email) IN ({})",
                    placeholders(1, chunk.len())
                );
                found.extend(
                    Row::find_by_statement(Statement::from_sql_and_values(
                        backend,
                        sql,
                        chunk.iter().map(|e| Value::from(e.clone())),
                    ))
                    .all(conn)
                    .await?,
                );
            }
            let known: std::collections::HashSet<String> = found
                .iter()
                .filter_map(|r| r.email.as_ref().map(|e| e.to_lowercase()))
                .collect();
            let mut ids: Vec<i64> = found.iter().map(|r| r.id).collect();
            ids.sort_unstable();
            ids.dedup();
            Ok(Resolved {
                ids,
                unknown: wanted.into_iter().filter(|e| !known.contains(e)).collect(),
            })
        }
    }
}

/// Splits a pasted list (commas, semicolons, spaces, new lines).
pub fn parse_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_list_splits_on_any_separator() {
        assert_eq!(
            parse_list("a@x.org, b@x.org;c@x.org\n d@x.org"),
            ["a@x.org", "b@x.org", "c@x.org", "d@x.org"]
        );
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape("50%_a\\"), "50\\%\\_a\\\\");
    }
}
