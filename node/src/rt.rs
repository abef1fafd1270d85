//! The I/O threads: each of the socket layer, the cluster harbor and an
//! embedded master runs a single-threaded tokio runtime on a thread of its own,
//! apart from the workers.

/// Starts a thread named `name` that runs a current-thread tokio runtime
/// (I/O and timers) forever; returns a handle to spawn tasks on it.
pub fn io_thread(name: &str) -> Result<tokio::runtime::Handle, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = tx.send(Ok(rt.handle().clone()));
            rt.block_on(std::future::pending::<()>());
        })
        .map_err(|e| format!("can't start the {name} thread: {e}"))?;
    rx.recv()
        .map_err(|_| format!("the {name} thread did not start"))?
        .map_err(|e| format!("can't start the {name} runtime: {e}"))
}
