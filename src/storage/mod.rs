//! Storage on redb (being written).

/// Stand-in until the redb state machine lands.
pub type RedbStateMachine = ();
