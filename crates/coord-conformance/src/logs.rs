//! Captures the log lines nodes write while a case watches them (case D18
//! checks that no secret appears in them).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// Most bytes kept while capturing.
const LIMIT: usize = 32 << 20;

struct Capture {
    installed: bool,
    on: AtomicBool,
    bytes: Mutex<Vec<u8>>,
}

static CAPTURE: OnceLock<Capture> = OnceLock::new();

struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(capture) = CAPTURE.get() {
            if capture.on.load(Ordering::Relaxed) {
                let mut bytes = capture.bytes.lock().expect("log capture lock");
                if bytes.len() + buf.len() <= LIMIT {
                    bytes.extend_from_slice(buf);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (at `DEBUG`) as the global default,
/// unless another one is installed already.
pub(crate) fn install() {
    CAPTURE.get_or_init(|| {
        let installed = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| Writer)
            .try_init()
            .is_ok();
        Capture {
            installed,
            on: AtomicBool::new(false),
            bytes: Mutex::new(Vec::new()),
        }
    });
}

/// Starts capturing from empty; `None` if the suite's subscriber is not the
/// global one (the embedding test installed its own).
pub(crate) fn start() -> Option<()> {
    let capture = CAPTURE.get().filter(|c| c.installed)?;
    capture.bytes.lock().expect("log capture lock").clear();
    capture.on.store(true, Ordering::Relaxed);
    Some(())
}

/// Stops capturing and returns what was written since [`start`].
pub(crate) fn stop() -> String {
    let Some(capture) = CAPTURE.get() else {
        return String::new();
    };
    capture.on.store(false, Ordering::Relaxed);
    let bytes = std::mem::take(&mut *capture.bytes.lock().expect("log capture lock"));
    String::from_utf8_lossy(&bytes).into_owned()
}
