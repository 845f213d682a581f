//! Raft RPC over iroh (being written).
