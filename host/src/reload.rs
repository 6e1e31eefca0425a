//! Hot reload: the policy file and the plugin files it names are watched (their modification
//! time and size, polled); a change loads the whole policy again and, if it loads, puts it in
//! force at once. Sessions and calls in flight carry on — a call is decided by the chain in force
//! when it arrives, and counters live in the store, which the new chain shares. A policy that
//! does not load leaves the old one in force, and the log says exactly why.

use crate::chain::{Chain, ChainCell};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(500);

/// A freshly loaded policy, and the files it depends on.
pub struct Loaded {
    /// The chain.
    pub chain: Chain,
    /// The files whose change means "load again" (the policy, its plugin files).
    pub files: Vec<PathBuf>,
}

type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

/// Watch `files` until the process ends; on a change, `load` the policy again and put it in
/// `cell` when it loads.
pub fn watch<F, Fut>(cell: Arc<ChainCell>, files: Vec<PathBuf>, load: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Loaded, String>> + Send,
{
    tokio::spawn(async move {
        let mut files = files;
        let mut seen = stamp(&files);
        loop {
            tokio::time::sleep(POLL).await;
            let now = stamp(&files);
            if now == seen {
                continue;
            }
            // Editors write in several steps: wait for the file to settle before reading it.
            tokio::time::sleep(POLL / 5).await;
            seen = stamp(&files);
            match load().await {
                Ok(loaded) => {
                    cell.replace(Arc::new(loaded.chain));
                    files = loaded.files;
                    seen = stamp(&files);
                    crate::metrics::reload("ok");
                    tracing::info!("policy reloaded");
                }
                Err(why) => {
                    crate::metrics::reload("failed");
                    tracing::error!("policy not reloaded; the previous one stays in force: {why}");
                }
            }
        }
    });
}
