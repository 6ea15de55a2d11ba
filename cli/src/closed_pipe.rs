//! A closed output pipe ends `baro` quietly, as it ends `cat` or `grep`:
//! `baro history 2과 | head -1` must not print a panic when `head` leaves.
//!
//! Rust ignores SIGPIPE, so a write to the closed pipe fails with
//! `BrokenPipe`, and `println!` panics on that. Rather than route every
//! line of every command through a fallible writer, a panic hook
//! recognises exactly that panic and exits with status 0 without a word
//! (nobody is left to read one); every other panic is reported as before.
//! SIGPIPE is not restored to its default: the node writes to sockets,
//! and a peer or client that goes away must not kill it.

/// Installs the hook; call once at start.
pub fn end_quietly() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        if message.is_some_and(is_closed_pipe) {
            std::process::exit(0);
        }
        report(info);
    }));
}

/// The panic `print!` and `eprint!` raise when their pipe is closed
/// ("failed printing to stdout: Broken pipe (os error 32)").
fn is_closed_pipe(message: &str) -> bool {
    // EPIPE is 32 on every Unix `baro` builds for.
    message.starts_with("failed printing to std") && message.contains("(os error 32)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_print_panic_on_a_closed_pipe_is_recognised() {
        assert!(is_closed_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(is_closed_pipe(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_pipe(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_closed_pipe("index out of bounds"));
    }
}
