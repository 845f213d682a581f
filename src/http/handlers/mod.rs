//! The route handlers: each decodes its request, calls the node's API (or reads its state)
//! and encodes the answer. The logic lives elsewhere: in the API traits, in
//! [`super::error`] and in [`super::metrics`].

pub mod cluster;
pub mod kv;
pub mod node;
