//! Approval records in the store's file: one row per record, with its binding and whether it is
//! the binding's open record. Opening and swapping are each one write transaction.

use super::{error, SqliteStore};
use crate::state::approvals::{ApprovalStore, KEEP_MS};
use crate::state::StoreError;
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

/// The table, created with the others when a store opens.
pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS approvals (
     id TEXT PRIMARY KEY,
     binding TEXT NOT NULL,
     open INTEGER NOT NULL,
     made_ms INTEGER NOT NULL,
     record TEXT NOT NULL
 ) WITHOUT ROWID;
 CREATE UNIQUE INDEX IF NOT EXISTS approvals_open ON approvals (binding) WHERE open = 1;
 CREATE INDEX IF NOT EXISTS approvals_made ON approvals (made_ms)";

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn open_approval(
        &self,
        binding: &str,
        id: &str,
        fresh: &str,
        now_ms: u64,
    ) -> Result<String, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let open: Option<String> = tx
            .prepare_cached("SELECT record FROM approvals WHERE binding = ?1 AND open = 1")
            .map_err(error)?
            .query_row([binding], |row| row.get(0))
            .optional()
            .map_err(error)?;
        if let Some(record) = open {
            return Ok(record);
        }
        // A week on, even a request nobody was told the outcome of is long expired.
        tx.prepare_cached("DELETE FROM approvals WHERE made_ms < ?1")
            .map_err(error)?
            .execute([now_ms.saturating_sub(KEEP_MS) as i64])
            .map_err(error)?;
        tx.prepare_cached(
            "INSERT INTO approvals (id, binding, open, made_ms, record) VALUES (?1, ?2, 1, ?3, ?4)",
        )
        .map_err(error)?
        .execute(params![id, binding, now_ms as i64, fresh])
        .map_err(error)?;
        tx.commit().map_err(error)?;
        Ok(fresh.into())
    }

    async fn swap_approval(
        &self,
        id: &str,
        old: &str,
        new: &str,
        close: bool,
    ) -> Result<bool, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let changed = conn
            .prepare_cached(
                "UPDATE approvals SET record = ?3, open = CASE WHEN ?4 THEN 0 ELSE open END
                 WHERE id = ?1 AND record = ?2",
            )
            .map_err(error)?
            .execute(params![id, old, new, close])
            .map_err(error)?;
        Ok(changed == 1)
    }

    async fn approval(&self, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut statement = conn
            .prepare_cached("SELECT record FROM approvals WHERE id = ?1")
            .map_err(error)?;
        let record = statement
            .query_row([id], |row| row.get(0))
            .optional()
            .map_err(error)?;
        Ok(record)
    }

    async fn approvals(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut statement = conn
            .prepare_cached("SELECT record FROM approvals ORDER BY made_ms DESC, id LIMIT ?1")
            .map_err(error)?;
        let rows = statement
            .query_map([limit as i64], |row| row.get(0))
            .map_err(error)?;
        rows.collect::<Result<_, _>>().map_err(error)
    }
}

#[cfg(test)]
mod tests {
    use crate::approval::{self, Answer, Ask};
    use crate::state::sqlite::SqliteStore;

    #[tokio::test]
    async fn a_request_raised_through_one_connection_is_decided_and_used_through_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let (proxy_a, proxy_b, cli) = (
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        );
        let ask = Ask {
            server: "bank",
            tool: "transfer",
            caller: "agent",
            arguments: r#"{"amount": 250}"#,
            rule: "tools.transfer.rules[0]",
            rule_version: "v1",
            message: "Transfer 250?",
            timeout_ms: 60_000,
        };
        let Answer::Pending {
            approval,
            new: true,
        } = approval::ask(&proxy_a, &ask, 0).await.unwrap()
        else {
            panic!("a new request")
        };
        assert!(
            matches!(
                approval::ask(&proxy_b, &ask, 1).await.unwrap(),
                Answer::Pending { new: false, approval: ref a } if a.id == approval.id
            ),
            "the other proxy sees the same request"
        );
        approval::decide(&cli, &approval.id, true, "ops", "operator", 2)
            .await
            .unwrap();
        let Answer::Granted(granted) = approval::ask(&proxy_b, &ask, 3).await.unwrap() else {
            panic!("approved through the CLI's connection")
        };
        assert!(approval::consume(&proxy_b, &granted, 3).await.unwrap());
        assert!(
            matches!(
                approval::ask(&proxy_a, &ask, 4).await.unwrap(),
                Answer::Pending { new: true, .. }
            ),
            "used once, across proxies"
        );
        let listed = approval::list(&cli, 10).await.unwrap();
        assert_eq!(
            listed.iter().map(|a| a.state.name()).collect::<Vec<_>>(),
            ["pending", "used"]
        );
    }
}
