//! `videoroom-desktop`: the Videoroom desktop app.

fn main() {
    if let Err(e) = videoroom_desktop::run() {
        eprintln!("videoroom-desktop: {e}");
        std::process::exit(1);
    }
}
