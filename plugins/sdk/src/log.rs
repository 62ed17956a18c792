//! Logging through the host's `log` import, and the panic hook that uses it.

use crate::Level;

/// Send one message to the host log. Natively (in unit tests) it goes to stderr instead, since
/// the import exists only inside a component.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::nos::plugin::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Route panics to the host log as `panic: <message>` before the guest traps.
///
/// Without it, std's default hook reads `RUST_BACKTRACE` and writes to stderr, which the host
/// discards, and the panic message is lost. Idempotent.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log(Level::Error, &format!("panic: {info}"));
        }));
    });
}
