//! A guard around calls into the parquet decoder.
//!
//! The parquet crate validates most malformed input with errors, but has had panics on hostile
//! bytes (index out of bounds in a corrupt page, say). A build must answer bad input with an error
//! naming the file, so decoder calls run inside [`no_panic`]: a panic there becomes an `Err` with
//! the panic's message and location, and the default "thread panicked" report is not printed for
//! it (the error carries it instead). Panics anywhere else are untouched.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    static LAST: Cell<Option<String>> = const { Cell::new(None) };
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST.with(|l| l.set(Some(format!("{msg}{at}"))));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it becomes `Err(message)`.
pub fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = GUARDED.with(|g| g.replace(true));
    let out = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    out.map_err(|_| {
        LAST.with(|l| l.take())
            .unwrap_or_else(|| "unknown panic".into())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn panics_become_errors() {
        assert_eq!(super::no_panic(|| 3), Ok(3));
        let e = super::no_panic(|| -> u8 { panic!("boom {}", 7) }).expect_err("panicked");
        assert!(e.starts_with("boom 7 at "), "{e}");
    }
}
