//! Starting and running a node (being written).
