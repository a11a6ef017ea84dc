//! A progress bar on stderr for long offline jobs (`driftline batch`): redrawn in place on a
//! terminal, a plain line per tenth otherwise (logs and CI).
use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    total: u64,
    started: Instant,
    last_draw: Instant,
    last_tenth: u64,
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
            last_tenth: 0,
            terminal,
        }
    }

    /// `done` of `total` finished.
    pub fn update(&mut self, done: u64) {
        let tenth = done * 10 / self.total.max(1);
        if self.terminal {
            if self.last_draw.elapsed() >= Duration::from_millis(200) || done == self.total {
                self.last_draw = Instant::now();
                eprint!("\r{}", self.line(done));
                let _ = std::io::stderr().flush();
            }
        } else if tenth > self.last_tenth {
            self.last_tenth = tenth;
            eprintln!("{}", self.line(done));
        }
    }

    pub fn finish(&mut self) {
        if self.terminal {
            eprintln!();
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
