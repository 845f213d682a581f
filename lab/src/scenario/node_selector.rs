//! Which node a fault, a removal or a network fault targets: an index, or a role resolved when
//! the step runs. Kept apart from the steps because it is shared by steps, network faults and
//! validation, and because its JSON form (a number or a role name) is written by hand.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::model::NodeIndex;

/// Which node a fault or removal targets: an index, or a role resolved when the step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeSelector {
    /// The node with this index.
    Index(NodeIndex),
    /// Whichever node leads when the step runs.
    Leader,
    /// A follower picked with the run's seeded random generator when the step runs.
    RandomFollower,
}

impl fmt::Display for NodeSelector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeSelector::Index(index) => write!(formatter, "node {index}"),
            NodeSelector::Leader => formatter.write_str("the leader"),
            NodeSelector::RandomFollower => formatter.write_str("a random follower"),
        }
    }
}

impl Serialize for NodeSelector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NodeSelector::Index(index) => serializer.serialize_u32(*index),
            NodeSelector::Leader => serializer.serialize_str("leader"),
            NodeSelector::RandomFollower => serializer.serialize_str("random_follower"),
        }
    }
}

impl<'de> Deserialize<'de> for NodeSelector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeSelectorVisitor)
    }
}

/// Accepts a node index or one of the role names, with one message for anything else.
struct NodeSelectorVisitor;

impl Visitor<'_> for NodeSelectorVisitor {
    type Value = NodeSelector;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(r#"a node index, "leader" or "random_follower""#)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<NodeSelector, E> {
        NodeIndex::try_from(value)
            .map(NodeSelector::Index)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<NodeSelector, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<NodeSelector, E> {
        match value {
            "leader" => Ok(NodeSelector::Leader),
            "random_follower" => Ok(NodeSelector::RandomFollower),
            _ => Err(E::invalid_value(de::Unexpected::Str(value), &self)),
        }
    }
}
