//! How a [`WriteCommand`] changes a key-value table: one function, shared by the redb state
//! machine and the deterministic backend so that both give the same answers.

use serde::{Deserialize, Serialize};

use super::WriteCommand;

/// A table of string keys and values that a command is applied to.
pub trait KvTable {
    /// The error the table's storage can fail with.
    type Error;
    /// The current value of `key`.
    fn get(&mut self, key: &str) -> Result<Option<String>, Self::Error>;
    /// Set `key` to `value`.
    fn put(&mut self, key: &str, value: &str) -> Result<(), Self::Error>;
    /// Remove `key` if present.
    fn remove(&mut self, key: &str) -> Result<(), Self::Error>;
}

/// What applying a command did. This is the response that Raft hands back to the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOutcome {
    /// The command changed the table as asked (also for log entries that carry no command).
    #[default]
    Applied,
    /// A compare-and-swap found another value; nothing changed.
    CompareAndSwapMismatch {
        /// The value the key has (`None`: absent).
        current: Option<String>,
    },
}

/// Applies `command` to `table`. `SetMulti` applies its pairs in order; on a storage error the
/// caller must abort the enclosing transaction, so a partial `SetMulti` is never committed.
pub fn apply_command<T: KvTable>(
    table: &mut T,
    command: &WriteCommand,
) -> Result<WriteOutcome, T::Error> {
    match command {
        WriteCommand::Set { key, value } => table.put(key, value)?,
        WriteCommand::SetMulti { pairs } => {
            for (key, value) in pairs {
                table.put(key, value)?;
            }
        }
        WriteCommand::Delete { key } => table.remove(key)?,
        WriteCommand::CompareAndSwap { key, expected, new_value } => {
            let current = table.get(key)?;
            if current != *expected {
                return Ok(WriteOutcome::CompareAndSwapMismatch { current });
            }
            table.put(key, new_value)?;
        }
    }
    Ok(WriteOutcome::Applied)
}

impl KvTable for std::collections::BTreeMap<String, String> {
    type Error = std::convert::Infallible;

    fn get(&mut self, key: &str) -> Result<Option<String>, Self::Error> {
        Ok(std::collections::BTreeMap::get(self, key).cloned())
    }

    fn put(&mut self, key: &str, value: &str) -> Result<(), Self::Error> {
        self.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), Self::Error> {
        std::collections::BTreeMap::remove(self, key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn set(key: &str, value: &str) -> WriteCommand {
        WriteCommand::Set { key: key.into(), value: value.into() }
    }

    #[test]
    fn compare_and_swap_applies_only_on_match() {
        let mut table = BTreeMap::new();
        let cas = |expected: Option<&str>, new: &str| WriteCommand::CompareAndSwap {
            key: "k".into(),
            expected: expected.map(str::to_owned),
            new_value: new.into(),
        };
        assert_eq!(apply_command(&mut table, &cas(None, "a")), Ok(WriteOutcome::Applied));
        assert_eq!(
            apply_command(&mut table, &cas(None, "b")),
            Ok(WriteOutcome::CompareAndSwapMismatch { current: Some("a".into()) })
        );
        assert_eq!(apply_command(&mut table, &cas(Some("a"), "b")), Ok(WriteOutcome::Applied));
        assert_eq!(table.get("k"), Some(&"b".to_string()));
    }

    #[test]
    fn set_multi_applies_in_order_and_delete_removes() {
        let mut table = BTreeMap::new();
        let pairs =
            vec![("a".into(), "1".into()), ("a".into(), "2".into()), ("b".into(), "3".into())];
        apply_command(&mut table, &WriteCommand::SetMulti { pairs }).unwrap();
        assert_eq!(table.get("a"), Some(&"2".to_string()));
        apply_command(&mut table, &WriteCommand::Delete { key: "a".into() }).unwrap();
        apply_command(&mut table, &WriteCommand::Delete { key: "missing".into() }).unwrap();
        apply_command(&mut table, &set("c", "4")).unwrap();
        assert_eq!(table.keys().collect::<Vec<_>>(), vec!["b", "c"]);
    }
}
