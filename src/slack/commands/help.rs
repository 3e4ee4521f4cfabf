//! `/warm help`: the usage message.

use async_trait::async_trait;

use super::{CommandError, Invocation, Reply, Subcommand};
use crate::state::App;

pub struct Help;

#[async_trait]
impl Subcommand for Help {
    fn name(&self) -> &'static str {
        "help"
    }
    fn summary(&self) -> &'static str {
        "Show this list of commands"
    }
    async fn run(&self, app: &App, _inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        Ok(super::usage(app, None))
    }
}
