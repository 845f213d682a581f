//! One history record: the invocation or completion of a read, write or CAS, as in Jepsen.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::scenario::NodeIndex;

/// A logical client: it has at most one operation in flight, and after an `info` completion it
/// never issues another (its client continues as a new process).
pub type ProcessId = u64;

/// One line of history.jsonl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Op {
    /// Position in the history: strictly increasing, so it orders events in real time.
    pub index: u64,
    /// The process that issued the operation.
    pub process: ProcessId,
    /// Invocation, or how the operation completed.
    #[serde(rename = "type")]
    pub op_type: OpType,
    /// What the operation does.
    pub f: OpFunction,
    /// The key it touches.
    pub key: String,
    /// Its argument or result; see [`OpValue`].
    pub value: OpValue,
    /// Nanoseconds since the run started, from a monotonic clock; never decreases.
    pub time_ns: u64,
    /// The node the client sent the request to, if it got that far.
    #[serde(default)]
    pub node: Option<NodeIndex>,
}

/// Invocation, or the three ways an operation can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpType {
    /// The client sent the request.
    Invoke,
    /// The operation took effect (for a read: returned its value).
    Ok,
    /// The operation certainly did not take effect.
    Fail,
    /// Unknown: the operation may take effect at any time after its invocation, or never.
    Info,
}

impl fmt::Display for OpType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        };
        formatter.write_str(name)
    }
}

/// The operation kinds of the register workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpFunction {
    /// A linearizable read.
    Read,
    /// An unconditional write.
    Write,
    /// Compare-and-swap: write the new value if the current one is the expected one.
    Cas,
}

impl fmt::Display for OpFunction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            OpFunction::Read => "read",
            OpFunction::Write => "write",
            OpFunction::Cas => "cas",
        };
        formatter.write_str(name)
    }
}

/// The `value` field. In JSON: `null`, a string, or `[expected, new]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OpValue {
    /// `null`: a read's invocation, a read that found no value, or a read that did not complete.
    Absent,
    /// A string: the value a write writes, or the value a read returned.
    Value(String),
    /// `[expected, new]`: a CAS; `expected` is `null` for "the key is absent".
    Cas {
        /// The value the key must hold for the swap to happen.
        expected: Option<String>,
        /// The value written if it does.
        new: String,
    },
}

impl OpValue {
    /// Checks that this value fits an operation of kind `f` and type `op_type`, as Jepsen writes
    /// them: writes and CAS carry their argument on every record, a read's value is only known
    /// when it completes `ok`.
    pub fn check_shape(&self, f: OpFunction, op_type: OpType) -> Result<(), String> {
        let fits = match (f, self) {
            (OpFunction::Read, OpValue::Absent) => true,
            (OpFunction::Read, OpValue::Value(_)) => op_type == OpType::Ok,
            (OpFunction::Write, OpValue::Value(_)) => true,
            (OpFunction::Cas, OpValue::Cas { .. }) => true,
            _ => false,
        };
        if fits {
            return Ok(());
        }
        let expected = match (f, op_type) {
            (OpFunction::Read, OpType::Ok) => "null or the string read",
            (OpFunction::Read, _) => "null (a read's value is known only once it is ok)",
            (OpFunction::Write, _) => "the string written",
            (OpFunction::Cas, _) => "[expected, new] (expected may be null)",
        };
        Err(format!("a {f} {op_type} carries {expected}, not {self}"))
    }
}

impl fmt::Display for OpValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpValue::Absent => formatter.write_str("null"),
            OpValue::Value(value) => write!(formatter, "{value:?}"),
            OpValue::Cas { expected: Some(expected), new } => {
                write!(formatter, "[{expected:?}, {new:?}]")
            }
            OpValue::Cas { expected: None, new } => write!(formatter, "[null, {new:?}]"),
        }
    }
}

impl Serialize for OpValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            OpValue::Absent => serializer.serialize_none(),
            OpValue::Value(value) => serializer.serialize_str(value),
            OpValue::Cas { expected, new } => {
                let mut pair = serializer.serialize_tuple(2)?;
                pair.serialize_element(expected)?;
                pair.serialize_element(new)?;
                pair.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OpValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OpValueVisitor)
    }
}

/// Accepts `null`, a string, or a two-element array.
struct OpValueVisitor;

impl<'de> Visitor<'de> for OpValueVisitor {
    type Value = OpValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("null, a string, or [expected, new]")
    }

    fn visit_unit<E: de::Error>(self) -> Result<OpValue, E> {
        Ok(OpValue::Absent)
    }

    fn visit_none<E: de::Error>(self) -> Result<OpValue, E> {
        Ok(OpValue::Absent)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<OpValue, E> {
        Ok(OpValue::Value(value.to_string()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<OpValue, E> {
        Ok(OpValue::Value(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OpValue, A::Error> {
        let expected: Option<String> =
            seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let new: String = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(OpValue::Cas { expected, new })
    }
}
