//! The aspen-lab command (being written).
fn main() {
    eprintln!("aspen-lab: not implemented yet");
    std::process::exit(2);
}
