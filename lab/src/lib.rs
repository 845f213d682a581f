//! aspen-lab (being written).
