//! A progress bar on stderr for long offline jobs (`driftline batch`): redrawn in place on a
//! terminal; elsewhere (logs, CI, a pipe) one final line, so the log holds no bar.
use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    total: u64,
    started: Instant,
    last_draw: Instant,
    done: u64,
    terminal: bool,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        // SAFETY: isatty(2) only inspects the descriptor.
        let terminal = unsafe { libc::isatty(2) == 1 };
        Progress {
            total,
            started: Instant::now(),
            last_draw: Instant::now() - Duration::from_secs(1),
            done: 0,
            terminal,
        }
    }

    /// `done` of `total` finished.
    pub fn update(&mut self, done: u64) {
        self.done = done;
        if self.terminal
            && (self.last_draw.elapsed() >= Duration::from_millis(200) || done == self.total)
        {
            self.last_draw = Instant::now();
            eprint!("\r{}", self.line(done));
            let _ = std::io::stderr().flush();
        }
    }

    pub fn finish(&mut self) {
        if self.terminal {
            eprintln!();
        } else {
            eprintln!("{}", self.line(self.done));
        }
    }

    fn line(&self, done: u64) -> String {
        const WIDTH: u64 = 30;
        let filled = (done * WIDTH / self.total.max(1)) as usize;
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        format!(
            "[{}{}] {:>3}% {done}/{} events, {rate:.0}/s",
            "#".repeat(filled),
            ".".repeat(WIDTH as usize - filled),
            done * 100 / self.total.max(1),
            self.total
        )
    }
}
