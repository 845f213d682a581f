//! Checks every request against [`crate::limits`] before it reaches a backend.
//!
//! Each function returns the reason a request is invalid as a sentence that names the field and
//! the limit, so that the HTTP API and the CLI can show it as it is.

use std::collections::BTreeSet;

use super::{ChangeMembershipRequest, ClusterNode, InitRequest, ScanRequest, WriteCommand};
use crate::limits::{
    CLUSTER_NODES_MAX, KEY_BYTES_MAX, SCAN_LIMIT_DEFAULT, SCAN_LIMIT_MAX, SET_MULTI_PAIRS_MAX,
    VALUE_BYTES_MAX, WRITE_COMMAND_BYTES_MAX,
};

/// A key must be non-empty and at most `KEY_BYTES_MAX` bytes.
pub fn key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("key must not be empty".into());
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(format!("key is {} bytes, more than the limit of {KEY_BYTES_MAX}", key.len()));
    }
    Ok(())
}

/// A value must be at most `VALUE_BYTES_MAX` bytes.
pub fn value(value: &str) -> Result<(), String> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(format!(
            "value is {} bytes, more than the limit of {VALUE_BYTES_MAX}",
            value.len()
        ));
    }
    Ok(())
}

/// Checks every key and value of a write, the pair count of `SetMulti`, and the total size.
pub fn write_command(command: &WriteCommand) -> Result<(), String> {
    match command {
        WriteCommand::Set { key: k, value: v } => {
            key(k)?;
            value(v)
        }
        WriteCommand::SetMulti { pairs } => {
            if pairs.is_empty() {
                return Err("SetMulti needs at least one pair".into());
            }
            if pairs.len() > SET_MULTI_PAIRS_MAX {
                return Err(format!(
                    "SetMulti has {} pairs, more than the limit of {SET_MULTI_PAIRS_MAX}",
                    pairs.len()
                ));
            }
            let mut total = 0usize;
            for (k, v) in pairs {
                key(k)?;
                value(v)?;
                total += k.len() + v.len();
            }
            if total > WRITE_COMMAND_BYTES_MAX {
                return Err(format!(
                    "SetMulti carries {total} bytes, more than the limit of {WRITE_COMMAND_BYTES_MAX}"
                ));
            }
            Ok(())
        }
        WriteCommand::Delete { key: k } => key(k),
        WriteCommand::CompareAndSwap { key: k, expected, new_value } => {
            key(k)?;
            if let Some(expected) = expected {
                value(expected)?;
            }
            value(new_value)
        }
    }
}

/// Returns the effective limit of a scan: the requested one, or the default.
pub fn scan(request: &ScanRequest) -> Result<u32, String> {
    if request.prefix.len() > KEY_BYTES_MAX {
        return Err(format!(
            "prefix is {} bytes, more than the key limit of {KEY_BYTES_MAX}",
            request.prefix.len()
        ));
    }
    match request.limit {
        None => Ok(SCAN_LIMIT_DEFAULT),
        Some(0) => Err("scan limit must be at least 1".into()),
        Some(limit) if limit > SCAN_LIMIT_MAX => {
            Err(format!("scan limit {limit} is more than the maximum of {SCAN_LIMIT_MAX}"))
        }
        Some(limit) => Ok(limit),
    }
}

/// Initial members must be non-empty, unique by id and at most `CLUSTER_NODES_MAX`.
pub fn init(request: &InitRequest) -> Result<(), String> {
    if request.initial_members.is_empty() {
        return Err("initial_members must name at least one node".into());
    }
    nodes(&request.initial_members)
}

/// Node ids must be unique, at most `CLUSTER_NODES_MAX`, and addresses bounded.
pub fn nodes(nodes: &[ClusterNode]) -> Result<(), String> {
    if nodes.len() > CLUSTER_NODES_MAX {
        return Err(format!("{} nodes is more than the limit of {CLUSTER_NODES_MAX}", nodes.len()));
    }
    let mut seen = BTreeSet::new();
    for node in nodes {
        if !seen.insert(node.id) {
            return Err(format!("node id {} appears twice", node.id));
        }
        if node.addr.len() > KEY_BYTES_MAX {
            return Err(format!("address of node {} is too long", node.id));
        }
    }
    Ok(())
}

/// The new voter set must be non-empty, unique and at most `CLUSTER_NODES_MAX`.
pub fn change_membership(request: &ChangeMembershipRequest) -> Result<(), String> {
    if request.members.is_empty() {
        return Err("members must name at least one voter".into());
    }
    if request.members.len() > CLUSTER_NODES_MAX {
        return Err(format!(
            "{} members is more than the limit of {CLUSTER_NODES_MAX}",
            request.members.len()
        ));
    }
    let unique: BTreeSet<_> = request.members.iter().collect();
    if unique.len() != request.members.len() {
        return Err("members names a node id twice".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_limits() {
        assert!(key("").unwrap_err().contains("empty"));
        assert!(key(&"k".repeat(KEY_BYTES_MAX)).is_ok());
        assert!(key(&"k".repeat(KEY_BYTES_MAX + 1)).unwrap_err().contains("limit"));
    }

    #[test]
    fn value_limits() {
        assert!(value("").is_ok());
        assert!(value(&"v".repeat(VALUE_BYTES_MAX)).is_ok());
        assert!(value(&"v".repeat(VALUE_BYTES_MAX + 1)).unwrap_err().contains("limit"));
    }

    #[test]
    fn set_multi_limits() {
        let pair = || ("k".to_string(), "v".to_string());
        let ok = WriteCommand::SetMulti { pairs: vec![pair(); SET_MULTI_PAIRS_MAX] };
        assert!(write_command(&ok).is_ok());
        let over = WriteCommand::SetMulti { pairs: vec![pair(); SET_MULTI_PAIRS_MAX + 1] };
        assert!(write_command(&over).unwrap_err().contains("pairs"));
        let empty = WriteCommand::SetMulti { pairs: vec![] };
        assert!(write_command(&empty).unwrap_err().contains("at least one"));
        let big = "v".repeat(VALUE_BYTES_MAX);
        let heavy = WriteCommand::SetMulti { pairs: vec![("k".into(), big); 5] };
        assert!(write_command(&heavy).unwrap_err().contains("bytes"));
    }

    #[test]
    fn scan_limits() {
        let request = |limit| ScanRequest { prefix: String::new(), limit };
        assert_eq!(scan(&request(None)), Ok(SCAN_LIMIT_DEFAULT));
        assert_eq!(scan(&request(Some(SCAN_LIMIT_MAX))), Ok(SCAN_LIMIT_MAX));
        assert!(scan(&request(Some(0))).is_err());
        assert!(scan(&request(Some(SCAN_LIMIT_MAX + 1))).is_err());
    }

    #[test]
    fn membership_limits() {
        let node = |id| ClusterNode::new(id, "127.0.0.1:1", None);
        assert!(init(&InitRequest { initial_members: vec![] }).is_err());
        assert!(init(&InitRequest { initial_members: vec![node(1), node(1)] }).is_err());
        let many: Vec<_> = (0..=CLUSTER_NODES_MAX as u64).map(node).collect();
        assert!(init(&InitRequest { initial_members: many }).is_err());
        assert!(change_membership(&ChangeMembershipRequest { members: vec![] }).is_err());
        assert!(change_membership(&ChangeMembershipRequest { members: vec![1, 1] }).is_err());
        assert!(change_membership(&ChangeMembershipRequest { members: vec![1, 2] }).is_ok());
    }
}
